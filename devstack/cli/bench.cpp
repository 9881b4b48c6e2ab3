// `brickwork bench` (docs/PERFORMANCE.md): the daemon measured from outside.
#include "devstack/cli/bench.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <regex>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "daemon/core/databricks_apis.hpp"
#include "daemon/core/logging.hpp"
#include "daemon/core/time.hpp"
#include "daemon/kafka/kafka.hpp"
#include "daemon/store/claim_query.hpp"
#include "daemon/store/pg_outbox_drain.hpp"
#include "devstack/cli/bench_purge.hpp"
#include "devstack/local_stack.hpp"

namespace brickwork {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

double seconds_between(SteadyClock::time_point from, SteadyClock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}
double seconds_since(SteadyClock::time_point from) {
  return seconds_between(from, SteadyClock::now());
}

// SIGINT/SIGTERM end the waits, so the daemon child and the throwaway
// Postgres are still stopped and removed on the way out.
std::atomic<bool> g_bench_interrupted{false};
extern "C" void on_bench_signal(int) { g_bench_interrupted = true; }

constexpr int64_t kInstantJob = 901;  // ends at once and publishes its completion event
constexpr int64_t kLongJob = 902;     // runs for a day: its workflow waits
// Job events of every measure but the latency measure, and the long run's
// starts, go in produce batches of up to this.
constexpr int kBatchLingerMs = 50;

// --------------------------------------------------------------- the daemon

// One daemon as a child process, so its resident memory and restart are its own.
class DaemonProcess {
 public:
  DaemonProcess(const std::string& binary, const std::string& config_path,
                const std::string& log_path) {
    // Prepared before fork(): the child only makes async-signal-safe calls.
    const std::vector<std::string> args{binary, "daemon", "-c", config_path};
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    started_ = SteadyClock::now();
    started_wall_ = now_ms();
    const pid_t bench = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      // A session of its own, as a service has a cgroup of its own under
      // systemd or Docker: with the kernel's autogroup scheduling, a child
      // in the bench's session would share one CPU share with the bench's
      // load generator, mock brokers and simulator, which no deployment does.
      ::setsid();
      // Outside the terminal's process group a Ctrl-C no longer reaches it:
      // it goes when the bench goes, however the bench ends.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != bench) ::_exit(127);
      if (log >= 0) {
        ::dup2(log, 1);
        ::dup2(log, 2);
      }
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    if (log >= 0) ::close(log);
  }
  ~DaemonProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  SteadyClock::time_point started() const { return started_; }
  TimePoint started_wall() const { return started_wall_; }
  pid_t pid() const { return pid_; }
  bool alive() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }
  // SIGTERM, then waits for the exit; SIGKILL after `limit`. The seconds it took.
  std::optional<double> terminate(std::chrono::seconds limit) {
    if (pid_ <= 0) return std::nullopt;
    const auto t0 = SteadyClock::now();
    ::kill(pid_, SIGTERM);
    while (SteadyClock::now() - t0 < limit) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return seconds_since(t0);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return std::nullopt;
  }
  // VmRSS in MiB; nullopt when it cannot be read.
  std::optional<double> rss_mib() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
    }
    return std::nullopt;
  }

 private:
  pid_t pid_ = -1;
  SteadyClock::time_point started_;
  TimePoint started_wall_{};
};

// The time of the first line of a daemon log that contains `text` (its
// lines begin with an ISO 8601 time, e.g. "2026-11-26T04:55:06.905Z info ...").
std::optional<TimePoint> logged_at(const std::string& log_path, std::string_view text) {
  std::ifstream in(log_path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(text) == std::string::npos) continue;
    return parse_iso8601(std::string_view(line).substr(0, line.find(' ')));
  }
  return std::nullopt;
}

// ---------------------------------------------------------- what it shows

// Status events by workflow-id prefix (the part before the first '-'), read
// from the status topic as any consumer of the contract would.
struct PhaseCounts {
  int64_t started = 0;    // workflow_started
  int64_t waiting = 0;    // step_waiting
  int64_t succeeded = 0;  // workflow_succeeded
  int64_t failed = 0;     // workflow_failed, workflow_canceled, command_rejected
  std::optional<SteadyClock::time_point> first_started;
  std::optional<SteadyClock::time_point> last_succeeded;
};

class StatusWatch {
 public:
  static Result<std::unique_ptr<StatusWatch>> open(const KafkaConfig& kafka,
                                                   const std::string& topic) {
    auto tail = TopicTail::open(kafka, topic, Duration(30000));
    if (!tail) return tail.error();
    return std::unique_ptr<StatusWatch>(new StatusWatch(std::move(*tail)));
  }
  ~StatusWatch() {
    stop_ = true;
    thread_.join();
  }

  PhaseCounts counts(const std::string& phase) const {
    std::lock_guard lock(mu_);
    auto it = phases_.find(phase);
    return it == phases_.end() ? PhaseCounts{} : it->second;
  }
  // Waits until `done` holds for the phase's counts or `limit` passes.
  bool wait_for(const std::string& phase, const std::function<bool(const PhaseCounts&)>& done,
                std::chrono::seconds limit) const {
    const auto deadline = SteadyClock::now() + limit;
    while (SteadyClock::now() < deadline && !g_bench_interrupted) {
      if (done(counts(phase))) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return done(counts(phase));
  }

 private:
  explicit StatusWatch(std::unique_ptr<TopicTail> tail) : tail_(std::move(tail)) {
    thread_ = std::thread([this] { loop(); });
  }
  void loop() {
    while (!stop_) {
      for (const auto& message : tail_->poll(Duration(50))) {
        const auto now = SteadyClock::now();
        boost::system::error_code ec;
        json::value v = json::parse(message.payload, ec);
        if (ec || !v.is_object()) continue;
        const auto* type = v.as_object().if_contains("type");
        const auto* id = v.as_object().if_contains("workflow_id");
        if (type == nullptr || id == nullptr || !type->is_string() || !id->is_string()) continue;
        const std::string_view t = type->get_string();
        const std::string_view w = id->get_string();
        const std::string phase(w.substr(0, w.find('-')));
        std::lock_guard lock(mu_);
        PhaseCounts& c = phases_[phase];
        if (t == "workflow_started") {
          if (c.started++ == 0) c.first_started = now;
        } else if (t == "step_waiting") {
          ++c.waiting;
        } else if (t == "workflow_succeeded") {
          ++c.succeeded;
          c.last_succeeded = now;
        } else if (t == "workflow_failed" || t == "workflow_canceled" ||
                   t == "command_rejected") {
          ++c.failed;
        }
      }
    }
  }

  std::unique_ptr<TopicTail> tail_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, PhaseCounts> phases_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// When each completion event was handed to Kafka and each run was created at
// the simulator, by "<workflow id>/<step>".
class RunLog {
 public:
  RunLog() {
    events_.reserve(kReserved);
    runs_.reserve(kReserved);
  }
  void event_published(const std::string& workflow_id, const std::string& step) {
    const auto now = SteadyClock::now();
    std::lock_guard lock(mu_);
    events_[workflow_id + "/" + step] = now;
  }
  void run_created(const SimulatedRun& run) {
    const auto now = SteadyClock::now();
    auto wf = run.parameters.find("brickwork_workflow_id");
    auto step = run.parameters.find("brickwork_step");
    if (wf == run.parameters.end() || step == run.parameters.end()) return;
    std::lock_guard lock(mu_);
    runs_[wf->second + "/" + step->second] = now;
  }
  std::optional<SteadyClock::time_point> event_time(const std::string& key) const {
    std::lock_guard lock(mu_);
    auto it = events_.find(key);
    return it == events_.end() ? std::nullopt : std::optional(it->second);
  }
  std::optional<SteadyClock::time_point> run_time(const std::string& key) const {
    std::lock_guard lock(mu_);
    auto it = runs_.find(key);
    return it == runs_.end() ? std::nullopt : std::optional(it->second);
  }

 private:
  // Room for every run of a bench, so that no insert rehashes: the
  // simulator records a run here under its own lock, and a rehash at
  // about 20,000 runs held it, and every run-now the daemon sent, for
  // 150-270 ms (perf: the bench's thread in _M_rehash), which alone put
  // about 50 workflows over the latency measure's 25 ms.
  static constexpr size_t kReserved = 1 << 20;
  mutable std::mutex mu_;
  std::unordered_map<std::string, SteadyClock::time_point> events_;
  std::unordered_map<std::string, SteadyClock::time_point> runs_;
};

// ---------------------------------------------------------------- reporting

struct Row {
  std::string measure;
  std::string result;
  std::string required;
  std::string verdict;
};

std::string fixed(double v, int digits) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(digits) << v;
  return out.str();
}

std::string thousands(int64_t n) {
  if (n % 1000 == 0 && n >= 1000) return std::to_string(n / 1000) + "k";
  return std::to_string(n);
}

std::string read_first(const std::string& path, const std::string& prefix) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) {
      auto colon = line.find(':');
      std::string v = colon == std::string::npos ? line : line.substr(colon + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  }
  return "?";
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// CPU seconds used so far: by the whole machine (busy, and busy + idle over
// all cores), by this process, by its mock brokers' thread and by the daemon.
struct CpuSample {
  double machine_busy = 0;
  double machine_total = 0;
  double bench = 0;
  double mock = 0;
  double daemon = 0;
};

// utime + stime of a /proc/.../stat file, in seconds.
double cpu_seconds_of(const std::string& stat_path) {
  std::ifstream in(stat_path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');  // the name may hold spaces
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 1; i <= 13 && fields >> field; ++i) {
    if (i == 12 || i == 13) ticks += std::strtod(field.c_str(), nullptr);  // utime, stime
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

CpuSample cpu_sample(pid_t daemon) {
  CpuSample sample;
  const auto tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  {
    std::ifstream in("/proc/stat");
    std::string cpu;
    double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
    in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
    sample.machine_busy = (user + nice + system + irq + softirq + steal) / tick;
    sample.machine_total = sample.machine_busy + (idle + iowait) / tick;
  }
  sample.bench = cpu_seconds_of("/proc/self/stat");
  std::error_code ec;
  for (const auto& task : fs::directory_iterator("/proc/self/task", ec)) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name) && name == "rdk:mock") {
      sample.mock += cpu_seconds_of((task.path() / "stat").string());
    }
  }
  if (daemon > 0) sample.daemon = cpu_seconds_of("/proc/" + std::to_string(daemon) + "/stat");
  return sample;
}

// Where the machine's CPU went between two samples, in shares of one core.
std::string cpu_shares(const CpuSample& a, const CpuSample& b, double seconds) {
  if (seconds <= 0) return "(too short to tell)";
  const double total = b.machine_total - a.machine_total;
  const double busy = b.machine_busy - a.machine_busy;
  auto core = [&](double used) { return fixed(100 * used / seconds, 0) + "%"; };
  const double rest = busy - (b.bench - a.bench) - (b.daemon - a.daemon);
  return fixed(total > 0 ? 100 * busy / total : 0, 0) + "% busy; of one core: daemon " +
         core(b.daemon - a.daemon) + ", bench " + core(b.bench - a.bench) + " (its mock brokers " +
         core(b.mock - a.mock) + "), Postgres and the rest " + core(rest);
}

std::string machine_line() {
  const std::string mem_kb = read_first("/proc/meminfo", "MemTotal");
  double mem_gib = 0;
  try {
    mem_gib = std::stod(mem_kb) / 1024.0 / 1024.0;
  } catch (const std::exception&) {
  }
  return std::to_string(std::thread::hardware_concurrency()) + " cores (" +
         read_first("/proc/cpuinfo", "model name") + "), " + fixed(mem_gib, 1) +
         " GiB memory, load average " + load_average();
}

void print_table(const std::vector<Row>& rows) {
  size_t w[3] = {7, 6, 8};
  for (const auto& r : rows) {
    w[0] = std::max(w[0], r.measure.size());
    w[1] = std::max(w[1], r.result.size());
    w[2] = std::max(w[2], r.required.size());
  }
  auto line = [&](const std::string& a, const std::string& b, const std::string& c,
                  const std::string& d) {
    std::cout << "| " << std::left << std::setw(static_cast<int>(w[0])) << a << " | "
              << std::setw(static_cast<int>(w[1])) << b << " | "
              << std::setw(static_cast<int>(w[2])) << c << " | " << d << " |\n";
  };
  line("measure", "result", "required", "ratio / verdict");
  std::cout << "| " << std::string(w[0], '-') << " | " << std::string(w[1], '-') << " | "
            << std::string(w[2], '-') << " | --- |\n";
  for (const auto& r : rows) line(r.measure, r.result, r.required, r.verdict);
}

// -------------------------------------------------------------- the bench

class Bench {
 public:
  explicit Bench(BenchOptions options) : options_(std::move(options)) {}

  int run() {
    const auto t0 = SteadyClock::now();
    std::cout << "brickwork bench" << (options_.smoke ? " --smoke" : "") << "\nmachine: "
              << machine_line() << "\nPostgres: " << postgres_profile_line() << "\n"
              << std::flush;
    if (!setup()) return 1;
    const bool all_ran = measure_all();
    if (daemon_) daemon_->terminate(std::chrono::seconds(30));
    std::cout << "\n";
    print_table(rows_);
    std::cout << "\nPostgres: " << postgres_profile_line() << "\nKafka: librdkafka's mock cluster, "
              << options_.partitions << " partitions per input topic, " << output_partitions_
              << " for status and dead letters\nmachine: " << machine_line()
              << "\nbench took " << fixed(seconds_since(t0), 0)
              << " s; daemon logs in " << dir_.string()
              << (options_.keep || !all_ran ? " (kept)" : " (removed)") << "\n";
    teardown(all_ran);
    return all_ran ? 0 : 1;
  }

 private:
  bool setup() {
    dir_ = fs::temp_directory_path() / ("brickwork-bench-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    LocalStackOptions stack_options;
    SimulatedJob instant;
    instant.name = "bench-instant";
    instant.duration = Duration(0);
    SimulatedJob long_running;
    long_running.name = "bench-long";
    long_running.duration = std::chrono::hours(24);
    stack_options.simulator.jobs[kInstantJob] = instant;
    stack_options.simulator.jobs[kLongJob] = long_running;
    // Runs are in RUNNING at once: what the daemon sees of a started job.
    stack_options.simulator.pending_for = Duration(0);
    stack_options.postgres_settings = postgres_settings();
    stack_options.input_partitions = options_.partitions;
    output_partitions_ = stack_options.partitions;
    step("starting Postgres, the mock Kafka cluster and the simulator");
    auto stack = LocalStack::start(stack_options);
    if (!stack) return fail("cannot start the local stack: " + stack.error().message);
    stack_ = std::move(*stack);

    kafka_.brokers = stack_->kafka().bootstrap_servers();
    // The mock cluster answers a fetch only after fetch.wait.max.ms; a real
    // broker answers as soon as data arrives (docs/PERFORMANCE.md).
    kafka_.properties = {{"fetch.wait.max.ms", "5"}};
    KafkaConfig producer_kafka = kafka_;
    producer_kafka.properties.clear();  // fetch.wait.max.ms is for consumers
    KafkaConfig events_kafka = producer_kafka;
    // As a job's last task that sends one event and flushes.
    events_kafka.properties["linger.ms"] = "0";
    auto events = KafkaProducer::create(events_kafka, true, "bench-job-events");
    if (!events) return fail(events.error().message);
    events_ = std::move(*events);
    // The events of every measure but the latency measure, in produce
    // batches (kBatchLingerMs): the mock cluster walks a partition's produce
    // batches from the oldest on every fetch that returns data, and returns
    // one batch per partition a fetch (docs/PERFORMANCE.md). Events one
    // batch each would cost every fetch of the measures after them a walk
    // that a real broker, which finds an offset by its index, does not make
    // (5 ms batches of the throughput measure's events still cost the
    // latency measure's mock a few points of a core), and would reach the
    // daemon a few a fetch, where a real broker hands it all that waits.
    // The latency measure's own are sent at once, as a job's.
    events_kafka.properties["linger.ms"] = std::to_string(kBatchLingerMs);
    auto batched = KafkaProducer::create(events_kafka, true, "bench-job-events-batched");
    if (!batched) return fail(batched.error().message);
    batched_events_ = std::move(*batched);
    KafkaConfig commands_kafka = producer_kafka;
    commands_kafka.properties["linger.ms"] = "1";
    auto commands = KafkaProducer::create(commands_kafka, true, "bench-commands");
    if (!commands) return fail(commands.error().message);
    commands_ = std::move(*commands);
    // The long run's starts, in produce batches (kBatchLingerMs), as its
    // job events. Ten minutes at ~1,500 starts a second in batches of a
    // millisecond or two fill every partition's log to the mock's 5 MB cap
    // with ~20,000 batches, and the mock walks them from the oldest on each
    // fetch that returns data: its thread then takes a whole core and the
    // run measures that walk, which grows with the log, instead of
    // brickwork (docs/PERFORMANCE.md). A service starting that many
    // workflows batches its records as well.
    commands_kafka.properties["linger.ms"] = std::to_string(kBatchLingerMs);
    auto long_run_commands = KafkaProducer::create(commands_kafka, true, "bench-long-run-commands");
    if (!long_run_commands) return fail(long_run_commands.error().message);
    long_run_commands_ = std::move(*long_run_commands);

    KafkaProducer* at_once = events_.get();
    KafkaProducer* others = batched_events_.get();
    std::atomic<bool>* at_once_used = &at_once_used_;
    RunLog* log = &runs_;
    const std::string events_topic = stack_->topics().events;
    stack_->simulator().set_sink([at_once, others, at_once_used, log, events_topic](
                                     const std::string& key, const std::string& payload) {
      boost::system::error_code ec;
      json::value v = json::parse(payload, ec);
      if (!ec && v.is_object()) {
        if (const auto* s = v.as_object().if_contains("step"); s != nullptr && s->is_string()) {
          log->event_published(key, std::string(s->get_string()));
        }
      }
      // The first event of all goes at once too: a producer's first record
      // to a topic waits for the topic's metadata (0.4-1.1 s here), which
      // the latency measure must not.
      const bool first = !at_once_used->exchange(true);
      KafkaProducer* producer =
          first || key.rfind("lat-", 0) == 0 ? at_once : others;
      (void)producer->produce_async({events_topic, key, payload});
    });
    stack_->simulator().set_run_observer([log](const SimulatedRun& run) { log->run_created(run); });

    // The status reader fetches with a long wait: the mock cluster walks a
    // partition's whole log (a list of produce batches) on every fetch that
    // returns data, so a
    // reader fetching every 5 ms took about 40% of a core once the topic held
    // the throughput measure's events, out of the measures' own CPU. Its
    // receipt times serve only the rates, where 100 ms is about 1% of a measure.
    KafkaConfig watch_kafka = kafka_;
    watch_kafka.properties["fetch.wait.max.ms"] = "100";
    auto watch = StatusWatch::open(watch_kafka, stack_->topics().status);
    if (!watch) return fail("cannot read the status topic: " + watch.error().message);
    watch_ = std::move(*watch);

    config_path_ = (dir_ / "brickwork.yaml").string();
    std::ofstream(config_path_) << config_yaml();
    return true;
  }

  // The simulator here answers at once and limits nothing: the client's own
  // per-API limits (run-now 15/s by default, a real workspace's order of
  // magnitude) are raised out of the way, so the measures are brickwork's and
  // Postgres's. bench-workspace measures a limited workspace.
  static std::string client_limits_yaml() {
    std::string out = "  limits: {";
    const char* separator = "";
    for (const std::string& api : databricks_limit_api_names()) {
      out += separator + ("\"" + api + "\": 100000");
      separator = ", ";
    }
    return out + "}\n";
  }

  std::string config_yaml() const {
    const KafkaTopics& t = stack_->topics();
    std::ostringstream out;
    out << "kafka:\n"
        << "  brokers: \"" << kafka_.brokers << "\"\n"
        << "  group: brickwork-bench\n"
        << "  topics: {commands: \"" << t.commands << "\", events: \"" << t.events
        << "\", status: \"" << t.status << "\", dead_letter: \"" << t.dead_letter << "\"}\n"
        << "  properties: {fetch.wait.max.ms: \"5\"}\n"
        << "postgres:\n  url: \"" << stack_->postgres().url() << "\"\n"
        << "databricks:\n  host: \"" << stack_->simulator().base_url() << "\"\n"
        << "  token: \"" << LocalStack::kDatabricksToken << "\"\n"
        << client_limits_yaml()
        << "callbacks:\n  secret: \"" << LocalStack::kCallbackSecret << "\"\n"
        << "daemon: {log_format: text"
        << (options_.daemon_settings.empty() ? "" : ", " + options_.daemon_settings) << "}\n"
        // The purge measure purges by itself, at a moment of its choosing.
        << "retention: {succeeded: 0, failed: 0, canceled: 0}\n"
        << "workflows:\n"
        << "  bench_one:\n    steps:\n"
        << "      - {name: run, run_job: {job_id: " << kInstantJob << "}}\n"
        << "  bench_two:\n    steps:\n"
        << "      - {name: first, run_job: {job_id: " << kInstantJob << "}}\n"
        << "      - {name: second, run_job: {job_id: " << kInstantJob << "}}\n"
        << "  bench_wait:\n    steps:\n"
        << "      - {name: wait, run_job: {job_id: " << kLongJob
        << "}, poll_every: " << options_.waiting_poll_every << "}\n";
    return out.str();
  }

  void teardown(bool all_ran) {
    daemon_.reset();
    watch_.reset();
    // The clients go before the mock cluster they talk to.
    if (commands_) (void)commands_->flush(Duration(2000));
    if (events_) (void)events_->flush(Duration(2000));
    if (batched_events_) (void)batched_events_->flush(Duration(2000));
    if (long_run_commands_) (void)long_run_commands_->flush(Duration(2000));
    stack_->simulator().stop();
    commands_.reset();
    events_.reset();
    batched_events_.reset();
    long_run_commands_.reset();
    stack_.reset();
    if (all_ran && !options_.keep) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }

  bool fail(const std::string& message) {
    std::cerr << "bench: " << message << "\n";
    return false;
  }
  void step(const std::string& what) const {
    std::cout << "  " << what << "...\n" << std::flush;
  }

  std::string daemon_log(int32_t n) const {
    return (dir_ / ("daemon-" + std::to_string(n) + ".log")).string();
  }
  void start_daemon() {
    daemon_ = std::make_unique<DaemonProcess>(options_.daemon_binary, config_path_,
                                              daemon_log(++daemons_started_));
  }

  static std::string workflow_id(const std::string& phase, int64_t i) {
    return phase + "-" + std::to_string(i);
  }
  Status produce_starts(const std::string& phase, const std::string& workflow, int64_t from,
                        int64_t count) {
    constexpr int64_t kChunk = 5000;
    for (int64_t done = 0; done < count;) {
      std::vector<ProducerRecord> records;
      const int64_t n = std::min(kChunk, count - done);
      for (int64_t i = 0; i < n; ++i) {
        const std::string id = workflow_id(phase, from + done + i);
        records.push_back({stack_->topics().commands, id, start_command(id, workflow)});
      }
      Status s = commands_->produce_and_wait(records, Duration(120000));
      if (!s) return s;
      done += n;
    }
    return ok_status();
  }
  static std::string start_command(const std::string& id, const std::string& workflow) {
    return json::serialize(json::object{
        {"type", "start"}, {"id", id}, {"workflow", workflow}, {"input", json::object()}});
  }

  // A generous limit for `count` workflows: today's slowest rates, with room.
  static std::chrono::seconds limit_for(int64_t count) {
    return std::chrono::seconds(120 + count / 20);
  }

  bool daemon_alive() {
    if (daemon_ && daemon_->alive()) return true;
    fail("the daemon exited; see " + daemon_log(daemons_started_));
    return false;
  }

  // Waits until `count` workflows of `phase` succeeded; their rate from the
  // first workflow_started to the last workflow_succeeded.
  std::optional<double> wait_succeeded(const std::string& phase, int64_t count) {
    const bool done = watch_->wait_for(
        phase,
        [&](const PhaseCounts& c) {
          return c.succeeded + c.failed >= count || !(daemon_ && daemon_->alive());
        },
        limit_for(count));
    const PhaseCounts c = watch_->counts(phase);
    if (!done || c.succeeded < count || !c.first_started || !c.last_succeeded) {
      fail(phase + ": " + std::to_string(c.succeeded) + " of " + std::to_string(count) +
           " workflows succeeded (" + std::to_string(c.failed) + " failed or rejected)");
      return std::nullopt;
    }
    const double s = seconds_between(*c.first_started, *c.last_succeeded);
    return static_cast<double>(count) / std::max(s, 1e-3);
  }


  // ------------------------------------------------------------ Postgres

  // Stock: what a PostgreSQL 15 server does as shipped, as users run it (and
  // as a managed service does, whose server settings they cannot change).
  // Tuned: TempPostgres's own settings, as the tests run.
  static constexpr const char* kStockSettings[] = {
      "fsync=on", "synchronous_commit=on", "full_page_writes=on", "autovacuum_naptime=60s",
      "shared_buffers=128MB"};

  std::vector<std::string> postgres_settings() const {
    std::vector<std::string> settings;
    if (options_.postgres_profile == "stock") {
      settings.assign(std::begin(kStockSettings), std::end(kStockSettings));
    }
    if (options_.pg_stats) {
      settings.push_back("shared_preload_libraries=pg_stat_statements");
      settings.push_back("track_io_timing=on");
    }
    return settings;
  }

  std::string postgres_profile_line() const {
    if (options_.postgres_profile == "stock") {
      return "stock (fsync=on, synchronous_commit=on, full_page_writes=on, "
             "autovacuum_naptime=60s, shared_buffers=128MB)";
    }
    return "tuned (fsync=off, synchronous_commit=off, full_page_writes=off, "
           "autovacuum_naptime=5s, shared_buffers=32MB): NOT a durable server";
  }

  pqxx::result query(const std::string& sql) {
    pqxx::connection c(stack_->postgres().url());
    pqxx::nontransaction tx(c);
    return tx.exec(sql);
  }

  static std::string one_line(std::string text, size_t max) {
    std::string out;
    for (char ch : text) {
      if (std::isspace(static_cast<unsigned char>(ch))) {
        if (!out.empty() && out.back() != ' ') out += ' ';
      } else {
        out += ch;
      }
    }
    return out.size() > max ? out.substr(0, max - 3) + "..." : out;
  }

  // Rows deleted or updated away and not yet vacuumed, per hot table.
  std::string dead_rows() {
    std::string out;
    try {
      for (const auto& row : query(
               "SELECT relname, n_dead_tup, n_live_tup FROM pg_stat_user_tables"
               " WHERE relname IN ('effects', 'outbox', 'workflows', 'steps', 'input_offsets')"
               " ORDER BY relname")) {
        if (!out.empty()) out += ", ";
        out += row[0].as<std::string>() + " " + row[1].as<std::string>() + " dead/" +
               row[2].as<std::string>() + " live";
      }
    } catch (const std::exception& e) {
      return std::string("? (") + e.what() + ")";
    }
    return out;
  }

  void start_pg_stats() {
    if (!options_.pg_stats) return;
    try {
      query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
      query("SELECT pg_stat_statements_reset()");
    } catch (const std::exception& e) {
      std::cout << "    pg_stat_statements unavailable: " << e.what() << "\n";
    }
  }

  void explain(const std::string& title, const std::string& sql) {
    std::cout << "\n" << title << "\n";
    try {
      pqxx::connection c(stack_->postgres().url());
      pqxx::work tx(c);  // rolled back: the claim leases nothing
      tx.exec("SET enable_hashjoin = off; SET enable_mergejoin = off; SET enable_seqscan = off;"
              " SET jit = off");
      for (const auto& row : tx.exec("EXPLAIN (ANALYZE, BUFFERS) " + sql)) {
        std::cout << "    " << row[0].as<std::string>() << "\n";
      }
    } catch (const std::exception& e) {
      std::cout << "    not available: " << e.what() << "\n";
    }
  }

  static std::string with_params(std::string sql, const std::vector<std::string>& values) {
    for (size_t i = values.size(); i >= 1; --i) {  // $10 before $1
      const std::string param = "$" + std::to_string(i);
      for (size_t at = sql.find(param); at != std::string::npos; at = sql.find(param, at)) {
        sql.replace(at, param.size(), values[i - 1]);
        at += values[i - 1].size();
      }
    }
    return sql;
  }

  // Where Postgres spent its time over the measures, and how the hot reads
  // run on the tables as the load left them (docs/PERFORMANCE.md).
  void report_pg_stats() {
    if (!options_.pg_stats) return;
    std::cout << "\nPostgres, top statements by total time (pg_stat_statements, since the daemon"
                 " started):\n";
    try {
      std::cout << "    calls | total ms | mean ms | rows/call | blocks/call | statement\n";
      for (const auto& row : query(
               "SELECT calls, round(total_exec_time), round(mean_exec_time::numeric, 3),"
               " round(rows::numeric / greatest(calls, 1), 1),"
               " round((shared_blks_hit + shared_blks_read)::numeric / greatest(calls, 1), 1),"
               " coalesce((SELECT string_agg(m[1], '') FROM regexp_matches(query, 'w([a-z]) AS \\(', 'g') m), '') || ' ' || query FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database"
               " WHERE datname = current_database())"
               " ORDER BY total_exec_time DESC LIMIT 15")) {
        std::cout << "    " << row[0].c_str() << " | " << row[1].c_str() << " | "
                  << row[2].c_str() << " | " << row[3].c_str() << " | " << row[4].c_str()
                  << " | " << one_line(row[5].as<std::string>(), 160) << "\n";
      }
      for (const auto& row : query(
               "SELECT sum(total_exec_time)::bigint, sum(calls) FROM pg_stat_statements")) {
        std::cout << "    all statements: " << row[0].c_str() << " ms in " << row[1].c_str()
                  << " calls\n";
      }
    } catch (const std::exception& e) {
      std::cout << "    not available: " << e.what() << "\n";
    }
    std::cout << "dead rows now: " << dead_rows() << "\n";
    const std::string now = std::to_string(to_epoch_ms(now_ms()));
    const std::string lease = std::to_string(to_epoch_ms(now_ms()) + 30000);
    explain("the claim of due effects (rolled back):",
            with_params(store_detail::kClaimDueEffects, {"'bench-explain'", now, lease, "8"}));
    explain("the outbox drain's read from a cursor at 0 (a drainer's first read):",
            with_params(store_detail::kDrainOutbox,
                        {"1000", "'{}'", "'{}'", "0",
                         std::to_string(store_detail::kOutboxRoundBytes)}));
  }

  // ------------------------------------------------------------ long run

  // `minutes` of one-step workflows at half the peak rate: per minute, the
  // workflows that finished and the dead rows of the hot tables, so that a
  // slowdown as tables bloat shows.
  bool measure_long_run(double peak) {
    const int32_t minutes = options_.long_run_minutes;
    if (minutes <= 0) return true;
    settle();
    const double rate = std::max(peak / 2, 1.0);
    step("long run: " + std::to_string(minutes) + " min of one-step workflows at " +
         fixed(rate, 0) + "/s (half the throughput measure's rate), starts and job events in " +
         std::to_string(kBatchLingerMs) + " ms produce batches");
    std::atomic<bool> stop{false};
    std::atomic<int64_t> produced{0};
    Status produce_error = ok_status();
    const auto t0 = SteadyClock::now();
    std::thread producer([&] {
      for (int64_t i = 1; !stop && !g_bench_interrupted; ++i) {
        std::this_thread::sleep_until(
            t0 + std::chrono::duration_cast<SteadyClock::duration>(
                     std::chrono::duration<double>(static_cast<double>(i - 1) / rate)));
        if (stop) break;
        const std::string id = workflow_id("lr", i);
        Status s = long_run_commands_->produce_async(
            {stack_->topics().commands, id, start_command(id, "bench_one")});
        if (!s) {
          produce_error = s;
          return;
        }
        produced = i;
      }
    });
    std::vector<int64_t> per_minute;
    std::vector<std::string> dead;
    int64_t before = 0;
    for (int32_t m = 1; m <= minutes && !g_bench_interrupted; ++m) {
      const auto until = t0 + std::chrono::minutes(m);
      while (SteadyClock::now() < until && !g_bench_interrupted && daemon_->alive()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      const int64_t succeeded = watch_->counts("lr").succeeded;
      per_minute.push_back(succeeded - before);
      before = succeeded;
      dead.push_back(dead_rows());
      std::cout << "    minute " << m << ": " << per_minute.back() << " workflows ("
                << fixed(static_cast<double>(per_minute.back()) / 60, 0) << "/s); dead rows: "
                << dead.back() << "\n"
                << std::flush;
    }
    stop = true;
    producer.join();
    if (!produce_error) return fail("cannot produce a start command: " + produce_error.error().message);
    if (!wait_succeeded("lr", produced)) {
      daemon_alive();
      return false;
    }
    if (per_minute.size() < static_cast<size_t>(minutes)) return fail("long run interrupted");
    std::string counts;
    for (int64_t n : per_minute) counts += (counts.empty() ? "" : ", ") + std::to_string(n);
    const double ratio = per_minute.front() > 0 ? static_cast<double>(per_minute.back()) /
                                                      static_cast<double>(per_minute.front())
                                                : 0;
    rows_.push_back({"long run: one-step workflows at " + fixed(rate, 0) + "/s for " +
                         std::to_string(minutes) + " min, finished per minute",
                     counts, "last minute >= 90% of the first",
                     fixed(100 * ratio, 0) + "% " + (ratio >= 0.9 ? "PASS" : "FAIL")});
    rows_.push_back({"long run: dead rows after minute 1 / minute " + std::to_string(minutes),
                     dead.front() + " / " + dead.back(), "(flat: vacuum keeps up)", ""});
    return true;
  }

  // ------------------------------------------------------------ measures

  // How long joining an empty consumer group takes on this cluster, for any
  // client: librdkafka's mock coordinator holds the first join for 3 s, as a
  // broker's group.initial.rebalance.delay.ms (default 3 s) does. Part of
  // every restart below, and not brickwork's own.
  std::optional<double> measure_group_join() {
    step("Kafka: joining an empty consumer group (the floor under a restart)");
    KafkaConfig config = kafka_;
    config.group = "bench-join-floor";
    const auto t0 = SteadyClock::now();
    auto consumer = KafkaConsumer::create(config, {stack_->topics().commands}, "bench-join-floor");
    if (!consumer) return std::nullopt;
    while ((*consumer)->assigned_partitions() == 0 && seconds_since(t0) < 60) {
      (void)(*consumer)->poll_batch(1, Duration(10));
    }
    const double took = seconds_since(t0);
    (*consumer)->close();
    if ((*consumer)->assigned_partitions() == 0 && took >= 60) return std::nullopt;
    std::cout << "    " << fixed(took, 2) << " s\n";
    return took;
  }

  bool measure_all() {
    join_floor_ = measure_group_join();
    const double transitions = measure_pgbench();
    rows_.push_back({"pgbench: 10 x (UPDATE 1 row + INSERT 1 outbox row)/tx, 4 clients",
                     transitions > 0 ? fixed(transitions, 0) + " transitions/s" : "not run",
                     "(the yardstick)", ""});
    start_pg_stats();
    bool ok = measure_throughput(transitions);
    ok = ok && measure_latency();
    std::optional<double> idle_rate;
    if (ok) idle_rate = measure_in_flight(0, std::nullopt);
    ok = ok && idle_rate.has_value();
    for (int64_t w : options_.waiting) {
      if (!ok) break;
      ok = measure_in_flight(w, idle_rate).has_value();
    }
    // Last: it leaves hundreds of thousands of finished workflows behind,
    // and the intake and restart rows would measure that database instead.
    ok = ok && measure_long_run(throughput_rate_);
    report_pg_stats();
    ok = ok && measure_purge();
    return ok && transitions > 0;
  }

  // Raw Postgres batched transitions/s on the same server: the yardstick.
  double measure_pgbench() {
    step("pgbench (" + std::to_string(options_.pgbench_seconds) + " s, 4 clients)");
    const std::string db = "bench_pgbench";
    try {
      {
        pqxx::connection c(stack_->postgres().url());
        pqxx::nontransaction tx(c);
        tx.exec("CREATE DATABASE " + db);
      }
      pqxx::connection c(stack_->postgres().url(db));
      pqxx::work tx(c);
      tx.exec(
          "CREATE TABLE bench_steps (id integer PRIMARY KEY, status text NOT NULL, "
          "version bigint NOT NULL, updated_at timestamptz NOT NULL)");
      tx.exec(
          "INSERT INTO bench_steps SELECT g, 'waiting', 0, now() FROM generate_series(1, 100000) g");
      tx.exec(
          "CREATE TABLE bench_outbox (id bigserial PRIMARY KEY, step_id integer NOT NULL, "
          "payload text NOT NULL, at timestamptz NOT NULL DEFAULT now())");
      tx.commit();
    } catch (const std::exception& e) {
      fail(std::string("pgbench set-up: ") + e.what());
      return 0;
    }
    const fs::path script = dir_ / "transitions.sql";
    {
      std::ofstream out(script);
      for (int i = 1; i <= 10; ++i) out << "\\set s" << i << " random(1, 100000)\n";
      out << "BEGIN;\n";
      for (int i = 1; i <= 10; ++i) {
        out << "UPDATE bench_steps SET status = 'succeeded', version = version + 1, updated_at = "
               "now() WHERE id = :s"
            << i << ";\n"
            << "INSERT INTO bench_outbox (step_id, payload) VALUES (:s" << i
            << ", '{\"v\": 1, \"type\": \"step_succeeded\", \"workflow_id\": \"bench-' || :s" << i
            << " || '\", \"step\": \"run\", \"seq\": 4, \"attempt\": 1, \"output\": {}}');\n";
      }
      out << "END;\n";
    }
    const std::string command = stack_->postgres().bindir() + "/pgbench -n -c 4 -j 2 -T " +
                                std::to_string(options_.pgbench_seconds) + " -f '" +
                                script.string() + "' '" + stack_->postgres().url(db) + "' 2>&1";
    std::string output;
    if (FILE* p = ::popen(command.c_str(), "r")) {
      char buf[4096];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) output.append(buf, n);
      ::pclose(p);
    }
    std::smatch m;
    if (!std::regex_search(output, m, std::regex(R"(tps = ([0-9.]+))"))) {
      fail("pgbench: no result in its output:\n" + output);
      return 0;
    }
    const double tps = std::stod(m[1]);
    std::cout << "    " << fixed(tps, 0) << " transactions/s = " << fixed(tps * 10, 0)
              << " transitions/s\n";
    return tps * 10;
  }

  bool measure_throughput(double transitions) {
    const int64_t n = options_.workflows;
    step("throughput: " + std::to_string(n) + " one-step workflows queued, then the daemon starts");
    Status s = produce_starts("tp", "bench_one", 1, n);
    if (!s) return fail("cannot produce start commands: " + s.error().message);
    start_daemon();
    const auto exec = daemon_->started();
    auto rate = wait_succeeded("tp", n);
    if (!rate) {
      daemon_alive();
      return false;
    }
    const PhaseCounts c = watch_->counts("tp");
    throughput_rate_ = *rate;
    const double inputs = *rate * 2;
    std::cout << "    " << fixed(*rate, 0) << " workflows/s; first workflow_started "
              << fixed(seconds_between(exec, *c.first_started), 2) << " s after exec\n";
    const double share = transitions > 0 ? inputs / transitions : 0;
    rows_.push_back(
        {"throughput: one-step run_job workflows, " + thousands(n) + " queued before start",
         fixed(*rate, 0) + " workflows/s = " + fixed(inputs, 0) + " inputs/s",
         ">= 50% of pgbench transitions/s" +
             (transitions > 0 ? " (" + fixed(0.5 * transitions, 0) + " inputs/s)" : ""),
         transitions > 0 ? fixed(100 * share, 1) + "% " + (share >= 0.5 ? "PASS" : "FAIL") : "?"});
    return true;
  }

  // Each measure starts from a quiet server: the one before leaves
  // autovacuum cleaning up after it for a few seconds, which would be
  // counted against the next. Waits (at most 20 s) until no autovacuum
  // worker has run for half a second.
  void settle() {
    try {
      pqxx::connection c(stack_->postgres().url());
      const auto limit = SteadyClock::now() + std::chrono::seconds(20);
      int quiet = 0;
      while (quiet < 5 && SteadyClock::now() < limit) {
        pqxx::nontransaction q(c);
        const bool vacuuming =
            q.exec("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")[0][0]
                .as<int>() > 0;
        quiet = vacuuming ? 0 : quiet + 1;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    } catch (const std::exception&) {
      // Only a pause: a measure runs anyway.
    }
  }

  bool measure_latency() {
    settle();
    const double rate = options_.latency_rate;
    const auto count = static_cast<int64_t>(rate * options_.latency_seconds);
    step("latency: " + std::to_string(count) + " two-step workflows at " + fixed(rate, 0) + "/s");
    const pid_t daemon = daemon_ ? daemon_->pid() : -1;
    const CpuSample cpu_start = cpu_sample(daemon);
    CpuSample cpu_middle = cpu_start;
    double middle_at = 0;
    const auto t0 = SteadyClock::now();
    for (int64_t i = 1; i <= count && !g_bench_interrupted; ++i) {
      if (i == count / 2) {
        cpu_middle = cpu_sample(daemon);
        middle_at = seconds_since(t0);
      }
      // Paced against the start, so a slow produce call does not lower the rate.
      std::this_thread::sleep_until(
          t0 + std::chrono::duration_cast<SteadyClock::duration>(
                   std::chrono::duration<double>(static_cast<double>(i - 1) / rate)));
      const std::string id = workflow_id("lat", i);
      Status s = commands_->produce_async(
          {stack_->topics().commands, id, start_command(id, "bench_two")});
      if (!s) return fail("cannot produce a start command: " + s.error().message);
    }
    const double sent_in = seconds_since(t0);
    const CpuSample cpu_end = cpu_sample(daemon);
    if (!wait_succeeded("lat", count)) {
      daemon_alive();
      return false;
    }
    // Each workflow's latency (ms) and its event's second in the measure.
    std::vector<std::pair<double, double>> timed;
    for (int64_t i = 1; i <= count; ++i) {
      const std::string id = workflow_id("lat", i);
      auto event = runs_.event_time(id + "/first");
      auto run = runs_.run_time(id + "/second");
      if (!event || !run) continue;
      timed.emplace_back(1000.0 * seconds_between(*event, *run), seconds_between(t0, *event));
    }
    if (timed.empty()) return fail("latency: no workflow had both times");
    std::sort(timed.begin(), timed.end());
    auto pct = [&](double p) {
      return timed[std::min(timed.size() - 1,
                            static_cast<size_t>(p * static_cast<double>(timed.size())))]
          .first;
    };
    const double max_ms = timed.back().first;
    const double achieved = static_cast<double>(count) / sent_in;
    std::cout << "    p50 " << fixed(pct(0.5), 1) << " ms, p99 " << fixed(pct(0.99), 1)
              << " ms, max " << fixed(max_ms, 1) << " ms over " << timed.size() << " workflows\n";
    // Whether the slowest 1% came together (a stall: one thing held many
    // workflows at once) or spread over the measure (queueing on busy cores).
    const size_t tail = std::max<size_t>(1, timed.size() / 100);
    std::map<int64_t, int> per_window;  // 100 ms windows by their start
    for (size_t i = timed.size() - tail; i < timed.size(); ++i) {
      ++per_window[static_cast<int64_t>(timed[i].second * 10)];
    }
    const auto fullest = std::max_element(
        per_window.begin(), per_window.end(),
        [](const auto& a, const auto& b) { return a.second < b.second; });
    std::cout << "    the slowest 1% (" << tail << ") in " << per_window.size()
              << " windows of 100 ms, at most " << fullest->second << " in one (at "
              << fixed(static_cast<double>(fullest->first) / 10, 1) << " s)\n";
    // The machine is shared by the daemon, Postgres and the harness: the
    // mock brokers find a fetch's offset by walking the partition's produce
    // batches, so their share grows as the measure adds batches.
    std::cout << "    CPU, first half: " << cpu_shares(cpu_start, cpu_middle, middle_at)
              << "\n    CPU, second half: "
              << cpu_shares(cpu_middle, cpu_end, sent_in - middle_at) << "\n";
    rows_.push_back({"completion event -> next step's run-now, " + fixed(achieved, 0) +
                         " two-step workflows/s (" + fixed(3 * achieved, 0) + " input events/s)",
                     "p50 " + fixed(pct(0.5), 1) + " ms, p99 " + fixed(pct(0.99), 1) +
                         " ms, max " + fixed(max_ms, 1) + " ms",
                     "p99 < 25 ms at 1,000 input events/s",
                     pct(0.99) < 25 ? "PASS" : "FAIL"});
    return true;
  }

  // The server's checkpoints so far (timed and requested): a checkpoint
  // inside a measure writes and syncs what the measures before it left
  // dirty, which on this machine's disk slows every commit meanwhile.
  std::optional<int64_t> checkpoints() {
    try {
      pqxx::connection c(stack_->postgres().url());
      pqxx::nontransaction q(c);
      return q.exec("SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")[0][0]
          .as<int64_t>();
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }

  // options_.intake one-step workflows of `phase`: their rate.
  std::optional<double> intake(const std::string& phase) {
    const auto checkpoints_before = checkpoints();
    Status s = produce_starts(phase, "bench_one", 1, options_.intake);
    if (!s) {
      fail("cannot produce start commands: " + s.error().message);
      return std::nullopt;
    }
    auto rate = wait_succeeded(phase, options_.intake);
    if (!rate) daemon_alive();
    const auto checkpoints_after = checkpoints();
    if (checkpoints_before && checkpoints_after && *checkpoints_after > *checkpoints_before) {
      std::cout << "    (" << *checkpoints_after - *checkpoints_before
                << " checkpoint(s) of the server ran during it)\n";
    }
    return rate;
  }

  // Intake while retention purges many finished workflows (bench_purge.cpp).
  bool measure_purge() {
    if (options_.purge <= 0) return true;
    std::string error;
    auto m = measure_intake_while_purging(
        stack_->postgres().url(), options_.purge, 500,
        {[this](const std::string& phase) { return intake(phase); }, [this] { settle(); }},
        error);
    if (!m) return error.empty() ? false : fail(error);
    for (auto& [measure, value, required, verdict] : purge_rows(*m)) {
      rows_.push_back({measure, value, required, verdict});
    }
    return true;
  }

  // With `waiting` workflows waiting on long runs: intake of new one-step
  // workflows, resident memory, and restart to a new workflow's run-now.
  // Returns the intake rate.
  std::optional<double> measure_in_flight(int64_t waiting, std::optional<double> idle_rate) {
    const std::string w = thousands(waiting);
    if (waiting > waiting_now_) {
      step("bringing the waiting workflows to " + std::to_string(waiting));
      const auto t0 = SteadyClock::now();
      Status s = produce_starts("wait", "bench_wait", waiting_now_ + 1, waiting - waiting_now_);
      if (!s) {
        fail("cannot produce start commands: " + s.error().message);
        return std::nullopt;
      }
      const bool all = watch_->wait_for(
          "wait",
          [&](const PhaseCounts& c) { return c.waiting >= waiting || !daemon_->alive(); },
          limit_for(waiting - waiting_now_));
      if (!all || !daemon_alive()) {
        fail(std::to_string(watch_->counts("wait").waiting) + " of " + std::to_string(waiting) +
             " workflows waiting in time");
        return std::nullopt;
      }
      std::cout << "    " << waiting - waiting_now_ << " more waiting in "
                << fixed(seconds_since(t0), 1) << " s ("
                << fixed(static_cast<double>(waiting - waiting_now_) / seconds_since(t0), 0)
                << " workflows/s to their run)\n";
      waiting_now_ = waiting;
    }

    const std::string phase = "in" + std::to_string(waiting);
    settle();
    step("intake: " + std::to_string(options_.intake) + " one-step workflows with " +
         std::to_string(waiting) + " waiting");
    auto rate = intake(phase);
    if (!rate) return std::nullopt;
    std::cout << "    " << fixed(*rate, 0) << " workflows/s\n";
    if (idle_rate) {
      const double ratio = *rate / *idle_rate;
      rows_.push_back({"intake: one-step workflows while " + w + " wait on runs",
                       fixed(*rate, 0) + " workflows/s",
                       "within 20% of the rate with none waiting (" + fixed(0.8 * *idle_rate, 0) +
                           "/s)",
                       fixed(100 * ratio, 0) + "% " + (ratio >= 0.8 ? "PASS" : "FAIL")});
    } else {
      rows_.push_back({"intake: one-step workflows while 0 wait on runs",
                       fixed(*rate, 0) + " workflows/s", "(reference for the rows below)", ""});
    }

    const auto rss = daemon_->rss_mib();
    rows_.push_back({"resident memory (VmRSS), " + w + " waiting",
                     rss ? fixed(*rss, 1) + " MiB" : "?", "< 64 MB with 100k waiting",
                     !rss ? "?"
                     : waiting < 100000 ? std::string(*rss < 64 ? "under" : "over") + " 64 MB"
                                        : std::string(*rss < 64 ? "PASS" : "FAIL")});

    step("restart with " + std::to_string(waiting) + " waiting");
    const auto stopped = daemon_->terminate(std::chrono::seconds(60));
    start_daemon();
    const std::string id = workflow_id("rs" + std::to_string(waiting), 1);
    Status s = commands_->produce_and_wait(
        {{stack_->topics().commands, id, start_command(id, "bench_one")}}, Duration(30000));
    if (!s) {
      fail("cannot produce a start command: " + s.error().message);
      return std::nullopt;
    }
    const auto deadline = SteadyClock::now() + std::chrono::seconds(120);
    std::optional<SteadyClock::time_point> run;
    while (!(run = runs_.run_time(id + "/run")) && SteadyClock::now() < deadline &&
           daemon_->alive() && !g_bench_interrupted) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!run) {
      fail("restart: the new workflow's run was not created within 120 s");
      daemon_alive();
      return std::nullopt;
    }
    const double restart = seconds_between(daemon_->started(), *run);
    // The part spent waiting for the group coordinator to hand out the
    // partitions (from subscribing to the assignment, in the daemon's log):
    // the cluster's, not brickwork's. What the daemon starts meanwhile (its
    // call threads, recorders, outbox) is not on the way to the run-now.
    const std::string log = daemon_log(daemons_started_);
    auto subscribed = logged_at(log, "kafka: joining group");
    if (!subscribed) subscribed = logged_at(log, "started as");  // an older daemon
    const auto assigned = logged_at(log, "kafka: assigned");
    std::optional<double> coordinator;
    if (subscribed && assigned) coordinator = (*assigned - *subscribed).count() / 1000.0;
    std::cout << "    SIGTERM to exit " << (stopped ? fixed(*stopped, 2) + " s" : "timed out")
              << "; exec to the new workflow's run-now " << fixed(restart, 2) << " s"
              << (coordinator ? ", of which waiting for partitions " + fixed(*coordinator, 2) +
                                    " s, brickwork's own " + fixed(restart - *coordinator, 2) + " s"
                              : std::string())
              << "\n";
    rows_.push_back({"restart (exec) to a new workflow's run-now, " + w + " waiting",
                     fixed(restart, 2) + " s (" +
                         (coordinator ? "brickwork's own " + fixed(restart - *coordinator, 2) +
                                            " s, the coordinator's wait for partitions " +
                                            fixed(*coordinator, 2) + " s; "
                                      : std::string()) +
                         "SIGTERM to exit " + (stopped ? fixed(*stopped, 2) + " s" : "timed out") +
                         (join_floor_ ? "; an empty group join alone " + fixed(*join_floor_, 2) + " s" : "") +
                         ")",
                     "brickwork's own < 0.2 s with 100k waiting",
                     !coordinator ? std::string("?")
                     : waiting < 100000
                         ? std::string(restart - *coordinator < 0.2 ? "under" : "over") + " 0.2 s"
                         : std::string(restart - *coordinator < 0.2 ? "PASS" : "FAIL")});
    return rate;
  }

  BenchOptions options_;
  int32_t output_partitions_ = 0;  // of the status and dead-letter topics
  fs::path dir_;
  std::string config_path_;
  std::unique_ptr<LocalStack> stack_;
  KafkaConfig kafka_;
  std::unique_ptr<KafkaProducer> events_;
  std::unique_ptr<KafkaProducer> batched_events_;
  std::atomic<bool> at_once_used_{false};
  std::unique_ptr<KafkaProducer> commands_;
  std::unique_ptr<KafkaProducer> long_run_commands_;
  RunLog runs_;
  std::unique_ptr<StatusWatch> watch_;
  std::unique_ptr<DaemonProcess> daemon_;
  int daemons_started_ = 0;
  int64_t waiting_now_ = 0;
  std::optional<double> join_floor_;
  double throughput_rate_ = 0;  // workflows/s of the throughput measure
  std::vector<Row> rows_;
};

}  // namespace

int run_bench(const BenchOptions& given) {
  setup_logging("text", "warn");
  BenchOptions options = given;
  if (options.smoke) {
    options.workflows = 200;
    options.waiting = {500};
    options.intake = 200;
    options.latency_rate = 100;
    options.latency_seconds = 2;
    options.pgbench_seconds = 2;
    options.purge = 2000;
  }
  if (options.daemon_binary.empty()) {
    std::error_code ec;
    options.daemon_binary = fs::read_symlink("/proc/self/exe", ec).string();
  }
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGINT, on_bench_signal);
  std::signal(SIGTERM, on_bench_signal);
  return Bench(std::move(options)).run();
}

}  // namespace brickwork
