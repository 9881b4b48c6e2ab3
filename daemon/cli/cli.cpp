#include "daemon/cli/cli.hpp"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "daemon/cli/commands.hpp"

namespace brickwork {

int run_cli(int argc, char** argv) {
  CLI::App app{"brickwork: multi-step Databricks workflows driven by Kafka, durable in Postgres"};
  app.set_version_flag("--version", std::string(BRICKWORK_VERSION));
  app.require_subcommand(1);
  // Contract 8: -c defaults to $BRICKWORK_CONFIG when set.
  const char* from_env = std::getenv("BRICKWORK_CONFIG");
  std::string config_path =
      from_env != nullptr && *from_env != '\0' ? from_env : "/etc/brickwork/brickwork.yaml";
  app.add_option("-c,--config", config_path, "configuration file")->capture_default_str();

  auto with_config = [&](CLI::App* sub) {
    sub->add_option("-c,--config", config_path, "configuration file")->capture_default_str();
    return sub;
  };

  auto* daemon = with_config(app.add_subcommand("daemon", "run the workers until SIGTERM/SIGINT; SIGHUP reloads workflows"));
  auto* migrate = with_config(app.add_subcommand("migrate", "create or upgrade the Postgres schema"));
  auto* check = with_config(app.add_subcommand("check", "validate the configuration and workflows"));

  std::string workflow;
  std::string id;
  std::string input_json = "{}";
  auto* submit = with_config(app.add_subcommand("submit", "produce a start command; prints the id"));
  submit->add_option("workflow", workflow, "workflow name")->required();
  submit->add_option("--id", id, "workflow id (default: generated)");
  submit->add_option("--input", input_json, "input as a JSON object");

  bool as_json = false;
  auto* status = with_config(app.add_subcommand("status", "one workflow with its steps"));
  status->add_option("id", id, "workflow id")->required();
  status->add_flag("--json", as_json, "print JSON");

  std::string state;
  int32_t limit = 50;
  auto* list = with_config(app.add_subcommand("list", "workflows, newest first"));
  list->add_option("--state", state, "running|succeeded|failed|canceled");
  list->add_option("--limit", limit, "how many")->capture_default_str();
  list->add_flag("--json", as_json, "print JSON");

  std::string reason = "canceled from the command line";
  auto* cancel = with_config(app.add_subcommand("cancel", "produce a cancel command"));
  cancel->add_option("id", id, "workflow id")->required();
  cancel->add_option("--reason", reason, "why");

  auto* retry = with_config(app.add_subcommand("retry", "produce a retry command"));
  retry->add_option("id", id, "workflow id")->required();

  std::string signal_name;
  std::string value_json = "null";
  auto* signal = with_config(app.add_subcommand("signal", "produce a signal command"));
  signal->add_option("id", id, "workflow id")->required();
  signal->add_option("name", signal_name, "signal name")->required();
  signal->add_option("--value", value_json, "signal value as JSON");
  bool no_wait = false;
  std::string answer_timeout = "30s";
  signal->add_flag("--no-wait", no_wait,
                   "only send it; do not wait for the daemon to accept or refuse it");
  signal->add_option("--timeout", answer_timeout, "how long to wait for the answer")
      ->capture_default_str();
  signal->footer(
      "Example:\n  brickwork signal order-4711 approved --value '{\"by\": \"ana\"}'\n"
      "Exit codes: 0 accepted (or sent, with --no-wait), 1 refused or an error, 5 no answer in time.");

  auto* demo = app.add_subcommand("demo", "run a whole example on this machine alone");

  uint16_t port = 0;
  std::string jobs_file;
  std::string brokers;
  std::string events_topic = "brickwork.events";
  auto* simulator = app.add_subcommand("simulator", "serve a local Databricks simulator");
  simulator->add_option("--port", port, "port on 127.0.0.1 (0 picks one)");
  simulator->add_option("--jobs", jobs_file, "YAML file of simulated jobs");
  simulator->add_option("--brokers", brokers, "Kafka brokers for completion events (empty: none)");
  simulator->add_option("--events-topic", events_topic, "topic for completion events")
      ->capture_default_str();

  int32_t mock_brokers = 1;
  int32_t mock_partitions = 4;
  std::vector<std::string> mock_topics;
  std::string bootstrap_file;
  auto* mock_kafka = app.add_subcommand(
      "mock-kafka", "serve librdkafka's in-memory mock Kafka cluster on 127.0.0.1 (development)");
  mock_kafka->add_option("--brokers", mock_brokers, "number of brokers")->capture_default_str();
  mock_kafka->add_option("--topic", mock_topics, "a topic to create (repeatable)");
  mock_kafka->add_option("--partitions", mock_partitions, "partitions of each --topic")
      ->capture_default_str();
  mock_kafka->add_option("--bootstrap-file", bootstrap_file,
                         "write the bootstrap servers to this file");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version print and succeed; any other usage error exits 2.
    const int printed = app.exit(e);
    return printed == 0 ? 0 : 2;
  }

  if (daemon->parsed()) return cli::run_daemon(config_path);
  if (migrate->parsed()) return cli::run_migrate(config_path);
  if (check->parsed()) return cli::run_check(config_path);
  if (submit->parsed()) {
    return cli::run_submit(config_path, workflow,
                           id.empty() ? std::nullopt : std::optional<std::string>(id), input_json);
  }
  if (status->parsed()) return cli::run_status(config_path, id, as_json);
  if (list->parsed()) {
    return cli::run_list(config_path,
                         state.empty() ? std::nullopt : std::optional<std::string>(state), limit,
                         as_json);
  }
  if (cancel->parsed()) return cli::run_cancel(config_path, id, reason);
  if (retry->parsed()) return cli::run_retry(config_path, id);
  if (signal->parsed()) {
    const auto wait = parse_duration(answer_timeout);
    if (!wait) {
      std::cerr << "error: --timeout expects a duration such as 30s\n";
      return 2;
    }
    return cli::run_signal(config_path, id, signal_name, value_json,
                           no_wait ? std::nullopt : std::optional<Duration>(*wait));
  }
  if (demo->parsed()) return cli::run_demo(false);
  if (simulator->parsed()) return cli::run_simulator(port, jobs_file, brokers, events_topic);
  if (mock_kafka->parsed()) {
    return cli::run_mock_kafka(mock_brokers, mock_topics, mock_partitions, bootstrap_file);
  }
  return 2;
}

}  // namespace brickwork
