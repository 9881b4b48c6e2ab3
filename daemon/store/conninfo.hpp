#pragma once
// `postgres.url` as libpq reads it: validated with libpq's own parser
// (PQconninfoParse), completed with the store's timeouts, and its password
// kept out of every message. libpq repeats parts of a connection string in
// its errors (a password with a stray `%` comes back whole in "invalid
// percent-encoded token"), and those errors reach logs and the CLI.
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/core/result.hpp"

namespace brickwork {

// Removes the password of one connection string from any text. Built from the
// string itself, not from libpq's reading of it, so it works on strings that
// libpq rejects too.
class PasswordRedactor {
 public:
  PasswordRedactor() = default;
  // Learns the passwords in `conninfo` (a postgresql:// URI or a keyword/value
  // string): the userinfo password and every `password=` value, each as
  // written and percent-decoded (or unquoted), and libpq's own reading when it
  // can parse the string.
  explicit PasswordRedactor(std::string_view conninfo);

  // `text` with every learned password replaced by "<redacted>", and beyond
  // those, the value of every `password=...` and the password of every
  // `scheme://user:password@`, so a password from elsewhere (the environment,
  // a service file) is caught when libpq shows it in one of these forms.
  std::string redact(std::string_view text) const;

 private:
  std::vector<std::string> passwords_;  // longest first, so no tail of one survives
};

// Why libpq cannot read `url` as a connection string, its password redacted;
// nothing when it can. For the configuration loader (LoadOptions).
std::optional<std::string> conninfo_problem(const std::string& url);

// What the store sets on its connections unless the URL (or libpq's
// environment variables PGCONNECT_TIMEOUT, PGOPTIONS) already does: a server
// that does not answer or a statement stuck behind a lock ends as an error
// the store can retry, instead of hanging a loop forever.
struct StoreTimeouts {
  int32_t connect_timeout_seconds = 10;
  std::string statement_timeout = "30s";
};

// Reads the environment as std::getenv does; tests pass their own.
using StoreEnvLookup = std::function<const char*(const char*)>;

// The keyword/value connection string the store connects with: everything
// `url` sets, plus connect_timeout and `options=-c statement_timeout=...`
// where neither the URL nor the environment sets them. A string libpq cannot
// read is an kInvalidInput Error with code "config", naming postgres.url and
// never the password.
Result<std::string> store_conninfo(const std::string& url, const StoreTimeouts& timeouts = {},
                                   const StoreEnvLookup& env = nullptr);

class PasswordSource;
// `conninfo` (a keyword/value string) with the password `source` gives now
// appended; `conninfo` itself when there is no source.
Result<std::string> with_password(const std::string& conninfo, PasswordSource* source);

}  // namespace brickwork
