#pragma once
// A local Databricks workspace for tests and `brickwork demo`: an HTTP server
// on loopback that serves the same paths and JSON as the real Jobs API and
// OAuth token endpoint, runs jobs in memory on a timer, publishes completion
// events the way a brickwork-aware job's last task would, and injects
// 429/503 faults on demand.
//
// Endpoints (both /api/2.1 and /api/2.2):
//   POST /oidc/v1/token            client credentials (HTTP Basic), expires_in = token TTL
//   GET  /api/2.x/jobs/list        name (exact, case-insensitive), limit (1..100, default
//                                  20), page_token; {"jobs": [{job_id, settings: {name}}],
//                                  "has_more", "next_page_token"}; "jobs" only if any
//   POST /api/2.x/jobs/run-now     job_id, job_parameters, notebook_params, idempotency_token
//   POST /api/2.x/jobs/runs/submit run_name, idempotency_token, job_parameters, tasks[]
//                                  (task_key required; parameters read from each task, see
//                                  collect_task_params in simulator_views.hpp)
//   GET  /api/2.x/jobs/runs/get?run_id=  with tasks[] (2.2: 100 per page, page_token)
//   GET  /api/2.x/jobs/runs/get-output?run_id=<task run id>; a job run's own id is
//                                  refused with 400 INVALID_PARAMETER_VALUE, whatever its
//                                  number of tasks, as Jobs API 2.1+ does
//   POST /api/2.x/jobs/runs/cancel run_id (the run ends CANCELED shortly after)
//   POST /api/2.x/jobs/runs/repair run_id, rerun_tasks | rerun_all_failed_tasks,
//                                  latest_repair_id (required from the second repair
//                                  on), job_parameters, notebook_params; {"repair_id"}.
//                                  runs/get?include_history=true adds repair_history
//                                  (ORIGINAL, then each REPAIR with its id)
//   /api/2.1/unity-catalog/shares and /recipients: Delta Sharing (SimulatedSharing,
//                                  simulator_sharing.cpp, docs/DATABRICKS.md)
// Errors use the Databricks body {"error_code", "message"}.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "daemon/core/result.hpp"
#include "daemon/core/time.hpp"

namespace brickwork {

// What a simulated job does when run.
struct SimulatedJob {
  std::string name;
  Duration duration{std::chrono::seconds(2)};  // from start to TERMINATED
  // SUCCESS | FAILED | TIMEDOUT | CANCELED (life_cycle_state TERMINATED with
  // that result_state) or INTERNAL_ERROR (life_cycle_state INTERNAL_ERROR,
  // result_state FAILED).
  std::string outcome = "SUCCESS";
  json::object output;  // the completion event's "output"
  std::string message;  // state_message and the event's "message"
  // Publish a completion event when the run ends, if its parameters carry
  // brickwork_workflow_id, brickwork_step and brickwork_token. Never for a
  // run ended by runs/cancel or by INTERNAL_ERROR (the job never got to its
  // last task), so polling must notice those.
  bool emit_event = true;
  // Task runs per run (task_1 .. task_N), each with its own run id; at least
  // 1. A runs/submit run has the submitted tasks instead.
  int32_t tasks = 1;
  // runs/get-output's notebook_output.result of each task run (what
  // dbutils.notebook.exit() would return); empty: `output` as JSON text.
  std::string notebook_result;
  // Tasks that fail on their own: task key → how many of its runs fail
  // (result FAILED) before one succeeds, across runs/repair. When set, each
  // task has its own result and the run's is FAILED if any task failed, else
  // SUCCESS (`outcome` is not used).
  std::map<std::string, int32_t> task_failures;
};

// Injected failures: each API request (token endpoint included) is answered,
// before anything else happens, with one of `statuses` with probability
// `error_rate`. 429 and 503 carry Retry-After when `retry_after` is set.
struct SimulatorFaults {
  double error_rate = 0.0;  // 0..1
  std::vector<int> statuses{429, 503};
  std::optional<Duration> retry_after{std::chrono::seconds(1)};  // whole seconds; 0 allowed
  uint64_t seed = 1;  // the same seed gives the same sequence of faults
};

// How the simulator answers a SQL statement (Statement Execution API): the
// first entry of SimulatorOptions::statements whose `match` occurs in the
// statement text. Without one, a statement succeeds at once and returns one
// row echoing its parameters (columns: their names; values: as sent), which
// shows what reached the API as parameters rather than as text.
struct SimulatedStatement {
  std::string match;
  Duration duration{0};               // submission to its end; longer than wait_timeout: PENDING
  std::string outcome = "SUCCEEDED";  // or FAILED (with error_code and message)
  std::vector<std::string> columns;
  json::array rows;                   // each row an array of strings or nulls
  std::string error_code = "BAD_REQUEST";
  std::string message = "[PARSE_SYNTAX_ERROR] Syntax error";
};

// A real workspace's pace (docs/DATABRICKS.md "A real workspace's pace"); all
// off by default. Delays are timers of the HTTP server, so a slow call never
// holds up another.
struct SimulatorPace {
  // Each call is answered after a delay drawn uniformly from [min, max].
  Duration latency_min{0};
  Duration latency_max{0};
  // Calls per second by API name (simulator_api_name): a token bucket per API
  // holding up to one second's calls; past it 429 REQUEST_LIMIT_EXCEEDED with
  // Retry-After (whole seconds until a call is allowed again, at least 1).
  std::map<std::string, double> limits;
  // A Files API PUT takes transfer_time + its size / transfer_bytes_per_second
  // more (0: no cap), on top of the latency.
  Duration transfer_time{0};
  double transfer_bytes_per_second = 0;
  // A fault: calls of these APIs are received (and acted on) but never
  // answered; the connection stays open until the caller gives up.
  std::set<std::string> never_answer;
};

// The API a request belongs to, as rate limits and counters name it:
// "jobs/run-now", "jobs/runs/submit", "jobs/runs/get", "jobs/runs/get-output",
// "jobs/runs/cancel", "jobs/runs/repair", "jobs/list", "fs/files", "sql/statements",
// "database/credentials", "postgres/credentials", "unity-catalog/shares",
// "unity-catalog/recipients", "oidc/token"; "other" for anything else.
std::string simulator_api_name(const std::string& path);
// Whether `name` is one of the names above (not "other").
bool is_simulator_api_name(const std::string& name);

// The pace's values as the jobs file and the flags of `brickwork simulator`
// write them (kInvalidInput errors say what is expected):
//   latency "200ms" or "100ms..500ms"; limit "jobs/run-now=20/s";
//   transfer rate "1MiB/s" (B, KB, MB, GB, KiB, MiB, GiB).
Status parse_simulator_latency(const std::string& text, SimulatorPace& pace);
Status parse_simulator_limit(const std::string& text, SimulatorPace& pace);
Result<double> parse_simulator_rate(const std::string& text);  // "20/s" → 20
Result<double> parse_simulator_transfer_rate(const std::string& text);  // bytes per second

// The identity providers the simulator plays (simulator_identity.cpp,
// docs/DATABRICKS.md "Authentication"), all on its own address, reached
// through the variables the SDKs and cloud libraries read:
//   POST /entra/{tenant}/oauth2/token    Entra ID client credentials (AZURE_AUTHORITY_HOST=<base>/entra)
//   GET  /metadata/identity/oauth2/token Azure IMDS, "Metadata: true" (AZURE_POD_IDENTITY_AUTHORITY_HOST=<base>)
//   GET  /metadata-service/token         Databricks metadata service (DATABRICKS_METADATA_SERVICE_URL)
//   GET  /github/id-token?audience=      GitHub Actions ID token (ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN)
//   POST /oidc/v1/token                  RFC 8693 exchange of an ID token the simulator signed
//   POST /google/token                   a service account's JWT grant (the key's token_uri)
//   GET  /computeMetadata/v1/instance/service-accounts/default/token  GCE metadata (GCE_METADATA_HOST)
//   POST /google/iam/v1/projects/-/serviceAccounts/{sa}:generateIdToken | :generateAccessToken
//                                        IAM Credentials (BRICKWORK_GOOGLE_IAM_ENDPOINT=<base>/google/iam)
struct SimulatorIdentity {
  // When set, API calls need a token one of the providers issued (or
  // bearer_token / an OAuth M2M token).
  bool enabled = false;
  Duration token_ttl{std::chrono::seconds(3600)};  // of every token issued (whole seconds, >= 1)
  std::string azure_tenant_id = "sim-tenant";
  std::string azure_client_id = "sim-azure-sp";
  std::string azure_client_secret = "sim-azure-secret";
  std::string github_request_token = "sim-github-request-token";
  // The exchange accepts only this client_id ("" accepts none: account-wide federation).
  std::string federation_client_id = "sim-federated-sp";
  std::string google_service_account = "brickwork@sim-project.iam.gserviceaccount.com";
};

struct SimulatorOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;  // 0 = a free port
  std::map<int64_t, SimulatedJob> jobs;
  std::vector<SimulatedStatement> statements;
  // Lakebase: database/credentials and postgres/credentials issue a token and
  // set `lakebase_role`'s password to it, VALID UNTIL its expiry, through
  // `lakebase_admin_url` (a superuser's connection): as on Lakebase, open
  // sessions survive and new ones need the current token. Empty: 404.
  std::string lakebase_admin_url;
  std::string lakebase_role;
  Duration lakebase_credential_ttl{std::chrono::seconds(3600)};
  // Used for run-now of a job id not in `jobs`; without it that is HTTP 400
  // INVALID_PARAMETER_VALUE "Job N does not exist.". runs/submit uses the job
  // whose name equals run_name, else this, else SimulatedJob{}.
  std::optional<SimulatedJob> default_job;
  // When set, API calls need "Authorization: Bearer <bearer_token>" (or a
  // token issued by /oidc/v1/token); otherwise 401.
  std::string bearer_token;
  // When set, /oidc/v1/token requires these as HTTP Basic credentials, and API
  // calls need a bearer token (an issued, unexpired one or bearer_token).
  std::string oauth_client_id;
  std::string oauth_client_secret;
  Duration oauth_token_ttl{std::chrono::seconds(3600)};  // expires_in (whole seconds, >= 1)
  Duration pending_for{std::chrono::milliseconds(100)};  // PENDING before RUNNING
  Duration cancel_delay{std::chrono::milliseconds(100)};  // TERMINATING before CANCELED
  SimulatorFaults faults;
  SimulatorPace pace;
  SimulatorIdentity identity;
};

// One task run of a run: its own run id (from the same sequence as run ids)
// and task_key; its state is the run's until it has a result of its own
// (SimulatedJob::task_failures). A repaired task gets a new task run.
struct SimulatedTaskRun {
  int64_t run_id = 0;
  std::string task_key;
  std::string result_state;  // its own result; "" while it runs or when it mirrors the run
};

// One runs/repair of a run (repair_history's REPAIR items, oldest first).
struct SimulatedRepair {
  int64_t repair_id = 0;
  int64_t start_ms = 0;
  std::vector<std::string> rerun_tasks;
  std::vector<int64_t> task_run_ids;  // the new task runs
};

// One run as the simulator sees it.
struct SimulatedRun {
  int64_t run_id = 0;
  int64_t job_id = 0;  // 0 for runs/submit
  std::string life_cycle_state;  // PENDING, RUNNING, TERMINATING, TERMINATED, INTERNAL_ERROR
  std::string result_state;      // set once terminal
  std::string idempotency_token;
  std::map<std::string, std::string> parameters;
  bool cancel_requested = false;
  bool event_emitted = false;
  std::vector<SimulatedTaskRun> tasks;
  std::vector<int64_t> original_task_run_ids;  // repair_history's ORIGINAL item
  std::vector<SimulatedRepair> repairs;
};

// Calls of one API (simulator_api_name).
struct SimulatedApiCounts {
  int64_t calls = 0;         // received, whatever the answer
  int64_t answered_429 = 0;  // by a rate limit or an injected fault
  int64_t rate_limited = 0;  // by a rate limit only
};

// Counts for tests; a consistent snapshot.
struct SimulatorStats {
  std::map<std::string, SimulatedApiCounts> apis;
  int64_t in_flight = 0;      // calls received and not yet answered
  int64_t max_in_flight = 0;  // the most there ever were at once
  int64_t requests = 0;          // every HTTP request received
  int64_t connections = 0;       // TCP connections accepted (keep-alive: far fewer)
  int64_t run_now_calls = 0;     // accepted past faults and auth
  int64_t submit_calls = 0;
  int64_t get_calls = 0;
  int64_t cancel_calls = 0;
  int64_t list_calls = 0;
  int64_t get_output_calls = 0;
  int64_t repair_calls = 0;
  std::vector<json::object> repairs_received;  // POST jobs/runs/repair bodies, accepted or not
  std::vector<json::object> statements_received;  // POST /api/2.0/sql/statements bodies
  // Files put with the Files API, by volume path: size, and the first 1 MiB.
  std::map<std::string, std::pair<int64_t, std::string>> files;
  int64_t file_puts = 0;
  int64_t credentials_issued = 0;  // Lakebase database credentials
  int64_t statement_polls = 0;
  int64_t statement_cancels = 0;
  int64_t token_calls = 0;       // tokens issued by /oidc/v1/token
  // Tokens the identity providers issued, by kind: "entra", "entra-management",
  // "imds", "imds-management", "metadata-service", "github-id-token",
  // "token-exchange", "google-id-token", "google-access-token", "gce",
  // "iam-id-token", "iam-access-token".
  std::map<std::string, int64_t> identity_tokens;
  int64_t management_headers = 0;  // API calls with a valid Azure management token
  int64_t unauthorized = 0;      // 401s
  int64_t runs_created = 0;      // job runs (task runs not counted)
  int64_t faults_injected = 0;
  int64_t events_emitted = 0;
  std::map<int, int64_t> faults_by_status;
  std::map<std::string, int64_t> runs_per_token;  // idempotency token → runs created (0 or 1)
  std::map<int64_t, SimulatedRun> runs;
};

// Delta Sharing in the simulator's Unity Catalog: what the shares and
// recipients API (docs/DATABRICKS.md) reads and changes. Names are
// case-insensitive, as in Unity Catalog: maps are keyed by the lower-case
// name and each entry keeps the name as created.
struct SimulatedRecipientToken {
  std::string id;
  // "<base>/delta_sharing/retrieve_config.html?<code>"; "" once the recipient
  // has retrieved its credential (the link works once).
  std::string activation_url;
  int64_t created_at = 0;                  // epoch ms
  std::optional<int64_t> expiration_time;  // epoch ms; none: never expires
};

struct SimulatedRecipient {
  std::string name;
  std::string authentication_type = "TOKEN";       // or DATABRICKS
  std::string data_recipient_global_metastore_id;  // DATABRICKS only
  std::string comment;
  int64_t created_at = 0;
  std::vector<SimulatedRecipientToken> tokens;  // TOKEN only; expired ones are not listed
};

struct SimulatedSharedObject {
  std::string name;  // <catalog>.<schema>.<table>
  std::string data_object_type = "TABLE";
  json::array partitions;  // as the API takes them: [{"values": [{name, op, value}]}]
};

struct SimulatedShare {
  std::string name;
  std::string comment;
  std::vector<SimulatedSharedObject> objects;
  std::map<std::string, std::set<std::string>> grants;  // recipient (lower case) → privileges
};

struct SimulatedSharing {
  std::map<std::string, SimulatedShare> shares;
  std::map<std::string, SimulatedRecipient> recipients;
  // Accepted writes by operation: "shares.create", "shares.update",
  // "shares.delete", "permissions.update", "recipients.create",
  // "recipients.delete", "recipients.rotate_token", "activation.retrieve".
  std::map<std::string, int64_t> writes;
};

// Receives completion events: key = workflow id, payload = the JSON text
// {"type":"job_completed","workflow_id","step","token","state","run_id","output","message"}.
// Called from a simulator thread, never under a simulator lock.
using CompletionSink = std::function<void(const std::string& key, const std::string& payload)>;

// Sees each run as it is created (jobs/run-now, jobs/runs/submit), before the
// answer is sent: how a benchmark times the daemon from outside. Called under
// the simulator's lock, so it must be quick and must not call the simulator.
using RunObserver = std::function<void(const SimulatedRun& run)>;

class DatabricksSimulator {
 public:
  explicit DatabricksSimulator(SimulatorOptions options = {});
  ~DatabricksSimulator();  // stops
  DatabricksSimulator(const DatabricksSimulator&) = delete;
  DatabricksSimulator& operator=(const DatabricksSimulator&) = delete;

  // Listens and starts the run timer. Error if the port cannot be bound.
  Status start();
  // Stops serving and ends the timer; runs stay readable via stats(). Idempotent.
  void stop();
  uint16_t port() const;      // valid after start()
  std::string base_url() const;  // "http://127.0.0.1:<port>"

  void set_sink(CompletionSink sink);
  void set_run_observer(RunObserver observer);
  void set_faults(SimulatorFaults faults);
  // Which APIs never answer from now on (SimulatorPace::never_answer).
  void set_never_answer(std::set<std::string> apis);
  void set_job(int64_t job_id, SimulatedJob job);  // add or replace, at any time

  SimulatorStats stats() const;
  std::optional<SimulatedRun> run(int64_t run_id) const;
  // Delta Sharing state: a snapshot, and a change made under the simulator's
  // lock (tests prepare half-done states with it; `edit` must not call the
  // simulator).
  SimulatedSharing sharing() const;
  void edit_sharing(const std::function<void(SimulatedSharing&)>& edit);

  // Identity (simulator_identity.cpp). An ID token (JWT, HS256) the simulator
  // signs, as a workload's identity provider would (a Kubernetes projected
  // service account token, a CI job's token): subject `subject`, audience
  // <base>/oidc/v1/token, valid for `ttl`. The exchange accepts it.
  std::string issue_id_token(const std::string& subject, Duration ttl) const;
  // A service account key file's JSON (type service_account, an RSA key made
  // for this simulator, token_uri <base>/google/token) for google-credentials
  // or GOOGLE_APPLICATION_CREDENTIALS. Needs start().
  std::string google_service_account_key() const;
  // The environment variables that point the SDKs' identity lookups here
  // (AZURE_AUTHORITY_HOST, AZURE_POD_IDENTITY_AUTHORITY_HOST,
  // ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN, GCE_METADATA_HOST,
  // BRICKWORK_GOOGLE_IAM_ENDPOINT, DATABRICKS_METADATA_SERVICE_URL).
  std::map<std::string, std::string> identity_environment() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads a simulator description (YAML):
//   jobs:
//     - {job_id: 101, name: extract, duration: 2s, outcome: SUCCESS,
//        output: {rows: 42}, message: "", emit_event: true,
//        tasks: 1, notebook_result: '{"rows": 42}',
//        task_failures: {task_2: 1}}                      # optional
//   default_job: {duration: 1s, outcome: SUCCESS}          # optional
//   never_answer: [jobs/run-now]                            # optional: calls held unanswered
//   faults: {error_rate: 0.0, statuses: [429, 503], retry_after: 1s, seed: 1}
//   latency: 200ms            # or {min: 100ms, max: 500ms}      # optional
//   limits: {"jobs/run-now": 20/s, "jobs/runs/get": 100/s}      # optional
//   transfer_rate: 1MiB/s                                         # optional
//   transfer_time: 40s                                            # optional
//   bearer_token: "..."                                      # optional
//   oauth: {client_id: ..., client_secret: ..., token_ttl: 1h}  # optional
//   port: 0                                                  # optional
// Errors (kInvalidInput) name the file, line and field.
Result<SimulatorOptions> load_simulator_jobs_file(const std::string& path);
Result<SimulatorOptions> parse_simulator_jobs(const std::string& yaml_text,
                                              const std::string& source_name = "<string>");

}  // namespace brickwork
