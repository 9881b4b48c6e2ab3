// W3C trace context end to end (contract section 2): a command's traceparent
// header reaches its workflow's status events, its emit records and its
// Databricks runs; an invalid one is dropped without refusing the command.
#include "tests/integration/harness.hpp"

namespace brickwork::testing {
namespace {

constexpr const char* kTraced = R"(  traced:
    steps:
      - name: transform
        run_job: {job_id: 101}
      - name: announce
        emit: {topic: client.events, value: {rows: "{{ steps.transform.output.rows }}"}}
)";

constexpr const char* kTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

class TraceContext : public EndToEndTest {
 protected:
  void SetUp() override {
    start_stack({{101, sim_job("transform", 100, {{"rows", 3}})}});
    ASSERT_TRUE(stack_->kafka().create_topic("client.events", 2));
    config(kTraced);
    start_daemon();
  }

  void start_traced(const std::string& id, const std::string& traceparent) {
    send_command(json::object{{"type", "start"}, {"id", id}, {"workflow", "traced"}},
                 {{"traceparent", traceparent}});
  }

  // The traceparent header of every status event of `id` ("" for none),
  // once its workflow_succeeded is published: the outbox publishes after
  // the commit that wait_terminal() sees, so the topic may not hold the
  // workflow's events yet when it returns.
  std::vector<std::string> status_traceparents(const std::string& id) {
    std::vector<std::string> out;
    const bool ended = eventually([&] {
      out.clear();
      auto messages = read_topic(config_->kafka.brokers, config_->kafka.topics.status, 20s);
      if (!messages) return false;
      bool succeeded = false;
      for (const auto& m : *messages) {
        if (m.key != id) continue;
        out.push_back(m.header("traceparent").value_or(""));
        succeeded = succeeded || m.payload.find("\"workflow_succeeded\"") != std::string::npos;
      }
      return succeeded;
    });
    EXPECT_TRUE(ended) << id << ": no workflow_succeeded on the status topic";
    return out;
  }

  std::map<std::string, std::string> run_parameters(const std::string& id) {
    for (const auto& [run_id, run] : stack_->simulator().stats().runs) {
      auto wf = run.parameters.find("brickwork_workflow_id");
      if (wf != run.parameters.end() && wf->second == id) return run.parameters;
    }
    return {};
  }
};

TEST_F(TraceContext, ACommandsTraceparentReachesStatusEventsEmitRecordsAndTheRun) {
  start_traced("traced-1", kTraceparent);
  auto done = wait_terminal("traced-1");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);

  const auto traceparents = status_traceparents("traced-1");
  ASSERT_FALSE(traceparents.empty());
  for (const auto& t : traceparents) EXPECT_EQ(t, kTraceparent);

  std::vector<KafkaMessage> emitted;
  ASSERT_TRUE(eventually([&] {
    auto m = read_topic(config_->kafka.brokers, "client.events", 5s);
    if (m) emitted = *m;
    return !emitted.empty();
  }));
  ASSERT_EQ(emitted.size(), 1u);
  EXPECT_EQ(emitted[0].header("traceparent"), kTraceparent);

  EXPECT_EQ(run_parameters("traced-1")["brickwork_traceparent"], kTraceparent);
}

TEST_F(TraceContext, AnInvalidTraceparentIsDroppedAndTheWorkflowStillRuns) {
  start_traced("untraced-1", "00-NOT-A-TRACE-01");
  auto done = wait_terminal("untraced-1");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  const auto traceparents = status_traceparents("untraced-1");
  ASSERT_FALSE(traceparents.empty());
  for (const auto& t : traceparents) EXPECT_EQ(t, "");
  const auto parameters = run_parameters("untraced-1");
  EXPECT_EQ(parameters.count("brickwork_workflow_id"), 1u);
  EXPECT_EQ(parameters.count("brickwork_traceparent"), 0u);
  EXPECT_TRUE(dead_letters().empty());
}

}  // namespace
}  // namespace brickwork::testing
