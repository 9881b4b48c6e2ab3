#pragma once
// Where a Postgres password comes from when it is not in the URL: Lakebase's
// OAuth database credentials, which expire (hourly) and are checked only when
// a connection opens. Every new connection asks for the current one.
#include <optional>
#include <string>
#include <string_view>

#include "daemon/core/result.hpp"
#include "daemon/core/time.hpp"

namespace brickwork {

class PasswordSource {
 public:
  virtual ~PasswordSource() = default;
  // The password for a connection opened now. A transient Error when none
  // can be had (the credentials service is away and nothing valid is cached).
  virtual Result<std::string> password() = 0;
  // The server refused the password (SQLSTATE 28P01): the next call fetches
  // a new one instead of reusing it.
  virtual void refused() = 0;
  // When the current password expires, if there is one (metrics, tests).
  virtual std::optional<TimePoint> expires_at() const = 0;
};

// libpq's text for a refused password (the connection fails before any
// SQLSTATE reaches libpqxx, so the message is all there is).
inline bool is_password_refusal(std::string_view message) {
  return message.find("password authentication failed") != std::string_view::npos ||
         message.find("28P01") != std::string_view::npos;
}

}  // namespace brickwork
