// The control-flow step types end to end (contract 6.1): sleep,
// wait_for_signal, emit and on_failure, through Kafka only, with real
// Postgres, librdkafka's mock cluster and the simulator.
#include <random>

#include "config/templates.hpp"
#include "tests/integration/harness.hpp"

namespace brickwork::testing {
namespace {

constexpr const char* kApprovals = R"(  approvals:
    steps:
      - name: extract
        run_job: {job_id: 101}
        poll_every: 30s
      - name: nap
        sleep: {for: 300ms}
      - name: approve
        wait_for_signal: {name: approved, timeout: 60s}
      - name: announce
        emit:
          topic: client.events
          key: "{{ input.client }}"
          value: {approved_by: "{{ steps.approve.output.by }}", rows: "{{ steps.extract.output.rows }}"}
    on_failure:
      - name: tell_ops
        emit: {topic: ops.alerts, value: {failed: "{{ workflow.id }}"}}
)";

class Steps : public EndToEndTest {
 protected:
  void start(std::map<int64_t, SimulatedJob> jobs) {
    start_stack(std::move(jobs));
    ASSERT_TRUE(stack_->kafka().create_topic("client.events", 4));
    ASSERT_TRUE(stack_->kafka().create_topic("ops.alerts", 2));
    config(kApprovals);
  }
};

TEST_F(Steps, SleepSignalAndEmitRunToSuccessWithOutputsFeedingTheEmit) {
  start({{101, sim_job("extract", 200, {{"rows", 5}})}});
  start_daemon();
  start_workflow("order-1", "approvals", {{"client", "acme"}});
  ASSERT_TRUE(eventually([&] { return step_is("order-1", "approve", StepStatus::kWaiting); }));
  auto before = workflow("order-1");
  ASSERT_TRUE(before->find_step("nap")->finished_at && before->find_step("nap")->started_at);
  EXPECT_GE(*before->find_step("nap")->finished_at - *before->find_step("nap")->started_at,
            Duration(300));
  signal("order-1", "approved", json::object{{"by", "ana"}});

  auto done = wait_terminal("order-1");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  EXPECT_EQ(done->find_step("approve")->output, (json::object{{"by", "ana"}}));
  EXPECT_EQ(done->find_step("announce")->output,
            (json::object{{"topic", "client.events"}, {"key", "acme"}}));
  EXPECT_EQ(done->find_step("tell_ops")->status, StepStatus::kSkipped);
  std::vector<KafkaMessage> emitted;
  ASSERT_TRUE(eventually([&] {
    auto m = read_topic(config_->kafka.brokers, "client.events", 20s);
    if (m) emitted = *m;
    return !emitted.empty();
  }));
  ASSERT_EQ(emitted.size(), 1u);
  EXPECT_EQ(emitted[0].key, "acme");
  // "{{ ... }}" alone keeps the value's JSON type: rows is the number 5.
  EXPECT_EQ(json::parse(emitted[0].payload), (json::object{{"approved_by", "ana"}, {"rows", 5}}));
  ASSERT_TRUE(eventually([&] {
    auto types = event_types("order-1");
    return !types.empty() && types.back() == "workflow_succeeded";
  }));
  const auto types = event_types("order-1");
  EXPECT_EQ(std::count(types.begin(), types.end(), "step_waiting"), 3);  // extract, nap, approve
}

// A signal before its gate waits is kept, not refused; one for no workflow
// is refused with a reason.
TEST_F(Steps, ASignalBeforeItsGateIsKeptAndOneForNoWorkflowIsRefused) {
  start({{101, sim_job("extract", 60'000)}});
  start_daemon();
  start_workflow("order-2", "approvals", {{"client", "acme"}});
  ASSERT_TRUE(eventually([&] { return step_is("order-2", "extract", StepStatus::kWaiting); }));
  signal("order-2", "approved", json::object{{"by", "early"}});
  signal("nobody", "approved", nullptr);
  ASSERT_TRUE(eventually([&] {
    for (const auto& e : status_events("order-2")) {
      if (e.at("type") == "signal_kept" && e.at("signal") == "approved") return true;
    }
    return false;
  }));
  ASSERT_TRUE(eventually([&] {
    const auto events = status_events("nobody");
    return !events.empty() && events[0].at("reason") == "not_running";
  }));
  EXPECT_TRUE(step_is("order-2", "extract", StepStatus::kWaiting));
  EXPECT_EQ(workflow("order-2")->kept_signals.size(), 1u);
  int not_running = 0;
  EXPECT_TRUE(eventually([&] {
    not_running = 0;
    for (const auto& d : dead_letters()) not_running += d.at("reason") == "not_running";
    return not_running == 1;
  })) << not_running;
}

TEST_F(Steps, OnFailureStepsRunBeforeTheWorkflowEndsFailed) {
  start({{101, sim_job("extract", 200, {}, "FAILED")}});
  start_daemon();
  start_workflow("order-3", "approvals", {{"client", "acme"}});
  auto done = wait_terminal("order-3");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kFailed);
  EXPECT_EQ(done->find_step("tell_ops")->status, StepStatus::kSucceeded);
  EXPECT_EQ(done->find_step("approve")->status, StepStatus::kSkipped);
  std::vector<KafkaMessage> alerts;
  ASSERT_TRUE(eventually([&] {
    auto m = read_topic(config_->kafka.brokers, "ops.alerts", 20s);
    if (m) alerts = *m;
    return !alerts.empty();
  }));
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].key, "order-3");  // the key defaults to the workflow id
  EXPECT_EQ(json::parse(alerts[0].payload), (json::object{{"failed", "order-3"}}));
  ASSERT_TRUE(eventually([&] {
    auto types = event_types("order-3");
    return !types.empty() && types.back() == "workflow_failed";
  }));
  const auto events = status_events("order-3");
  EXPECT_EQ(events.back().at("step"), "extract");  // the failure it reports
}

TEST_F(Steps, ASignalThatNeverComesTimesOutWithCodeTimeout) {
  start_stack({{101, sim_job("extract", 100)}});
  config(R"(  gate:
    steps:
      - name: approve
        wait_for_signal: {name: approved, timeout: 1s}
)");
  start_daemon();
  start_workflow("order-4", "gate");
  auto done = wait_terminal("order-4");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kFailed);
  ASSERT_TRUE(done->steps[0].error);
  EXPECT_EQ(done->steps[0].error->code, "timeout");
}

// The emit after a signal is published once, however the daemon dies around
// it: the record is written with the step's success, in one transaction.
TEST_F(Steps, SigkillBetweenASignalAndTheEmitPublishesOnce) {
  start({{101, sim_job("extract", 100, {{"rows", 1}})}});
  const int kWorkflows = 20;
  for (int i = 0; i < kWorkflows; ++i) {
    start_workflow("kill-" + std::to_string(i), "approvals", {{"client", "c" + std::to_string(i)}});
  }
  std::mt19937 rng(7);
  {
    auto& first = start_child_daemon("first");
    for (int i = 0; i < kWorkflows; ++i) {
      const std::string id = "kill-" + std::to_string(i);
      ASSERT_TRUE(eventually([&] { return step_is(id, "approve", StepStatus::kWaiting); }, 90s))
          << id;
    }
    for (int i = 0; i < kWorkflows; ++i) {
      signal("kill-" + std::to_string(i), "approved", json::object{{"by", "ana"}});
    }
    // Somewhere among the signals being applied and the emits being recorded.
    std::this_thread::sleep_for(std::chrono::milliseconds(
        std::uniform_int_distribution<int>(0, 300)(rng)));
    first.kill_hard();
  }
  start_child_daemon("second");
  for (int i = 0; i < kWorkflows; ++i) {
    auto done = wait_terminal("kill-" + std::to_string(i), 120s);
    ASSERT_TRUE(done);
    EXPECT_EQ(done->status, WorkflowStatus::kSucceeded) << i;
  }
  std::map<std::string, int> per_key;
  ASSERT_TRUE(eventually([&] {
    per_key.clear();
    auto m = read_topic(config_->kafka.brokers, "client.events", 20s);
    if (!m) return false;
    for (const auto& message : *m) ++per_key[message.key.value_or("")];
    return per_key.size() == static_cast<size_t>(kWorkflows);
  }, 60s));
  for (const auto& [key, count] : per_key) EXPECT_EQ(count, 1) << key;
}

// The seam: a step type is its own class plus one registration. This one
// exists only here, and runs end to end through the loader, the engine, the
// effect runner and the store without any of them knowing its name.
struct EchoAction final : BoundAction {
  json::value say;
};

class EchoStep final : public StepType {
 public:
  std::string_view action_key() const override { return "echo"; }
  Result<BoundActionPtr> compile(StepDefinition& step) const override {
    if (!step.action.contains("say")) return compile_error("echo.say is required");
    auto bound = std::make_shared<EchoAction>();
    bound->say = step.action.at("say");
    return BoundActionPtr(std::move(bound));
  }
  Result<StepOutcome> execute(const StepContext& context, StepServices&) const override {
    auto rendered = render_templates(context.action<EchoAction>().say, context.template_scope);
    if (!rendered) return Error{ErrorKind::kPermanent, "template", rendered.error().message};
    StepOutcome outcome;
    outcome.output = json::object{{"said", *rendered}};
    return outcome;
  }
};

TEST_F(Steps, ANewStepTypeNeedsOnlyItsClassAndOneRegistration) {
  static StepRegistry registry = [] {
    StepRegistry r = StepRegistry::with_builtin_types();
    r.add(std::make_unique<EchoStep>());  // the one line
    return r;
  }();
  steps_ = &registry;
  start_stack({});
  config(R"(  hello:
    steps:
      - name: greet
        echo: {say: "hello {{ input.name }}"}
      - name: gate
        wait_for_signal: {}
)");
  start_daemon();
  start_workflow("echo-1", "hello", {{"name", "ana"}});
  ASSERT_TRUE(eventually([&] { return step_is("echo-1", "gate", StepStatus::kWaiting); }));
  signal("echo-1", "gate", nullptr);  // the signal's name defaults to the step's
  auto done = wait_terminal("echo-1");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  EXPECT_EQ(done->steps[0].output, (json::object{{"said", "hello ana"}}));
}

}  // namespace
}  // namespace brickwork::testing

namespace brickwork::testing {
namespace {

// config/examples/workflows.d/onboarding.yaml as shipped, run to success:
// run_job by name, submit_run ended by polling (output from get-output),
// sleep until a time, a signal, and the emit that follows it.
TEST_F(Steps, TheShippedOnboardingExampleRunsToSuccess) {
  SimulatedJob prepare = sim_job("prepare_client", 200);
  SimulatedJob backfill = sim_job("backfill", 300, {{"rows", 7}}, "SUCCESS", /*emit_event=*/false);
  LocalStackOptions options;
  options.simulator.jobs = {{201, prepare}};
  options.simulator.default_job = backfill;  // what runs/submit runs
  auto stack = LocalStack::start(options);
  ASSERT_TRUE(stack) << stack.error().message;
  stack_ = std::move(*stack);
  dir_ = std::filesystem::temp_directory_path() /
         ("brickwork-e2e-" + std::to_string(getpid()) + "-example");
  std::filesystem::create_directories(dir_);
  ASSERT_TRUE(stack_->kafka().create_topic("clients.events", 2));
  ASSERT_TRUE(stack_->kafka().create_topic("ops.alerts", 2));
  std::ifstream in(std::string(BRICKWORK_SOURCE_DIR) + "/config/examples/workflows.d/onboarding.yaml");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  const size_t body = text.find("workflows:\n");
  ASSERT_NE(body, std::string::npos);
  config(text.substr(body + std::string("workflows:\n").size()));
  start_daemon();
  const std::string not_before = format_iso8601(now_ms() + Duration(1500));
  start_workflow("onboard-1", "onboarding", {{"client", "acme"}, {"not_before", not_before}});
  ASSERT_TRUE(eventually([&] { return step_is("onboard-1", "approve", StepStatus::kWaiting); }, 60s));
  auto waiting = workflow("onboard-1");
  EXPECT_GE(*waiting->find_step("not_before")->finished_at, *parse_iso8601(not_before));
  // The polled one-time run's output came from runs/get-output.
  EXPECT_EQ(waiting->find_step("backfill")->output,
            (json::object{{"rows", 7}, {"result_state", "SUCCESS"}}));
  signal("onboard-1", "approved", json::object{{"by", "ana"}});
  auto done = wait_terminal("onboard-1");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  std::vector<KafkaMessage> emitted;
  ASSERT_TRUE(eventually([&] {
    auto m = read_topic(config_->kafka.brokers, "clients.events", 20s);
    if (m) emitted = *m;
    return !emitted.empty();
  }));
  ASSERT_EQ(emitted.size(), 1u);
  EXPECT_EQ(json::parse(emitted[0].payload),
            (json::object{{"client", "acme"}, {"approved_by", "ana"}, {"rows", 7}}));
  // The run found by name and the one-time run each got the brickwork_* parameters.
  const auto stats = stack_->simulator().stats();
  EXPECT_GE(stats.list_calls, 1);
  EXPECT_EQ(stats.submit_calls, 1);
  EXPECT_GE(stats.get_output_calls, 1);
  int with_token = 0;
  for (const auto& [id, run] : stats.runs) {
    if (run.parameters.count("brickwork_token") != 0 &&
        run.parameters.at("brickwork_workflow_id") == "onboard-1") {
      ++with_token;
    }
  }
  EXPECT_EQ(with_token, 2);
}

TEST_F(Steps, AJobNameThatMatchesNothingFailsTheStepClearly) {
  start_stack({{201, sim_job("prepare_client", 200)}});
  config(R"(  by_name:
    steps:
      - name: go
        run_job: {job_name: "no such job"}
        retry: {max_attempts: 3, backoff: 100ms}
)");
  start_daemon();
  start_workflow("named-1", "by_name");
  auto done = wait_terminal("named-1");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kFailed);
  ASSERT_TRUE(done->steps[0].error);
  EXPECT_EQ(done->steps[0].error->code, "job_not_found");
  EXPECT_EQ(done->steps[0].attempt, 1);
}

}  // namespace
}  // namespace brickwork::testing
