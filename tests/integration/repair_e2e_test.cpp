// repair: true end to end (contract 6.1, docs/STEPS.md): a run whose tasks
// partly failed is repaired, not started again, whether the retry policy or
// a `retry` command asks for the next attempt.
#include "tests/integration/harness.hpp"

namespace brickwork::testing {
namespace {

// Three tasks; task_2 fails on its first run only.
SimulatedJob three_tasks_one_failing() {
  SimulatedJob job = sim_job("nightly", 200, {{"rows", 3}});
  job.tasks = 3;
  job.task_failures = {{"task_2", 1}};
  return job;
}

class Repair : public EndToEndTest {
 protected:
  // The one run the simulator created, with every repair made of it.
  SimulatedRun only_run() {
    const auto runs = stack_->simulator().stats().runs;
    EXPECT_EQ(runs.size(), 1u) << "a repair must not start a new run";
    return runs.empty() ? SimulatedRun{} : runs.begin()->second;
  }

  void expect_repaired_once(const WorkflowState& done) {
    const SimulatedRun run = only_run();
    const StepState* step = done.find_step("nightly");
    ASSERT_NE(step, nullptr);
    EXPECT_EQ(step->attempt, 2);
    EXPECT_EQ(step->run_id, run.run_id) << "the repaired run keeps its id";
    ASSERT_EQ(run.repairs.size(), 1u);
    EXPECT_EQ(run.repairs[0].rerun_tasks, (std::vector<std::string>{"task_2"}))
        << "only the failed task runs again";
    const auto received = stack_->simulator().stats().repairs_received;
    ASSERT_EQ(received.size(), 1u);
    EXPECT_FALSE(received[0].contains("latest_repair_id")) << "the first repair of the run";
    // The repaired task carries the new attempt's token, so its completion
    // event counts.
    EXPECT_EQ(run.parameters.at("brickwork_token").rfind("2.", 0), 0u)
        << run.parameters.at("brickwork_token");
  }
};

TEST_F(Repair, TheRetryPolicyRepairsOnlyTheFailedTaskOfTheSameRun) {
  start_stack({{301, three_tasks_one_failing()}});
  config(R"(  nightly:
    steps:
      - name: nightly
        run_job: {job_id: 301, repair: true}
        retry: {max_attempts: 2, backoff: 200ms}
        poll_every: 1s
)");
  start_daemon();
  start_workflow("n-1", "nightly");
  auto done = wait_terminal("n-1");
  ASSERT_TRUE(done);
  ASSERT_EQ(done->status, WorkflowStatus::kSucceeded) << (done->find_step("nightly")->error
                                                              ? done->find_step("nightly")->error->message
                                                              : "");
  expect_repaired_once(*done);
}

TEST_F(Repair, ARetryCommandRepairsTheRunTheFailedWorkflowEndedWith) {
  start_stack({{301, three_tasks_one_failing()}});
  config(R"(  nightly:
    steps:
      - name: nightly
        run_job: {job_id: 301, repair: true}
        poll_every: 1s
)");
  start_daemon();
  start_workflow("n-2", "nightly");
  auto failed = wait_terminal("n-2");
  ASSERT_TRUE(failed);
  ASSERT_EQ(failed->status, WorkflowStatus::kFailed);
  const std::optional<int64_t> first_run = failed->find_step("nightly")->run_id;
  send_command(json::object{{"type", "retry"}, {"id", "n-2"}});
  ASSERT_TRUE(eventually([&] {
    auto w = workflow("n-2");
    return w && w->status == WorkflowStatus::kSucceeded;
  }));
  auto done = workflow("n-2");
  EXPECT_EQ(done->find_step("nightly")->run_id, first_run);
  expect_repaired_once(*done);
}

// Ordinary retries are unchanged: without repair: true each attempt starts
// a run of its own.
TEST_F(Repair, WithoutRepairARetryStartsANewRun) {
  start_stack({{301, three_tasks_one_failing()}});
  config(R"(  nightly:
    steps:
      - name: nightly
        run_job: {job_id: 301}
        retry: {max_attempts: 2, backoff: 200ms}
        poll_every: 1s
)");
  start_daemon();
  start_workflow("n-3", "nightly");
  auto done = wait_terminal("n-3");
  ASSERT_TRUE(done);
  EXPECT_EQ(stack_->simulator().stats().runs.size(), 2u);
  EXPECT_EQ(stack_->simulator().stats().repair_calls, 0);
}

}  // namespace
}  // namespace brickwork::testing
