// The core promises end to end: real Postgres, librdkafka's mock cluster and
// the Databricks simulator, driven only through Kafka topics (the contract).
#include "tests/integration/harness.hpp"

namespace brickwork::testing {
namespace {

constexpr const char* kTwoSteps = R"(  two_step:
    steps:
      - name: extract
        run_job:
          job_id: 101
          parameters: {url: "{{ input.url }}"}
        poll_every: 30s
      - name: transform
        run_job:
          job_id: 102
          parameters: {rows: "{{ steps.extract.output.rows }}"}
        poll_every: 30s
)";

class CoreEndToEnd : public EndToEndTest {};

TEST_F(CoreEndToEnd, TwoStepWorkflowSucceedsWithOutputsFeedingTheNextStep) {
  start_stack({{101, sim_job("extract", 300, {{"rows", 42}})},
               {102, sim_job("transform", 300, {{"tables", 2}})}});
  config(kTwoSteps);
  start_daemon();
  start_workflow("order-1", "two_step", {{"url", "s3://bucket/in"}});

  auto done = wait_terminal("order-1");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  ASSERT_EQ(done->steps.size(), 2u);
  EXPECT_EQ(done->steps[0].status, StepStatus::kSucceeded);
  EXPECT_EQ(done->steps[1].status, StepStatus::kSucceeded);
  ASSERT_TRUE(done->steps[1].output);
  EXPECT_EQ(done->steps[1].output->at("tables").as_int64(), 2);

  // The job parameters carried the input and the first step's output.
  const auto stats = stack_->simulator().stats();
  EXPECT_EQ(stats.runs_created, 2);
  bool saw_url = false;
  bool saw_rows = false;
  for (const auto& [id, run] : stats.runs) {
    if (run.job_id == 101) saw_url = run.parameters.at("url") == "s3://bucket/in";
    if (run.job_id == 102) saw_rows = run.parameters.at("rows") == "42";
    EXPECT_EQ(run.parameters.at("brickwork_workflow_id"), "order-1");
    EXPECT_FALSE(run.parameters.at("brickwork_token").empty());
    EXPECT_FALSE(run.idempotency_token.empty());
  }
  EXPECT_TRUE(saw_url);
  EXPECT_TRUE(saw_rows);

  // Completion came by event (poll_every is 30 s, far longer than the test).
  EXPECT_EQ(stats.events_emitted, 2);
  ASSERT_TRUE(eventually([&] { return event_types("order-1").size() >= 8; }));
  EXPECT_EQ(event_types("order-1"),
            (std::vector<std::string>{"workflow_started", "step_started", "step_waiting",
                                      "step_succeeded", "step_started", "step_waiting",
                                      "step_succeeded", "workflow_succeeded"}));
  const auto events = status_events("order-1");
  EXPECT_EQ(events.front().at("v").as_int64(), 1);
  EXPECT_EQ(events.front().at("workflow").as_string(), "two_step");
}

TEST_F(CoreEndToEnd, FailingJobFailsTheWorkflowAndSkipsTheRest) {
  start_stack({{101, sim_job("extract", 200, {}, "FAILED")}, {102, sim_job("transform", 200)}});
  config(kTwoSteps);
  start_daemon();
  start_workflow("order-2", "two_step", {{"url", "x"}});
  auto done = wait_terminal("order-2");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kFailed);
  EXPECT_EQ(done->steps[0].status, StepStatus::kFailed);
  ASSERT_TRUE(done->steps[0].error);
  EXPECT_EQ(done->steps[0].error->code, "FAILED");
  EXPECT_EQ(done->steps[1].status, StepStatus::kSkipped);
  EXPECT_EQ(stack_->simulator().stats().runs_created, 1);
  ASSERT_TRUE(eventually([&] {
    auto types = event_types("order-2");
    return !types.empty() && types.back() == "workflow_failed";
  }));
  bool failed_with_error = false;
  for (const auto& e : status_events("order-2")) {
    if (e.at("type") == "step_failed") {
      failed_with_error = e.at("error").at("code") == "FAILED";
    }
  }
  EXPECT_TRUE(failed_with_error);
}

TEST_F(CoreEndToEnd, DuplicateStartIsANoOpAndConflictIsRejected) {
  start_stack({{101, sim_job("extract", 500, {{"rows", 1}})}, {102, sim_job("transform", 200)}});
  config(kTwoSteps);
  start_daemon();
  start_workflow("order-3", "two_step", {{"url", "a"}});
  start_workflow("order-3", "two_step", {{"url", "a"}});  // same: no-op
  start_workflow("order-3", "two_step", {{"url", "b"}});  // different input: conflict
  auto done = wait_terminal("order-3");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  EXPECT_EQ(stack_->simulator().stats().runs_created, 2);  // one per step, not per command
  ASSERT_TRUE(eventually([&] {
    auto types = event_types("order-3");
    return !types.empty() && types.back() == "workflow_succeeded";
  }));
  const auto types = event_types("order-3");
  EXPECT_EQ(std::count(types.begin(), types.end(), "workflow_started"), 1);
  EXPECT_EQ(std::count(types.begin(), types.end(), "command_rejected"), 1);
  bool conflict = false;
  for (const auto& e : status_events("order-3")) {
    if (e.at("type") == "command_rejected") conflict = e.at("reason") == "conflict";
  }
  EXPECT_TRUE(conflict);
  bool dead_lettered = false;
  for (const auto& d : dead_letters()) dead_lettered |= d.at("reason") == "conflict";
  EXPECT_TRUE(dead_lettered);
}

TEST_F(CoreEndToEnd, UnknownWorkflowIsRejectedWithAReason) {
  start_stack({});
  config(kTwoSteps);
  start_daemon();
  start_workflow("order-4", "no_such_workflow");
  ASSERT_TRUE(eventually([&] { return !status_events("order-4").empty(); }));
  const auto events = status_events("order-4");
  EXPECT_EQ(events[0].at("type"), "command_rejected");
  EXPECT_EQ(events[0].at("reason"), "unknown_workflow");
  EXPECT_FALSE(workflow("order-4").has_value());
  ASSERT_TRUE(eventually([&] { return !dead_letters().empty(); }));
  EXPECT_EQ(dead_letters()[0].at("reason"), "unknown_workflow");
}

TEST_F(CoreEndToEnd, MalformedMessagesGoToTheDeadLetterTopicAndAValidOneStillSucceeds) {
  start_stack({{101, sim_job("extract", 200, {{"rows", 1}})}, {102, sim_job("transform", 200)}});
  config(kTwoSteps);
  start_daemon();
  const std::string commands = config_->kafka.topics.commands;
  const std::string events = config_->kafka.topics.events;
  send(commands, "bad-1", "{not json");
  send(commands, "bad-2", "[1,2,3]");
  send(commands, "bad-3", R"({"type":"start","workflow":"two_step"})");
  send(commands, "bad-4", R"({"type":"start","id":42,"workflow":"two_step"})");
  send(commands, "bad-5", R"({"type":"explode","id":"x"})");
  send(commands, "bad-6", std::string("\xff\xfe\x00garbage", 10));
  // (too_large is covered by the parser's unit tests: the broker, like a
  // default Kafka, refuses messages over 1 MB before brickwork sees them.)
  send(events, "bad-8", R"({"type":"job_completed","workflow_id":"nobody","step":"s","token":"t","state":"SUCCESS"})");
  start_workflow("order-5", "two_step", {{"url", "ok"}});

  auto done = wait_terminal("order-5");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  std::vector<json::object> dlq;
  ASSERT_TRUE(eventually([&] {
    dlq = dead_letters();
    return dlq.size() >= 7;
  }));
  std::map<std::string, std::string> reason_by_key;
  for (const auto& d : dlq) {
    reason_by_key[std::string(d.at("key").as_string())] = std::string(d.at("reason").as_string());
    EXPECT_TRUE(d.contains("source"));
    EXPECT_TRUE(d.contains("at"));
    EXPECT_TRUE(d.contains("payload") || d.contains("payload_base64"));
  }
  EXPECT_EQ(reason_by_key["bad-1"], "invalid_json");
  EXPECT_EQ(reason_by_key["bad-2"], "not_object");
  EXPECT_EQ(reason_by_key["bad-3"], "missing_field");
  EXPECT_EQ(reason_by_key["bad-4"], "invalid_field");
  EXPECT_EQ(reason_by_key["bad-5"], "unknown_type");
  EXPECT_EQ(reason_by_key["bad-6"], "invalid_json");
  // The token is checked first: an event for a workflow that does not exist
  // reads exactly like any forged one, so dead letters reveal no ids.
  EXPECT_EQ(reason_by_key["bad-8"], "bad_token");
  for (const auto& d : dlq) {
    if (d.at("key") == "bad-6") {
      EXPECT_TRUE(d.contains("payload_base64"));
    }
  }
}

TEST_F(CoreEndToEnd, ForgedTokenIsRejectedAndTheStepKeepsWaiting) {
  // The job runs long and publishes no event: only the forged one arrives at first.
  start_stack({{101, sim_job("extract", 3000, {{"rows", 7}}, "SUCCESS", false)},
               {102, sim_job("transform", 200)}});
  config(R"(  one_step:
    steps:
      - name: extract
        run_job: {job_id: 101}
        completion: event
        poll_every: 1s
        event_grace: 1s     # no genuine event comes: the poll ends it soon after the run
)");
  start_daemon();
  start_workflow("order-6", "one_step");
  ASSERT_TRUE(eventually([&] {
    auto w = workflow("order-6");
    return w && w->steps[0].status == StepStatus::kWaiting;
  }));
  send(config_->kafka.topics.events, "order-6",
       R"({"type":"job_completed","workflow_id":"order-6","step":"extract","token":"forged","state":"FAILED","run_id":1})");
  ASSERT_TRUE(eventually([&] {
    for (const auto& d : dead_letters()) {
      if (d.at("reason") == "bad_token") return true;
    }
    return false;
  }));
  auto w = workflow("order-6");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->status, WorkflowStatus::kRunning);
  EXPECT_EQ(w->steps[0].status, StepStatus::kWaiting);
  // Polling (the safety net) then finishes it for real.
  auto done = wait_terminal("order-6");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
}

TEST_F(CoreEndToEnd, PollCompletionSucceedsWithNoEventAtAll) {
  start_stack({{101, sim_job("extract", 500, {}, "SUCCESS", false)}});
  config(R"(  polled:
    steps:
      - name: extract
        run_job: {job_id: 101}
        completion: poll
        poll_every: 300ms
)");
  start_daemon();
  start_workflow("order-7", "polled");
  auto done = wait_terminal("order-7");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  const auto stats = stack_->simulator().stats();
  EXPECT_EQ(stats.events_emitted, 0);
  EXPECT_GE(stats.get_calls, 1);
}

TEST_F(CoreEndToEnd, DaemonKilledMidWorkflowResumesWithOneRunPerStepAttempt) {
  start_stack({{101, sim_job("extract", 1500, {{"rows", 5}})},
               {102, sim_job("transform", 1500, {{"ok", true}})}});
  config(R"(  two_step:
    steps:
      - name: extract
        run_job: {job_id: 101}
        poll_every: 2s
      - name: transform
        run_job: {job_id: 102}
        poll_every: 2s
)");
  const int kWorkflows = 20;
  for (int i = 0; i < kWorkflows; ++i) start_workflow("kill-" + std::to_string(i), "two_step");
  {
    auto& first = start_child_daemon("first");
    // Let it get into the middle of things: some runs started, none finished.
    ASSERT_TRUE(eventually([&] { return stack_->simulator().stats().runs_created >= 5; }, 60s));
    first.kill_hard();
  }
  start_child_daemon("second");
  for (int i = 0; i < kWorkflows; ++i) {
    auto done = wait_terminal("kill-" + std::to_string(i), 120s);
    ASSERT_TRUE(done) << i;
    EXPECT_EQ(done->status, WorkflowStatus::kSucceeded) << i;
  }
  // One run per step whatever token it used: a run-now repeated after the
  // kill must have reused the attempt's idempotency token.
  const auto runs = runs_per_step();
  EXPECT_EQ(runs.size(), static_cast<size_t>(2 * kWorkflows));
  for (const auto& [key, count] : runs) EXPECT_EQ(count, 1) << key;
  for (int i = 0; i < kWorkflows; ++i) expect_one_run_per_attempt("kill-" + std::to_string(i));
  for (int i = 0; i < kWorkflows; ++i) {
    const std::string id = "kill-" + std::to_string(i);
    ASSERT_TRUE(eventually([&] {
      auto types = event_types(id);
      return !types.empty() && types.back() == "workflow_succeeded";
    })) << id;
  }
}

}  // namespace
}  // namespace brickwork::testing
