#include "daemon/store/effect_codec.hpp"

#include <type_traits>

namespace brickwork::store_detail {
namespace {

Error corrupt(const EffectRow& row, const std::string& what) {
  return Error{ErrorKind::kInternal, "corrupt_effect",
               "effect " + row.kind + " of step " + row.step + ": " + what};
}

std::optional<int64_t> int_field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64() && v->as_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return static_cast<int64_t>(v->as_uint64());
  }
  return std::nullopt;
}

}  // namespace

EffectRow encode_effect(const Effect& effect) {
  return std::visit(
      [](const auto& e) -> EffectRow {
        using T = std::decay_t<decltype(e)>;
        EffectRow row{"", e.step, e.attempt, {}};
        if constexpr (std::is_same_v<T, ExecuteStep>) {
          row.kind = "execute";
          if (!e.key_id.empty()) row.payload["key_id"] = e.key_id;
        } else if constexpr (std::is_same_v<T, PollStep>) {
          row.kind = "poll";
          row.payload["due_ms"] = to_epoch_ms(e.due);
          if (e.after_event_grace) row.payload["after_event_grace"] = true;
        } else if constexpr (std::is_same_v<T, CancelStep>) {
          row.kind = "cancel";
          row.payload["run_id"] = e.run_id ? json::value(*e.run_id) : json::value(nullptr);
          row.payload["handle"] = e.handle;
        } else {
          static_assert(std::is_same_v<T, StartTimer>);
          row.kind = "timer";
          row.payload["timer"] = to_string(e.kind);
          row.payload["due_ms"] = to_epoch_ms(e.due);
        }
        return row;
      },
      effect);
}

Result<Effect> decode_effect(const EffectRow& row) {
  if (row.kind == "execute") {
    // No key_id: written before key ids, when the current secret was the only one.
    const json::value* key_id = row.payload.if_contains("key_id");
    if (key_id != nullptr && !key_id->is_string()) return corrupt(row, "key_id is not a string");
    return Effect(ExecuteStep{row.step, row.attempt,
                              key_id != nullptr ? std::string(key_id->as_string()) : ""});
  }
  if (row.kind == "poll") {
    auto due = int_field(row.payload, "due_ms");
    if (!due) return corrupt(row, "payload lacks due_ms");
    const json::value* grace = row.payload.if_contains("after_event_grace");
    return Effect(PollStep{row.step, row.attempt, from_epoch_ms(*due),
                           grace != nullptr && grace->is_bool() && grace->as_bool()});
  }
  if (row.kind == "cancel") {
    CancelStep cancel{row.step, row.attempt, int_field(row.payload, "run_id"), nullptr};
    if (const json::value* handle = row.payload.if_contains("handle")) cancel.handle = *handle;
    return Effect(std::move(cancel));
  }
  if (row.kind == "timer") {
    auto due = int_field(row.payload, "due_ms");
    const json::value* name = row.payload.if_contains("timer");
    std::optional<TimerKind> kind;
    if (name != nullptr && name->is_string()) kind = timer_kind_from_string(name->as_string());
    if (!due || !kind) return corrupt(row, "payload lacks due_ms or a known timer kind");
    return Effect(StartTimer{row.step, row.attempt, *kind, from_epoch_ms(*due)});
  }
  return corrupt(row, "unknown kind");
}

}  // namespace brickwork::store_detail
