#pragma once
// Lakebase database credentials (contract section 7, databricks-api.md
// section 5) as a PasswordSource: an OAuth token fetched with the daemon's
// Databricks identity, renewed at about half its lifetime (also when no
// connection is being opened: a thread watches the clock) with backoff on
// failure, and at once after the server refused it.
#include <memory>

#include "config/config.hpp"
#include "daemon/core/password_source.hpp"
#include "daemon/databricks/api.hpp"

namespace brickwork {

// `api` must outlive the source. `name` labels log lines (postgres, or the
// database's name under databases:).
std::shared_ptr<PasswordSource> make_lakebase_credentials(DatabricksApi& api,
                                                          const LakebaseConfig& lakebase,
                                                          std::string name);

}  // namespace brickwork
