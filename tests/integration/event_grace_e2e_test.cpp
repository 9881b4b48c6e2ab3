// completion: event under consumer lag: a poll that sees the run end first
// waits event_grace for the run's completion event, whose output (not
// runs/get-output's) is what later steps' templates read.
#include "daemon/core/tokens.hpp"
#include "tests/integration/harness.hpp"

namespace brickwork::testing {
namespace {

// The notebook returns text, so get-output's shape ({"result", "result_state"})
// differs from the event's ({"rows"}). The job publishes no event itself: the
// test sends it, late, as a lagging consumer would see it.
constexpr const char* kLagged = R"(  lagged:
    steps:
      - name: count
        run_job: {job_id: 101}
        completion: event
        poll_every: 200ms
        event_grace: 4s
      - name: report
        emit:
          topic: reports
          value: {rows: "{{ steps.count.output.rows }}"}
)";

class EventGrace : public EndToEndTest {
 protected:
  void start() {
    SimulatedJob job = sim_job("count", 300, {{"rows", 42}}, "SUCCESS", /*emit_event=*/false);
    job.notebook_result = "done";
    start_stack({{101, job}});
    ASSERT_TRUE(stack_->kafka().create_topic("reports", 1));
    config(kLagged);
    start_daemon();
  }

  // Until a poll has seen the run end (get-output is read only then).
  void wait_for_poll_to_see_the_end() {
    ASSERT_TRUE(eventually([&] { return stack_->simulator().stats().get_output_calls >= 1; }));
  }
};

TEST_F(EventGrace, ALateEventStillGivesTheStepItsOutput) {
  start();
  start_workflow("lag-1", "lagged");
  wait_for_poll_to_see_the_end();
  std::this_thread::sleep_for(1s);  // the consumer lags; polls go on meanwhile
  auto w = workflow("lag-1");
  ASSERT_TRUE(w);
  ASSERT_EQ(w->steps[0].status, StepStatus::kWaiting) << "ended by the poll before the event";
  const std::string token =
      TokenMinter(config_->callbacks.secret).callback_token("lag-1", "count", 1);
  send(config_->kafka.topics.events, "lag-1",
       json::serialize(json::object{{"type", "job_completed"}, {"workflow_id", "lag-1"},
                                    {"step", "count"}, {"token", token}, {"state", "SUCCESS"},
                                    {"run_id", *w->steps[0].run_id},
                                    {"output", {{"rows", 42}}}}));
  auto done = wait_terminal("lag-1");
  ASSERT_TRUE(done);
  ASSERT_EQ(done->status, WorkflowStatus::kSucceeded)
      << (done->steps[1].error ? done->steps[1].error->message : "");
  EXPECT_EQ(*done->steps[0].output, (json::object{{"rows", 42}}));
  std::vector<json::object> sent;  // the outbox publishes after the commit
  ASSERT_TRUE(eventually([&] {
    sent = topic_objects("reports");
    return !sent.empty();
  }));
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].at("rows"), 42);
}

TEST_F(EventGrace, WithoutAnEventThePollEndsTheStepAfterTheGrace) {
  start();
  start_workflow("lag-2", "lagged");
  wait_for_poll_to_see_the_end();
  const auto seen = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] { return !step_is("lag-2", "count", StepStatus::kWaiting); }));
  const auto waited = std::chrono::steady_clock::now() - seen;
  EXPECT_GE(waited, 3s) << "ended before event_grace (4s) had passed";
  auto done = wait_terminal("lag-2");
  ASSERT_TRUE(done);
  // get-output's shape: the notebook's text, no rows, so the template fails.
  EXPECT_EQ(*done->steps[0].output,
            (json::object{{"result", "done"}, {"result_state", "SUCCESS"}}));
  EXPECT_EQ(done->status, WorkflowStatus::kFailed);
  ASSERT_TRUE(done->steps[1].error);
  EXPECT_EQ(done->steps[1].error->code, "template");
}

}  // namespace
}  // namespace brickwork::testing
