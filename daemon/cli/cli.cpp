#include "daemon/cli/cli.hpp"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "daemon/cli/commands.hpp"
#include "daemon/core/logging.hpp"
#include "devstack/cli/bench.hpp"
#include "devstack/cli/bench_workspace.hpp"

namespace brickwork {
namespace {

// A --timeout value: a duration such as 30s, 10m, 1h.
struct DurationOption {
  std::string text;
  std::optional<Duration> parsed() const { return text.empty() ? std::nullopt : parse_duration(text); }
};

}  // namespace

int run_cli(int argc, char** argv) {
  // stdout carries only a command's data (tables, JSON): whatever a library
  // logs meanwhile (a Lakebase credential, librdkafka) goes to stderr. The
  // daemon and the development commands set their own format and level.
  setup_logging("text", "info");
  CLI::App app{"brickwork: multi-step Databricks workflows driven by Kafka, durable in Postgres"};
  app.set_version_flag("--version", std::string(BRICKWORK_VERSION));
  app.require_subcommand(1);
  app.footer(
      "daemon, migrate, check, submit, status, list, cancel, retry and signal take -c FILE\n"
      "(default $BRICKWORK_CONFIG, else /etc/brickwork/brickwork.yaml).\n"
      "Exit codes: 0 success (--wait/--follow: the workflow succeeded), 1 error, 2 usage,\n"
      "3 the workflow failed, 4 it was canceled, 5 --timeout passed first.");
  // Contract 8: -c defaults to $BRICKWORK_CONFIG when set.
  const char* from_env = std::getenv("BRICKWORK_CONFIG");
  std::string config_path =
      from_env != nullptr && *from_env != '\0' ? from_env : "/etc/brickwork/brickwork.yaml";
  app.add_option("-c,--config", config_path, "configuration file")->capture_default_str();

  auto with_config = [&](CLI::App* sub) {
    sub->add_option("-c,--config", config_path, "configuration file")->capture_default_str();
    return sub;
  };
  bool as_json = false;
  auto with_json = [&](CLI::App* sub) {
    sub->add_flag("--json", as_json, "print JSON (one object per line)");
    return sub;
  };

  auto* daemon = with_config(app.add_subcommand("daemon", "run the workers until SIGTERM/SIGINT; SIGHUP reloads workflows"));
  daemon->footer("Example:\n  brickwork daemon -c /etc/brickwork/brickwork.yaml");

  bool topics = false;
  int32_t partitions = 12;
  auto* migrate = with_json(with_config(app.add_subcommand("migrate", "create or upgrade the Postgres schema")));
  migrate->add_flag("--topics", topics, "also create the four Kafka topics if missing");
  migrate->add_option("--partitions", partitions, "partitions of each topic created")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  migrate->footer("Example:\n  brickwork migrate --topics --partitions 24\n"
                  "Topics that exist are left as they are and reported.");

  bool connect = false;
  auto* check = with_json(with_config(app.add_subcommand("check", "validate the configuration and workflows")));
  check->add_flag("--connect", connect,
                  "also reach Kafka, Postgres (and Lakebase) and Databricks with the "
                  "configured credentials");
  std::string workflows_file;
  check->add_option("--workflows", workflows_file,
                    "check this workflows file alone (workflows: only, as in workflows_dir), "
                    "without the configuration");
  check->footer("Example:\n  brickwork check --connect\n  brickwork check --workflows workflows.d/ingest.yaml\n"
                "Every error found is reported (up to 50), one per line; --json prints\n"
                "{\"ok\": false, \"errors\": [...]} instead.\n"
                "With --connect, one line per target: ok, or FAILED and why; exit 1 if any failed.");

  std::string workflow;
  std::string id;
  std::string input_json = "{}";
  bool wait = false;
  DurationOption follow_timeout;
  auto* submit = with_json(with_config(app.add_subcommand("submit", "produce a start command; prints the id")));
  submit->add_option("workflow", workflow, "workflow name")->required();
  submit->add_option("--id", id, "workflow id (default: generated)");
  submit->add_option("--input", input_json, "input as a JSON object");
  submit->add_flag("--wait", wait, "then print its status events until it ends");
  submit->add_option("--timeout", follow_timeout.text, "with --wait: give up after this long (exit 5)");
  submit->footer("Example:\n  brickwork submit daily_ingest --id order-4711 --input '{\"day\": \"2026-11-22\"}' --wait --timeout 2h");

  bool follow = false;
  auto* status = with_json(with_config(app.add_subcommand("status", "one workflow with its steps")));
  status->add_option("id", id, "workflow id")->required();
  status->add_flag("--follow", follow, "then print its status events until it ends");
  status->add_option("--timeout", follow_timeout.text, "with --follow: give up after this long (exit 5)");
  status->footer("Example:\n  brickwork status order-4711 --follow --json");

  cli::ListOptions list_options;
  auto* list = with_json(with_config(app.add_subcommand("list", "workflows, newest first")));
  list->add_option("--state", list_options.state, "running|succeeded|failed|canceled");
  list->add_option("--workflow", list_options.workflow, "only workflows of this definition");
  list->add_option("--since", list_options.since,
                   "created at or after: RFC 3339 in UTC, or an age such as 2h or 7d");
  list->add_option("--until", list_options.until, "created before: as --since");
  list->add_option("--after", list_options.after,
                   "the next page: the last id of the page before");
  list->add_option("--limit", list_options.limit, "how many (0: all)")->capture_default_str();
  list->footer(
      "Example:\n  brickwork list --state failed --workflow daily_ingest --since 1d --json\n"
      "A full page ends with a hint on stderr: add --after ID for the next one.");

  auto* history = with_json(with_config(app.add_subcommand(
      "history", "one workflow's timeline: every attempt, signals, cancel and retry")));
  history->add_option("id", id, "workflow id")->required();
  history->footer("Example:\n  brickwork history order-4711 --json");

  DurationOption older_than;
  std::string purge_state;
  bool dry_run = false;
  auto* purge = with_json(with_config(app.add_subcommand(
      "purge", "delete finished workflows that ended before a given age, and unused definitions")));
  purge->add_option("--older-than", older_than.text, "ended at least this long ago: 30d, 12h")
      ->required();
  purge->add_option("--state", purge_state, "succeeded|failed|canceled (default: all three)");
  purge->add_flag("--dry-run", dry_run, "only count what would be deleted");
  purge->footer("Example:\n  brickwork purge --older-than 30d --state failed --dry-run\n"
                "A purged id is free again: a later start with it begins a new workflow.");

  // cancel, retry and signal wait for the daemon's answer the same way.
  bool no_wait = false;
  std::string answer_timeout = "30s";
  auto with_answer = [&](CLI::App* sub) {
    sub->add_flag("--no-wait", no_wait,
                  "only send it; do not wait for the daemon to accept or refuse it");
    sub->add_option("--timeout", answer_timeout, "how long to wait for the answer")
        ->capture_default_str();
    return sub;
  };
  const std::string answer_codes =
      "\nExit codes: 0 accepted (or sent, with --no-wait), 1 refused or an error, 5 no answer in time.";

  std::string reason = "canceled from the command line";
  auto* cancel = with_answer(with_json(with_config(app.add_subcommand("cancel", "produce a cancel command"))));
  cancel->add_option("id", id, "workflow id")->required();
  cancel->add_option("--reason", reason, "why");
  cancel->footer("Example:\n  brickwork cancel order-4711 --reason 'wrong day'" + answer_codes +
                 "\nA workflow that already ended is reported as such (exit 0).");

  auto* retry = with_answer(with_json(with_config(app.add_subcommand("retry", "produce a retry command"))));
  retry->add_option("id", id, "workflow id")->required();
  retry->footer("Example:\n  brickwork retry order-4711" + answer_codes);

  std::string signal_name;
  std::string value_json = "null";
  auto* signal = with_answer(with_json(with_config(app.add_subcommand("signal", "produce a signal command"))));
  signal->add_option("id", id, "workflow id")->required();
  signal->add_option("name", signal_name, "signal name")->required();
  signal->add_option("--value", value_json, "signal value as JSON");
  signal->footer("Example:\n  brickwork signal order-4711 approved --value '{\"by\": \"ana\"}'" +
                 answer_codes +
                 "\nAccepted is either delivered (a waiting step took it) or kept (until a "
                 "step waits for it).");

  auto* demo = app.add_subcommand("demo", "run a whole example on this machine alone");
  demo->footer("Example:\n  brickwork demo");

  BenchOptions bench_options;
  std::string bench_waiting = "20000";
  auto* bench = app.add_subcommand(
      "bench", "measure one daemon (a child process) on this machine alone: docs/PERFORMANCE.md");
  bench->add_flag("--smoke", bench_options.smoke, "every measure once at a small size");
  bench->add_option("--daemon", bench_options.daemon_binary,
                    "brickwork binary to run as the daemon (default: this one)");
  bench->add_option("--workflows", bench_options.workflows, "throughput: start commands queued")
      ->capture_default_str();
  bench->add_option("--waiting", bench_waiting, "workflows waiting on runs, comma-separated")
      ->capture_default_str();
  bench->add_option("--intake", bench_options.intake, "workflows per intake measure")
      ->capture_default_str();
  bench->add_option("--purge", bench_options.purge,
                    "finished workflows purged beside an intake measure (0: none)")
      ->capture_default_str();
  bench->add_option("--latency-rate", bench_options.latency_rate, "two-step workflows/s")
      ->capture_default_str();
  bench->add_option("--latency-seconds", bench_options.latency_seconds, "")->capture_default_str();
  bench->add_option("--pgbench-seconds", bench_options.pgbench_seconds, "")->capture_default_str();
  bench->add_option("--partitions", bench_options.partitions, "partitions of the commands and events topics")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  bench->add_option("--waiting-poll-every", bench_options.waiting_poll_every,
                    "poll_every of the waiting workflows' step")
      ->capture_default_str();
  bench->add_option("--daemon-settings", bench_options.daemon_settings,
                    "extra keys of the daemon: section, e.g. 'batch_max_wait: 5ms'");
  bench->add_flag("--keep", bench_options.keep, "keep the working directory and logs");
  bench->add_option("--postgres", bench_options.postgres_profile,
                    "the server's settings: stock (durable, default autovacuum) or tuned")
      ->check(CLI::IsMember({"stock", "tuned"}))
      ->capture_default_str();
  bench->add_flag("--pg-stats", bench_options.pg_stats,
                  "pg_stat_statements and EXPLAIN (ANALYZE, BUFFERS) of the hot queries");
  bench->add_option("--long-run-minutes", bench_options.long_run_minutes,
                    "minutes at half the peak rate, per-minute throughput and dead rows (0: off)")
      ->capture_default_str();

  WorkspaceBenchOptions workspace_bench_options;
  auto* bench_workspace = app.add_subcommand(
      "bench-workspace",
      "measure one daemon against a real workspace's pace (latency, limits, slow uploads): "
      "docs/PERFORMANCE.md");
  bench_workspace->add_flag("--smoke", workspace_bench_options.smoke, "small sizes, short uploads");
  bench_workspace->add_option("--daemon", workspace_bench_options.daemon_binary,
                              "brickwork binary to run as the daemon (default: this one)");
  bench_workspace->add_flag("--keep", workspace_bench_options.keep,
                            "keep the working directory and logs");

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
  cli::SimulatorPaceFlags pace;
  simulator->add_option("--latency", pace.latency, "delay of every call: 200ms, or 100ms..500ms");
  simulator->add_option("--limit", pace.limits,
                        "rate limit of one API, repeatable: jobs/run-now=20/s (past it 429)");
  simulator->add_option("--transfer-rate", pace.transfer_rate, "Files API upload speed: 1MiB/s");
  simulator->add_option("--transfer-time", pace.transfer_time, "added to every Files API upload: 40s");
  simulator->footer(
      "Example:\n  brickwork simulator --port 8089 --jobs jobs.yaml --brokers localhost:9092\n"
      "  brickwork simulator --latency 200ms --limit jobs/run-now=20/s --limit jobs/runs/get=100/s "
      "--transfer-time 40s");

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

  std::optional<cli::FollowOptions> follow_options;
  if (!follow_timeout.text.empty() && !follow_timeout.parsed()) {
    std::cerr << "error: --timeout expects a duration such as 30s, 10m or 2h\n";
    return 2;
  }
  if (!follow_timeout.text.empty() && !wait && !follow) {
    std::cerr << "error: --timeout needs " << (submit->parsed() ? "--wait" : "--follow") << "\n";
    return 2;
  }
  if (wait || follow) follow_options = cli::FollowOptions{follow_timeout.parsed()};
  cli::AnswerWait answer_wait;
  if (!no_wait) {
    answer_wait = parse_duration(answer_timeout);
    if (!answer_wait) {
      std::cerr << "error: --timeout expects a duration such as 30s\n";
      return 2;
    }
  }
  if (migrate->count("--partitions") > 0 && !topics) {
    std::cerr << "error: --partitions needs --topics\n";
    return 2;
  }

  if (daemon->parsed()) return cli::run_daemon(config_path);
  if (migrate->parsed()) {
    return cli::run_migrate(config_path, topics ? std::optional<int32_t>(partitions) : std::nullopt,
                            as_json);
  }
  if (check->parsed()) {
    if (!workflows_file.empty()) return cli::run_check_workflows(workflows_file, as_json);
    return cli::run_check(config_path, connect, as_json);
  }
  if (submit->parsed()) {
    return cli::run_submit(config_path, workflow,
                           id.empty() ? std::nullopt : std::optional<std::string>(id), input_json,
                           as_json, follow_options);
  }
  if (status->parsed()) return cli::run_status(config_path, id, as_json, follow_options);
  if (list->parsed()) return cli::run_list(config_path, list_options, as_json);
  if (history->parsed()) return cli::run_history(config_path, id, as_json);
  if (purge->parsed()) {
    if (!older_than.parsed()) {
      std::cerr << "error: --older-than expects a duration such as 30d, 12h or 0\n";
      return 2;
    }
    return cli::run_purge(config_path, *older_than.parsed(),
                          purge_state.empty() ? std::nullopt
                                              : std::optional<std::string>(purge_state),
                          dry_run, as_json);
  }
  if (cancel->parsed()) return cli::run_cancel(config_path, id, reason, answer_wait, as_json);
  if (retry->parsed()) return cli::run_retry(config_path, id, answer_wait, as_json);
  if (signal->parsed()) {
    return cli::run_signal(config_path, id, signal_name, value_json, answer_wait, as_json);
  }
  if (demo->parsed()) return cli::run_demo(false);
  if (bench->parsed()) {
    bench_options.waiting.clear();
    std::istringstream sizes(bench_waiting);
    for (std::string size; std::getline(sizes, size, ',');) {
      if (size.empty()) continue;
      try {
        bench_options.waiting.push_back(std::stoll(size));
      } catch (const std::exception&) {
        std::cerr << "error: --waiting expects numbers separated by commas\n";
        return 2;
      }
    }
    return run_bench(bench_options);
  }
  if (bench_workspace->parsed()) return run_workspace_bench(workspace_bench_options);
  if (simulator->parsed()) return cli::run_simulator(port, jobs_file, brokers, events_topic, pace);
  if (mock_kafka->parsed()) {
    return cli::run_mock_kafka(mock_brokers, mock_topics, mock_partitions, bootstrap_file);
  }
  return 2;
}

}  // namespace brickwork
