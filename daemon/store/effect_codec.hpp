#pragma once
// How an Effect is laid out in a row of the effects table: the kind and the
// fields every effect has get their own columns, the rest goes to `payload`.
#include <boost/json.hpp>
#include <string>

#include "daemon/core/result.hpp"
#include "daemon/engine/engine.hpp"

namespace brickwork::store_detail {

struct EffectRow {
  std::string kind;  // execute | poll | cancel | timer
  std::string step;
  int32_t attempt = 0;
  // execute: {key_id} (absent before key ids); poll: {due_ms}; cancel: {run_id,
  // handle}; timer: {timer, due_ms}
  json::object payload;
};

EffectRow encode_effect(const Effect& effect);
// The inverse of encode_effect; an unknown kind or a malformed payload is an Error.
Result<Effect> decode_effect(const EffectRow& row);

}  // namespace brickwork::store_detail
