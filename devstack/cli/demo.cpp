// `brickwork demo` (contract section 9): the whole system on this machine
// alone, with a workflow shown from start to finish.
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <iomanip>
#include <iostream>
#include <random>
#include <thread>

#include "daemon/cli/commands.hpp"
#include "daemon/core/logging.hpp"
#include "daemon/runtime/daemon.hpp"
#include "daemon/runtime/status_view.hpp"
#include "daemon/store/store.hpp"
#include "devstack/local_stack.hpp"
#include "handlers/steps/step_type.hpp"

namespace brickwork::cli {
namespace {

// extract, then clean and features in parallel, then report, which is
// finished by polling (its job publishes no event), as a job that dies would be.
constexpr const char* kDemoWorkflows = R"(  nightly_sales:
    steps:
      - name: extract
        run_job:
          job_id: 101
          parameters: {source: "{{ input.source }}", day: "{{ input.day }}"}
        retry: {max_attempts: 2, backoff: 1s}
      - name: clean
        depends_on: [extract]
        run_job:
          job_id: 102
          parameters: {rows: "{{ steps.extract.output.rows }}"}
      - name: features
        depends_on: [extract]
        run_job:
          job_id: 103
          parameters: {rows: "{{ steps.extract.output.rows }}"}
      - name: report
        depends_on: [clean, features]
        run_job:
          job_id: 104
          parameters: {tables: "{{ steps.clean.output.tables }}"}
        completion: poll
        poll_every: 1s
        timeout: 5m
      - name: totals
        sql:
          warehouse_id: demo-warehouse
          statement: "SELECT day, count(*) AS orders FROM main.sales.orders WHERE day = :day GROUP BY day"
          parameters: {day: "{{ input.day }}"}
      - name: publish
        upload:
          path: "/Volumes/main/reports/daily/{{ input.day }}.json"
          content: {day: "{{ input.day }}", totals: "{{ steps.totals.output.rows }}", rows: "{{ steps.extract.output.rows }}"}
          overwrite: true
)";

SimulatorOptions demo_jobs() {
  SimulatorOptions sim;
  auto job = [](const char* name, int64_t ms, json::object output, bool emit = true) {
    SimulatedJob j;
    j.name = name;
    j.duration = Duration(ms);
    j.output = std::move(output);
    j.emit_event = emit;
    return j;
  };
  sim.jobs[101] = job("extract", 2000, {{"rows", 48213}});
  sim.jobs[102] = job("clean", 2500, {{"tables", 3}, {"rows_dropped", 117}});
  sim.jobs[103] = job("features", 1500, {{"features", 64}});
  sim.jobs[104] = job("report", 1000, {}, false);
  SimulatedStatement totals;
  totals.match = "FROM main.sales.orders";
  totals.duration = Duration(300);
  totals.columns = {"day", "orders"};
  totals.rows = json::array{json::array{"2026-11-22", "48213"}};
  sim.statements.push_back(std::move(totals));
  return sim;
}

std::string describe(const json::object& event) {
  std::ostringstream out;
  const std::string type(event.at("type").as_string());
  out << std::left << std::setw(20) << type;
  if (const auto* step = event.if_contains("step")) {
    out << std::string(step->as_string());
    if (const auto* attempt = event.if_contains("attempt")) {
      out << " (attempt " << attempt->as_int64() << ")";
    }
  }
  if (const auto* run = event.if_contains("run_id")) out << "  run " << run->as_int64();
  if (const auto* output = event.if_contains("output")) out << "  output " << json::serialize(*output);
  if (const auto* error = event.if_contains("error")) {
    out << "  error " << std::string(error->at("code").as_string()) << ": "
        << std::string(error->at("message").as_string());
  }
  return out.str();
}

std::atomic<bool> g_demo_interrupted{false};
extern "C" void on_demo_signal(int) { g_demo_interrupted = true; }

}  // namespace

int run_demo(bool) {
  setup_logging("text", "warn");
  std::signal(SIGINT, on_demo_signal);
  std::signal(SIGTERM, on_demo_signal);
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };

  std::cout << "brickwork demo: starting a throwaway Postgres, a 3-broker mock Kafka cluster "
               "and a Databricks simulator on loopback...\n";
  LocalStackOptions options;
  options.simulator = demo_jobs();
  auto stack = LocalStack::start(options);
  if (!stack) {
    std::cerr << "demo: cannot start the local stack: " << stack.error().message << "\n";
    return 1;
  }
  std::cout << "  postgres   " << (*stack)->postgres().url() << "\n"
            << "  kafka      " << (*stack)->kafka().bootstrap_servers() << "\n"
            << "  databricks " << (*stack)->simulator().base_url() << "\n";

  LoadOptions load;
  load.steps = &StepRegistry::builtin();
  const std::string yaml = (*stack)->config_yaml(kDemoWorkflows);
  auto config = load_config_from_string(yaml, "demo.yaml", load);
  if (!config) {
    std::cerr << "demo: " << config.error().message << "\n";
    return 1;
  }
  if (!append_contract_capture(json::serialize(json::object{
          {"test", "brickwork demo"}, {"role", "config"}, {"yaml", yaml}}) + "\n")) {
    std::cerr << "demo: cannot write $BRICKWORK_CONTRACT_CAPTURE\n";
  }
  auto shared = std::make_shared<const Config>(std::move(*config));
  auto api = make_databricks_api(shared->databricks);
  if (!api) {
    std::cerr << "demo: " << api.error().message << "\n";
    return 1;
  }

  std::atomic<bool> stop{false};
  std::atomic<bool> ready{false};
  std::atomic<bool> exited{false};
  DaemonOptions daemon_options;
  daemon_options.instance_id = "demo";
  daemon_options.on_ready = [&] { ready = true; };
  Daemon daemon(shared, std::move(*api), daemon_options);
  Status daemon_status = ok_status();
  std::thread daemon_thread([&] {
    daemon_status = daemon.run(stop);
    exited = true;
  });
  auto finish = [&](int code) {
    stop = true;
    daemon_thread.join();
    return code;
  };
  while (!ready && !exited && elapsed() < 60 && !g_demo_interrupted) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  if (!ready) {
    std::cerr << "demo: the daemon did not start"
              << (daemon_status ? std::string() : ": " + daemon_status.error().message) << "\n";
    return finish(1);
  }
  // Join the status topic first, so events are shown as they happen.
  KafkaConfig watch = shared->kafka;
  watch.group = "brickwork-demo-watch";
  auto watcher = KafkaConsumer::create(watch, {shared->kafka.topics.status}, "demo-watch");
  if (!watcher) return finish(1);
  while ((*watcher)->assigned_partitions() == 0 && elapsed() < 60 && !g_demo_interrupted) {
    (void)(*watcher)->poll_batch(1, Duration(100));
  }
  std::random_device rd;
  const std::string id = "demo-" + std::to_string(rd() % 100000);
  const json::object input{{"source", "s3://sales/raw"}, {"day", "2026-11-22"}};
  auto producer = KafkaProducer::create(shared->kafka, true, "demo-client");
  if (!producer) return finish(1);
  Status sent = (*producer)->produce_and_wait(
      {{shared->kafka.topics.commands, id,
        json::serialize(json::object{
            {"type", "start"}, {"id", id}, {"workflow", "nightly_sales"}, {"input", input}})}},
      Duration(30000));
  if (!sent) {
    std::cerr << "demo: cannot send the start command: " << sent.error().message << "\n";
    return finish(1);
  }
  const auto submitted = std::chrono::steady_clock::now();
  auto since_submit = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - submitted).count();
  };
  std::cout << "\nsubmitted workflow nightly_sales as '" << id << "' with input "
            << json::serialize(input) << "\n"
            << "  extract -> {clean, features} in parallel -> report (finished by polling)\n\n"
            << "status events from " << shared->kafka.topics.status << ":\n";

  std::string final_state;
  int events = 0;
  while (final_state.empty() && elapsed() < 120 && !g_demo_interrupted) {
    for (const auto& message : (*watcher)->poll_batch(100, Duration(200))) {
      boost::system::error_code ec;
      json::value v = json::parse(message.payload, ec);
      if (ec || !v.is_object()) continue;
      const json::object& event = v.as_object();
      ++events;
      std::cout << "  +" << std::fixed << std::setprecision(1) << std::setw(5) << since_submit()
                << "s  #" << std::setw(2) << event.at("seq").as_int64() << "  " << describe(event)
                << "\n"
                << std::flush;
      const std::string type(event.at("type").as_string());
      if (type == "workflow_succeeded" || type == "workflow_failed" ||
          type == "workflow_canceled") {
        final_state = type.substr(std::string("workflow_").size());
      }
    }
  }
  (*watcher)->close();

  auto store = Store::open(shared->postgres.url);
  auto state = store->get_workflow(id);
  const SimulatorStats stats = (*stack)->simulator().stats();
  std::cout << "\nfinal state (brickwork status " << id << "):\n\n";
  if (state && *state) std::cout << status_table(**state);
  std::cout << "\nsummary: workflow " << id << " "
            << (final_state.empty() ? "did not finish within 120 s" : final_state) << " "
            << std::fixed << std::setprecision(1) << since_submit() << " s after submit; " << events
            << " status events; Databricks runs created: " << stats.runs_created
            << " (run-now calls: " << stats.run_now_calls << ", runs/get polls: " << stats.get_calls
            << "); completion events published by jobs: " << stats.events_emitted << "\n";
  const int code = finish(final_state == "succeeded" ? 0 : 1);
  if (!daemon_status) std::cerr << "demo: daemon: " << daemon_status.error().message << "\n";
  std::cout << (code == 0 ? "demo: ok, cleaned up\n" : "demo: FAILED\n");
  return code;
}

namespace {

// The pace flags over the jobs file's pace; false (after saying why) if one is invalid.
bool apply_pace_flags(const SimulatorPaceFlags& flags, SimulatorPace& pace) {
  Status status = ok_status();
  if (!flags.latency.empty()) status = parse_simulator_latency(flags.latency, pace);
  for (const auto& limit : flags.limits) {
    if (status) status = parse_simulator_limit(limit, pace);
  }
  if (status && !flags.transfer_rate.empty()) {
    auto rate = parse_simulator_transfer_rate(flags.transfer_rate);
    if (rate) pace.transfer_bytes_per_second = *rate;
    else status = rate.error();
  }
  if (status && !flags.transfer_time.empty()) {
    auto time = parse_duration(flags.transfer_time);
    if (time) pace.transfer_time = *time;
    else status = Error{ErrorKind::kInvalidInput, "bad_simulator_pace",
                        "--transfer-time \"" + flags.transfer_time + "\": expected a duration like 40s"};
  }
  if (!status) std::cerr << "error: " << status.error().message << "\n";
  return static_cast<bool>(status);
}

}  // namespace

int run_simulator(uint16_t port, const std::string& jobs_file, const std::string& brokers,
                  const std::string& events_topic, const SimulatorPaceFlags& pace) {
  setup_logging("text", "info");
  SimulatorOptions options;
  if (!jobs_file.empty()) {
    auto loaded = load_simulator_jobs_file(jobs_file);
    if (!loaded) {
      std::cerr << "error: " << loaded.error().message << "\n";
      return 1;
    }
    options = std::move(*loaded);
  }
  if (port != 0) options.port = port;
  if (!apply_pace_flags(pace, options.pace)) return 1;
  std::unique_ptr<KafkaProducer> producer;
  if (!brokers.empty()) {
    KafkaConfig kafka;
    kafka.brokers = brokers;
    auto created = KafkaProducer::create(kafka, true, "databricks-simulator");
    if (!created) {
      std::cerr << "error: " << created.error().message << "\n";
      return 1;
    }
    producer = std::move(*created);
  }
  DatabricksSimulator simulator(options);
  if (producer) {
    simulator.set_sink([&](const std::string& key, const std::string& payload) {
      Status s = producer->produce_async({events_topic, key, payload});
      if (!s) spdlog::warn("simulator: cannot publish completion event: {}", s.error().message);
    });
  }
  Status started = simulator.start();
  if (!started) {
    std::cerr << "error: " << started.error().message << "\n";
    return 1;
  }
  std::cout << "databricks simulator listening on " << simulator.base_url() << std::endl;
  if (options.identity.enabled) {
    // What points the SDKs' identity lookups (and brickwork's) here.
    for (const auto& [name, value] : simulator.identity_environment()) {
      std::cout << "  " << name << "=" << value << "\n";
    }
    std::cout << std::flush;
  }
  std::signal(SIGINT, on_demo_signal);
  std::signal(SIGTERM, on_demo_signal);
  while (!g_demo_interrupted) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  simulator.stop();
  // What the workspace saw, for whoever drove it (a benchmark, a user trying limits).
  const SimulatorStats stats = simulator.stats();
  std::cout << "calls by API (calls, 429s, of which rate-limited); most in flight at once: "
            << stats.max_in_flight << "\n";
  for (const auto& [api, counts] : stats.apis) {
    std::cout << "  " << api << ": " << counts.calls << ", " << counts.answered_429 << ", "
              << counts.rate_limited << "\n";
  }
  if (producer) (void)producer->flush(Duration(5000));
  return 0;
}

}  // namespace brickwork::cli
