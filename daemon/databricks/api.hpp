#pragma once
// The Databricks calls brickwork makes, behind one narrow interface so step
// types can be tested against the simulator or a fake.
#include <boost/json.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "daemon/core/result.hpp"

namespace brickwork {

struct RunNowRequest {
  int64_t job_id = 0;
  std::map<std::string, std::string> job_parameters;
  std::string idempotency_token;  // at most 64 chars
  json::object extra;             // other run-now fields passed through (queue, only, ...)
};

// The parts of jobs/runs/get that decide a step's fate.
struct RunInfo {
  int64_t run_id = 0;
  int64_t job_id = 0;
  std::string life_cycle_state;  // QUEUED, PENDING, RUNNING, TERMINATING, TERMINATED, SKIPPED, INTERNAL_ERROR, ...
  std::string result_state;      // SUCCESS, FAILED, ... (terminal only)
  std::string state_message;
  std::string run_page_url;
  // TERMINATED, SKIPPED and INTERNAL_ERROR are terminal; everything else is not.
  bool terminal() const;
  // Terminal and counted as success (SUCCESS, SUCCESS_WITH_FAILURES).
  bool succeeded() const;
};

// Parses a jobs/runs/get response body. Defensive: the input comes from outside.
Result<RunInfo> parse_run_info(const json::value& body);

struct HttpCallResult {
  int status = 0;
  std::string body;
};

class DatabricksApi {
 public:
  virtual ~DatabricksApi() = default;

  // POST /api/2.2/jobs/run-now. Safe to repeat: the idempotency token makes
  // Databricks return the same run.
  virtual Result<int64_t> run_now(const RunNowRequest& request) = 0;
  // POST /api/2.2/jobs/runs/submit with `body` as given (it carries its own idempotency_token).
  virtual Result<int64_t> submit_run(const json::object& body) = 0;
  // GET /api/2.2/jobs/runs/get?run_id=
  virtual Result<RunInfo> get_run(int64_t run_id) = 0;
  // POST /api/2.2/jobs/runs/cancel
  virtual Status cancel_run(int64_t run_id) = 0;
  // Any other JSON call (SQL statements, ...): retried only when `idempotent`.
  virtual Result<json::value> call(const std::string& method, const std::string& path_and_query,
                                   const json::value* body, bool idempotent) = 0;
  // The workspace base URL, e.g. "https://adb-1.azuredatabricks.net".
  virtual std::string host() const = 0;
};

// Resolves host and credentials the way the Databricks SDKs do (explicit config,
// then DATABRICKS_* environment variables, then ~/.databrickscfg) and builds the
// HTTPS client (PAT or OAuth M2M, retries with backoff, deadlines).
Result<std::unique_ptr<DatabricksApi>> make_databricks_api(const DatabricksConfig& config);

}  // namespace brickwork
