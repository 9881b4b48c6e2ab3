// `brickwork check --connect` and `migrate --topics`: the configured services
// reached with the configured credentials, one line per target, so a wrong
// password or an unreachable broker shows before the daemon meets it.
#include "daemon/cli/connect_check.hpp"

#include <iostream>
#include <set>

#include "daemon/cli/cli_common.hpp"
#include "daemon/core/escape.hpp"
#include "daemon/databricks/client.hpp"
#include "daemon/databricks/lakebase.hpp"
#include "daemon/databricks/workspaces.hpp"
#include "daemon/kafka/kafka_admin.hpp"
#include "daemon/store/databases.hpp"
#include "handlers/steps/step_type.hpp"

namespace brickwork::cli {
namespace {

// Each probe waits at most this long for an answer; a check that retried
// for the daemon's patience would leave the operator staring at nothing.
constexpr Duration kProbeTimeout{std::chrono::seconds(10)};

ConnectProbe passed(std::string target, std::string detail = {}) {
  return ConnectProbe{std::move(target), true, std::move(detail)};
}
ConnectProbe failed(std::string target, std::string reason) {
  return ConnectProbe{std::move(target), false, std::move(reason)};
}

void probe_kafka(const Config& config, std::vector<ConnectProbe>& out) {
  auto view = describe_kafka_cluster(config.kafka, kProbeTimeout);
  if (!view) {
    out.push_back(failed("kafka", config.kafka.brokers + ": " + view.error().message));
    return;
  }
  out.push_back(passed("kafka", std::to_string(view->brokers) + " broker(s) at " +
                                    config.kafka.brokers));
  std::string missing;
  for (const auto& topic : brickwork_topics(config.kafka.topics)) {
    if (view->partitions_by_topic.count(topic) == 0) {
      missing += (missing.empty() ? "" : ", ") + topic;
    }
  }
  if (missing.empty()) {
    out.push_back(passed("kafka topics", "all four present"));
  } else {
    out.push_back(failed("kafka topics", "missing " + missing +
                                             " (`brickwork migrate --topics` creates them)"));
  }
}

// A Lakebase credential for `name`, reported as its own target.
std::shared_ptr<PasswordSource> probe_lakebase(DatabricksApi* api, const LakebaseConfig& lakebase,
                                               const std::string& name, const Error* api_error,
                                               std::vector<ConnectProbe>& out) {
  const std::string target = "lakebase credential (" + name + ")";
  if (api == nullptr) {
    out.push_back(failed(target, "no Databricks identity to ask with: " +
                                     (api_error != nullptr ? api_error->message : "")));
    return nullptr;
  }
  auto source = make_lakebase_credentials(*api, lakebase, name);
  auto password = source->password();
  if (!password) {
    out.push_back(failed(target, password.error().message));
    return nullptr;
  }
  out.push_back(passed(target));
  return source;
}

// "databricks" for the default workspace, "databricks (workspace NAME)" else.
std::string databricks_target(const std::string& label) {
  return label == kDefaultWorkspace ? "databricks" : "databricks (workspace " + label + ")";
}

void probe_databricks(const std::string& label, DatabricksApi* api, const Error* api_error,
                      bool needed, std::vector<ConnectProbe>& out) {
  const std::string target = databricks_target(label);
  if (api == nullptr) {
    if (needed) {
      out.push_back(failed(target, api_error != nullptr ? api_error->message : ""));
    } else {
      out.push_back(passed(target, "not configured; no workflow needs it"));
    }
    return;
  }
  // The cheapest authenticated call every workspace serves.
  auto listed = api->call("GET", "/api/2.2/jobs/list?limit=1", nullptr, true);
  if (!listed) {
    out.push_back(failed(target, api->host() + ": " + listed.error().code + ": " +
                                     listed.error().message));
    return;
  }
  out.push_back(passed(target, api->host() + " (auth_type " + api->auth_type() + ")"));
}

DatabricksIdentity identity_of(const std::string& label, const DatabricksConfig& workspace) {
  DatabricksIdentity out;
  out.workspace = label;
  auto resolved = resolve_databricks_config(workspace, process_environment());
  if (!resolved) {
    out.summary = "not configured (" + resolved.error().message + ")";
    return out;
  }
  out.resolved = true;
  out.host = resolved->host;
  out.auth_type = resolved->auth_type;
  out.profile = resolved->profile;
  out.summary = describe_auth(*resolved);
  return out;
}

}  // namespace

std::vector<std::string> brickwork_topics(const KafkaTopics& topics) {
  return {topics.commands, topics.events, topics.status, topics.dead_letter};
}

std::vector<ConnectProbe> probe_connections(const Config& config) {
  std::vector<ConnectProbe> out;
  probe_kafka(config, out);

  // Every workspace with the probes' patience.
  Config probing = config;
  const auto impatient = [](DatabricksConfig& workspace) {
    workspace.request_timeout = kProbeTimeout;
    workspace.retry_budget = kProbeTimeout;
  };
  impatient(probing.databricks);
  for (auto& [name, workspace] : probing.workspaces) impatient(workspace);
  const BuiltWorkspaces built = make_workspaces(probing);
  const auto error_of = [&built](const std::string& workspace) -> const Error* {
    auto it = built.failed.find(workspace_label(workspace));
    return it == built.failed.end() ? nullptr : &it->second;
  };

  std::shared_ptr<PasswordSource> password;
  bool postgres_reachable = true;
  if (config.postgres.lakebase) {
    const std::string& workspace = config.postgres.lakebase->workspace;
    password = probe_lakebase(built.workspaces.find(workspace), *config.postgres.lakebase,
                              "postgres", error_of(workspace), out);
    postgres_reachable = password != nullptr;
  }
  if (postgres_reachable) {
    auto store = Store::open(config.postgres.url, password);
    Status ping = store->ping();
    out.push_back(ping ? passed("postgres") : failed("postgres", ping.error().message));
  } else {
    out.push_back(failed("postgres", "no credential (see the line above)"));
  }

  for (const auto& [name, database] : config.databases) {
    std::shared_ptr<PasswordSource> db_password;
    if (database.lakebase) {
      const std::string& workspace = database.lakebase->workspace;
      db_password = probe_lakebase(built.workspaces.find(workspace), *database.lakebase, name,
                                   error_of(workspace), out);
      if (!db_password) {
        out.push_back(failed("database " + name, "no credential (see the line above)"));
        continue;
      }
    }
    auto pool = NamedDatabases::create({{name, database}}, 1,
                                       [&](const std::string&, const DatabaseConfig&) {
                                         return db_password;
                                       });
    auto answered = pool->query(name, "SELECT 1", {}, 1);
    out.push_back(answered ? passed("database " + name)
                           : failed("database " + name, answered.error().message));
  }

  const auto steps = databricks_steps(config);
  for (const auto& [label, workspace] : configured_workspaces(config)) {
    const std::string name = label == kDefaultWorkspace ? "" : label;
    probe_databricks(label, built.workspaces.find(name), error_of(name), steps.count(label) != 0,
                     out);
  }
  return out;
}

std::map<std::string, std::vector<std::string>> databricks_steps(const Config& config) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& [name, workflow] : config.workflows) {
    for (const auto* list : {&workflow.steps, &workflow.on_failure}) {
      for (const auto& step : *list) {
        const StepType* type = StepRegistry::builtin().find(step.type);
        if (type != nullptr && type->calls_databricks()) {
          out[workspace_label(step.workspace)].push_back(name + "/" + step.name + " (" +
                                                          step.type + ")");
        }
      }
    }
  }
  return out;
}

DatabricksIdentity databricks_identity(const Config& config) {
  if (!config.has_default_workspace) {
    DatabricksIdentity none;
    none.workspace = kDefaultWorkspace;
    none.summary = "no default workspace (only workspaces:); every step names its workspace";
    return none;
  }
  return identity_of(kDefaultWorkspace, config.databricks);
}

std::vector<DatabricksIdentity> workspace_identities(const Config& config) {
  std::vector<DatabricksIdentity> out;
  for (const auto& [name, workspace] : config.workspaces) {
    out.push_back(identity_of(name, workspace));
  }
  return out;
}

std::optional<std::string> missing_databricks_credentials(const Config& config) {
  for (const auto& [label, steps] : databricks_steps(config)) {
    const DatabricksConfig* workspace = find_workspace(config, label);
    if (workspace == nullptr) continue;  // refused when the configuration was loaded
    DatabricksClientOptions options;
    options.workspace = label == kDefaultWorkspace ? "" : label;
    auto api = make_databricks_api(*workspace, options);
    if (api) continue;
    const std::string others =
        steps.size() > 1 ? " (and " + std::to_string(steps.size() - 1) + " more)" : "";
    const std::string where =
        label == kDefaultWorkspace ? "Databricks" : "Databricks workspace " + label;
    return "step " + steps.front() + others + " needs " + where +
           ", but no Databricks credentials resolve: " + api.error().message;
  }
  return std::nullopt;
}

}  // namespace brickwork::cli
