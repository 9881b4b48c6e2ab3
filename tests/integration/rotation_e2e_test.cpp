// Rotating callbacks.secret (docs/OPERATIONS.md): the old value moves to
// callbacks.previous_secrets and the daemon restarts. What the old secret made
// and is still in flight keeps working: a job's completion token, and the
// idempotency token of an attempt whose run-now is repeated after a crash.
#include <signal.h>

#include "daemon/core/tokens.hpp"
#include "tests/integration/harness.hpp"

namespace brickwork::testing {
namespace {

constexpr const char* kRotatedSecret = "the-rotated-callback-secret-0123456789abcdef";

class SecretRotation : public EndToEndTest {};

// The first daemon dies as Databricks creates the run, before it can record
// the run; the second runs with the rotated secret and repeats the run-now.
// The attempt keeps the idempotency token it started with, so the simulator
// (like Databricks) returns the same run instead of starting a second one.
TEST_F(SecretRotation, ARunNowRepeatedAfterACrashAndARotationGetsTheSameRun) {
  start_stack({{101, sim_job("work", 1000, {{"rows", 3}}, "SUCCESS", /*emit_event=*/false)}});
  config(R"(  one:
    steps:
      - name: work
        run_job: {job_id: 101}
        poll_every: 1s
)");
  // A short lease, so the dead daemon's effect is claimed again soon.
  yaml_.replace(yaml_.find("daemon:\n"), 8, "daemon:\n  lease: 2s\n");
  load_yaml();
  struct Kill {
    std::atomic<pid_t> victim{0};
    std::atomic<int64_t> run_id{0};
  };
  auto kill = std::make_shared<Kill>();
  // Called as the run is created, before the answer is sent.
  stack_->simulator().set_run_observer([kill](const SimulatedRun& run) {
    if (const pid_t pid = kill->victim.exchange(0); pid > 0) {
      ::kill(pid, SIGKILL);
      kill->run_id = run.run_id;
    }
  });
  auto& first = start_child_daemon("first");
  kill->victim = first.pid();
  start_workflow("rot", "one");
  ASSERT_TRUE(eventually([&] { return kill->run_id.load() != 0; }, 60s));
  first.kill_hard();
  auto before = workflow("rot");
  ASSERT_TRUE(before);
  ASSERT_FALSE(before->steps[0].run_id) << "the run was recorded before the kill";

  rotate_callback_secret(kRotatedSecret);
  start_child_daemon("second");
  auto done = wait_terminal("rot", 120s);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  EXPECT_EQ(done->steps[0].attempt, 1);
  EXPECT_EQ(done->steps[0].run_id, kill->run_id.load());
  const SimulatorStats stats = stack_->simulator().stats();
  EXPECT_GE(stats.run_now_calls, 2) << "the run-now was not repeated";
  EXPECT_EQ(runs_per_step()["rot/work"], 1);
  ASSERT_EQ(stats.runs.count(kill->run_id.load()), 1u);
  EXPECT_EQ(stats.runs.at(kill->run_id.load()).idempotency_token,
            TokenMinter(LocalStack::kCallbackSecret).idempotency_token("rot", "work", 1));
}

// The job got its brickwork_token before the rotation and reports after it:
// the token verifies with the previous secret and the event ends the step
// (polling, an hour away, could not).
TEST_F(SecretRotation, AnEventWithATokenOfThePreviousSecretEndsItsStep) {
  start_stack({{101, sim_job("work", 8000, {{"rows", 3}})}});
  config(R"(  one:
    steps:
      - name: work
        run_job: {job_id: 101}
        poll_every: 1h
)");
  start_daemon("before");
  start_workflow("evt", "one");
  ASSERT_TRUE(eventually([&] {
    auto w = workflow("evt");
    return w && w->steps[0].status == StepStatus::kWaiting && w->steps[0].run_id;
  }));
  daemons_.clear();
  ASSERT_TRUE(step_is("evt", "work", StepStatus::kWaiting)) << "the event came before the rotation";
  rotate_callback_secret(kRotatedSecret);
  start_daemon("after");
  auto done = wait_terminal("evt", 60s);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  ASSERT_TRUE(done->steps[0].output);
  EXPECT_EQ(done->steps[0].output->at("rows"), 3);
}

}  // namespace
}  // namespace brickwork::testing
