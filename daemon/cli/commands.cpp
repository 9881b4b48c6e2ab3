#include "daemon/cli/commands.hpp"
#include "daemon/cli/cli_common.hpp"
#include "daemon/cli/connect_check.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <iostream>
#include <random>
#include <set>
#include <thread>
#include <tuple>

#include "daemon/core/escape.hpp"
#include "daemon/core/json_limits.hpp"
#include "daemon/core/logging.hpp"
#include "daemon/databricks/lakebase.hpp"
#include "daemon/kafka/kafka.hpp"
#include "daemon/kafka/kafka_admin.hpp"
#include "daemon/runtime/daemon.hpp"
#include "daemon/runtime/status_view.hpp"
#include "daemon/store/conninfo.hpp"
#include "daemon/store/store.hpp"
#include "handlers/steps/step_type.hpp"

namespace brickwork::cli {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};

extern "C" void on_stop_signal(int) { g_stop = true; }
extern "C" void on_reload_signal(int) { g_reload = true; }

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sa.sa_handler = on_reload_signal;
  sigaction(SIGHUP, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

// BRICKWORK_LOG_LEVEL, in any case, overrides daemon.log_level (one level
// for one run, without editing the file); an unknown value is ignored with a
// warning rather than silencing the daemon.
std::string effective_log_level(const std::string& configured) {
  const char* env = std::getenv("BRICKWORK_LOG_LEVEL");
  if (env == nullptr || *env == '\0') return configured;
  std::string level(env);
  for (char& c : level) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (level == "warning") level = "warn";
  static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn",
                                                "error", "critical", "off"};
  if (kLevels.count(level) == 0) {
    std::cerr << "warning: BRICKWORK_LOG_LEVEL=" << escape_control_characters(env)
              << " is not a level (trace, debug, info, warn, error, critical, off); using "
              << configured << "\n";
    return configured;
  }
  return level;
}

LoadOptions load_options() {
  LoadOptions options;
  options.steps = &StepRegistry::builtin();
  // libpq's own reading, so a URL it cannot read fails here, once, as a
  // configuration error, rather than as a connection error retried forever.
  options.validate_postgres_url = conninfo_problem;
  return options;
}

}  // namespace

// Errors carry text from outside (Postgres, Kafka, the configuration file):
// escaped, so that they cannot drive the terminal or pose as other output.
namespace {

// The lines of a message (a configuration with several errors has one each).
std::vector<std::string> lines_of(std::string_view message) {
  std::vector<std::string> lines;
  for (size_t from = 0;;) {
    const size_t nl = message.find('\n', from);
    lines.emplace_back(message.substr(from, nl == std::string_view::npos ? nl : nl - from));
    if (nl == std::string_view::npos) return lines;
    from = nl + 1;
  }
}

}  // namespace

void print_error(std::string_view message) {
  for (const std::string& line : lines_of(message)) {
    std::cerr << "error: " << escape_control_characters(line) << "\n";
  }
}

int produce_command(const Config& config, const std::string& id, const json::object& command) {
  auto producer = KafkaProducer::create(config.kafka, true, "brickwork-cli");
  if (!producer) {
    print_error(producer.error().message);
    return 1;
  }
  Status sent = (*producer)->produce_and_wait(
      {{config.kafka.topics.commands, id, json::serialize(command)}}, Duration(30000));
  if (!sent) {
    print_error("could not send the command to " + config.kafka.topics.commands + ": " +
                sent.error().message);
    return 1;
  }
  return 0;
}

std::optional<int> exit_code_of(WorkflowStatus status) {
  switch (status) {
    case WorkflowStatus::kSucceeded: return kExitOk;
    case WorkflowStatus::kFailed: return kExitFailed;
    case WorkflowStatus::kCanceled: return kExitCanceled;
    case WorkflowStatus::kRunning: return std::nullopt;
  }
  return std::nullopt;
}

Result<CliStore> open_cli_store(const Config& config) {
  CliStore out;
  if (config.postgres.lakebase) {
    const DatabricksConfig* workspace = find_workspace(config, config.postgres.lakebase->workspace);
    if (workspace == nullptr) {
      return Error{ErrorKind::kInvalidInput, "config", "postgres.lakebase: no such workspace"};
    }
    auto api = make_databricks_api(*workspace);
    if (!api) return api.error();
    out.databricks = std::move(*api);
    out.password = make_lakebase_credentials(*out.databricks, *config.postgres.lakebase, "postgres");
  }
  out.store = Store::open(config.postgres.url, out.password);
  return out;
}

std::optional<Config> load_checked_config(const std::string& path, bool needs_callback_secret) {
  LoadOptions options = load_options();
  options.require_callback_secret = needs_callback_secret;
  auto config = load_config(path, options);
  if (!config) {
    print_error(config.error().message);
    return std::nullopt;
  }
  return std::move(*config);
}

int run_daemon(const std::string& config_path) {
  auto config = load_checked_config(config_path);
  if (!config) return 1;
  setup_logging(config->daemon.log_format, effective_log_level(config->daemon.log_level));
  install_signal_handlers();
  // Refused now rather than when the first such step fails in the night.
  if (auto missing = missing_databricks_credentials(*config)) {
    print_error(*missing);
    return kExitError;
  }
  BuiltWorkspaces built = make_workspaces(*config);
  for (const auto& [label, error] : built.failed) {
    spdlog::info("databricks (workspace {}): {}; no workflow needs it", label, error.message);
  }
  DaemonOptions options;
  options.notify_systemd = std::getenv("NOTIFY_SOCKET") != nullptr;
  Daemon daemon(std::make_shared<const Config>(std::move(*config)), std::move(built.workspaces),
                options);
  std::atomic<bool> done{false};
  std::thread reloader([&] {
    while (!done) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (!g_reload.exchange(false)) continue;
      auto reloaded = load_config(config_path, load_options());
      if (!reloaded) {
        spdlog::error("reload refused, keeping the running configuration: {}",
                      reloaded.error().message);
        continue;
      }
      daemon.reload(std::make_shared<const Config>(std::move(*reloaded)));
    }
  });
  Status status = daemon.run(g_stop);
  done = true;
  reloader.join();
  if (!status) {
    spdlog::critical("{}", status.error().message);
    return 1;
  }
  return 0;
}

int run_migrate(const std::string& config_path, std::optional<int32_t> topics_partitions,
                bool as_json) {
  auto config = load_checked_config(config_path);
  if (!config) return kExitError;
  auto opened = open_cli_store(*config);
  if (!opened) {
    print_error(opened.error().message);
    return kExitError;
  }
  Status s = opened->store->migrate();
  if (!s) {
    print_error("migration failed: " + s.error().message);
    return kExitError;
  }
  json::object report{{"schema", "up_to_date"}};
  if (!as_json) std::cout << "schema is up to date" << std::endl;
  if (!topics_partitions) {
    if (as_json) std::cout << json::serialize(report) << std::endl;
    return kExitOk;
  }
  auto created = create_missing_topics(config->kafka, brickwork_topics(config->kafka.topics),
                                       *topics_partitions, Duration(15000));
  if (!created) {
    print_error("cannot reach Kafka to create topics: " + created.error().message);
    return kExitError;
  }
  int rc = kExitOk;
  json::array topics;
  for (const auto& t : *created) {
    json::object entry{{"topic", t.topic}, {"partitions", t.partitions}};
    switch (t.outcome) {
      case TopicCreation::Outcome::kCreated:
        entry["result"] = "created";
        if (!as_json) {
          std::cout << "topic " << t.topic << ": created with " << t.partitions
                    << " partition(s)\n";
        }
        break;
      case TopicCreation::Outcome::kExisted:
        entry["result"] = "exists";
        if (!as_json) {
          std::cout << "topic " << t.topic << ": exists";
          if (t.partitions > 0) std::cout << " with " << t.partitions << " partition(s)";
          std::cout << ", left as it is\n";
        }
        break;
      case TopicCreation::Outcome::kFailed:
        rc = kExitError;
        entry["result"] = "failed";
        entry["error"] = t.error;
        if (!as_json) {
          std::cout << "topic " << t.topic << ": FAILED: " << escape_control_characters(t.error)
                    << "\n";
        }
        break;
    }
    topics.push_back(std::move(entry));
  }
  report["topics"] = std::move(topics);
  if (as_json) std::cout << json::serialize(report) << std::endl;
  return rc;
}

namespace {

// A check that found errors: every one on stderr, or with --json one object
// on stdout, {"config"|"workflows": FILE, "ok": false, "errors": [...]}.
int report_check_errors(const char* what, const std::string& path, const std::string& message,
                        bool as_json) {
  if (!as_json) {
    print_error(message);
    return kExitError;
  }
  json::array errors;
  for (const std::string& line : lines_of(message)) errors.emplace_back(line);
  std::cout << json::serialize(json::object{{what, path}, {"ok", false}, {"errors", errors}})
            << std::endl;
  return kExitError;
}

json::array workflow_summaries(const std::map<std::string, WorkflowDefinition>& workflows) {
  json::array out;
  for (const auto& [name, def] : workflows) {
    out.push_back(json::object{{"name", name}, {"steps", def.steps.size()}});
  }
  return out;
}

void print_workflow_summary(const std::string& path,
                            const std::map<std::string, WorkflowDefinition>& workflows) {
  std::cout << path << ": ok, " << workflows.size() << " workflow(s)";
  const char* sep = ": ";
  for (const auto& [name, def] : workflows) {
    std::cout << sep << name << " (" << def.steps.size() << " steps)";
    sep = ", ";
  }
  std::cout << std::endl;
}

}  // namespace

int run_check_workflows(const std::string& workflows_path, bool as_json) {
  auto workflows = load_workflows_file(workflows_path, load_options());
  if (!workflows) {
    return report_check_errors("workflows", workflows_path, workflows.error().message, as_json);
  }
  if (as_json) {
    std::cout << json::serialize(json::object{{"workflows", workflows_path},
                                              {"ok", true},
                                              {"workflow_definitions",
                                               workflow_summaries(*workflows)}})
              << std::endl;
  } else {
    print_workflow_summary(workflows_path, *workflows);
  }
  return kExitOk;
}

int run_check(const std::string& config_path, bool connect, bool as_json) {
  auto config = load_config(config_path, load_options());
  if (!config) return report_check_errors("config", config_path, config.error().message, as_json);
  // librdkafka's own reading of kafka.properties: an unknown name or a value
  // it refuses is a configuration error, not a start-up failure later.
  if (Status properties = check_kafka_properties(config->kafka); !properties) {
    return report_check_errors("config", config_path,
                               config_path + ": kafka.properties: " + properties.error().message,
                               as_json);
  }
  if (auto missing = missing_databricks_credentials(*config)) {
    return report_check_errors("config", config_path, *missing, as_json);
  }
  json::object report{
      {"config", config_path}, {"ok", true}, {"workflows", workflow_summaries(config->workflows)}};
  // The identity the daemon would use, as resolved now: never a secret.
  const DatabricksIdentity identity = databricks_identity(*config);
  const auto identity_json = [](const DatabricksIdentity& id) {
    return json::object{{"host", id.host}, {"auth_type", id.auth_type}, {"profile", id.profile}};
  };
  if (identity.resolved) report["databricks"] = identity_json(identity);
  const std::vector<DatabricksIdentity> named = workspace_identities(*config);
  if (!named.empty()) {
    json::object workspaces;
    for (const auto& id : named) {
      json::object entry = identity_json(id);
      entry["resolved"] = id.resolved;
      if (!id.resolved) entry["problem"] = id.summary;
      workspaces[id.workspace] = std::move(entry);
    }
    report["workspaces"] = std::move(workspaces);
  }
  if (!as_json) {
    print_workflow_summary(config_path, config->workflows);
    std::cout << "databricks: " << escape_control_characters(identity.summary) << std::endl;
    for (const auto& id : named) {
      std::cout << "workspace " << id.workspace << ": " << escape_control_characters(id.summary)
                << std::endl;
    }
  }
  int rc = kExitOk;
  if (connect) {
    json::array probes;
    for (const ConnectProbe& p : probe_connections(*config)) {
      if (!p.ok) rc = kExitError;
      probes.push_back(json::object{{"target", p.target}, {"ok", p.ok}, {"detail", p.detail}});
      if (!as_json) {
        std::cout << p.target << ": " << (p.ok ? "ok" : "FAILED")
                  << (p.detail.empty() ? "" : (p.ok ? " (" : ": "))
                  << escape_control_characters(p.detail)
                  << (p.ok && !p.detail.empty() ? ")" : "") << std::endl;
      }
    }
    report["ok"] = rc == kExitOk;
    report["connect"] = std::move(probes);
  }
  if (as_json) std::cout << json::serialize(report) << std::endl;
  return rc;
}

namespace {

// An RFC 3339 time in UTC, or an age before `now` (90m, 2h, 7d).
std::optional<TimePoint> parse_list_time(const std::string& text, TimePoint now) {
  if (auto at = parse_iso8601(text)) return at;
  if (auto age = parse_duration(text)) return now - *age;
  return std::nullopt;
}

}  // namespace

int run_list(const std::string& config_path, const ListOptions& options, bool as_json) {
  auto config = load_checked_config(config_path, /*needs_callback_secret=*/false);
  if (!config) return kExitError;
  WorkflowQuery query;
  query.workflow = options.workflow;
  query.after = options.after;
  query.limit = options.limit;
  if (!options.state.empty()) {
    query.state = workflow_status_from_string(options.state);
    if (!query.state) {
      std::cerr << "error: --state must be running, succeeded, failed or canceled\n";
      return kExitUsage;
    }
  }
  const TimePoint now = now_ms();
  for (auto [text, flag, target] : {std::tuple{&options.since, "--since", &query.since},
                                    std::tuple{&options.until, "--until", &query.until}}) {
    if (text->empty()) continue;
    *target = parse_list_time(*text, now);
    if (!*target) {
      std::cerr << "error: " << flag
                << " expects an RFC 3339 time in UTC (2026-11-22T10:00:00Z) or an age (90m, 2h, 7d)\n";
      return kExitUsage;
    }
  }
  auto opened = open_cli_store(*config);
  if (!opened) {
    print_error(opened.error().message);
    return kExitError;
  }
  auto summaries = opened->store->list_workflows(query);
  if (!summaries) {
    print_error(summaries.error().message);
    return kExitError;
  }
  if (as_json) {
    json::array out;
    for (const auto& s : *summaries) out.push_back(summary_json(s));
    std::cout << json::serialize(out) << "\n";
  } else {
    std::cout << list_table(*summaries);
  }
  // A full page may have a next one: say how to ask for it (stderr: not data).
  if (query.limit > 0 && summaries->size() == static_cast<size_t>(query.limit)) {
    std::cerr << "more may follow: add --after " << escape_control_characters(summaries->back().id)
              << "\n";
  }
  return kExitOk;
}

int run_history(const std::string& config_path, const std::string& id, bool as_json) {
  auto config = load_checked_config(config_path, /*needs_callback_secret=*/false);
  if (!config) return kExitError;
  auto opened = open_cli_store(*config);
  if (!opened) {
    print_error(opened.error().message);
    return kExitError;
  }
  auto history = opened->store->get_history(id);
  if (!history) {
    print_error(history.error().message);
    return kExitError;
  }
  if (!*history) {
    print_error("no workflow with id '" + id + "'");
    return kExitError;
  }
  if (as_json) {
    std::cout << json::serialize(history_json(**history)) << std::endl;
  } else {
    std::cout << history_table(**history) << std::flush;
  }
  return kExitOk;
}

}  // namespace brickwork::cli
