#include "daemon/store/pg_errors.hpp"

#include <pqxx/except>
#include <stdexcept>
#include <string>
#include <string_view>

namespace brickwork::store_detail {
namespace {

Error make(ErrorKind kind, std::string code, const char* context, std::string_view what,
           const PasswordRedactor& passwords) {
  std::string message = std::string(context) + ": " + passwords.redact(what);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  return Error{kind, std::move(code), std::move(message)};
}

// SQLSTATEs worth retrying (PostgreSQL Appendix A): connection exceptions,
// rollbacks forced by concurrency, shutdown of the server, lack of resources,
// and a statement canceled (57014) by the store's statement_timeout, which
// is a lock held too long or an overloaded server: intake must pause and try
// again, not dead-letter the inputs it could not apply.
bool transient_sqlstate(std::string_view state) {
  if (state.size() != 5) return false;
  const std::string_view cls = state.substr(0, 2);
  return cls == "08" || cls == "40" || cls == "53" || state == "57P01" || state == "57P02" ||
         state == "57P03" || state == "55P03" || state == "57014";
}

bool connection_sqlstate(std::string_view state) {
  return state.rfind("08", 0) == 0 || state == "57P01" || state == "57P02" || state == "57P03";
}

}  // namespace

PgFailure classify_current_exception(const char* context, const PasswordRedactor& passwords) {
  try {
    throw;
  } catch (const pqxx::in_doubt_error& e) {
    // The commit may or may not have happened: never retry blindly.
    return {make(ErrorKind::kInternal, "in_doubt", context, e.what(), passwords), true};
  } catch (const pqxx::statement_completion_unknown& e) {
    return {make(ErrorKind::kInternal, "statement_completion_unknown", context, e.what(), passwords),
            true};
  } catch (const pqxx::broken_connection& e) {
    return {make(ErrorKind::kTransient, "connection_lost", context, e.what(), passwords), true};
  } catch (const pqxx::serialization_failure& e) {
    return {make(ErrorKind::kTransient, "40001", context, e.what(), passwords), false};
  } catch (const pqxx::deadlock_detected& e) {
    return {make(ErrorKind::kTransient, "40P01", context, e.what(), passwords), false};
  } catch (const pqxx::transaction_rollback& e) {
    return {make(ErrorKind::kTransient, "40000", context, e.what(), passwords), false};
  } catch (const pqxx::sql_error& e) {
    const std::string& state = e.sqlstate();
    const ErrorKind kind = transient_sqlstate(state) ? ErrorKind::kTransient : ErrorKind::kInternal;
    return {make(kind, state.empty() ? "sql_error" : state, context, e.what(), passwords),
            connection_sqlstate(state)};
  } catch (const CorruptRow& e) {
    return {make(ErrorKind::kInternal, "corrupt_row", context, e.what(), passwords), false};
  } catch (const std::exception& e) {
    return {make(ErrorKind::kInternal, "exception", context, e.what(), passwords), false};
  } catch (...) {
    return {make(ErrorKind::kInternal, "exception", context, "unknown exception", passwords),
            false};
  }
}

}  // namespace brickwork::store_detail
