// The effect runner's concurrency, without Postgres (its results are never
// recorded here: the store's URL points nowhere): effects handed over run at
// once, as many as the slots allow and no more, uploads in a lane of their
// own, and stop() ends within its grace by canceling what is in flight.
#include "daemon/runtime/effect_runner.hpp"

#include <gtest/gtest.h>

#include <condition_variable>

#include "tests/databricks/cancel_only_api.hpp"

namespace brickwork::testing {
namespace {

using namespace std::chrono_literals;

// Counts the executions in flight of `gate` (a short call) and `slow_gate`
// (a transfer); each waits until released, or canceled by the API.
struct Gates {
  std::mutex mutex;
  std::condition_variable cv;
  bool released = false;
  bool canceled = false;
  int calls = 0;
  int transfers = 0;
  int most_calls = 0;
  int executed = 0;
};
Gates* g_gates = nullptr;

class GateStep final : public StepType {
 public:
  explicit GateStep(bool transfer, bool databricks = false)
      : transfer_(transfer), databricks_(databricks) {}
  std::string_view action_key() const override {
    return databricks_ ? "workspace_gate" : transfer_ ? "slow_gate" : "gate";
  }
  bool is_transfer() const override { return transfer_; }
  bool calls_databricks() const override { return databricks_; }
  Result<BoundActionPtr> compile(StepDefinition&) const override { return bind_nothing(); }
  Result<StepOutcome> execute(const StepContext&, StepServices&) const override {
    Gates& g = *g_gates;
    std::unique_lock lock(g.mutex);
    int& running = transfer_ ? g.transfers : g.calls;
    ++running;
    g.most_calls = std::max(g.most_calls, g.calls);
    g.cv.notify_all();
    g.cv.wait(lock, [&] { return g.released || g.canceled; });
    --running;
    ++g.executed;
    g.cv.notify_all();
    if (g.canceled) return Error{ErrorKind::kTransient, "canceled", "canceled: stopping"};
    return StepOutcome{};
  }

 private:
  bool transfer_;
  bool databricks_;
};

// Only cancel_calls() matters: it ends the gates as the HTTP client ends its requests.
void open_the_gates() {
  {
    std::lock_guard lock(g_gates->mutex);
    g_gates->canceled = true;
  }
  g_gates->cv.notify_all();
}

class EffectRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_gates = &gates_;
    registry_.add(std::make_unique<GateStep>(false));
    registry_.add(std::make_unique<GateStep>(true));
    registry_.add(std::make_unique<GateStep>(false, /*databricks=*/true));
    LoadOptions load;
    load.steps = &registry_;
    // Port 1: every Postgres connection is refused at once.
    auto loaded = load_config_from_string(R"(kafka: {brokers: "127.0.0.1:1"}
postgres: {url: "postgresql://brickwork@127.0.0.1:1/brickwork?sslmode=disable"}
callbacks: {secret: "a-callback-secret-of-at-least-32-characters"}
daemon: {lease: 30s}
workspaces: {eu: {host: "http://127.0.0.1:1", token: t}}
workflows:
  quick: {steps: [{name: s, gate: {}}]}
  in_eu: {steps: [{name: s, workspace: eu, workspace_gate: {}}]}
  upload: {steps: [{name: s, slow_gate: {}}]}
)",
                                          "test.yaml", load);
    ASSERT_TRUE(loaded) << loaded.error().message;
    config_ = std::make_shared<const Config>(std::move(*loaded));
    context_ = std::make_unique<RuntimeContext>(config_, registry_);
    runner_ = std::make_unique<EffectRunner>(*context_, StepServices{&api_, nullptr}, "me");
  }
  void TearDown() override {
    release();
    runner_.reset();
    g_gates = nullptr;
  }

  // One effect of a new workflow of `definition`, handed over with its state.
  void hand_over(const std::string& definition) {
    const int64_t id = ++effects_;
    auto state = std::make_shared<WorkflowState>();
    state->id = definition + "-" + std::to_string(id);
    state->workflow = definition;
    state->definition = config_->workflows.at(definition);
    StepState step;
    step.name = "s";
    step.status = StepStatus::kRunning;
    step.attempt = 1;
    state->steps.push_back(step);
    context_->handoff()->push({HandedEffect{
        StoredEffect{id, state->id, ExecuteStep{"s", 1}, 1, "me/handoff#" + std::to_string(id)},
        state}});
    context_->effects_wakeup().notify();
  }

  template <class Pred>
  bool eventually(Pred pred) {
    std::unique_lock lock(gates_.mutex);
    return gates_.cv.wait_for(lock, 10s, [&] { return pred(gates_); });
  }
  void release() {
    {
      std::lock_guard lock(gates_.mutex);
      gates_.released = true;
    }
    gates_.cv.notify_all();
  }

  Gates gates_;
  StepRegistry registry_ = StepRegistry::with_builtin_types();
  CancelOnlyApi api_{open_the_gates};
  ConfigPtr config_;
  std::unique_ptr<RuntimeContext> context_;
  std::unique_ptr<EffectRunner> runner_;
  int64_t effects_ = 0;
};

TEST_F(EffectRunnerTest, RunsEachEffectAtOnceUpToItsSlotsAndNoMore) {
  runner_->start(EffectRunner::Slots{4, 2});
  for (int i = 0; i < 6; ++i) hand_over("quick");  // as many as the handoff holds
  // Four at once, each on its own: none waits for a batch.
  ASSERT_TRUE(eventually([](const Gates& g) { return g.calls == 4; }));
  std::this_thread::sleep_for(200ms);
  {
    std::lock_guard lock(gates_.mutex);
    EXPECT_EQ(gates_.most_calls, 4);  // the transfer lane's slots are not for calls
  }
  release();
  ASSERT_TRUE(eventually([](const Gates& g) { return g.executed == 6; }));
  EXPECT_EQ(runner_->most_in_flight(), 4);
}

TEST_F(EffectRunnerTest, TransfersRunInTheirOwnLaneAndHoldUpNoCall) {
  runner_->start(EffectRunner::Slots{3, 3});
  for (int i = 0; i < 5; ++i) hand_over("upload");
  ASSERT_TRUE(eventually([](const Gates& g) { return g.transfers == 3; }));
  // Uploads waiting for their lane do not stand in front of short calls.
  for (int i = 0; i < 3; ++i) hand_over("quick");
  ASSERT_TRUE(eventually([](const Gates& g) { return g.calls == 3; }));
  {
    std::lock_guard lock(gates_.mutex);
    EXPECT_EQ(gates_.transfers, 3);
  }
  release();
  ASSERT_TRUE(eventually([](const Gates& g) { return g.executed == 8; }));
}

TEST_F(EffectRunnerTest, EachWorkspaceHasItsOwnSlots) {
  runner_->start(EffectRunner::SlotsByWorkspace{{"", EffectRunner::Slots{2, 1}},
                                                {"eu", EffectRunner::Slots{1, 1}}});
  for (int i = 0; i < 3; ++i) hand_over("in_eu");
  ASSERT_TRUE(eventually([](const Gates& g) { return g.calls == 1; }));
  std::this_thread::sleep_for(200ms);
  {
    std::lock_guard lock(gates_.mutex);
    EXPECT_EQ(gates_.calls, 1) << "eu's effects took slots beyond its max_in_flight";
  }
  // The default workspace's slots are free while eu's is busy.
  for (int i = 0; i < 2; ++i) hand_over("quick");
  ASSERT_TRUE(eventually([](const Gates& g) { return g.calls == 3; }));
  release();
  ASSERT_TRUE(eventually([](const Gates& g) { return g.executed == 5; }));
  EXPECT_EQ(runner_->most_in_flight(), 3);
}

TEST_F(EffectRunnerTest, StopCancelsCallsInFlightAndEndsWithinItsGrace) {
  runner_->start(EffectRunner::Slots{4, 2});
  for (int i = 0; i < 6; ++i) hand_over("quick");
  ASSERT_TRUE(eventually([](const Gates& g) { return g.calls == 4; }));
  const auto begun = std::chrono::steady_clock::now();
  runner_->stop(2s);  // the gates are never released: only canceled
  const auto took = std::chrono::steady_clock::now() - begun;
  EXPECT_LT(took, 3s);
  EXPECT_GE(took, 900ms) << "calls in flight get half the grace to end first";
  std::lock_guard lock(gates_.mutex);
  EXPECT_TRUE(gates_.canceled);
  EXPECT_EQ(gates_.executed, 4);  // the two not begun never started
}

}  // namespace
}  // namespace brickwork::testing
