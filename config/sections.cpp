#include "config/sections.hpp"

#include <algorithm>
#include <cctype>
#include <set>
#include <string>
#include <utility>

#include "daemon/core/databricks_apis.hpp"
#include "daemon/core/listen_address.hpp"
#include "daemon/core/loopback.hpp"
#include "daemon/core/time.hpp"

namespace brickwork {

const std::vector<std::string>& databricks_auth_types() {
  static const std::vector<std::string> kTypes = {
      "pat",        "oauth-m2m", "metadata-service",    "github-oidc",        "env-oidc",
      "file-oidc", "azure-msi", "azure-client-secret", "google-credentials", "google-id"};
  return kTypes;
}

}  // namespace brickwork

namespace brickwork::config_detail {

namespace {

std::optional<Error> load_topics(const YamlReader& in, const YAML::Node& node,
                                 KafkaTopics& topics) {
  if (auto e = in.map_node(node, "kafka.topics")) return e;
  if (auto e =
          in.check_keys(node, "kafka.topics", {"commands", "events", "status", "dead_letter"})) {
    return e;
  }
  const std::pair<const char*, std::string*> fields[] = {{"commands", &topics.commands},
                                                         {"events", &topics.events},
                                                         {"status", &topics.status},
                                                         {"dead_letter", &topics.dead_letter}};
  for (const auto& [key, target] : fields) {
    if (const YAML::Node v = node[key]) {
      const std::string path = std::string("kafka.topics.") + key;
      auto s = in.string(v, path);
      if (!s) return s.error();
      if (s->empty()) return in.error(v, path, "must not be empty");
      *target = *s;
    }
  }
  return std::nullopt;
}

// A daemon reading its own output (or dead letters as commands) would loop.
std::optional<Error> check_topics_differ(const YamlReader& in, const YAML::Node& kafka_node,
                                         const KafkaTopics& topics) {
  const std::pair<const char*, const std::string*> named[] = {{"commands", &topics.commands},
                                                              {"events", &topics.events},
                                                              {"status", &topics.status},
                                                              {"dead_letter", &topics.dead_letter}};
  for (size_t a = 0; a < 4; ++a) {
    for (size_t b = a + 1; b < 4; ++b) {
      if (*named[a].second == *named[b].second) {
        return in.error(kafka_node["topics"] ? kafka_node["topics"] : kafka_node, "kafka.topics",
                        std::string("expected four different topics; ") + named[a].first + " and " +
                            named[b].first + " are both \"" + *named[a].second + "\"");
      }
    }
  }
  return std::nullopt;
}

bool is_known_auth_type(const std::string& name) {
  const auto& types = databricks_auth_types();
  return std::find(types.begin(), types.end(), name) != types.end();
}

std::string known_auth_types() {
  std::string out;
  for (const auto& t : databricks_auth_types()) out += (out.empty() ? "" : ", ") + t;
  return out;
}

// The same rule the HTTP client applies, reported here with a position:
// https://, or http:// to a loopback address (the local simulator).
std::optional<std::string> host_problem(const std::string& host) {
  if (host.empty() || host.find("://") == std::string::npos) {
    return std::nullopt;  // https:// is added
  }
  if (host.rfind("https://", 0) == 0) return std::nullopt;
  if (host.rfind("http://", 0) != 0) {
    return "expected https://<workspace> (or http:// to a local simulator), got \"" + host + "\"";
  }
  std::string authority = host.substr(
      7, host.find('/', 7) == std::string::npos ? std::string::npos : host.find('/', 7) - 7);
  std::string name = !authority.empty() && authority.front() == '['
                         ? authority.substr(0, authority.find(']') + 1)
                         : authority.substr(0, authority.find(':'));
  if (is_loopback_host(name)) return std::nullopt;
  return "http:// is accepted only for a loopback address (a local simulator); use https:// "
         "for \"" +
         host + "\"";
}

// The name of a database or workspace: 1-100 characters of [A-Za-z0-9_.-].
bool is_valid_section_name(const std::string& name) {
  return !name.empty() && name.size() <= 100 &&
         name.find_first_not_of(
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") ==
             std::string::npos;
}

// A callbacks secret of at least kMinSecretChars characters; the message never
// repeats it.
Result<std::string> callback_secret(const YamlReader& in, const YAML::Node& node,
                                    const std::string& path) {
  constexpr size_t kMinSecretChars = 32;
  auto value = in.string(node, path);
  if (!value) return value.error();
  if (value->size() < kMinSecretChars) {
    return in.error(node, path,
                    "must be at least " + std::to_string(kMinSecretChars) +
                        " characters (it keys the HMAC tokens and sealed values); it has " +
                        std::to_string(value->size()));
  }
  return value;
}

}  // namespace

std::optional<Error> load_kafka(const YamlReader& in, const YAML::Node& node, KafkaConfig& kafka) {
  if (auto e = in.map_node(node, "kafka")) return e;
  if (auto e = in.check_keys(node, "kafka", {"brokers", "group", "topics", "properties"})) return e;
  for (const char* key : {"brokers", "group"}) {
    if (const YAML::Node v = node[key]) {
      auto s = in.string(v, std::string("kafka.") + key);
      if (!s) return s.error();
      if (s->empty()) return in.error(v, std::string("kafka.") + key, "must not be empty");
      (std::string(key) == "brokers" ? kafka.brokers : kafka.group) = *s;
    }
  }
  if (const YAML::Node topics = node["topics"]) {
    if (auto e = load_topics(in, topics, kafka.topics)) return e;
  }
  if (auto e = check_topics_differ(in, node, kafka.topics)) return e;
  if (const YAML::Node props = node["properties"]) {
    if (!props.IsNull()) {
      if (auto e = in.map_node(props, "kafka.properties")) return e;
      for (const auto& kv : props) {
        auto s = in.string(kv.second, "kafka.properties." + kv.first.Scalar());
        if (!s) return s.error();
        kafka.properties[kv.first.Scalar()] = *s;
      }
    }
  }
  return std::nullopt;
}

// A mapping with a connection URL under `url`, at `path` (postgres, or one
// entry of databases). The URL is never repeated in a message.
std::optional<Error> load_lakebase(const YamlReader& in, const YAML::Node& node,
                                   const std::string& path, std::optional<LakebaseConfig>& out) {
  if (auto e = in.map_node(node, path)) return *e;
  if (auto e = in.check_keys(node, path, {"instance", "endpoint", "workspace"})) return *e;
  LakebaseConfig lakebase;
  if (const YAML::Node v = node["workspace"]) {
    auto s = in.string(v, path + ".workspace");
    if (!s) return s.error();
    // Checked against the configured workspaces once all sections are read.
    lakebase.workspace = *s;
  }
  if (const YAML::Node v = node["instance"]) {
    auto s = in.string(v, path + ".instance");
    if (!s) return s.error();
    lakebase.instance = *s;
  }
  if (const YAML::Node v = node["endpoint"]) {
    auto s = in.string(v, path + ".endpoint");
    if (!s) return s.error();
    if (s->rfind("projects/", 0) != 0 || s->find("/branches/") == std::string::npos ||
        s->find("/endpoints/") == std::string::npos) {
      return in.error(v, path + ".endpoint", "expected projects/P/branches/B/endpoints/E");
    }
    lakebase.endpoint = *s;
  }
  if (lakebase.instance.empty() == lakebase.endpoint.empty()) {
    return in.error(node, path,
                    "expected exactly one of instance (Lakebase Provisioned) or endpoint "
                    "(Lakebase Autoscaling)");
  }
  out = std::move(lakebase);
  return std::nullopt;
}

std::optional<Error> load_connection(const YamlReader& in, const YAML::Node& node,
                                     const std::string& path,
                                     const ConnectionStringValidator& validate, std::string& out,
                                     std::optional<LakebaseConfig>& lakebase) {
  if (node.IsScalar()) {
    return in.error(node, path,
                    "expected a mapping with the URL under url (" + path +
                        ": {url: \"postgresql://...\"}), got a single value");
  }
  if (auto e = in.map_node(node, path)) return *e;
  if (auto e = in.check_keys(node, path, {"url", "lakebase"})) return *e;
  if (const YAML::Node v = node["lakebase"]) {
    if (auto e = load_lakebase(in, v, path + ".lakebase", lakebase)) return e;
  }
  if (const YAML::Node url = node["url"]) {
    auto s = in.string(url, path + ".url");
    if (!s) return s.error();
    if (s->empty()) return in.error(url, path + ".url", "must not be empty");
    if (validate) {
      if (auto problem = validate(*s)) {
        return in.error(url, path + ".url", *problem);
      }
    }
    out = *s;
  }
  return std::nullopt;
}

std::optional<Error> load_postgres(const YamlReader& in, const YAML::Node& node,
                                   const ConnectionStringValidator& validate,
                                   PostgresConfig& postgres) {
  return load_connection(in, node, "postgres", validate, postgres.url, postgres.lakebase);
}

std::optional<Error> load_databases(const YamlReader& in, const YAML::Node& node,
                                    const ConnectionStringValidator& validate,
                                    std::map<std::string, DatabaseConfig>& databases) {
  if (node.IsNull()) return std::nullopt;
  if (auto e = in.map_node(node, "databases")) return *e;
  for (const auto& kv : node) {
    const std::string name = kv.first.Scalar();
    const std::string path = "databases." + name;
    if (!is_valid_section_name(name)) {
      return in.error(kv.first, path, "a database name is 1-100 characters of [A-Za-z0-9_.-]");
    }
    DatabaseConfig database;
    if (auto e = load_connection(in, kv.second, path, validate, database.url, database.lakebase)) {
      return e;
    }
    if (database.url.empty()) return in.error(kv.second, path + ".url", "is required");
    databases[name] = std::move(database);
  }
  return std::nullopt;
}

// <path>.limits: {API: calls per second}, each API one of
// databricks_limit_api_names().
std::optional<Error> load_databricks_limits(const YamlReader& in, const YAML::Node& node,
                                            const std::string& section,
                                            std::map<std::string, double>& limits) {
  if (node.IsNull()) return std::nullopt;
  if (auto e = in.map_node(node, section + ".limits")) return e;
  const auto& known = databricks_limit_api_names();
  for (const auto& kv : node) {
    const std::string api = kv.first.Scalar();
    const std::string path = section + ".limits." + api;
    if (std::find(known.begin(), known.end(), api) == known.end()) {
      std::string list;
      for (const auto& name : known) list += (list.empty() ? "" : ", ") + name;
      return in.error(kv.first, path, "not an API brickwork limits (expected one of " + list + ")");
    }
    double rate = 0;
    const bool number = kv.second.IsScalar() && YAML::convert<double>::decode(kv.second, rate);
    if (!number || !(rate > 0) || rate > 100000) {
      return in.error(kv.second, path,
                      "expected calls per second, a number above 0 and at most 100000 (e.g. 15 or 0.5)");
    }
    limits[api] = rate;
  }
  return std::nullopt;
}

std::optional<Error> load_databricks(const YamlReader& in, const YAML::Node& node,
                                     const std::string& section, DatabricksConfig& dbx) {
  if (auto e = in.map_node(node, section)) return e;
  if (auto e = in.check_keys(
          node, section,
          {"host", "token", "client_id", "client_secret", "auth_type", "profile", "request_timeout",
           "retry_budget", "limits", "max_in_flight", "max_transfers"})) {
    return e;
  }
  const std::pair<const char*, std::string*> fields[] = {{"host", &dbx.host},
                                                         {"token", &dbx.token},
                                                         {"client_id", &dbx.client_id},
                                                         {"client_secret", &dbx.client_secret},
                                                         {"auth_type", &dbx.auth_type},
                                                         {"profile", &dbx.profile}};
  for (const auto& [key, target] : fields) {
    if (const YAML::Node v = node[key]) {
      auto s = in.string(v, section + "." + key);
      if (!s) return s.error();
      *target = *s;
    }
  }
  if (const YAML::Node v = node["host"]) {
    while (!dbx.host.empty() && dbx.host.back() == '/') dbx.host.pop_back();
    if (auto what = host_problem(dbx.host)) return in.error(v, section + ".host", *what);
  }
  if (const YAML::Node v = node["auth_type"]; v && !is_known_auth_type(dbx.auth_type)) {
    return in.error(v, section + ".auth_type",
                    "unknown auth type '" + dbx.auth_type + "' (" + known_auth_types() + ")");
  }
  // Workload identity federation names a client_id without a secret.
  const bool federated = dbx.auth_type.find("oidc") != std::string::npos;
  if (dbx.client_id.empty() != dbx.client_secret.empty() && !federated) {
    return in.error(node, section, "client_id and client_secret (OAuth M2M) go together");
  }
  if (!dbx.token.empty() && !dbx.client_id.empty() && dbx.auth_type.empty()) {
    return in.error(node, section,
                    "expected either token or client_id + client_secret, not both (or "
                    "auth_type naming the one to use)");
  }
  if (const YAML::Node v = node["request_timeout"]) {
    auto d = in.duration(v, section + ".request_timeout");
    if (!d) return d.error();
    if (d->count() <= 0) return in.error(v, section + ".request_timeout", "must be longer than 0");
    dbx.request_timeout = *d;
  }
  if (const YAML::Node v = node["retry_budget"]) {
    auto d = in.duration(v, section + ".retry_budget");
    if (!d) return d.error();
    dbx.retry_budget = *d;
  }
  if (const YAML::Node v = node["limits"]) {
    if (auto e = load_databricks_limits(in, v, section, dbx.limits)) return e;
  }
  const std::pair<const char*, int32_t*> slots[] = {{"max_in_flight", &dbx.max_in_flight},
                                                    {"max_transfers", &dbx.max_transfers}};
  for (const auto& [key, target] : slots) {
    if (const YAML::Node v = node[key]) {
      auto i = in.integer(v, section + "." + key, 1, 1024);
      if (!i) return i.error();
      *target = static_cast<int32_t>(*i);
    }
  }
  return std::nullopt;
}

std::optional<Error> load_workspaces(const YamlReader& in, const YAML::Node& node,
                                     bool databricks_given, Config& config) {
  if (node.IsNull()) return std::nullopt;
  if (auto e = in.map_node(node, "workspaces")) return e;
  bool default_given = databricks_given;
  for (const auto& kv : node) {
    const std::string name = kv.first.Scalar();
    const std::string path = "workspaces." + name;
    if (!is_valid_section_name(name)) {
      return in.error(kv.first, path, "a workspace name is 1-100 characters of [A-Za-z0-9_.-]");
    }
    if (name == kDefaultWorkspace && databricks_given) {
      return in.error(kv.first, path,
                      "the default workspace is already given by databricks:; configure it in "
                      "one of the two");
    }
    DatabricksConfig workspace;
    if (auto e = load_databricks(in, kv.second, path, workspace)) return e;
    // The environment's DATABRICKS_HOST is the default workspace's: a named
    // one that took it would send its steps somewhere else.
    if (name != kDefaultWorkspace && workspace.host.empty() && workspace.profile.empty()) {
      return in.error(kv.second, path + ".host",
                      "required for a named workspace (or a profile of ~/.databrickscfg that "
                      "has it)");
    }
    if (name == kDefaultWorkspace) {
      config.databricks = std::move(workspace);
      default_given = true;
    } else {
      config.workspaces[name] = std::move(workspace);
    }
  }
  config.has_default_workspace = default_given;
  return std::nullopt;
}

std::optional<Error> load_callbacks(const YamlReader& in, const YAML::Node& root,
                                    CallbacksConfig& callbacks) {
  const YAML::Node node = root["callbacks"];
  if (!node) {
    return in.error(root, "callbacks.secret",
                    "required: the secret that keys completion tokens (at least 32 characters)");
  }
  if (auto e = in.map_node(node, "callbacks")) return *e;
  if (auto e = in.check_keys(node, "callbacks", {"secret", "previous_secrets"})) return *e;
  const YAML::Node secret = node["secret"];
  if (!secret) return in.error(node, "callbacks.secret", "required (at least 32 characters)");
  auto secret_value = callback_secret(in, secret, "callbacks.secret");
  if (!secret_value) return secret_value.error();
  callbacks.secret = *secret_value;
  // Earlier secrets, kept while a rotation is under way (docs/OPERATIONS.md).
  if (const YAML::Node previous = node["previous_secrets"]) {
    if (!previous.IsSequence()) {
      return in.error(previous, "callbacks.previous_secrets", "expected a list of secrets");
    }
    for (size_t i = 0; i < previous.size(); ++i) {
      auto value =
          callback_secret(in, previous[i], "callbacks.previous_secrets[" + std::to_string(i) + "]");
      if (!value) return value.error();
      callbacks.previous_secrets.push_back(*value);
    }
  }
  return std::nullopt;
}

std::optional<Error> load_daemon(const YamlReader& in, const YAML::Node& node,
                                 DaemonConfig& daemon) {
  if (auto e = in.map_node(node, "daemon")) return e;
  if (auto e = in.check_keys(node, "daemon",
                             {"batch_max_messages", "batch_max_bytes", "batch_max_wait",
                              "effect_workers", "lease", "shutdown_grace", "outbox_stall",
                              "metrics_listen", "log_format", "log_level"})) {
    return e;
  }
  if (const YAML::Node v = node["batch_max_messages"]) {
    auto i = in.integer(v, "daemon.batch_max_messages", 1, 100000);
    if (!i) return i.error();
    daemon.batch_max_messages = static_cast<int32_t>(*i);
  }
  if (const YAML::Node v = node["batch_max_bytes"]) {
    auto i = in.byte_size(v, "daemon.batch_max_bytes", 64 * 1024, int64_t{1} << 30);
    if (!i) return i.error();
    daemon.batch_max_bytes = *i;
  }
  if (const YAML::Node v = node["effect_workers"]) {
    auto i = in.integer(v, "daemon.effect_workers", 1, 256);
    if (!i) return i.error();
    daemon.effect_workers = static_cast<int32_t>(*i);
  }
  const std::pair<const char*, Duration*> durations[] = {
      {"batch_max_wait", &daemon.batch_max_wait},
      {"lease", &daemon.lease},
      {"shutdown_grace", &daemon.shutdown_grace}};
  for (const auto& [key, target] : durations) {
    if (const YAML::Node v = node[key]) {
      auto d = in.duration(v, std::string("daemon.") + key);
      if (!d) return d.error();
      *target = *d;
    }
  }
  if (const YAML::Node v = node["outbox_stall"]) {
    auto d = in.duration(v, "daemon.outbox_stall");
    if (!d) return d.error();
    if (*d < Duration(100) || *d > std::chrono::minutes(10)) {
      return in.error(v, "daemon.outbox_stall",
                      "must be between 100ms and 10m, got " + format_duration(*d));
    }
    daemon.outbox_stall = *d;
  }
  if (const YAML::Node v = node["metrics_listen"]) {
    auto s = in.string(v, "daemon.metrics_listen");
    if (!s) return s.error();
    if (!s->empty()) {
      auto address = parse_listen_address(*s);
      if (!address) return in.error(v, "daemon.metrics_listen", address.error().message);
    }
    daemon.metrics_listen = *s;
  }
  if (const YAML::Node v = node["log_format"]) {
    auto s = in.string(v, "daemon.log_format");
    if (!s) return s.error();
    if (*s != "json" && *s != "text") {
      return in.error(v, "daemon.log_format", "expected json or text, got \"" + *s + "\"");
    }
    daemon.log_format = *s;
  }
  if (const YAML::Node v = node["log_level"]) {
    auto s = in.string(v, "daemon.log_level");
    if (!s) return s.error();
    // In any case, as BRICKWORK_LOG_LEVEL is read.
    for (char& c : *s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (*s == "warning") *s = "warn";
    static const std::set<std::string> kLevels = {"trace", "debug",    "info", "warn",
                                                  "error", "critical", "off"};
    if (kLevels.count(*s) == 0) {
      return in.error(
          v, "daemon.log_level",
          "expected trace, debug, info, warn, error, critical or off, got \"" + *s + "\"");
    }
    daemon.log_level = *s;
  }
  return std::nullopt;
}

std::optional<Error> load_retention(const YamlReader& in, const YAML::Node& node,
                                    RetentionConfig& retention) {
  if (auto e = in.map_node(node, "retention")) return e;
  if (auto e = in.check_keys(node, "retention",
                             {"succeeded", "failed", "canceled", "every", "batch_size"})) {
    return e;
  }
  // Shorter than a minute, a workflow could vanish before anyone read its end.
  const std::pair<const char*, Duration*> kept[] = {{"succeeded", &retention.succeeded},
                                                    {"failed", &retention.failed},
                                                    {"canceled", &retention.canceled}};
  for (const auto& [key, target] : kept) {
    if (const YAML::Node v = node[key]) {
      const std::string path = std::string("retention.") + key;
      auto d = in.duration(v, path);
      if (!d) return d.error();
      if (d->count() != 0 && *d < std::chrono::minutes(1)) {
        return in.error(v, path,
                        "must be 0 (keep forever) or at least 1m, got " + format_duration(*d));
      }
      *target = *d;
    }
  }
  if (const YAML::Node v = node["every"]) {
    auto d = in.duration(v, "retention.every");
    if (!d) return d.error();
    if (*d < std::chrono::seconds(1) || *d > std::chrono::hours(24)) {
      return in.error(v, "retention.every", "must be between 1s and 1d, got " + format_duration(*d));
    }
    retention.every = *d;
  }
  if (const YAML::Node v = node["batch_size"]) {
    auto i = in.integer(v, "retention.batch_size", 1, 10000);
    if (!i) return i.error();
    retention.batch_size = static_cast<int32_t>(*i);
  }
  return std::nullopt;
}

std::optional<Error> load_files(const YamlReader& in, const YAML::Node& node, FilesConfig& files) {
  if (auto e = in.map_node(node, "files")) return e;
  if (auto e = in.check_keys(node, "files", {"allowed_dirs"})) return e;
  const YAML::Node dirs = node["allowed_dirs"];
  if (!dirs || dirs.IsNull()) return std::nullopt;
  if (!dirs.IsSequence()) {
    return in.error(dirs, "files.allowed_dirs",
                    "expected a list of absolute directories, got " + YamlReader::shown(dirs));
  }
  for (size_t i = 0; i < dirs.size(); ++i) {
    const std::string path = "files.allowed_dirs[" + std::to_string(i) + "]";
    auto s = in.string(dirs[i], path);
    if (!s) return s.error();
    // "/" would allow every file the daemon can read, the configuration too.
    if (s->empty() || s->front() != '/' || s->find_first_not_of('/') == std::string::npos) {
      return in.error(dirs[i], path, "expected an absolute directory other than /, got \"" + *s + "\"");
    }
    files.allowed_dirs.push_back(*s);
  }
  return std::nullopt;
}

}  // namespace brickwork::config_detail
