#pragma once
// One Postgres connection, opened on first use and again after it was lost,
// with every exception of what runs on it turned into a classified Error at
// its edge. The store and the purger each keep their own (one connection per
// thread). No retry here: the caller decides by the Error's kind.
#include <functional>
#include <memory>
#include <pqxx/connection>
#include <string>

#include "daemon/core/password_source.hpp"
#include "daemon/core/result.hpp"
#include "daemon/store/conninfo.hpp"

namespace brickwork {
class LoggedConnection;  // pg_notices.hpp
}  // namespace brickwork

namespace brickwork::store_detail {

class PgSession {
 public:
  using Prepare = std::function<void(pqxx::connection&)>;
  // Connections get the store's timeouts unless `url` sets them
  // (store_conninfo) and, with `password`, the password it gives now (a
  // refused one is reported back to it and comes back as a transient Error).
  // `prepare` runs on every new connection (prepared statements, settings).
  PgSession(const std::string& url, std::shared_ptr<PasswordSource> password,
            Prepare prepare = nullptr);
  ~PgSession();

  // Runs `fn` on the connection; whatever it throws comes back as an Error
  // whose message names `context` and holds no password.
  template <class T, class Fn>
  Result<T> run(const char* context, Fn&& fn) {
    try {
      auto connection = connect();
      if (!connection) return connection.error();
      return Result<T>(fn(**connection));
    } catch (...) {
      return failure(context);
    }
  }

 private:
  Result<pqxx::connection*> connect();
  // Classifies the exception being handled; drops the connection when it can
  // no longer be trusted.
  Error failure(const char* context);

  Result<std::string> conninfo_;  // postgres.url with the store's timeouts
  PasswordRedactor passwords_;
  std::shared_ptr<PasswordSource> password_;
  Prepare prepare_;
  // The derived type itself: pqxx::connection's destructor is not virtual.
  std::unique_ptr<LoggedConnection> connection_;
};

}  // namespace brickwork::store_detail
