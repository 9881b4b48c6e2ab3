#pragma once
// The databases named under `databases:` (contract section 7), for
// `postgres` steps: one bounded pool of connections per database, statements
// with libpq parameters only, rows as JSON objects.
#include <boost/json.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "daemon/core/password_source.hpp"
#include "daemon/core/result.hpp"

namespace brickwork {

class NamedDatabases {
 public:
  virtual ~NamedDatabases() = default;

  // Connects lazily: construction never touches the network. At most
  // `max_connections` per database are open at once; a caller beyond that
  // waits for one to be returned.
  // `password_for` gives a database its password source (Lakebase), or null.
  using PasswordFor =
      std::function<std::shared_ptr<PasswordSource>(const std::string&, const DatabaseConfig&)>;
  static std::unique_ptr<NamedDatabases> create(std::map<std::string, DatabaseConfig> databases,
                                                int32_t max_connections = 4,
                                                PasswordFor password_for = nullptr);

  // Runs one statement with `$1..$n` bound to `parameters` (nullopt: NULL)
  // on `database`, in its own transaction, and returns
  // {"rows": [{column: value}...] (at most row_limit), "row_count"}: numbers
  // as numbers, booleans as booleans, json/jsonb as JSON, NULL as null, any
  // other type as its text. row_count counts every row the statement
  // returned or, for INSERT/UPDATE/DELETE without RETURNING, affected.
  // Errors: kNotFound "unknown_database"; a lost connection or a server going
  // away is transient; a failing statement is an Error with its SQLSTATE as
  // code. No message carries the database's password.
  virtual Result<json::object> query(const std::string& database, const std::string& statement,
                                     const std::vector<std::optional<std::string>>& parameters,
                                     int64_t row_limit) = 0;
};

}  // namespace brickwork
