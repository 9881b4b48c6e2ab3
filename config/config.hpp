#pragma once
// The configuration file (contract section 7) and the workflow definitions
// (section 6), loaded and validated once into immutable structs. Nothing else
// in brickwork parses YAML or reads the environment for settings.
#include <boost/json.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/core/result.hpp"
#include "daemon/core/time.hpp"

namespace brickwork {

namespace json = boost::json;

struct KafkaTopics {
  std::string commands = "brickwork.commands";
  std::string events = "brickwork.events";
  std::string status = "brickwork.status";
  std::string dead_letter = "brickwork.dlq";
};

struct KafkaConfig {
  std::string brokers = "localhost:9092";
  std::string group = "brickwork";
  KafkaTopics topics;
  // Passed to librdkafka as they are (SASL, TLS, ...). Applied to consumer and producer.
  std::map<std::string, std::string> properties;
};

// Databricks Lakebase: the password is a database credential fetched with
// the daemon's Databricks identity (contract section 7). One of the two.
struct LakebaseConfig {
  std::string instance;  // Lakebase Provisioned: POST /api/2.0/database/credentials
  std::string endpoint;  // Autoscaling: projects/P/branches/B/endpoints/E, POST /api/2.0/postgres/credentials
  std::string workspace;  // whose identity asks for the credential; ""/"default": the default one
  bool operator==(const LakebaseConfig&) const = default;
};

struct PostgresConfig {
  std::string url = "postgresql://brickwork@localhost:5432/brickwork";
  std::optional<LakebaseConfig> lakebase;
};

// A database `postgres` steps may use, by the name it has under `databases:`.
struct DatabaseConfig {
  std::string url;  // postgresql://...; sslmode defaults as for postgres.url
  std::optional<LakebaseConfig> lakebase;
  bool operator==(const DatabaseConfig&) const = default;
};

struct DatabricksConfig {
  std::string host;           // "https://..." (verified) or "http://127.0.0.1:P" (simulator)
  std::string token;          // PAT, or empty
  std::string client_id;      // OAuth M2M, with client_secret
  std::string client_secret;
  // Unified authentication (docs/DATABRICKS.md): an auth type by name
  // ("" = the SDKs' default chain) and a ~/.databrickscfg profile.
  std::string auth_type;
  std::string profile;
  Duration request_timeout{std::chrono::seconds(60)};
  Duration retry_budget{std::chrono::seconds(300)};  // total time spent retrying one call
  // databricks.limits: calls per second by API name ("jobs/run-now": 15),
  // on top of the defaults (daemon/databricks/rate_limits.hpp).
  std::map<std::string, double> limits;
  int32_t max_in_flight = 64;  // effects performed at once (call threads)
  int32_t max_transfers = 16;  // of which uploads, in a lane of their own
  bool operator==(const DatabricksConfig&) const = default;
};

// The name of the default workspace (`databricks:`) wherever a name is
// shown: metric labels, `check`, `workspace: default` on a step.
inline constexpr const char* kDefaultWorkspace = "default";

// The auth types databricks.auth_type accepts: those of
// daemon/databricks/auth/registry.cpp (a test keeps the two lists equal).
const std::vector<std::string>& databricks_auth_types();

struct CallbacksConfig {
  std::string secret;  // HMAC key for completion tokens and idempotency tokens
  // Earlier values of `secret` during a rotation: they still verify tokens
  // and open sealed values they made; nothing new is made with them.
  std::vector<std::string> previous_secrets;
};

// Knobs of the daemon itself; every one has a default and may be left out.
struct DaemonConfig {
  int32_t batch_max_messages = 500;                 // inputs per Postgres transaction
  Duration batch_max_wait{std::chrono::milliseconds(50)};
  // Payload bytes per intake batch: a batch stops growing once it holds this
  // much (a message is never split), so memory follows a bound, not a burst.
  int64_t batch_max_bytes = 4 * 1024 * 1024;
  int32_t effect_workers = 8;  // no longer used: databricks.max_in_flight
  Duration lease{std::chrono::seconds(30)};         // an effect claimed but not finished is retried after this
  Duration shutdown_grace{std::chrono::seconds(20)};  // well under systemd's TimeoutStopSec
  // The longest one record keeps the outbox's records of other keys waiting
  // for the broker's answer; then it waits aside, with its key's later records.
  Duration outbox_stall{std::chrono::seconds(30)};
  std::string metrics_listen;                       // "127.0.0.1:9464", empty = off
  std::string log_format = "json";                  // json | text
  std::string log_level = "info";
};

// Local files steps may read (upload.from_file).
struct FilesConfig {
  // Absolute directories a rendered from_file must resolve under (after
  // symlinks and ".."). Empty: only a literal from_file of the configuration.
  std::vector<std::string> allowed_dirs;
  bool operator==(const FilesConfig&) const = default;
};

// How long finished workflows are kept (contract 7, `retention:`); zero
// keeps them forever. The daemon purges what is older every `every`, in
// batches of `batch_size` workflows.
struct RetentionConfig {
  Duration succeeded{std::chrono::hours(24 * 7)};
  Duration failed{std::chrono::hours(24 * 30)};
  Duration canceled{std::chrono::hours(24 * 30)};
  Duration every{std::chrono::minutes(10)};
  int32_t batch_size = 500;
  bool operator==(const RetentionConfig&) const = default;
};

enum class CompletionMode { kEvent, kPoll };

struct RetryPolicy {
  int32_t max_attempts = 1;
  Duration backoff{std::chrono::seconds(30)};
};

// How the engine runs a step: decided by the step's type when the
// configuration is loaded (StepCatalog::compile), so the engine never
// compares type names.
struct StepPlan {
  enum class Kind {
    kPerform,      // the runtime performs the action (ExecuteStep); its outcome says
                   // what follows: done, a run to watch, a durable timer
    kAwaitSignal,  // waiting from the start for a `signal` command named `signal`
  };
  Kind kind = Kind::kPerform;
  std::string signal;                     // kAwaitSignal
  std::string timeout_code = "TIMEDOUT";  // the error code when `timeout` passes
  // The step's output is a secret (contract 6.3): templates of later steps may
  // read it, but it is redacted everywhere else and stored encrypted.
  bool sensitive_output = false;
  // Its runs may publish a completion event (run_job, submit_run): with
  // completion: event, a poll that sees the run end waits event_grace for it.
  bool completion_event = false;
  // A new attempt may continue the run of the attempt before (run_job and
  // submit_run with repair: true): it starts with that run's id and handle
  // in its own handle, {"previous_run_id", "previous_handle"}.
  bool repairs_runs = false;
  bool operator==(const StepPlan&) const = default;
};

// A step's action as its type bound it (handlers/steps/step_type.hpp).
struct BoundAction;

struct StepDefinition {
  std::string name;
  std::string type;               // the action key: run_job, submit_run, sql, ...
  // The workspace (under `workspaces:`) its Databricks calls go to; "" (or
  // "default") = the default workspace (`databricks:`). Kept with a stored definition, so a
  // run is polled, canceled and repaired where it was started.
  std::string workspace;
  json::object action;            // the action's own fields, as JSON (templates unexpanded)
  StepPlan plan;                  // compiled from the action by its type
  // The action's typed form, bound by its type when compiled; not stored
  // with a workflow (a definition read back is bound again when it runs).
  std::shared_ptr<const BoundAction> bound;
  std::vector<std::string> depends_on;  // effective: the previous step unless given
  CompletionMode completion = CompletionMode::kEvent;
  Duration poll_every{std::chrono::seconds(60)};
  // completion: event: how long a poll that saw the run end waits for the
  // run's completion event before it completes the step itself.
  Duration event_grace{std::chrono::seconds(30)};
  std::optional<Duration> timeout;
  RetryPolicy retry;
  std::string source_location;    // "file:line:col" of the step, for messages
};

struct WorkflowDefinition {
  std::string name;
  std::vector<StepDefinition> steps;
  // Run (in the same way, with their own depends_on) once the workflow has
  // failed; it still ends `failed`, after they finish. Names are unique
  // across both lists.
  std::vector<StepDefinition> on_failure;

  // A step of either list.
  const StepDefinition* find_step(std::string_view step_name) const;
  bool is_on_failure_step(std::string_view step_name) const;
};

// A definition travels with each workflow instance (a running workflow keeps the
// definition it started with), so it round-trips through JSON for the store.
json::value to_json(const WorkflowDefinition& def);
Result<WorkflowDefinition> workflow_definition_from_json(const json::value& v);

// A reload replaces only `workflows`; a field added here must also be compared
// in reloaded_config (config/reload.cpp) so that changing it asks for a restart.
struct Config {
  std::string source_path;  // the file it was read from, for messages
  KafkaConfig kafka;
  PostgresConfig postgres;
  DatabricksConfig databricks;  // the default workspace
  // Named workspaces (`workspaces:`), each with its own client; an entry
  // named `default` is read into `databricks` instead.
  std::map<std::string, DatabricksConfig> workspaces;
  // False only when `workspaces:` is given without a default workspace
  // (neither `databricks:` nor `workspaces.default`): then every Databricks
  // step and Lakebase credential must name its workspace.
  bool has_default_workspace = true;
  CallbacksConfig callbacks;
  DaemonConfig daemon;
  FilesConfig files;
  RetentionConfig retention;
  std::map<std::string, DatabaseConfig> databases;
  std::map<std::string, WorkflowDefinition> workflows;
};

using ConfigPtr = std::shared_ptr<const Config>;

// The configuration of workspace `name` ("" or "default": the default
// workspace), or null when it is not configured.
const DatabricksConfig* find_workspace(const Config& config, std::string_view name);
// Why `name` cannot be used as a workspace of `config` (a step's or a
// Lakebase credential's `workspace:`), naming the configured ones; nullopt
// when it can.
std::optional<std::string> workspace_problem(const Config& config, std::string_view name);

struct Config;

// The step types the loader may use, by action key. The step registry
// implements it (handlers/steps), so this library does not depend on the
// step types and the loader keeps no list of its own.
class StepCatalog {
 public:
  virtual ~StepCatalog() = default;
  // Every action key a step may use, sorted.
  virtual std::vector<std::string> action_keys() const = 0;
  // Checks `step.action` for the type named by `step.type` and fills in what
  // the engine needs (`step.plan`; a type may also set defaults such as
  // `timeout`). Returns a message on error.
  virtual std::optional<std::string> compile(StepDefinition& step) const = 0;
  // Checks what the step names elsewhere in the configuration (a database
  // under `databases:`, ...), once everything is loaded. Returns a message on
  // error.
  virtual std::optional<std::string> check_references(const StepDefinition& step,
                                                      const Config& config) const {
    (void)step;
    (void)config;
    return std::nullopt;
  }
};

// Checks postgres.url as the database client will read it (libpq, which this
// library does not link). Returns a message on error; the message must not
// contain the URL's password.
using ConnectionStringValidator =
    std::function<std::optional<std::string>(const std::string& url)>;

struct LoadOptions {
  // The step types; without a catalog every action key is unknown.
  const StepCatalog* steps = nullptr;
  ConnectionStringValidator validate_postgres_url;  // may be empty: then the URL is not checked
  // False for commands that only read Postgres (status, list): the callbacks
  // section is then not read at all, so its secret need not be at hand.
  bool require_callback_secret = true;
  // Errors reported at most: sections, workflows and steps are each read on
  // after an error in another, so one run of `brickwork check` shows them all.
  size_t max_errors = 50;
};

// Reads `path`, substitutes ${VAR} and ${VAR:-default} from the environment,
// reads workflow files from `workflows_dir:` if given, and validates it all.
// The error message names file, line and column and what was expected.
// Beyond the field types it rejects: a key given twice in one mapping; unknown
// keys (except under kafka.properties and inside actions); depends_on naming
// no step, itself, a step twice, or forming a cycle; templates that are
// malformed or read anything but input.*, workflow.id|name and
// steps.NAME.output.*|run_id|state|attempt of a step this one depends on
// (directly or not); four Kafka topics that are not all different;
// databricks.host over http:// to a non-loopback address; postgres.url that
// validate_postgres_url rejects. No message repeats a value that may be a
// secret: a scalar where a mapping or list belongs is described, not quoted.
// Several errors come as one message, a line each (at most max_errors).
Result<Config> load_config(const std::string& path, const LoadOptions& options = {});
// Same, from text (tests); `source_name` is used in messages.
Result<Config> load_config_from_string(const std::string& yaml_text,
                                       const std::string& source_name = "<string>",
                                       const LoadOptions& options = {});

// One workflows file alone (`workflows:` and nothing else, as in
// workflows_dir), checked as the configuration would check it, except the
// references to other sections (databases) it cannot see.
Result<std::map<std::string, WorkflowDefinition>> load_workflows_file(
    const std::string& path, const LoadOptions& options = {});

// What a reload (SIGHUP) may change in a running daemon: the workflow
// definitions, and nothing else. Topics, brokers, the consumer group, the
// database, Databricks credentials, the callback secret and the daemon's own
// knobs are bound at start (subscriptions, connections, the token minter);
// swapping them under a running daemon would, for example, route inputs of
// the topic it still consumes as if they came from another.
struct ReloadedConfig {
  // `running` with the workflow definitions of `fresh`; everything else as running.
  ConfigPtr config;
  // The keys that differ between `running` and `fresh` and so take effect
  // only after a restart, in file order ("kafka.topics.commands",
  // "kafka.properties.sasl.password", "callbacks.secret", ...). Key names
  // only: a value (which may be a secret) is never part of the list.
  std::vector<std::string> needs_restart;
};

// Pure: no I/O, no logging. Every field of Config other than `workflows` and
// `source_path` is compared (config/reload.cpp).
ReloadedConfig reloaded_config(const Config& running, const Config& fresh);

// ${VAR} / ${VAR:-default} substitution; an unset ${VAR} without default is an error.
// ${file:PATH} is a file's content and ${credential:NAME} the file NAME in
// $CREDENTIALS_DIRECTORY (systemd LoadCredential=), both without a trailing
// newline; an unreadable one is an error naming the file, never a content.
// As in the shell, the default also replaces a set but empty variable. "$${" is a literal "${".
Result<std::string> substitute_env(const std::string& text);

}  // namespace brickwork
