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

void probe_databricks(DatabricksApi* api, const Error* api_error, bool needed,
                      std::vector<ConnectProbe>& out) {
  if (api == nullptr) {
    if (needed) {
      out.push_back(failed("databricks", api_error != nullptr ? api_error->message : ""));
    } else {
      out.push_back(passed("databricks", "not configured; no workflow needs it"));
    }
    return;
  }
  // The cheapest authenticated call every workspace serves.
  auto listed = api->call("GET", "/api/2.2/jobs/list?limit=1", nullptr, true);
  if (!listed) {
    out.push_back(failed("databricks", api->host() + ": " + listed.error().code + ": " +
                                           listed.error().message));
    return;
  }
  out.push_back(passed("databricks", api->host() + " (auth_type " + api->auth_type() + ")"));
}

}  // namespace

std::vector<std::string> brickwork_topics(const KafkaTopics& topics) {
  return {topics.commands, topics.events, topics.status, topics.dead_letter};
}

std::vector<ConnectProbe> probe_connections(const Config& config) {
  std::vector<ConnectProbe> out;
  probe_kafka(config, out);

  DatabricksConfig databricks_config = config.databricks;
  databricks_config.request_timeout = kProbeTimeout;
  databricks_config.retry_budget = kProbeTimeout;
  auto api = make_databricks_api(databricks_config);
  DatabricksApi* databricks = api ? api->get() : nullptr;
  const Error* api_error = api ? nullptr : &api.error();

  std::shared_ptr<PasswordSource> password;
  bool postgres_reachable = true;
  if (config.postgres.lakebase) {
    password = probe_lakebase(databricks, *config.postgres.lakebase, "postgres", api_error, out);
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
      db_password = probe_lakebase(databricks, *database.lakebase, name, api_error, out);
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

  probe_databricks(databricks, api_error, !databricks_steps(config).empty(), out);
  return out;
}

std::vector<std::string> databricks_steps(const Config& config) {
  std::vector<std::string> out;
  for (const auto& [name, workflow] : config.workflows) {
    for (const auto* list : {&workflow.steps, &workflow.on_failure}) {
      for (const auto& step : *list) {
        const StepType* type = StepRegistry::builtin().find(step.type);
        if (type != nullptr && type->calls_databricks()) {
          out.push_back(name + "/" + step.name + " (" + step.type + ")");
        }
      }
    }
  }
  return out;
}

DatabricksIdentity databricks_identity(const Config& config) {
  DatabricksIdentity out;
  auto resolved = resolve_databricks_config(config.databricks, process_environment());
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

std::optional<std::string> missing_databricks_credentials(const Config& config) {
  const auto steps = databricks_steps(config);
  if (steps.empty()) return std::nullopt;
  auto api = make_databricks_api(config.databricks);
  if (api) return std::nullopt;
  const std::string others =
      steps.size() > 1 ? " (and " + std::to_string(steps.size() - 1) + " more)" : "";
  return "step " + steps.front() + others +
         " needs Databricks, but no Databricks credentials resolve: " + api.error().message;
}

}  // namespace brickwork::cli
