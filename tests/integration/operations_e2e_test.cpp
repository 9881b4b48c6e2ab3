// The operator's view (contract 10): /metrics, /healthz and /readyz on
// daemon.metrics_listen, the systemd watchdog fed only while every loop is
// alive, and logs that are JSON lines only, librdkafka's included; and a
// stopping daemon giving back the effects it was handed but had not begun.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <pqxx/pqxx>

#include "daemon/databricks/http.hpp"
#include "tests/integration/harness.hpp"

namespace brickwork::testing {
namespace {

constexpr const char* kOneJob = R"(  one_step:
    steps:
      - name: work
        run_job: {job_id: 101}
        poll_every: 2s
)";

struct Answer {
  int status = 0;
  std::string body;
};

const StepRegistry& registry_with_block_step();

class Operations : public EndToEndTest {
 protected:
  void use_block_step() { steps_ = &registry_with_block_step(); }
  // A `held` workflow (one `block` step) and `workflows`, on a daemon with
  // one call slot: while `held` blocks it, other effects wait handed over.
  void config_with_one_worker(const std::string& workflows,
                              std::chrono::seconds lease = std::chrono::seconds(30)) {
    config("  held:\n    steps:\n      - name: wait\n        block: {}\n" + workflows);
    auto one_worker = std::make_shared<Config>(*config_);
    one_worker->databricks.max_in_flight = 1;
    one_worker->daemon.lease = lease;
    config_ = one_worker;
  }

  // config(workflows) with JSON logs and the endpoint on `listen`.
  void config_with_endpoint(const std::string& workflows, const std::string& listen,
                            const std::string& log_level = "info") {
    config(workflows);
    const std::string text_logs = "  log_format: text\n";
    const size_t at = yaml_.find(text_logs);
    ASSERT_NE(at, std::string::npos);
    yaml_.replace(at, text_logs.size(),
                  "  log_format: json\n  log_level: " + log_level + "\n  metrics_listen: \"" +
                      listen + "\"\n");
    LoadOptions load;
    load.steps = steps_;
    auto loaded = load_config_from_string(yaml_, "e2e.yaml", load);
    ASSERT_TRUE(loaded) << loaded.error().message;
    config_ = std::make_shared<const Config>(std::move(*loaded));
  }

  Answer get(uint16_t port, const std::string& path) {
    http::Request request;
    request.url = "http://127.0.0.1:" + std::to_string(port) + path;
    request.timeout = 5s;
    auto response = http_.send(request);
    if (!response) return Answer{0, response.error().message};
    return Answer{response->status, response->body};
  }

  bool answers(uint16_t port, const std::string& path, int status,
               const std::string& contains = "") {
    const Answer a = get(port, path);
    return a.status == status && a.body.find(contains) != std::string::npos;
  }

  http::Client http_;
};

TEST_F(Operations, EndpointsServeTheSeriesAndReadinessFollowsPostgres) {
  start_stack({{101, sim_job("work", 300)}});
  config_with_endpoint(kOneJob, "127.0.0.1:0");
  DaemonOptions options;
  options.monitor_period = 200ms;
  auto& daemon = start_daemon("d1", options);
  const uint16_t port = daemon.daemon().ops_port();
  ASSERT_NE(port, 0);
  EXPECT_TRUE(answers(port, "/healthz", 200, "ok"));
  ASSERT_TRUE(eventually([&] { return answers(port, "/readyz", 200, "ready"); }));
  EXPECT_TRUE(answers(port, "/nothing", 404));

  start_workflow("ops-1", "one_step");
  send(config_->kafka.topics.commands, "junk", "not json");
  auto done = wait_terminal("ops-1");
  ASSERT_TRUE(done);
  ASSERT_EQ(done->status, WorkflowStatus::kSucceeded);
  const std::string commands = config_->kafka.topics.commands;
  const std::vector<std::string> expected = {
      "brickwork_inputs_total{result=\"applied\",topic=\"" + commands + "\"} 1",
      "brickwork_inputs_total{result=\"dead_letter\",topic=\"" + commands + "\"} 1",
      "brickwork_workflows_finished_total{state=\"succeeded\",workflow=\"one_step\"} 1",
      "brickwork_step_seconds_count{type=\"run_job\",workflow=\"one_step\"} 1",
      "brickwork_databricks_requests_total{code=\"200\",endpoint=\"jobs/run-now\",workspace=\"default\"} 1",
      "brickwork_databricks_request_seconds_count{endpoint=\"jobs/run-now\",workspace=\"default\"} 1",
      "brickwork_outbox_backlog 0",
      "brickwork_effects_due 0",
      "brickwork_intake_paused 0",
  };
  std::string metrics;
  // Lag comes with librdkafka's statistics, every 5 s.
  const bool all_there = eventually([&] {
    metrics = get(port, "/metrics").body;
    for (const auto& line : expected) {
      if (metrics.find("\n" + line + "\n") == std::string::npos) return false;
    }
    // A partition this member committed on: the others have no lag yet.
    return metrics.find("topic=\"" + commands + "\"} 0\n") != std::string::npos &&
           metrics.find("\nbrickwork_consumer_lag{partition=\"") != std::string::npos;
  }, 30s);
  EXPECT_TRUE(all_there) << metrics;
  for (const auto& line : expected) {
    EXPECT_NE(metrics.find("\n" + line + "\n"), std::string::npos) << line;
  }

  ASSERT_TRUE(stack_->postgres().stop());
  Answer not_ready;
  EXPECT_TRUE(eventually([&] {
    not_ready = get(port, "/readyz");
    return not_ready.status == 503;
  }));
  // The reason alone: Postgres's error text (host, port, role) goes only to the log.
  EXPECT_EQ(not_ready.body, "postgres unreachable\n");
  EXPECT_TRUE(answers(port, "/healthz", 200));  // waiting for Postgres is not being stuck
  {
    const Status restarted = stack_->postgres().start_again();
    ASSERT_TRUE(restarted.ok()) << restarted.error().message;
  }
  store_.reset();
  EXPECT_TRUE(eventually([&] { return answers(port, "/readyz", 200, "ready"); }, 60s));
}

// Blocks every effect worker that performs it until released: a loop stuck
// inside one iteration.
std::atomic<bool> g_release_blocked{false};
std::atomic<int> g_blocked_calls{0};  // executions begun

class BlockStep final : public StepType {
 public:
  std::string_view action_key() const override { return "block"; }
  Result<BoundActionPtr> compile(StepDefinition&) const override { return bind_nothing(); }
  Result<StepOutcome> execute(const StepContext&, StepServices&) const override {
    ++g_blocked_calls;
    const auto limit = std::chrono::steady_clock::now() + 120s;
    while (!g_release_blocked && std::chrono::steady_clock::now() < limit) {
      std::this_thread::sleep_for(20ms);
    }
    return StepOutcome{};
  }
};

// The built-in step types and `block`, for the test about to start.
const StepRegistry& registry_with_block_step() {
  static StepRegistry registry = [] {
    StepRegistry r = StepRegistry::with_builtin_types();
    r.add(std::make_unique<BlockStep>());
    return r;
  }();
  g_release_blocked = false;
  g_blocked_calls = 0;
  return registry;
}

// The systemd side of sd_notify: a datagram socket named by NOTIFY_SOCKET,
// read all the time as systemd does (a full socket would block the sender).
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    timeval tick{0, 50'000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick);
    reader_ = std::thread([this] {
      char buffer[4096];
      while (!stop_) {
        const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
        if (n > 0 && std::string_view(buffer, static_cast<size_t>(n)).find("WATCHDOG=1") !=
                         std::string_view::npos) {
          ++pings_;
        }
      }
    });
  }
  ~NotifySocket() {
    stop_ = true;
    reader_.join();
    close(fd_);
    std::filesystem::remove(path_);
  }
  // How many WATCHDOG=1 arrived since the last call.
  int watchdog_pings() { return pings_.exchange(0); }

 private:
  std::string path_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> pings_{0};
  std::thread reader_;
};

TEST_F(Operations, AStuckLoopFailsHealthzAndStarvesTheWatchdog) {
  use_block_step();
  start_stack({});
  config_with_endpoint("  stuck:\n    steps:\n      - name: wait\n        block: {}\n",
                       "127.0.0.1:0");
  // As systemd sets them for a Type=notify service with WatchdogSec=.
  NotifySocket notify((dir_ / "notify").string());
  setenv("NOTIFY_SOCKET", (dir_ / "notify").c_str(), 1);
  setenv("WATCHDOG_USEC", "400000", 1);
  setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), 1);
  DaemonOptions options;
  options.notify_systemd = true;
  options.stall_limit = 2s;
  auto& daemon = start_daemon("d1", options);
  const uint16_t port = daemon.daemon().ops_port();
  EXPECT_TRUE(eventually([&] { return notify.watchdog_pings() > 0; }, 10s));
  EXPECT_TRUE(answers(port, "/healthz", 200));
  ASSERT_TRUE(eventually([&] { return answers(port, "/readyz", 200); }, 60s));

  start_workflow("stuck-1", "stuck");
  EXPECT_TRUE(eventually([&] { return answers(port, "/healthz", 503, "loop effects/"); }, 30s));
  notify.watchdog_pings();  // what was sent before the verdict
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(notify.watchdog_pings(), 0);  // five intervals of 0.4 s without a ping

  g_release_blocked = true;
  EXPECT_TRUE(eventually([&] { return answers(port, "/healthz", 200, "ok"); }, 30s));
  EXPECT_TRUE(eventually([&] { return notify.watchdog_pings() > 0; }, 10s));
  auto done = wait_terminal("stuck-1");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  daemons_.clear();
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
  unsetenv("WATCHDOG_PID");
}

// Effects handed to a daemon's workers are leased to it as they are
// written. Stopping gives back those not begun, so the next daemon performs
// them at once instead of after their lease (a minute here).
TEST_F(Operations, SigtermGivesBackHandedEffectsSoTheNextDaemonRunsThemAtOnce) {
  use_block_step();
  start_stack({});
  config_with_one_worker("", 60s);
  auto& first = start_daemon("d1");

  start_workflow("held-1", "held");
  ASSERT_TRUE(eventually([] { return g_blocked_calls == 1; }));  // the only worker is busy
  for (int i = 2; i <= 4; ++i) start_workflow("held-" + std::to_string(i), "held");
  pqxx::connection db(config_->postgres.url);
  const auto leased = [&] {
    pqxx::nontransaction q(db);
    return q.exec("SELECT count(*) FROM effects WHERE lease_owner IS NOT NULL")[0][0].as<int>();
  };
  // All four are leased to d1 as written: no claim took them.
  ASSERT_TRUE(eventually([&] { return leased() == 4; }));

  std::thread stopping([&] { first.stop(); });
  std::this_thread::sleep_for(1s);  // the workers are asked to stop ...
  g_release_blocked = true;         // ... and the busy one finishes its effect
  stopping.join();
  EXPECT_EQ(g_blocked_calls, 1);
  EXPECT_EQ(leased(), 0);  // the three not begun were given back
  auto done = workflow("held-1");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);

  start_daemon("d2");
  for (int i = 2; i <= 4; ++i) {
    auto w = wait_terminal("held-" + std::to_string(i), 20s);  // well inside the lease
    ASSERT_TRUE(w);
    EXPECT_EQ(w->status, WorkflowStatus::kSucceeded) << "held-" << i;
  }
  EXPECT_EQ(g_blocked_calls, 4);  // each performed once
}

// A workflow canceled while its first effect waits in the handoff (its only
// worker busy) starts no run: the worker performs the effect with the state
// the cancel committed, not the one the start did.
TEST_F(Operations, ACancelWhileTheFirstEffectWaitsStartsNoRun) {
  use_block_step();
  start_stack({{101, sim_job("work", 300)}});
  config_with_one_worker(kOneJob);
  start_daemon("d1");

  start_workflow("busy", "held");
  ASSERT_TRUE(eventually([] { return g_blocked_calls == 1; }));  // the only worker is busy
  start_workflow("late", "one_step");
  send_command(json::object{{"type", "cancel"}, {"id", "late"}, {"reason", "changed my mind"}});
  auto canceled = wait_terminal("late", 30s);
  ASSERT_TRUE(canceled);
  EXPECT_EQ(canceled->status, WorkflowStatus::kCanceled);

  g_release_blocked = true;
  auto busy = wait_terminal("busy", 30s);
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->status, WorkflowStatus::kSucceeded);
  // The worker has taken and dropped late's effect by now (it came after busy's).
  ASSERT_TRUE(eventually([&] {
    pqxx::connection db(config_->postgres.url);
    pqxx::nontransaction q(db);
    return q.exec("SELECT count(*) FROM effects WHERE workflow_id = 'late' AND kind = 'execute'")[0][0]
               .as<int>() == 0;
  }));
  EXPECT_EQ(stack_->simulator().stats().runs_created, 0);
}

std::string field_of(const json::object& line, std::string_view key) {
  const json::value* v = line.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

uint16_t free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

TEST_F(Operations, ABrokerOutageLeavesOnlyJsonLinesInTheLog) {
  start_stack({{101, sim_job("work", 300)}});
  const uint16_t port = free_port();
  config_with_endpoint(kOneJob, "127.0.0.1:" + std::to_string(port), "debug");
  start_child_daemon("child");
  ASSERT_TRUE(eventually([&] { return answers(port, "/readyz", 200); }, 60s));
  for (int32_t b = 1; b <= stack_->kafka().broker_count(); ++b) {
    ASSERT_TRUE(stack_->kafka().set_broker_down(b));
  }
  std::this_thread::sleep_for(5s);
  for (int32_t b = 1; b <= stack_->kafka().broker_count(); ++b) {
    ASSERT_TRUE(stack_->kafka().set_broker_up(b));
  }
  start_workflow("outage-1", "one_step");
  auto done = wait_terminal("outage-1", 120s);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  EXPECT_EQ(children_.back()->terminate(), 0);

  std::ifstream in(dir_ / "child.log");
  std::string line;
  int lines = 0;
  int from_librdkafka = 0;
  int about_the_workflow = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    ++lines;
    boost::system::error_code ec;
    const json::value v = json::parse(line, ec);
    ASSERT_FALSE(ec) << "not a JSON line: " << line;
    ASSERT_TRUE(v.is_object()) << line;
    const json::object& o = v.as_object();
    EXPECT_TRUE(o.contains("level") && o.contains("msg")) << line;
    if (field_of(o, "source") == "librdkafka") ++from_librdkafka;
    if (field_of(o, "workflow_id") == "outage-1") {
      EXPECT_EQ(field_of(o, "step"), "work") << line;
      ++about_the_workflow;
    }
  }
  EXPECT_GT(lines, 0);
  EXPECT_GT(from_librdkafka, 0) << "the outage must have made librdkafka speak";
  EXPECT_GT(about_the_workflow, 0);
}

// The JSON lines of `log` about `workflow_id` at level warning.
std::vector<json::object> warnings_about(const std::filesystem::path& log,
                                         const std::string& workflow_id) {
  std::vector<json::object> found;
  std::ifstream in(log);
  for (std::string line; std::getline(in, line);) {
    boost::system::error_code ec;
    const json::value v = json::parse(line, ec);
    if (ec || !v.is_object()) continue;
    const json::object& o = v.as_object();
    if (field_of(o, "level") == "warning" && field_of(o, "workflow_id") == workflow_id) {
      found.push_back(o);
    }
  }
  return found;
}

// At log_level warn, a failed step, the workflow it failed and a canceled
// workflow each leave a warning line with workflow_id, step, run_id and
// error_code as fields: what an operator reading the journal looks for.
TEST_F(Operations, FailedAndCanceledWorkflowsAreLoggedAtWarning) {
  start_stack({{101, sim_job("work", 300, {}, "FAILED")},
               {102, sim_job("slow", 60000, {}, "SUCCESS", false)}});
  config_with_endpoint(R"(  failing:
    steps:
      - name: work
        run_job: {job_id: 101}
        poll_every: 1s
  slow:
    steps:
      - name: wait
        run_job: {job_id: 102}
)", "127.0.0.1:0", "warn");
  start_child_daemon("child");
  start_workflow("fail-1", "failing");
  start_workflow("cancel-1", "slow");
  auto failed = wait_terminal("fail-1", 120s);
  ASSERT_TRUE(failed);
  ASSERT_EQ(failed->status, WorkflowStatus::kFailed);
  const StepState& step = failed->steps[0];
  ASSERT_TRUE(step.error && step.run_id);
  ASSERT_TRUE(eventually([&] {
    auto w = workflow("cancel-1");
    return w && w->steps[0].status == StepStatus::kWaiting;
  }, 60s));
  send_command(json::object{{"type", "cancel"}, {"id", "cancel-1"}, {"reason", "not needed"}});
  auto canceled = wait_terminal("cancel-1", 60s);
  ASSERT_TRUE(canceled);
  ASSERT_EQ(canceled->status, WorkflowStatus::kCanceled);
  EXPECT_EQ(children_.back()->terminate(), 0);

  const auto failures = warnings_about(dir_ / "child.log", "fail-1");
  int step_lines = 0;
  int workflow_lines = 0;
  for (const json::object& line : failures) {
    const std::string msg = field_of(line, "msg");
    if (msg.rfind("step work failed", 0) == 0) {
      ++step_lines;
    } else if (msg.rfind("workflow failing failed at step work", 0) == 0) {
      ++workflow_lines;
    } else {
      continue;
    }
    EXPECT_EQ(field_of(line, "step"), "work") << json::serialize(line);
    EXPECT_EQ(line.if_contains("run_id") ? line.at("run_id") : json::value(),
              json::value(*step.run_id)) << json::serialize(line);
    EXPECT_EQ(field_of(line, "error_code"), step.error->code) << json::serialize(line);
  }
  EXPECT_EQ(step_lines, 1);
  EXPECT_EQ(workflow_lines, 1);

  const auto cancels = warnings_about(dir_ / "child.log", "cancel-1");
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(field_of(cancels[0], "error_code"), "canceled");
  EXPECT_NE(field_of(cancels[0], "msg").find("not needed"), std::string::npos);
}

}  // namespace
}  // namespace brickwork::testing
