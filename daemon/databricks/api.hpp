#pragma once
// The Databricks calls brickwork makes, behind one narrow interface so step
// types can be tested against the simulator or a fake.
#include <boost/json.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "daemon/core/result.hpp"

namespace brickwork {

class Metrics;

struct RunNowRequest {
  int64_t job_id = 0;
  std::map<std::string, std::string> job_parameters;
  std::string idempotency_token;  // at most 64 chars
  json::object extra;             // other run-now fields passed through (queue, only, ...)
};

// One task run of a job run (tasks[] of jobs/runs/get).
struct RunTask {
  int64_t run_id = 0;     // the task run's id (what runs/get-output takes)
  std::string task_key;
  std::string result_state;  // its state.result_state: SUCCESS, FAILED, ... ("" until it ends)
};

// The parts of jobs/runs/get that decide a step's fate.
struct RunInfo {
  int64_t run_id = 0;
  int64_t job_id = 0;
  std::string life_cycle_state;  // QUEUED, PENDING, RUNNING, TERMINATING, TERMINATED, SKIPPED, INTERNAL_ERROR, ...
  std::string result_state;      // SUCCESS, FAILED, ... (terminal only)
  std::string state_message;
  std::string run_page_url;
  std::vector<RunTask> tasks;  // in the order runs/get lists them
  // TERMINATED, SKIPPED and INTERNAL_ERROR are terminal; everything else is not.
  bool terminal() const;
  // Terminal and counted as success (SUCCESS, SUCCESS_WITH_FAILURES).
  bool succeeded() const;
};

// Parses a jobs/runs/get response body. Defensive: the input comes from outside.
// tasks[] may be absent or null (no tasks); otherwise it must be an array of
// objects, each with an integer run_id and an optional string task_key, else
// the whole body is refused (kInvalidInput), like any other ill-typed field.
Result<RunInfo> parse_run_info(const json::value& body);

// The step output a finished run's get-output body gives: notebook_output.result
// parsed as JSON when it is a JSON object, else {"result": "<text>"}; {} when
// there is no notebook_output (other task kinds) or no result.
json::object output_from_run_output(const json::object& get_output_body);

struct HttpCallResult {
  int status = 0;
  std::string body;
};

// One file to put into a Unity Catalog volume (Files API).
struct FileUpload {
  std::string volume_path;             // "/Volumes/<catalog>/<schema>/<volume>/<path>"
  std::optional<std::string> content;  // the bytes, or else:
  std::string local_file;              // a local file, streamed from disk
  bool overwrite = false;
};

class DatabricksApi {
 public:
  virtual ~DatabricksApi() = default;

  // POST /api/2.2/jobs/run-now. Safe to repeat: the idempotency token makes
  // Databricks return the same run.
  virtual Result<int64_t> run_now(const RunNowRequest& request) = 0;
  // POST /api/2.2/jobs/runs/submit with `body` as given (it carries its own idempotency_token).
  virtual Result<int64_t> submit_run(const json::object& body) = 0;
  // GET /api/2.2/jobs/runs/get?run_id=, following next_page_token so that
  // `tasks` holds every task run (API 2.2 lists at most 100 per page).
  virtual Result<RunInfo> get_run(int64_t run_id) = 0;
  // POST /api/2.2/jobs/runs/cancel
  virtual Status cancel_run(int64_t run_id) = 0;
  // GET /api/2.2/jobs/list?name=<name>, every page (page_token): the ids of
  // the jobs whose settings.name is exactly `name` (the API's filter is exact
  // and case-insensitive per the docs; compare exactly). Safe to repeat.
  virtual Result<std::vector<int64_t>> find_jobs_by_name(const std::string& name) = 0;
  // GET /api/2.2/jobs/runs/get-output?run_id=<task run id>: the body. Safe to repeat.
  virtual Result<json::object> get_run_output(int64_t task_run_id) = 0;
  // Any other JSON call (SQL statements, ...): retried only when `idempotent`.
  virtual Result<json::value> call(const std::string& method, const std::string& path_and_query,
                                   const json::value* body, bool idempotent) = 0;
  // PUT /api/2.0/fs/files{path}?overwrite=true|false, each path segment
  // percent-encoded, Content-Type application/octet-stream. A local file is
  // read in small pieces as it is sent. An existing file with overwrite=false
  // comes back as a kConflict Error. Safe to repeat: the same bytes to the
  // same path. A transfer: request_timeout bounds each read or write without
  // progress, not the whole body; after 3 failed tries, kInternal
  // "transfer_failed" (no retry budget).
  virtual Status upload_file(const FileUpload& upload) = 0;
  // The workspace base URL, e.g. "https://adb-1.azuredatabricks.net".
  virtual std::string host() const = 0;
  // The auth type in use ("pat", "azure-msi", ...; docs/DATABRICKS.md), never a secret.
  virtual std::string auth_type() const { return ""; }
  // Counts every HTTP exchange from now on into `metrics` (null: stop).
  // `metrics` must outlive the calls made while it is set.
  virtual void set_metrics(Metrics* /*metrics*/) {}
  // Shutdown: ends every call in flight and refuses new ones, each failing
  // with a transient "canceled" error, at once, from any thread.
  virtual void cancel_calls() {}
};

// Resolves host and credentials the way the Databricks SDKs do (explicit config,
// then DATABRICKS_* environment variables, then ~/.databrickscfg) and builds the
// HTTPS client (PAT or OAuth M2M, retries with backoff, deadlines).
Result<std::unique_ptr<DatabricksApi>> make_databricks_api(const DatabricksConfig& config);

}  // namespace brickwork
