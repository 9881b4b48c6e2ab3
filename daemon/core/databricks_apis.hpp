#pragma once
// The APIs of a Databricks workspace as client-side limits name them, their
// default rates and which calls are polls (daemon/databricks/rate_limits.hpp
// enforces them; the configuration checks databricks.limits against them).
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace brickwork {

// The API a Databricks path belongs to, as limits and their metrics name it:
// "jobs/run-now", "jobs/runs/submit", "jobs/runs/get", "jobs/runs/get-output",
// "jobs/runs/cancel", "jobs/list", "fs/files", "sql/statements",
// "database/credentials", "postgres/credentials", "unity-catalog/shares",
// "unity-catalog/recipients"; "other" for anything else under /api/, and ""
// for what is never limited (the OAuth token endpoint).
std::string databricks_api_name(std::string_view path_and_query);

// The names `databricks.limits` accepts: those above and "other".
const std::vector<std::string>& databricks_limit_api_names();

// Calls per second per API when `databricks.limits` does not say otherwise:
// below the published limits (docs/DATABRICKS.md "Client-side limits").
const std::map<std::string, double>& default_databricks_limits();

// The defaults with `overrides` on top.
std::map<std::string, double> databricks_limits_with(const std::map<std::string, double>& overrides);

enum class CallPriority {
  kWork,  // starts, ends or cancels work: waits for its turn
  kPoll,  // a safety-net poll: refused rather than kept waiting
};

// A poll is a GET of a run's or a statement's state.
CallPriority priority_of(std::string_view method, std::string_view api,
                         std::string_view path_and_query);

}  // namespace brickwork
