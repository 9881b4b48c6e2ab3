// Client-side limits against a workspace that limits each API (the
// simulator's pace: latency, 429 + Retry-After past a per-API rate).
#include "tests/integration/harness.hpp"

namespace brickwork::testing {
namespace {

class Limits : public EndToEndTest {
 protected:
  void start_paced_stack(SimulatorPace pace, std::map<int64_t, SimulatedJob> jobs) {
    LocalStackOptions options;
    options.simulator.jobs = std::move(jobs);
    options.simulator.pace = std::move(pace);
    auto stack = LocalStack::start(options);
    ASSERT_TRUE(stack) << stack.error().message;
    stack_ = std::move(*stack);
    dir_ = std::filesystem::temp_directory_path() /
           ("brickwork-e2e-" + std::to_string(getpid()) + "-limits");
    std::filesystem::create_directories(dir_);
  }

  // Starts `n` one-step workflows and waits until all have succeeded.
  void run_workflows(int n, const std::string& prefix) {
    for (int i = 0; i < n; ++i) start_workflow(prefix + std::to_string(i), "one", {});
    ASSERT_TRUE(eventually(
        [&] {
          for (int i = 0; i < n; ++i) {
            auto w = workflow(prefix + std::to_string(i));
            if (!w || w->status != WorkflowStatus::kSucceeded) return false;
          }
          return true;
        },
        120s));
  }
};

constexpr const char* kLimitedOneStep = R"(  one:
    steps:
      - name: run
        run_job: {job_id: 7}
)";

// A workspace allowing run-now 20/s and runs/get 100/s, each call taking
// 50 ms: eight workers could send 160 run-now a second. The default client
// limit (15/s) keeps them under the workspace's, so hardly any is refused;
// before, about one in four came back 429.
TEST_F(Limits, RunNowUnderTheWorkspaceLimitIsRarelyThrottled) {
  SimulatorPace pace;
  pace.latency_min = pace.latency_max = std::chrono::milliseconds(50);
  pace.limits = {{"jobs/run-now", 20}, {"jobs/runs/get", 100}};
  start_paced_stack(pace, {{7, sim_job("quick", 300)}});
  config(kLimitedOneStep);
  start_daemon();
  constexpr int kWorkflows = 120;
  run_workflows(kWorkflows, "lim-");
  const SimulatorStats stats = stack_->simulator().stats();
  const SimulatedApiCounts run_now = stats.apis.at("jobs/run-now");
  EXPECT_GE(run_now.calls, kWorkflows);
  EXPECT_LE(run_now.rate_limited * 10, run_now.calls)
      << run_now.rate_limited << " of " << run_now.calls << " run-now calls answered 429";
  EXPECT_EQ(stats.runs_created, kWorkflows);
}

// databricks.limits set above what the workspace allows: its 429s lower the
// client's rate and their Retry-After holds every run-now, so the 429s stay
// a few bursts instead of one per call, and every workflow still succeeds.
// Twice the workspace's rate, not more: until the first 429 is answered the
// client sends at the configured rate, and under ThreadSanitizer with other
// tests running that answer takes a few hundred ms (at 40/s, 18 refusals
// before the first one was seen).
TEST_F(Limits, AWorkspaceBelowTheConfiguredLimitLowersItThrough429s) {
  SimulatorPace pace;
  pace.latency_min = pace.latency_max = std::chrono::milliseconds(20);
  pace.limits = {{"jobs/run-now", 5}};
  start_paced_stack(pace, {{7, sim_job("quick", 300)}});
  config(kLimitedOneStep);
  // The configuration as a user writes it: limits under databricks:.
  const std::string databricks = "databricks:\n";
  const size_t at = yaml_.find(databricks);
  ASSERT_NE(at, std::string::npos);
  yaml_.insert(at + databricks.size(), "  limits: {\"jobs/run-now\": 10}\n");
  load_yaml();
  ASSERT_EQ(config_->databricks.limits.at("jobs/run-now"), 10);
  start_daemon();
  constexpr int kWorkflows = 40;
  run_workflows(kWorkflows, "over-");
  const SimulatedApiCounts run_now = stack_->simulator().stats().apis.at("jobs/run-now");
  // Without the pause and the decrease, calls sent at twice the workspace's
  // rate, each retried after its own Retry-After, are refused about as often
  // as accepted.
  EXPECT_GT(run_now.rate_limited, 0);
  EXPECT_LE(run_now.rate_limited * 3, run_now.calls)
      << run_now.rate_limited << " of " << run_now.calls << " run-now calls answered 429";
}

}  // namespace
}  // namespace brickwork::testing
