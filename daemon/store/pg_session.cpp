#include "daemon/store/pg_session.hpp"

#include <spdlog/spdlog.h>

#include "daemon/store/pg_errors.hpp"
#include "daemon/store/pg_notices.hpp"

namespace brickwork::store_detail {

PgSession::PgSession(const std::string& url, std::shared_ptr<PasswordSource> password,
                     Prepare prepare)
    : conninfo_(store_conninfo(url)),
      passwords_(url),
      password_(std::move(password)),
      prepare_(std::move(prepare)) {}

PgSession::~PgSession() = default;

Result<pqxx::connection*> PgSession::connect() {
  if (!conninfo_) return conninfo_.error();  // a configuration error: never worth a retry
  if (!connection_) {
    auto conninfo = with_password(*conninfo_, password_.get());
    if (!conninfo) return conninfo.error();
    auto connection = std::make_unique<LoggedConnection>(*conninfo);
    if (prepare_) prepare_(*connection);
    connection_ = std::move(connection);
  }
  return connection_.get();
}

Error PgSession::failure(const char* context) {
  PgFailure failure = classify_current_exception(context, passwords_);
  if (password_ && is_password_refusal(failure.error.message)) {
    // An expired or rotated credential: fetch a new one, try again later.
    password_->refused();
    failure.error.kind = ErrorKind::kTransient;
    failure.error.code = "28P01";
    failure.drop_connection = true;
  }
  if (failure.drop_connection || (connection_ && !connection_->is_open())) {
    if (connection_) {
      spdlog::warn("store: dropping the Postgres connection: {}", failure.error.message);
    }
    connection_.reset();
  }
  return failure.error;
}

}  // namespace brickwork::store_detail
