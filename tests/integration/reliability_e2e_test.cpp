// Faults injected for real: Databricks answering 429/503, Postgres stopped,
// every Kafka broker down, daemons killed with SIGKILL, several daemons in
// one group. Each test asserts that nothing is lost and nothing is doubled.
#include <random>

#include "tests/integration/harness.hpp"

namespace brickwork::testing {
namespace {

constexpr const char* kOneStepPolledOften = R"(  one_step:
    steps:
      - name: work
        run_job: {job_id: 101}
        poll_every: 2s
)";

constexpr const char* kTwoStepsPolledOften = R"(  two_step:
    steps:
      - name: extract
        run_job: {job_id: 101}
        poll_every: 2s
      - name: transform
        run_job: {job_id: 102}
        poll_every: 2s
)";

class Reliability : public EndToEndTest {
 protected:
  // Every workflow succeeded, with exactly one run per step attempt and a
  // gap-free status sequence ending in workflow_succeeded.
  void expect_all_succeeded_once(const std::string& prefix, int count, size_t steps,
                                 std::chrono::seconds limit = 180s) {
    for (int i = 0; i < count; ++i) {
      const std::string id = prefix + std::to_string(i);
      auto done = wait_terminal(id, limit);
      ASSERT_TRUE(done) << id;
      ASSERT_EQ(done->status, WorkflowStatus::kSucceeded) << id;
    }
    // Counted per step, not per token: the simulator honours idempotency
    // tokens, so only a second run for the same step shows a duplicate.
    const auto runs = runs_per_step();
    EXPECT_EQ(runs.size(), steps * static_cast<size_t>(count));
    for (const auto& [key, n] : runs) EXPECT_EQ(n, 1) << key;
    // One read of the status topic for all of them; wait until the last
    // workflow_succeeded of each is published.
    std::map<std::string, std::vector<json::object>> events;
    auto all_published = [&] {
      events = all_status_events();
      for (int i = 0; i < count; ++i) {
        const auto types = event_types_of(events[prefix + std::to_string(i)], prefix);
        if (types.empty() || types.back() != "workflow_succeeded") return false;
      }
      return true;
    };
    ASSERT_TRUE(eventually(all_published, 90s));
    for (int i = 0; i < count; ++i) {
      const std::string id = prefix + std::to_string(i);
      const auto types = event_types_of(events[id], id);
      EXPECT_EQ(std::count(types.begin(), types.end(), "workflow_started"), 1) << id;
      EXPECT_EQ(std::count(types.begin(), types.end(), "step_succeeded"),
                static_cast<long>(steps)) << id;
    }
  }
};

TEST_F(Reliability, ThirtyPercentOfDatabricksCallsFailingStillSucceeds) {
  SimulatorFaults faults;
  faults.error_rate = 0.3;
  faults.statuses = {429, 503};
  faults.retry_after = Duration(0);
  start_stack({{101, sim_job("extract", 300)}, {102, sim_job("transform", 300)}}, faults);
  config(kTwoStepsPolledOften);
  start_daemon();
  for (int i = 0; i < 20; ++i) start_workflow("flaky-" + std::to_string(i), "two_step");
  expect_all_succeeded_once("flaky-", 20, 2);
  EXPECT_GT(stack_->simulator().stats().faults_injected, 0);
}

TEST_F(Reliability, PostgresStoppedMidLoadLosesAndDoublesNothing) {
  start_stack({{101, sim_job("extract", 800)}, {102, sim_job("transform", 800)}});
  config(kTwoStepsPolledOften);
  start_daemon();
  for (int i = 0; i < 30; ++i) start_workflow("pg-" + std::to_string(i), "two_step");
  ASSERT_TRUE(eventually([&] { return stack_->simulator().stats().runs_created >= 10; }, 60s));
  ASSERT_TRUE(stack_->postgres().stop());
  // Inputs keep arriving while Postgres is away: completions and new starts.
  for (int i = 30; i < 40; ++i) start_workflow("pg-" + std::to_string(i), "two_step");
  std::this_thread::sleep_for(4s);
  {
    const Status restarted = stack_->postgres().start_again();
    ASSERT_TRUE(restarted.ok()) << restarted.error().message;
  }
  store_.reset();
  expect_all_succeeded_once("pg-", 40, 2);
}

TEST_F(Reliability, AllKafkaBrokersDownAndUpLosesNothing) {
  start_stack({{101, sim_job("extract", 500)}, {102, sim_job("transform", 500)}});
  config(kTwoStepsPolledOften);
  start_daemon();
  for (int i = 0; i < 20; ++i) start_workflow("kafka-" + std::to_string(i), "two_step");
  ASSERT_TRUE(eventually([&] { return stack_->simulator().stats().runs_created >= 5; }, 60s));
  for (int32_t b = 1; b <= stack_->kafka().broker_count(); ++b) {
    ASSERT_TRUE(stack_->kafka().set_broker_down(b));
  }
  std::this_thread::sleep_for(5s);
  for (int32_t b = 1; b <= stack_->kafka().broker_count(); ++b) {
    ASSERT_TRUE(stack_->kafka().set_broker_up(b));
  }
  expect_all_succeeded_once("kafka-", 20, 2);
}

TEST_F(Reliability, RepeatedSigkillDuringTwoHundredWorkflows) {
  start_stack({{101, sim_job("work", 1000)}});
  config(kOneStepPolledOften);
  // Starts keep arriving while daemons die: each life gets a fresh batch of
  // 40 and is killed at a random moment soon after it has started one of
  // them, so every kill lands mid-run however slow the machine (a new daemon
  // first waits out the dead one's session timeout before it gets partitions).
  const int kWorkflows = 200;
  const int kLives = 5;
  const int kBatch = kWorkflows / kLives;
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> extra_ms(0, 2000);
  int kills = 0;
  for (int life = 0; life < kLives; ++life) {
    for (int i = life * kBatch; i < (life + 1) * kBatch; ++i) {
      start_workflow("sk-" + std::to_string(i), "one_step");
    }
    const auto runs_before = stack_->simulator().stats().runs_created;
    auto& child = start_child_daemon("life-" + std::to_string(life));
    ASSERT_TRUE(eventually([&] { return stack_->simulator().stats().runs_created > runs_before; },
                           120s))
        << "life " << life << " started no run";
    std::this_thread::sleep_for(std::chrono::milliseconds(extra_ms(rng)));
    child.kill_hard();
    ++kills;
  }
  WorkflowQuery succeeded;
  succeeded.state = WorkflowStatus::kSucceeded;
  auto finished = store().list_workflows(succeeded);
  std::cerr << "killed the daemon " << kills << " times; "
            << (finished ? finished->size() : 0)
            << " workflows had succeeded before the last kill\n";
  start_child_daemon("final");
  expect_all_succeeded_once("sk-", kWorkflows, 1);
  EXPECT_EQ(stack_->simulator().stats().runs_created, kWorkflows);
}

TEST_F(Reliability, ThreeDaemonsShareTheWorkAndSurviveOneKilled) {
  start_stack({{101, sim_job("extract", 600)}, {102, sim_job("transform", 600)}});
  config(kTwoStepsPolledOften);
  auto& a = start_child_daemon("a");
  start_child_daemon("b");
  start_child_daemon("c");
  (void)a;
  std::this_thread::sleep_for(3s);  // let the group settle
  for (int i = 0; i < 60; ++i) start_workflow("trio-" + std::to_string(i), "two_step");
  ASSERT_TRUE(eventually([&] { return stack_->simulator().stats().runs_created >= 20; }, 60s));
  children_.front()->kill_hard();
  expect_all_succeeded_once("trio-", 60, 2);
}

TEST_F(Reliability, CancelStopsTheRunAtDatabricks) {
  start_stack({{101, sim_job("extract", 30000, {}, "SUCCESS", false)}});
  config(kOneStepPolledOften);
  start_daemon();
  start_workflow("cancel-1", "one_step");
  ASSERT_TRUE(eventually([&] {
    auto w = workflow("cancel-1");
    return w && w->steps[0].status == StepStatus::kWaiting;
  }));
  const int64_t run_id = *workflow("cancel-1")->steps[0].run_id;
  send_command(json::object{{"type", "cancel"}, {"id", "cancel-1"}, {"reason", "user asked"}});
  auto done = wait_terminal("cancel-1");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kCanceled);
  ASSERT_TRUE(eventually([&] {
    auto run = stack_->simulator().run(run_id);
    return run && run->cancel_requested && run->result_state == "CANCELED";
  }));
  ASSERT_TRUE(eventually([&] {
    auto types = event_types("cancel-1");
    return !types.empty() && types.back() == "workflow_canceled";
  }));
  // Cancel of a finished workflow is a no-op.
  send_command(json::object{{"type", "cancel"}, {"id", "cancel-1"}});
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(event_types("cancel-1").back(), "workflow_canceled");
}

TEST_F(Reliability, StepTimeoutCancelsTheRunAndStartsAttemptTwo) {
  start_stack({{101, sim_job("slow", 60000, {}, "SUCCESS", false)}});
  config(R"(  timed:
    steps:
      - name: work
        run_job: {job_id: 101}
        poll_every: 500ms
        timeout: 1500ms
        retry: {max_attempts: 2, backoff: 200ms}
)");
  start_daemon();
  start_workflow("timeout-1", "timed");
  ASSERT_TRUE(eventually([&] { return stack_->simulator().stats().runs_created >= 1; }));
  // The second attempt's run is quick.
  stack_->simulator().set_job(101, sim_job("fast", 200, {{"ok", true}}));
  auto done = wait_terminal("timeout-1");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  EXPECT_EQ(done->steps[0].attempt, 2);
  const auto stats = stack_->simulator().stats();
  EXPECT_EQ(stats.runs_created, 2);
  EXPECT_GE(stats.cancel_calls, 1);
  ASSERT_TRUE(eventually([&] {
    auto types = event_types("timeout-1");
    return !types.empty() && types.back() == "workflow_succeeded";
  }));
  const auto types = event_types("timeout-1");
  EXPECT_EQ(std::count(types.begin(), types.end(), "step_retrying"), 1);
}

TEST_F(Reliability, RetryResumesAFailedWorkflowFromTheFailedStep) {
  start_stack({{101, sim_job("extract", 200, {{"rows", 1}})},
               {102, sim_job("transform", 200, {}, "FAILED")}});
  config(kTwoStepsPolledOften);
  start_daemon();
  start_workflow("retry-1", "two_step");
  auto failed = wait_terminal("retry-1");
  ASSERT_TRUE(failed);
  ASSERT_EQ(failed->status, WorkflowStatus::kFailed);
  stack_->simulator().set_job(102, sim_job("transform", 200));
  send_command(json::object{{"type", "retry"}, {"id", "retry-1"}});
  ASSERT_TRUE(eventually([&] {
    auto w = workflow("retry-1");
    return w && w->status == WorkflowStatus::kSucceeded;
  }, 60s));
  auto done = workflow("retry-1");
  EXPECT_EQ(done->steps[0].attempt, 1);  // the succeeded step was not run again
  EXPECT_EQ(done->steps[1].attempt, 2);
  EXPECT_EQ(stack_->simulator().stats().runs_created, 3);
  // Retry of a workflow that is not failed is rejected.
  send_command(json::object{{"type", "retry"}, {"id", "retry-1"}});
  ASSERT_TRUE(eventually([&] {
    for (const auto& e : status_events("retry-1")) {
      if (e.at("type") == "command_rejected" && e.at("reason") == "not_failed") return true;
    }
    return false;
  }));
}

TEST_F(Reliability, SigtermShutsDownCleanlyAndAnotherDaemonFinishes) {
  start_stack({{101, sim_job("work", 1500)}});
  config(kOneStepPolledOften);
  for (int i = 0; i < 10; ++i) start_workflow("term-" + std::to_string(i), "one_step");
  auto& first = start_child_daemon("first");
  ASSERT_TRUE(eventually([&] { return stack_->simulator().stats().runs_created >= 3; }, 60s));
  EXPECT_EQ(first.terminate(60s), 0);
  start_child_daemon("second");
  expect_all_succeeded_once("term-", 10, 1);
}

}  // namespace
}  // namespace brickwork::testing
