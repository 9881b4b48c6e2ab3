// `brickwork bench-workspace`: the daemon against a workspace's pace.
#include "devstack/cli/bench_workspace.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <pqxx/pqxx>
#include <sstream>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "daemon/kafka/kafka.hpp"
#include "devstack/http_server.hpp"
#include "devstack/local_stack.hpp"

extern char** environ;

namespace brickwork {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int64_t kQuickJob = 1;  // ends at once, publishes its completion event
constexpr int64_t kLongJob = 2;   // runs for a day: its workflow waits, polled

double since(SteadyClock::time_point t0) {
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

std::string fixed(double v, int digits) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(digits) << v;
  return out.str();
}

// `brickwork daemon -c CONFIG` as a child, its output appended to LOG.
class Child {
 public:
  Child(const std::string& binary, const std::string& config, const std::string& log) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::vector<std::string> args{binary, "daemon", "-c", config};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // SIGTERM; the seconds until it exited, or nullopt if it was still
  // running after `limit` (then killed).
  std::optional<double> terminate(std::chrono::seconds limit) {
    const auto t0 = SteadyClock::now();
    ::kill(pid_, SIGTERM);
    while (SteadyClock::now() - t0 < limit) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return since(t0);
      }
      std::this_thread::sleep_for(10ms);
    }
    return std::nullopt;  // the destructor kills it
  }

 private:
  pid_t pid_ = -1;
};

struct Row {
  std::string measure;
  std::string result;
  std::string required;
};

class WorkspaceBench {
 public:
  explicit WorkspaceBench(WorkspaceBenchOptions options) : options_(std::move(options)) {}

  int run() {
    const auto t0 = SteadyClock::now();
    std::cout << "brickwork bench-workspace" << (options_.smoke ? " --smoke" : "") << "\n"
              << "pace: 200 ms per call, run-now 20/s, runs/get 100/s, uploads of "
              << upload_seconds() << " s; daemon with default settings\n"
              << std::flush;
    const bool ran = setup() && measure();
    std::cout << "\n| measure (real-workspace profile, defaults) | result | required |\n"
              << "| --- | --- | --- |\n";
    for (const auto& r : rows_) {
      std::cout << "| " << r.measure << " | " << r.result << " | " << r.required << " |\n";
    }
    std::cout << "\nbench-workspace took " << fixed(since(t0), 0) << " s; logs in " << dir_.string()
              << (options_.keep || !ran ? " (kept)" : " (removed)") << "\n";
    daemon_.reset();
    commands_.reset();
    stack_.reset();
    if (ran && !options_.keep) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
    return ran ? 0 : 1;
  }

 private:
  int waiting() const { return options_.smoke ? 30 : 300; }
  int uploads() const { return options_.smoke ? 3 : 12; }
  int quick() const { return options_.smoke ? 10 : 100; }
  int upload_seconds() const { return options_.smoke ? 4 : 40; }

  bool fail(const std::string& message) {
    std::cerr << "bench-workspace: " << message << "\n";
    return false;
  }
  static void step(const std::string& what) { std::cout << "  " << what << "...\n" << std::flush; }

  std::string workflows_yaml() const {
    std::ostringstream out;
    out << "  ws_wait:\n    steps:\n"
        << "      - {name: wait, run_job: {job_id: " << kLongJob << "}, poll_every: 2s}\n"
        << "  ws_one:\n    steps:\n"
        << "      - {name: run, run_job: {job_id: " << kQuickJob << "}}\n"
        << "  ws_upload:\n    steps:\n"
        << "      - name: put\n"
        << "        upload: {path: \"/Volumes/main/bench/landing/{{ input.name }}.csv\", "
           "content: \"day,n\\n1,2\\n\", overwrite: true}\n";
    return out.str();
  }

  bool setup() {
    dir_ = fs::temp_directory_path() / ("brickwork-bench-workspace-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    LocalStackOptions stack_options;
    SimulatorOptions& sim = stack_options.simulator;
    sim.pending_for = Duration(0);
    sim.jobs[kQuickJob].name = "ws-quick";
    sim.jobs[kQuickJob].duration = Duration(0);
    sim.jobs[kLongJob].name = "ws-long";
    sim.jobs[kLongJob].duration = std::chrono::hours(24);
    sim.pace.latency_min = sim.pace.latency_max = 200ms;
    sim.pace.limits = {{"jobs/run-now", 20}, {"jobs/runs/get", 100}};
    sim.pace.transfer_time = std::chrono::seconds(upload_seconds());
    step("starting Postgres, the mock Kafka cluster and the paced simulator");
    auto stack = LocalStack::start(stack_options);
    if (!stack) return fail("cannot start the local stack: " + stack.error().message);
    stack_ = std::move(*stack);
    KafkaConfig kafka;
    kafka.brokers = stack_->kafka().bootstrap_servers();
    kafka.properties["linger.ms"] = "1";
    auto commands = KafkaProducer::create(kafka, true, "bench-workspace-commands");
    if (!commands) return fail(commands.error().message);
    commands_ = std::move(*commands);
    config_ = stack_->config_yaml(workflows_yaml(), "brickwork-bench-workspace");
    write_config("brickwork.yaml", config_);
    return true;
  }

  std::string write_config(const std::string& name, const std::string& yaml) const {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << yaml;
    return path;
  }

  void start_daemon(const std::string& config_name) {
    daemon_ = std::make_unique<Child>(options_.daemon_binary, (dir_ / config_name).string(),
                                      (dir_ / "daemon.log").string());
  }

  bool produce(const std::string& prefix, const std::string& workflow, int count) {
    std::vector<ProducerRecord> records;
    for (int i = 0; i < count; ++i) {
      const std::string id = prefix + "-" + std::to_string(i);
      records.push_back({stack_->topics().commands, id,
                         json::serialize(json::object{{"type", "start"},
                                                      {"id", id},
                                                      {"workflow", workflow},
                                                      {"input", {{"name", id}}}})});
    }
    Status s = commands_->produce_and_wait(records, Duration(60000));
    return s ? true : fail("cannot produce: " + s.error().message);
  }

  // Workflows of `prefix` that succeeded.
  int64_t succeeded(const std::string& prefix) {
    try {
      if (!db_) db_ = std::make_unique<pqxx::connection>(stack_->postgres().url());
      pqxx::nontransaction tx(*db_);
      const pqxx::result r = tx.exec_params(
          "SELECT count(*) FROM workflows WHERE id LIKE $1 AND status = 'succeeded'", prefix + "-%");
      return r[0][0].as<int64_t>();
    } catch (const std::exception& e) {
      db_.reset();
      std::cerr << "bench-workspace: " << e.what() << "\n";
      return 0;
    }
  }

  // Seconds from t0 until `count` workflows of `prefix` succeeded; nullopt
  // past `limit`.
  std::optional<double> until_succeeded(const std::string& prefix, int count,
                                        SteadyClock::time_point t0, std::chrono::seconds limit) {
    while (SteadyClock::now() - t0 < limit) {
      if (succeeded(prefix) >= count) return since(t0);
      std::this_thread::sleep_for(100ms);
    }
    return std::nullopt;
  }

  std::string done_within(const std::optional<double>& took, const std::string& prefix, int count,
                          std::chrono::seconds limit) {
    if (took) return fixed(*took, 1) + " s";
    return std::to_string(succeeded(prefix)) + " of " + std::to_string(count) + " after " +
           std::to_string(limit.count()) + " s";
  }

  bool measure() {
    start_daemon("brickwork.yaml");
    // 300 waiting on long runs, polled every 2 s: 150 runs/get a second
    // asked, 1.5x the workspace's limit.
    step("starting " + std::to_string(waiting()) + " workflows that wait on long runs (poll_every 2s)");
    if (!produce("wait", "ws_wait", waiting())) return false;
    const auto wait_t0 = SteadyClock::now();
    while (stack_->simulator().stats().runs_created < waiting() && since(wait_t0) < 180) {
      std::this_thread::sleep_for(100ms);
    }
    const int64_t started = stack_->simulator().stats().runs_created;
    rows_.push_back({std::to_string(waiting()) + " waiting workflows: all runs started",
                     started >= waiting() ? fixed(since(wait_t0), 1) + " s"
                                          : std::to_string(started) + " after 180 s",
                     ""});
    std::this_thread::sleep_for(options_.smoke ? 2s : 10s);  // let their polls settle in

    // Uploads and quick workflows together: a slow transfer beside short calls.
    step("starting " + std::to_string(uploads()) + " uploads of " + std::to_string(upload_seconds()) +
         " s and " + std::to_string(quick()) + " one-step workflows");
    const SimulatorStats before = stack_->simulator().stats();
    const auto t0 = SteadyClock::now();
    if (!produce("up", "ws_upload", uploads())) return false;
    if (!produce("one", "ws_one", quick())) return false;
    const auto quick_limit = options_.smoke ? 60s : 120s;
    const auto quick_took = until_succeeded("one", quick(), t0, quick_limit);
    rows_.push_back({std::to_string(quick()) + " one-step workflows, from produce to all succeeded",
                     done_within(quick_took, "one", quick(), quick_limit), "<= 20 s"});
    const auto upload_limit = options_.smoke ? 60s : 120s;
    const auto uploads_took = until_succeeded("up", uploads(), t0, upload_limit);
    rows_.push_back({std::to_string(uploads()) + " uploads of " + std::to_string(upload_seconds()) +
                         " s each, started together",
                     done_within(uploads_took, "up", uploads(), upload_limit),
                     "all done within 60 s"});
    const SimulatorStats after = stack_->simulator().stats();
    const auto count = [](const SimulatorStats& s, const std::string& api) {
      auto it = s.apis.find(api);
      return it == s.apis.end() ? SimulatedApiCounts{} : it->second;
    };
    const SimulatedApiCounts run_now = count(after, "jobs/run-now");
    rows_.push_back({"run-now calls answered 429",
                     fixed(100.0 * static_cast<double>(run_now.rate_limited) /
                               static_cast<double>(std::max<int64_t>(run_now.calls, 1)),
                           1) +
                         "% (" + std::to_string(run_now.rate_limited) + " of " +
                         std::to_string(run_now.calls) + ")",
                     "<= 10%"});
    const SimulatedApiCounts gets = count(after, "jobs/runs/get");
    const SimulatedApiCounts gets_before = count(before, "jobs/runs/get");
    const double window = std::max(since(t0), 1.0);
    rows_.push_back({"runs/get while waiting (limit 100/s): calls/s, answered 429",
                     fixed(static_cast<double>(gets.calls - gets_before.calls) / window, 0) +
                         "/s, " + std::to_string(gets.rate_limited) + " of " +
                         std::to_string(gets.calls) + " in all",
                     ""});
    rows_.push_back({"most calls in flight at once", std::to_string(after.max_in_flight),
                     "as many as the limits allow"});
    rows_.push_back({"connections the simulator accepted, for " +
                         std::to_string(after.requests) + " requests",
                     std::to_string(after.connections),
                     "about one per call slot (keep-alive)"});

    // SIGTERM while a call never answers: the daemon moved to a workspace
    // that takes every call and answers none.
    step("SIGTERM with a call that never answers");
    // (Uploads may still be in flight: their daemon is killed after 30 s.)
    const auto ended = daemon_->terminate(30s);
    daemon_.reset();
    std::cout << "    the first daemon "
              << (ended ? "exited " + fixed(*ended, 1) + " s after SIGTERM" : "was killed 30 s after SIGTERM")
              << "\n";
    std::atomic<int> received{0};
    auto black_hole = http::Server::start("127.0.0.1", 0, [&](const http::ServerRequest&) {
      ++received;
      http::ServerResponse never{200, {}, "{}"};
      never.delay = std::chrono::hours(1);
      return never;
    });
    if (!black_hole) return fail(black_hole.error().message);
    std::string hung = config_;
    const std::string host = "host: \"" + stack_->simulator().base_url() + "\"";
    const size_t at = hung.find(host);
    if (at == std::string::npos) return fail("no databricks.host line in the configuration");
    hung.replace(at, host.size(),
                 "host: \"http://127.0.0.1:" + std::to_string((*black_hole)->port()) + "\"");
    write_config("hung.yaml", hung);
    start_daemon("hung.yaml");
    if (!produce("hung", "ws_one", 1)) return false;
    const auto hung_t0 = SteadyClock::now();
    while (received.load() == 0 && since(hung_t0) < 60) std::this_thread::sleep_for(50ms);
    if (received.load() == 0) return fail("the daemon never called the unanswering workspace");
    std::this_thread::sleep_for(1s);
    const auto grace = std::chrono::duration_cast<std::chrono::seconds>(DaemonConfig{}.shutdown_grace);
    const auto limit = 3 * grace;
    const auto exit_took = daemon_->terminate(limit);
    daemon_.reset();
    (*black_hole)->stop();
    rows_.push_back({"SIGTERM with a call that never answers",
                     exit_took ? fixed(*exit_took, 1) + " s to exit"
                               : "still running after " + std::to_string(limit.count()) +
                                     " s (killed)",
                     "exits within shutdown_grace (" + std::to_string(grace.count()) + " s)"});
    return true;
  }

  WorkspaceBenchOptions options_;
  fs::path dir_;
  std::unique_ptr<LocalStack> stack_;
  std::unique_ptr<KafkaProducer> commands_;
  std::unique_ptr<pqxx::connection> db_;
  std::unique_ptr<Child> daemon_;
  std::string config_;
  std::vector<Row> rows_;
};

}  // namespace

int run_workspace_bench(const WorkspaceBenchOptions& given) {
  WorkspaceBenchOptions options = given;
  if (options.daemon_binary.empty()) {
    std::error_code ec;
    options.daemon_binary = fs::read_symlink("/proc/self/exe", ec).string();
  }
  return WorkspaceBench(std::move(options)).run();
}

}  // namespace brickwork
