#include "daemon/cli/commands.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <iostream>
#include <random>
#include <set>
#include <thread>

#include "daemon/core/escape.hpp"
#include "daemon/core/json_limits.hpp"
#include "daemon/core/logging.hpp"
#include "daemon/databricks/lakebase.hpp"
#include "daemon/kafka/kafka.hpp"
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

// Errors carry text from outside (Postgres, Kafka, the configuration file):
// escaped, so that they cannot drive the terminal or pose as other output.
void print_error(std::string_view message) {
  std::cerr << "error: " << escape_control_characters(message) << "\n";
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

Result<json::value> parse_json_arg(const std::string& text, const char* what) {
  boost::system::error_code ec;
  json::value v = parse_json(text, ec);
  if (ec) return Error{ErrorKind::kInvalidInput, "invalid_json",
                       std::string(what) + " is not valid JSON: " + ec.message()};
  return v;
}

int produce_command(const Config& config, const std::string& id, json::object command) {
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

std::string generate_id(const std::string& workflow) {
  std::random_device rd;
  std::uniform_int_distribution<uint32_t> dist;
  char suffix[24];
  std::snprintf(suffix, sizeof suffix, "%08x%04x", dist(rd), dist(rd) & 0xffff);
  std::string base = workflow.substr(0, 180);
  for (char& c : base) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '-';
  }
  return base + "-" + suffix;
}

}  // namespace

namespace {

// The store of a CLI command, with a Lakebase credential when configured
// (members in the order they depend on each other).
struct CliStore {
  std::unique_ptr<DatabricksApi> databricks;
  std::shared_ptr<PasswordSource> password;
  std::unique_ptr<Store> store;
};

Result<CliStore> open_cli_store(const Config& config) {
  CliStore out;
  if (config.postgres.lakebase) {
    auto api = make_databricks_api(config.databricks);
    if (!api) return api.error();
    out.databricks = std::move(*api);
    out.password = make_lakebase_credentials(*out.databricks, *config.postgres.lakebase, "postgres");
  }
  out.store = Store::open(config.postgres.url, out.password);
  return out;
}

}  // namespace

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
  std::unique_ptr<DatabricksApi> databricks;
  auto api = make_databricks_api(config->databricks);
  if (api) {
    databricks = std::move(*api);
  } else {
    spdlog::warn("databricks: {}; Databricks steps will fail until it is configured",
                 api.error().message);
  }
  DaemonOptions options;
  options.notify_systemd = std::getenv("NOTIFY_SOCKET") != nullptr;
  Daemon daemon(std::make_shared<const Config>(std::move(*config)), std::move(databricks),
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

int run_migrate(const std::string& config_path) {
  auto config = load_checked_config(config_path);
  if (!config) return 1;
  auto opened = open_cli_store(*config);
  if (!opened) {
    print_error(opened.error().message);
    return 1;
  }
  Status s = opened->store->migrate();
  if (!s) {
    print_error("migration failed: " + s.error().message);
    return 1;
  }
  std::cout << "schema is up to date\n";
  return 0;
}

int run_check(const std::string& config_path) {
  auto config = load_checked_config(config_path);
  if (!config) return 1;
  std::cout << config_path << ": ok, " << config->workflows.size() << " workflow(s)";
  const char* sep = ": ";
  for (const auto& [name, def] : config->workflows) {
    std::cout << sep << name << " (" << def.steps.size() << " steps)";
    sep = ", ";
  }
  std::cout << "\n";
  return 0;
}

int run_submit(const std::string& config_path, const std::string& workflow,
               std::optional<std::string> id, const std::string& input_json) {
  auto config = load_checked_config(config_path);
  if (!config) return 1;
  if (config->workflows.count(workflow) == 0) {
    std::cerr << "error: no workflow '" << workflow << "' in " << config_path << "\n";
    return 1;
  }
  auto input = parse_json_arg(input_json, "--input");
  if (!input) {
    print_error(input.error().message);
    return 1;
  }
  if (!input->is_object()) {
    std::cerr << "error: --input must be a JSON object\n";
    return 1;
  }
  const std::string workflow_id = id.value_or(generate_id(workflow));
  int rc = produce_command(*config, workflow_id,
                           json::object{{"type", "start"},
                                        {"id", workflow_id},
                                        {"workflow", workflow},
                                        {"input", input->as_object()}});
  if (rc == 0) std::cout << workflow_id << "\n";
  return rc;
}

int run_status(const std::string& config_path, const std::string& id, bool as_json) {
  auto config = load_checked_config(config_path, /*needs_callback_secret=*/false);
  if (!config) return 1;
  auto opened = open_cli_store(*config);
  if (!opened) {
    print_error(opened.error().message);
    return 1;
  }
  auto workflow = opened->store->get_workflow(id);
  if (!workflow) {
    print_error(workflow.error().message);
    return 1;
  }
  if (!*workflow) {
    print_error("no workflow with id '" + id + "'");
    return 1;
  }
  if (as_json) {
    std::cout << json::serialize(status_json(**workflow)) << "\n";
  } else {
    std::cout << status_table(**workflow);
  }
  return 0;
}

int run_list(const std::string& config_path, std::optional<std::string> state, int32_t limit,
             bool as_json) {
  auto config = load_checked_config(config_path, /*needs_callback_secret=*/false);
  if (!config) return 1;
  std::optional<WorkflowStatus> filter;
  if (state) {
    filter = workflow_status_from_string(*state);
    if (!filter) {
      std::cerr << "error: --state must be running, succeeded, failed or canceled\n";
      return 1;
    }
  }
  auto opened = open_cli_store(*config);
  if (!opened) {
    print_error(opened.error().message);
    return 1;
  }
  auto summaries = opened->store->list_workflows(filter, limit);
  if (!summaries) {
    print_error(summaries.error().message);
    return 1;
  }
  if (as_json) {
    json::array out;
    for (const auto& s : *summaries) out.push_back(summary_json(s));
    std::cout << json::serialize(out) << "\n";
  } else {
    std::cout << list_table(*summaries);
  }
  return 0;
}

int run_cancel(const std::string& config_path, const std::string& id, const std::string& reason) {
  auto config = load_checked_config(config_path);
  if (!config) return 1;
  return produce_command(*config, id,
                         json::object{{"type", "cancel"}, {"id", id}, {"reason", reason}});
}

int run_retry(const std::string& config_path, const std::string& id) {
  auto config = load_checked_config(config_path);
  if (!config) return 1;
  return produce_command(*config, id, json::object{{"type", "retry"}, {"id", id}});
}

namespace {

// The step names of `workflow` that wait for a signal named `name`.
std::set<std::string> steps_waiting_for(const Config& config, const std::string& workflow,
                                        const std::string& name) {
  std::set<std::string> out;
  auto it = config.workflows.find(workflow);
  if (it == config.workflows.end()) return out;
  for (const auto* list : {&it->second.steps, &it->second.on_failure}) {
    for (const auto& step : *list) {
      if (step.plan.kind == StepPlan::Kind::kAwaitSignal && step.plan.signal == name) {
        out.insert(step.name);
      }
    }
  }
  return out;
}

}  // namespace

int run_signal(const std::string& config_path, const std::string& id, const std::string& name,
               const std::string& value_json, std::optional<Duration> wait) {
  auto config = load_checked_config(config_path);
  if (!config) return 1;
  auto value = parse_json_arg(value_json, "--value");
  if (!value) {
    print_error(value.error().message);
    return 1;
  }
  const json::object command{{"type", "signal"}, {"id", id}, {"name", name}, {"value", *value}};
  if (!wait) return produce_command(*config, id, command);
  // Follow the status topic from before the send, so the answer cannot be missed.
  auto tail = TopicTail::open(config->kafka, config->kafka.topics.status, Duration(10000));
  if (!tail) {
    print_error("cannot read " + config->kafka.topics.status + ": " + tail.error().message);
    return 1;
  }
  if (int sent = produce_command(*config, id, command); sent != 0) return sent;
  const auto deadline = std::chrono::steady_clock::now() + *wait;
  while (std::chrono::steady_clock::now() < deadline) {
    for (const KafkaMessage& m : (*tail)->poll(Duration(200))) {
      if (m.key != id) continue;
      boost::system::error_code ec;
      const json::value v = parse_json(m.payload, ec);
      if (ec || !v.is_object()) continue;
      const json::object& event = v.as_object();
      const json::value* type = event.if_contains("type");
      if (type == nullptr || !type->is_string()) continue;
      if (*type == "command_rejected") {
        const json::value* reason = event.if_contains("reason");
        std::cerr << "refused: "
                  << escape_control_characters(reason != nullptr && reason->is_string()
                                                   ? std::string_view(reason->as_string())
                                                   : std::string_view("unknown"))
                  << "\n";
        return 1;
      }
      const json::value* workflow = event.if_contains("workflow");
      const json::value* step = event.if_contains("step");
      if (*type == "step_succeeded" && workflow != nullptr && workflow->is_string() &&
          step != nullptr && step->is_string() &&
          steps_waiting_for(*config, std::string(workflow->as_string()), name)
              .contains(std::string(step->as_string()))) {
        std::cout << "accepted: step " << escape_control_characters(step->as_string())
                  << " of " << id << " received " << name << "\n";
        return 0;
      }
    }
  }
  std::cerr << "sent, but no answer within " << format_duration(*wait)
            << " (is a daemon running?)\n";
  return 5;
}

}  // namespace brickwork::cli
