#pragma once
// The pieces behind make_databricks_api(), exposed for tests and for callers
// that need to tune them: credential resolution, retry options and counters,
// and the error-body parser.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "daemon/core/result.hpp"
#include "daemon/core/time.hpp"
#include "daemon/databricks/api.hpp"
#include "daemon/databricks/credentials.hpp"

namespace brickwork {

// ::getenv.
EnvLookup process_environment();

struct ResolvedDatabricksConfig {
  std::string host;  // "https://..." or "http://127.0.0.1:P", no trailing '/'
  // The auth type chosen (a CredentialsStrategy's name), or "none": only for
  // an http:// loopback host without any credential (the simulator).
  std::string auth_type;
  AuthAttributes attributes;  // every attribute found (auth_attributes()), host included
  std::map<std::string, std::string> sources;  // attribute → "config", "env X", "file P [profile]"
  std::string profile;      // the ~/.databrickscfg profile used, "" if none
  std::string config_file;  // the file read, "" if none
  EnvLookup env;            // where the environment was read (env-oidc reads it again)
  Duration request_timeout{std::chrono::seconds(60)};
  Duration retry_budget{std::chrono::seconds(300)};
  std::map<std::string, double> limits;  // calls per second by API: defaults + databricks.limits
  // Requests that may be in flight at once: max_in_flight + max_transfers
  // (a call thread sends one at a time).
  size_t max_concurrent_requests = 80;

  std::string attr(const std::string& name) const {
    auto it = attributes.find(name);
    return it == attributes.end() ? std::string() : it->second;
  }
};

// "https://host (auth_type azure-msi, profile prod)": never a secret.
std::string describe_auth(const ResolvedDatabricksConfig& resolved);

// Fills host and credentials as the Databricks SDKs do: explicit `config`
// fields first (host, token, client_id, client_secret, auth_type, profile),
// then the environment (auth_attributes(): DATABRICKS_*, ARM_*, ...), then a
// profile of DATABRICKS_CONFIG_FILE (default $HOME/.databrickscfg): the one
// named by databricks.profile or DATABRICKS_CONFIG_PROFILE, else
// [__settings__] default_profile, else [DEFAULT]. The file only fills empty
// attributes and is skipped when no profile is named and a host or any
// credential attribute is already set. A host without scheme gets "https://".
// The auth type is auth_type when set (then only its attributes are checked),
// else the first of credentials_strategies() the attributes configure.
// Errors (kInvalidInput) say what was found (secrets masked) and what is
// missing: no host, no credentials for a remote host, attributes of two
// methods without auth_type, half an OAuth pair, an unknown auth_type, a
// named profile that does not exist, http:// to a remote host.
Result<ResolvedDatabricksConfig> resolve_databricks_config(const DatabricksConfig& config,
                                                           const EnvLookup& env);

// Counters of one client, for metrics and tests. Every degraded path counts.
struct DatabricksClientCounters {
  std::atomic<int64_t> requests{0};          // HTTP exchanges attempted (API + token)
  std::atomic<int64_t> retries{0};           // attempts repeated after a transient error
  std::atomic<int64_t> transient_errors{0};  // transient outcomes seen (before any retry)
  std::atomic<int64_t> token_fetches{0};     // OAuth token requests that succeeded
  std::atomic<int64_t> token_failures{0};    // OAuth token requests that failed
  std::atomic<int64_t> throttled{0};         // answers 429 (rate limited)
  std::atomic<int64_t> limit_wait_ms{0};     // time calls waited for their API's client-side limit
  std::atomic<int64_t> polls_deferred{0};    // polls refused by a busy client-side limit
};

struct DatabricksClientOptions {
  Duration backoff_initial{std::chrono::milliseconds(200)};  // doubles per retry, with jitter
  Duration backoff_max{std::chrono::seconds(10)};
  EnvLookup env;  // empty: the process environment
  std::shared_ptr<DatabricksClientCounters> counters;  // empty: a private one
  // The workspace's name under `workspaces:` ("" = the default): the
  // `workspace` label of its metrics, and named in its log lines.
  std::string workspace;
};

// make_databricks_api() with tuned options (tests use short backoffs).
Result<std::unique_ptr<DatabricksApi>> make_databricks_api(const DatabricksConfig& config,
                                                           const DatabricksClientOptions& options);

// Turns a non-2xx response into an Error. Parses the body defensively:
// {"error_code": "X" | 123, "message": ...}, {"error": "..."} (also OAuth's
// error/error_description), {"detail": ...} (SCIM), "CODE: message" text,
// HTML (<pre> text), or nothing (then the reason phrase). code is the
// error_code or "http_<status>". Kind: 429/500/502/503/504 → kTransient,
// 404 → kNotFound, 409 → kConflict, other 4xx → kPermanent; some error codes
// and messages refine it (REQUEST_LIMIT_EXCEEDED, TEMPORARILY_UNAVAILABLE and
// the SDKs' retriable worker-environment messages → kTransient;
// any *DOES_NOT_EXIST (RESOURCE_, SHARE_, RECIPIENT_, ...) → kNotFound; any
// *ALREADY_EXISTS → kConflict).
Error error_from_http(int status, std::string_view reason, std::string_view body);

// The tasks[] of a runs/get body (any page of it), as parse_run_info reads
// them; a later page of a 2.2 response need not repeat the run's state.
Result<std::vector<RunTask>> parse_run_tasks(const json::value& body);

// One page of GET jobs/list, reduced to what find_jobs_by_name needs.
struct JobsListPage {
  std::vector<int64_t> matching_job_ids;  // settings.name == name, byte for byte, in page order
  std::string next_page_token;            // "" on the last page
};

// Reads a jobs/list response: {"jobs": [{"job_id", "settings": {"name"}}...],
// "has_more", "next_page_token"}; "jobs" is absent when nothing matched.
// Defensive: a body, jobs array or entry of the wrong type, or a matching
// entry without an integer job_id, is an Error (kInvalidInput), so a page
// that cannot be read never turns into "no such job". An entry without a
// settings.name is not a match.
Result<JobsListPage> parse_jobs_list_page(const json::value& body, std::string_view name);

// Retry-After as integer seconds (the only form Databricks sends); nullopt if absent/unparseable.
std::optional<Duration> parse_retry_after(std::string_view value);

}  // namespace brickwork
