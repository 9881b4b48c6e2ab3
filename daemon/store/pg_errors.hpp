#pragma once
// The store's edge: every exception libpqxx (or a transaction body) throws is
// turned into an Error here, classified so that callers can retry by kind.
#include <stdexcept>

#include "daemon/core/result.hpp"
#include "daemon/store/conninfo.hpp"

namespace brickwork::store_detail {

struct PgFailure {
  Error error;
  // The connection can no longer be trusted and must be replaced before the
  // next use (lost, or a commit whose outcome is unknown).
  bool drop_connection = false;
};

// Classifies the exception being handled. Call only inside a catch block.
// `context` names the operation for the message ("transact", "claim_due_effects").
// The message passes through `passwords`: libpq repeats parts of the
// connection string in its errors.
PgFailure classify_current_exception(const char* context, const PasswordRedactor& passwords);

// Thrown by the store's own decoding when a row does not hold what it should.
struct CorruptRow : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace brickwork::store_detail
