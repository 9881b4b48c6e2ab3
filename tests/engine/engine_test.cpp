#include "daemon/engine/engine.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace brickwork {
namespace {

using namespace std::chrono_literals;

const TimePoint kT0 = from_epoch_ms(1'795'000'000'000);  // 2026-11-18

TimePoint at(Duration d) { return kT0 + d; }

StepDefinition job(std::string name, std::vector<std::string> depends_on = {}) {
  StepDefinition s;
  s.name = std::move(name);
  s.type = "run_job";
  s.action = json::object{{"job_id", 123}};
  s.depends_on = std::move(depends_on);
  s.poll_every = 60s;
  return s;
}

// A step the engine resolves on a signal (what wait_for_signal compiles to).
StepDefinition gate(std::string name, std::string signal, std::vector<std::string> depends_on = {}) {
  StepDefinition s;
  s.name = std::move(name);
  s.type = "a_gate";  // the engine never looks at type names
  s.plan.kind = StepPlan::Kind::kAwaitSignal;
  s.plan.signal = std::move(signal);
  s.plan.timeout_code = "timeout";
  s.depends_on = std::move(depends_on);
  return s;
}

StepDefinition with_retry(StepDefinition s, int32_t max_attempts, Duration backoff) {
  s.retry = RetryPolicy{max_attempts, backoff};
  return s;
}

StepDefinition with_timeout(StepDefinition s, Duration timeout) {
  s.timeout = timeout;
  return s;
}

WorkflowDefinition workflow(std::vector<StepDefinition> steps) {
  WorkflowDefinition d;
  d.name = "daily_ingest";
  d.steps = std::move(steps);
  return d;
}

StartCommand start_cmd(const WorkflowDefinition& def,
                       json::object input = json::object{{"url", "s3://x"}}) {
  return StartCommand{"order-4711", def.name, std::move(input), def};
}

StepOutcome started(int64_t run_id) {
  StepOutcome o;
  o.kind = StepOutcome::Kind::kStarted;
  o.run_id = run_id;
  o.run_page_url = "https://db/#job/1/run/" + std::to_string(run_id);
  return o;
}

StepOutcome succeeded(json::object output) {
  StepOutcome o;
  o.kind = StepOutcome::Kind::kSucceeded;
  o.output = std::move(output);
  return o;
}

StepOutcome failed(std::string code, std::string message) {
  StepOutcome o;
  o.kind = StepOutcome::Kind::kFailed;
  o.error = StepError{std::move(code), std::move(message)};
  return o;
}

StepOutcome still_running() {
  StepOutcome o;
  o.kind = StepOutcome::Kind::kStillRunning;
  return o;
}

CompletionEvent completion(std::string step, int32_t attempt, RunResult state,
                           json::object output = {}, std::string message = {}) {
  CompletionEvent e;
  e.step = std::move(step);
  e.attempt = attempt;
  e.state = state;
  e.output = std::move(output);
  e.message = std::move(message);
  return e;
}

std::vector<std::string> types(const std::vector<StatusEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.type);
  return out;
}

using Strings = std::vector<std::string>;

// Drives one workflow through the engine like the shell would, keeping the
// latest state and every event.
struct Harness {
  std::optional<WorkflowState> state;
  std::vector<StatusEvent> all_events;

  Decision apply(const Input& input, TimePoint now) {
    Decision d = decide(state, input, now);
    if (d.changed) {
      EXPECT_TRUE(d.state.has_value());
    } else {
      EXPECT_TRUE(d.events.empty()) << "an unchanged decision emitted events";
    }
    state = d.state;
    all_events.insert(all_events.end(), d.events.begin(), d.events.end());
    return d;
  }

  const StepState& step(std::string_view name) const {
    const auto* s = state->find_step(name);
    EXPECT_NE(s, nullptr) << name;
    return *s;
  }
};

void expect_gap_free(const std::vector<StatusEvent>& events) {
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].seq, static_cast<int64_t>(i + 1)) << "event " << events[i].type;
  }
}

template <class E>
std::vector<E> effects_of(const Decision& d) {
  std::vector<E> out;
  for (const auto& e : d.effects) {
    if (const auto* x = std::get_if<E>(&e)) out.push_back(*x);
  }
  return out;
}

// ------------------------------------------------------------ start

TEST(EngineStart, CreatesStateStartsFirstStep) {
  const auto def = workflow({with_timeout(job("extract"), 2h), job("transform", {"extract"})});
  const Decision d = decide(std::nullopt, start_cmd(def), kT0);

  ASSERT_TRUE(d.state);
  EXPECT_TRUE(d.changed);
  EXPECT_FALSE(d.rejection);
  const WorkflowState& s = *d.state;
  EXPECT_EQ(s.id, "order-4711");
  EXPECT_EQ(s.workflow, "daily_ingest");
  EXPECT_EQ(s.status, WorkflowStatus::kRunning);
  EXPECT_EQ(s.input, (json::object{{"url", "s3://x"}}));
  EXPECT_EQ(s.created_at, kT0);
  EXPECT_EQ(s.updated_at, kT0);
  EXPECT_EQ(s.seq, 2);
  ASSERT_EQ(s.steps.size(), 2u);
  EXPECT_EQ(s.steps[0].name, "extract");
  EXPECT_EQ(s.steps[0].status, StepStatus::kRunning);
  EXPECT_EQ(s.steps[0].attempt, 1);
  EXPECT_EQ(s.steps[0].started_at, kT0);
  EXPECT_EQ(s.steps[1].status, StepStatus::kPending);
  EXPECT_EQ(s.steps[1].attempt, 0);

  EXPECT_EQ(types(d.events), (Strings{"workflow_started", "step_started"}));
  EXPECT_EQ(d.events[0].seq, 1);
  EXPECT_EQ(d.events[0].at, kT0);
  EXPECT_EQ(d.events[0].state, "running");
  EXPECT_FALSE(d.events[0].step);
  EXPECT_EQ(d.events[1].seq, 2);
  EXPECT_EQ(d.events[1].step, "extract");
  EXPECT_EQ(d.events[1].attempt, 1);

  ASSERT_EQ(d.effects.size(), 2u);
  const auto& exec = std::get<ExecuteStep>(d.effects[0]);
  EXPECT_EQ(exec.step, "extract");
  EXPECT_EQ(exec.attempt, 1);
  const auto& timer = std::get<StartTimer>(d.effects[1]);
  EXPECT_EQ(timer.step, "extract");
  EXPECT_EQ(timer.attempt, 1);
  EXPECT_EQ(timer.kind, TimerKind::kTimeout);
  EXPECT_EQ(timer.due, at(2h));
}

TEST(EngineStart, DuplicateStartIsNoOp) {
  Harness h;
  const auto def = workflow({job("extract")});
  h.apply(start_cmd(def), kT0);
  const auto before = *h.state;

  const Decision d = h.apply(start_cmd(def), at(5s));
  EXPECT_FALSE(d.changed);
  EXPECT_FALSE(d.rejection);
  EXPECT_TRUE(d.events.empty());
  EXPECT_TRUE(d.effects.empty());
  EXPECT_EQ(h.state->seq, before.seq);
  EXPECT_EQ(h.state->updated_at, kT0);
}

TEST(EngineStart, ConflictingStartIsRejectedWithEvent) {
  Harness h;
  const auto def = workflow({job("extract")});
  h.apply(start_cmd(def), kT0);

  const Decision d = h.apply(start_cmd(def, json::object{{"url", "s3://other"}}), at(5s));
  EXPECT_TRUE(d.changed);
  ASSERT_TRUE(d.rejection);
  EXPECT_EQ(d.rejection->reason, "conflict");
  EXPECT_FALSE(d.rejection->message.empty());
  ASSERT_EQ(types(d.events), (Strings{"command_rejected"}));
  EXPECT_EQ(d.events[0].reason, "conflict");
  EXPECT_EQ(d.events[0].seq, 3);
  EXPECT_EQ(d.events[0].state, "running");
  EXPECT_TRUE(d.effects.empty());
  EXPECT_EQ(h.state->updated_at, at(5s));
  EXPECT_EQ(h.state->input, (json::object{{"url", "s3://x"}}));  // unchanged

  // A different workflow name with the same input conflicts too.
  auto other = start_cmd(def);
  other.workflow = "weekly";
  EXPECT_EQ(h.apply(other, at(6s)).rejection->reason, "conflict");
}

TEST(EngineStart, UnknownWorkflowIsRejectedWithoutState) {
  StartCommand cmd{"order-1", "nope", {}, std::nullopt};
  const Decision d = decide(std::nullopt, cmd, kT0);
  EXPECT_FALSE(d.state);
  EXPECT_FALSE(d.changed);
  ASSERT_TRUE(d.rejection);
  EXPECT_EQ(d.rejection->reason, "unknown_workflow");
  EXPECT_TRUE(d.events.empty());
  EXPECT_TRUE(d.effects.empty());
}

TEST(EngineStart, BrokenDependenciesAreRejectedAsInvalid) {
  const Decision unknown = decide(std::nullopt, start_cmd(workflow({job("a", {"ghost"})})), kT0);
  ASSERT_TRUE(unknown.rejection);
  EXPECT_EQ(unknown.rejection->reason, "invalid");
  EXPECT_FALSE(unknown.state);

  const Decision cycle =
      decide(std::nullopt, start_cmd(workflow({job("a", {"b"}), job("b", {"a"})})), kT0);
  ASSERT_TRUE(cycle.rejection);
  EXPECT_EQ(cycle.rejection->reason, "invalid");
}

// ------------------------------------------------------------ happy paths

TEST(EngineFlow, TwoSequentialStepsToSuccessWithGapFreeSeq) {
  Harness h;
  const auto def = workflow({job("extract"), job("transform", {"extract"})});
  h.apply(start_cmd(def), kT0);

  Decision d = h.apply(StepExecuted{"extract", 1, started(11)}, at(1s));
  EXPECT_EQ(types(d.events), (Strings{"step_waiting"}));
  EXPECT_EQ(d.events[0].run_id, 11);
  EXPECT_EQ(d.events[0].run_page_url, "https://db/#job/1/run/11");
  EXPECT_EQ(h.step("extract").status, StepStatus::kWaiting);
  EXPECT_EQ(h.step("extract").run_id, 11);
  auto polls = effects_of<PollStep>(d);
  ASSERT_EQ(polls.size(), 1u);
  // poll_every (60s) later, plus up to a quarter of it (spread).
  EXPECT_GE(polls[0].due, at(61s));
  EXPECT_LE(polls[0].due, at(76s));

  d = h.apply(completion("extract", 1, RunResult::kSuccess, {{"rows", 42}}), at(30s));
  EXPECT_EQ(types(d.events), (Strings{"step_succeeded", "step_started"}));
  EXPECT_EQ(d.events[0].output, (json::object{{"rows", 42}}));
  EXPECT_EQ(d.events[0].run_id, 11);
  EXPECT_EQ(d.events[0].attempt, 1);
  EXPECT_EQ(d.events[1].step, "transform");
  EXPECT_EQ(h.step("extract").finished_at, at(30s));
  ASSERT_EQ(d.effects.size(), 1u);
  EXPECT_EQ(std::get<ExecuteStep>(d.effects[0]).step, "transform");

  d = h.apply(StepExecuted{"transform", 1, succeeded({{"ok", true}})}, at(31s));
  EXPECT_EQ(types(d.events), (Strings{"step_succeeded", "workflow_succeeded"}));
  EXPECT_EQ(d.events[1].state, "succeeded");
  EXPECT_EQ(h.state->status, WorkflowStatus::kSucceeded);
  EXPECT_EQ(h.step("transform").output, (json::object{{"ok", true}}));

  EXPECT_EQ(types(h.all_events),
            (Strings{"workflow_started", "step_started", "step_waiting", "step_succeeded",
                     "step_started", "step_succeeded", "workflow_succeeded"}));
  expect_gap_free(h.all_events);
  EXPECT_EQ(h.state->seq, 7);
}

TEST(EngineFlow, ParallelStepsWithDependsOn) {
  Harness h;
  // a and b run together; c waits for both.
  const auto def = workflow({job("a"), job("b"), job("c", {"a", "b"})});
  Decision d = h.apply(start_cmd(def), kT0);
  EXPECT_EQ(types(d.events), (Strings{"workflow_started", "step_started", "step_started"}));
  ASSERT_EQ(d.effects.size(), 2u);
  EXPECT_EQ(std::get<ExecuteStep>(d.effects[0]).step, "a");
  EXPECT_EQ(std::get<ExecuteStep>(d.effects[1]).step, "b");

  d = h.apply(StepExecuted{"b", 1, succeeded({})}, at(1s));
  EXPECT_EQ(types(d.events), (Strings{"step_succeeded"}));
  EXPECT_EQ(h.step("c").status, StepStatus::kPending);

  d = h.apply(StepExecuted{"a", 1, succeeded({})}, at(2s));
  EXPECT_EQ(types(d.events), (Strings{"step_succeeded", "step_started"}));
  EXPECT_EQ(d.events[1].step, "c");

  h.apply(StepExecuted{"c", 1, succeeded({})}, at(3s));
  EXPECT_EQ(h.state->status, WorkflowStatus::kSucceeded);
  expect_gap_free(h.all_events);
}

TEST(EngineFlow, EmptyWorkflowSucceedsAtOnce) {
  const Decision d = decide(std::nullopt, start_cmd(workflow({})), kT0);
  EXPECT_EQ(types(d.events), (Strings{"workflow_started", "workflow_succeeded"}));
  EXPECT_EQ(d.state->status, WorkflowStatus::kSucceeded);
}

// ------------------------------------------------------------ failures and retries

TEST(EngineFailure, FailingJobFailsWorkflowAndSkipsPending) {
  Harness h;
  const auto def = workflow({job("a"), job("b"), job("c", {"a", "b"})});
  h.apply(start_cmd(def), kT0);
  h.apply(StepExecuted{"b", 1, started(22)}, at(1s));

  const Decision d = h.apply(StepExecuted{"a", 1, failed("INVALID_PARAMETER_VALUE", "bad")}, at(2s));
  EXPECT_EQ(types(d.events), (Strings{"step_failed", "workflow_failed"}));
  EXPECT_EQ(d.events[0].error, (StepError{"INVALID_PARAMETER_VALUE", "bad"}));
  EXPECT_EQ(d.events[0].state, "running");
  EXPECT_EQ(d.events[1].step, "a");
  EXPECT_EQ(d.events[1].error, (StepError{"INVALID_PARAMETER_VALUE", "bad"}));
  EXPECT_EQ(d.events[1].state, "failed");

  EXPECT_EQ(h.state->status, WorkflowStatus::kFailed);
  EXPECT_EQ(h.step("a").status, StepStatus::kFailed);
  EXPECT_EQ(h.step("a").finished_at, at(2s));
  EXPECT_EQ(h.step("b").status, StepStatus::kCanceled);
  EXPECT_EQ(h.step("c").status, StepStatus::kSkipped);

  // b's run is canceled.
  const auto cancels = effects_of<CancelStep>(d);
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].step, "b");
  EXPECT_EQ(cancels[0].run_id, 22);

  // Anything later is a no-op; a signal is refused (the workflow has ended).
  EXPECT_FALSE(h.apply(completion("b", 1, RunResult::kSuccess), at(3s)).changed);
  const Decision late = h.apply(SignalCommand{"x", {}}, at(3s));
  ASSERT_TRUE(late.rejection);
  EXPECT_EQ(late.rejection->reason, "not_running");
  EXPECT_EQ(types(late.events), (Strings{"command_rejected"}));
  expect_gap_free(h.all_events);
}

TEST(EngineFailure, RunningStepWithoutRunIdIsCanceledWhenItsRunShowsUp) {
  Harness h;
  // No depends_on given: both start together.
  const auto parallel = workflow({job("a"), job("b")});
  h.apply(start_cmd(parallel), kT0);
  Decision d = h.apply(StepExecuted{"a", 1, failed("X", "boom")}, at(1s));
  EXPECT_TRUE(effects_of<CancelStep>(d).empty());  // b has nothing known to cancel yet
  EXPECT_EQ(h.step("b").status, StepStatus::kCanceled);

  d = h.apply(StepExecuted{"b", 1, started(99)}, at(2s));
  EXPECT_FALSE(d.changed);
  const auto cancels = effects_of<CancelStep>(d);
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].step, "b");
  EXPECT_EQ(cancels[0].run_id, 99);
}

TEST(EngineRetry, RetryPolicyBackoffAndStaleTimer) {
  Harness h;
  const auto def = workflow({with_retry(job("a"), 3, 30s)});
  h.apply(start_cmd(def), kT0);
  h.apply(StepExecuted{"a", 1, started(1)}, at(1s));

  Decision d = h.apply(completion("a", 1, RunResult::kFailed, {}, "driver crashed"), at(10s));
  ASSERT_EQ(types(d.events), (Strings{"step_retrying"}));
  EXPECT_EQ(d.events[0].attempt, 1);
  EXPECT_EQ(d.events[0].error, (StepError{"FAILED", "driver crashed"}));
  EXPECT_EQ(h.step("a").status, StepStatus::kPending);
  EXPECT_EQ(h.step("a").attempt, 1);
  ASSERT_EQ(d.effects.size(), 1u);
  const auto& timer = std::get<StartTimer>(d.effects[0]);
  EXPECT_EQ(timer.kind, TimerKind::kRetryBackoff);
  EXPECT_EQ(timer.attempt, 1);
  EXPECT_EQ(timer.due, at(40s));

  // A timer for another attempt does nothing.
  EXPECT_FALSE(h.apply(TimerFired{"a", 2, TimerKind::kRetryBackoff}, at(40s)).changed);
  // A completion for the failed attempt does nothing now either.
  EXPECT_FALSE(h.apply(completion("a", 1, RunResult::kSuccess), at(41s)).changed);

  d = h.apply(TimerFired{"a", 1, TimerKind::kRetryBackoff}, at(40s));
  EXPECT_EQ(types(d.events), (Strings{"step_started"}));
  EXPECT_EQ(d.events[0].attempt, 2);
  EXPECT_EQ(h.step("a").attempt, 2);
  EXPECT_EQ(h.step("a").status, StepStatus::kRunning);
  EXPECT_FALSE(h.step("a").error);
  EXPECT_FALSE(h.step("a").run_id);
  ASSERT_EQ(d.effects.size(), 1u);
  EXPECT_EQ(std::get<ExecuteStep>(d.effects[0]).attempt, 2);

  // The same timer delivered again is stale.
  EXPECT_FALSE(h.apply(TimerFired{"a", 1, TimerKind::kRetryBackoff}, at(41s)).changed);

  h.apply(StepExecuted{"a", 2, failed("X", "again")}, at(50s));
  EXPECT_EQ(h.step("a").status, StepStatus::kPending);
  h.apply(TimerFired{"a", 2, TimerKind::kRetryBackoff}, at(80s));
  d = h.apply(StepExecuted{"a", 3, failed("X", "third")}, at(90s));
  EXPECT_EQ(types(d.events), (Strings{"step_failed", "workflow_failed"}));
  EXPECT_EQ(h.state->status, WorkflowStatus::kFailed);
  expect_gap_free(h.all_events);
}

// run_job/submit_run with repair: true: each new attempt, whether the policy
// or a retry command starts it, learns the run (and handle) of the one before.
TEST(EngineRetry, AStepThatRepairsRunsStartsItsNextAttemptWithTheRunBefore) {
  StepDefinition repaired = with_retry(job("a"), 2, 30s);
  repaired.plan.repairs_runs = true;
  Harness h;
  const auto def = workflow({repaired, job("b", {"a"})});
  h.apply(start_cmd(def), kT0);
  EXPECT_TRUE(h.step("a").handle.is_null()) << "the first attempt has no run before it";
  StepOutcome first = started(41);
  first.handle = json::object{{"job_id", 123}};
  h.apply(StepExecuted{"a", 1, first}, at(1s));
  h.apply(completion("a", 1, RunResult::kFailed, {}, "task_2 failed"), at(10s));
  h.apply(TimerFired{"a", 1, TimerKind::kRetryBackoff}, at(40s));
  EXPECT_EQ(h.step("a").attempt, 2);
  EXPECT_FALSE(h.step("a").run_id);
  EXPECT_EQ(h.step("a").handle,
            json::value(json::object{{"previous_run_id", 41},
                                     {"previous_handle", json::object{{"job_id", 123}}}}));

  StepOutcome second = started(41);  // the same run, repaired
  second.handle = json::object{{"repair_id", 7}};
  h.apply(StepExecuted{"a", 2, second}, at(41s));
  h.apply(completion("a", 2, RunResult::kFailed, {}, "still failing"), at(50s));
  ASSERT_EQ(h.state->status, WorkflowStatus::kFailed);
  h.apply(RetryCommand{}, at(60s));
  EXPECT_EQ(h.step("a").attempt, 3);
  EXPECT_EQ(h.step("a").handle,
            json::value(json::object{{"previous_run_id", 41},
                                     {"previous_handle", json::object{{"repair_id", 7}}}}));

  // A step that does not repair starts every attempt with nothing.
  Harness plain;
  plain.apply(start_cmd(workflow({with_retry(job("a"), 2, 30s)})), kT0);
  plain.apply(StepExecuted{"a", 1, first}, at(1s));
  plain.apply(completion("a", 1, RunResult::kFailed, {}, "x"), at(10s));
  plain.apply(TimerFired{"a", 1, TimerKind::kRetryBackoff}, at(40s));
  EXPECT_TRUE(plain.step("a").handle.is_null());
}

TEST(EngineRetry, TimeoutCancelsRunAndRetries) {
  Harness h;
  const auto def = workflow({with_timeout(with_retry(job("a"), 2, 10s), 1h)});
  h.apply(start_cmd(def), kT0);
  h.apply(StepExecuted{"a", 1, started(5)}, at(1s));

  Decision d = h.apply(TimerFired{"a", 1, TimerKind::kTimeout}, at(1h));
  ASSERT_EQ(d.effects.size(), 2u);
  const auto& cancel = std::get<CancelStep>(d.effects[0]);
  EXPECT_EQ(cancel.step, "a");
  EXPECT_EQ(cancel.attempt, 1);
  EXPECT_EQ(cancel.run_id, 5);
  const auto& backoff = std::get<StartTimer>(d.effects[1]);
  EXPECT_EQ(backoff.kind, TimerKind::kRetryBackoff);
  EXPECT_EQ(backoff.due, at(1h + 10s));
  ASSERT_EQ(types(d.events), (Strings{"step_retrying"}));
  EXPECT_EQ(d.events[0].error, (StepError{"TIMEDOUT", "step timed out after 1h"}));

  // The timed-out attempt's timer again: stale. A poll result for it: no-op.
  EXPECT_FALSE(h.apply(TimerFired{"a", 1, TimerKind::kTimeout}, at(1h + 1s)).changed);
  EXPECT_FALSE(h.apply(StepPolled{"a", 1, succeeded({})}, at(1h + 2s)).changed);

  d = h.apply(TimerFired{"a", 1, TimerKind::kRetryBackoff}, at(1h + 10s));
  const auto timers = effects_of<StartTimer>(d);
  ASSERT_EQ(timers.size(), 1u);
  EXPECT_EQ(timers[0].kind, TimerKind::kTimeout);
  EXPECT_EQ(timers[0].attempt, 2);
  EXPECT_EQ(timers[0].due, at(2h + 10s));

  // Second timeout: no attempts left.
  d = h.apply(TimerFired{"a", 2, TimerKind::kTimeout}, at(2h + 10s));
  EXPECT_EQ(types(d.events), (Strings{"step_failed", "workflow_failed"}));
  EXPECT_EQ(effects_of<CancelStep>(d).size(), 1u);
  EXPECT_EQ(h.state->status, WorkflowStatus::kFailed);
  expect_gap_free(h.all_events);
}

TEST(EngineRetry, LateRunOfTimedOutAttemptIsCanceled) {
  Harness h;
  const auto def = workflow({with_timeout(with_retry(job("a"), 2, 10s), 1min)});
  h.apply(start_cmd(def), kT0);
  h.apply(TimerFired{"a", 1, TimerKind::kTimeout}, at(1min));  // run-now never answered

  const Decision d = h.apply(StepExecuted{"a", 1, started(77)}, at(61s));
  EXPECT_FALSE(d.changed);
  const auto cancels = effects_of<CancelStep>(d);
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].run_id, 77);
  EXPECT_EQ(cancels[0].attempt, 1);
}

TEST(EngineRetry, DuplicateResultForLiveAttemptCancelsNothing) {
  Harness h;
  h.apply(start_cmd(workflow({job("a")})), kT0);
  h.apply(StepExecuted{"a", 1, started(8)}, at(1s));
  const Decision d = h.apply(StepExecuted{"a", 1, started(8)}, at(2s));
  EXPECT_FALSE(d.changed);
  EXPECT_TRUE(d.effects.empty());
  EXPECT_EQ(h.step("a").status, StepStatus::kWaiting);
}

TEST(EngineRetry, CancelDuringBackoffSkipsStepAndTimerIsStale) {
  Harness h;
  h.apply(start_cmd(workflow({with_retry(job("a"), 3, 30s)})), kT0);
  h.apply(StepExecuted{"a", 1, failed("X", "y")}, at(1s));
  const Decision c = h.apply(CancelCommand{"stop"}, at(2s));
  EXPECT_TRUE(effects_of<CancelStep>(c).empty());  // nothing in flight
  EXPECT_EQ(h.step("a").status, StepStatus::kSkipped);
  EXPECT_FALSE(h.apply(TimerFired{"a", 1, TimerKind::kRetryBackoff}, at(31s)).changed);
}

TEST(EngineRetry, SignalTimeoutFailsWithoutCancelEffect) {
  Harness h;
  StepDefinition g = gate("gate", "approved");
  g.timeout = 10min;
  const Decision s = h.apply(StartCommand{"w", "wf", {}, workflow({g})}, kT0);
  ASSERT_EQ(effects_of<StartTimer>(s).size(), 1u);
  EXPECT_EQ(effects_of<StartTimer>(s)[0].kind, TimerKind::kTimeout);
  EXPECT_TRUE(effects_of<ExecuteStep>(s).empty());

  const Decision d = h.apply(TimerFired{"gate", 1, TimerKind::kTimeout}, at(10min));
  EXPECT_TRUE(effects_of<CancelStep>(d).empty());
  ASSERT_EQ(types(d.events), (Strings{"step_failed", "workflow_failed"}));
  EXPECT_EQ(d.events[0].error, (StepError{"timeout", "step timed out after 10m"}));
}

// ------------------------------------------------------------ completion events

TEST(EngineCompletion, OldAttemptIsNoOp) {
  Harness h;
  const auto def = workflow({with_retry(job("a"), 2, 5s)});
  h.apply(start_cmd(def), kT0);
  h.apply(StepExecuted{"a", 1, failed("X", "y")}, at(1s));
  h.apply(TimerFired{"a", 1, TimerKind::kRetryBackoff}, at(6s));
  h.apply(StepExecuted{"a", 2, started(2)}, at(7s));

  const Decision d = h.apply(completion("a", 1, RunResult::kSuccess), at(8s));
  EXPECT_FALSE(d.changed);
  EXPECT_TRUE(d.events.empty());
  EXPECT_FALSE(d.rejection);
  EXPECT_EQ(h.step("a").status, StepStatus::kWaiting);

  // Unknown step: no-op as well.
  EXPECT_FALSE(h.apply(completion("ghost", 2, RunResult::kSuccess), at(8s)).changed);
}

TEST(EngineCompletion, AcceptedWhileRunningBeforeStepExecuted) {
  Harness h;
  const auto def = workflow({job("a")});
  h.apply(start_cmd(def), kT0);
  auto ev = completion("a", 1, RunResult::kSuccess, {{"rows", 3}});
  ev.run_id = 1234;

  Decision d = h.apply(ev, at(1s));
  EXPECT_EQ(types(d.events), (Strings{"step_succeeded", "workflow_succeeded"}));
  EXPECT_EQ(d.events[0].run_id, 1234);
  EXPECT_EQ(h.step("a").run_id, 1234);
  EXPECT_EQ(h.step("a").output, (json::object{{"rows", 3}}));

  // The late StepExecuted for the same attempt changes nothing and cancels nothing.
  d = h.apply(StepExecuted{"a", 1, started(1234)}, at(2s));
  EXPECT_FALSE(d.changed);
  EXPECT_TRUE(d.effects.empty());
}

// The token names an attempt; an event naming another run than the one
// Databricks gave that attempt is refused, and the step goes on unchanged.
TEST(EngineCompletion, AnEventNamingAnotherRunIsRefusedRunMismatch) {
  Harness h;
  h.apply(start_cmd(workflow({job("a")})), kT0);
  h.apply(StepExecuted{"a", 1, started(1234)}, at(1s));
  auto ev = completion("a", 1, RunResult::kFailed, {}, "forged or confused");
  ev.run_id = 999;
  const Decision d = h.apply(ev, at(2s));
  ASSERT_TRUE(d.rejection);
  EXPECT_EQ(d.rejection->reason, "run_mismatch");
  EXPECT_NE(d.rejection->message.find("999"), std::string::npos) << d.rejection->message;
  EXPECT_NE(d.rejection->message.find("1234"), std::string::npos) << d.rejection->message;
  EXPECT_FALSE(d.changed);
  EXPECT_TRUE(d.events.empty());
  EXPECT_EQ(h.step("a").status, StepStatus::kWaiting);
  EXPECT_EQ(h.step("a").run_id, 1234);

  // The event of the attempt's own run (or one naming no run) still ends it.
  ev.run_id = 1234;
  ev.state = RunResult::kSuccess;
  EXPECT_FALSE(h.apply(ev, at(3s)).rejection);
  EXPECT_EQ(h.step("a").status, StepStatus::kSucceeded);
}

TEST(EngineCompletion, FailureStatesMapToErrorCodes) {
  for (const auto& [state, code] : {std::pair{RunResult::kFailed, "FAILED"},
                                    std::pair{RunResult::kCanceled, "CANCELED"},
                                    std::pair{RunResult::kTimedOut, "TIMEDOUT"}}) {
    Harness h;
    h.apply(start_cmd(workflow({job("a")})), kT0);
    const Decision d = h.apply(completion("a", 1, state), at(1s));
    ASSERT_EQ(types(d.events), (Strings{"step_failed", "workflow_failed"}));
    ASSERT_TRUE(d.events[0].error);
    EXPECT_EQ(d.events[0].error->code, code);
    EXPECT_FALSE(d.events[0].error->message.empty());
  }
}

// ------------------------------------------------------------ polling

TEST(EnginePoll, StillRunningReschedules) {
  Harness h;
  auto step = job("a");
  step.poll_every = 15s;
  h.apply(start_cmd(workflow({step})), kT0);
  h.apply(StepExecuted{"a", 1, started(3)}, at(1s));
  const auto seq = h.state->seq;

  Decision d = h.apply(StepPolled{"a", 1, still_running()}, at(16s));
  EXPECT_FALSE(d.changed);
  EXPECT_TRUE(d.events.empty());
  ASSERT_EQ(d.effects.size(), 1u);
  const auto& poll = std::get<PollStep>(d.effects[0]);
  EXPECT_EQ(poll.step, "a");
  EXPECT_EQ(poll.attempt, 1);
  EXPECT_GE(poll.due, at(31s));
  EXPECT_LE(poll.due, at(31s) + 15s / 4);
  EXPECT_EQ(poll.due, next_poll_due(h.state->id, "a", 1, 15s, at(16s)));
  EXPECT_EQ(h.state->seq, seq);

  d = h.apply(StepPolled{"a", 1, succeeded({{"n", 1}})}, at(31s));
  EXPECT_EQ(types(d.events), (Strings{"step_succeeded", "workflow_succeeded"}));
  EXPECT_EQ(h.step("a").run_id, 3);  // kept from StepExecuted

  // A poll after the end does nothing, not even reschedule.
  d = h.apply(StepPolled{"a", 1, still_running()}, at(46s));
  EXPECT_FALSE(d.changed);
  EXPECT_TRUE(d.effects.empty());
}

// Many steps waiting since the same moment do not poll at the same moment:
// their due times spread over a quarter of poll_every, the same for the
// same inputs (the engine is pure).
TEST(EnginePoll, DueTimesSpreadDeterministically) {
  std::set<int64_t> dues;
  int64_t earliest = INT64_MAX;
  int64_t latest = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = "wf-" + std::to_string(i);
    const TimePoint due = next_poll_due(id, "wait", 1, 2s, at(10s));
    EXPECT_EQ(due, next_poll_due(id, "wait", 1, 2s, at(10s)));
    const int64_t offset = (due - at(12s)).count();
    ASSERT_GE(offset, 0);
    ASSERT_LE(offset, 500);
    dues.insert(offset);
    earliest = std::min(earliest, offset);
    latest = std::max(latest, offset);
  }
  EXPECT_GT(dues.size(), 300u);  // 501 possible offsets, 1000 draws
  EXPECT_LT(earliest, 25);
  EXPECT_GT(latest, 475);
  // The same step polls at a different offset next time.
  EXPECT_NE(next_poll_due("wf-1", "wait", 1, 2s, at(10s)) - at(10s),
            next_poll_due("wf-1", "wait", 1, 2s, at(20s)) - at(20s));
  EXPECT_EQ(next_poll_due("wf-1", "wait", 1, 0s, at(10s)), at(10s));
}

// A run_job-like step: its run may publish a completion event.
StepDefinition evented_job(std::string name, Duration grace = 30s) {
  StepDefinition s = job(std::move(name));
  s.plan.completion_event = true;
  s.event_grace = grace;
  return s;
}

TEST(EngineEventGrace, APollThatSeesTheEndWaitsForTheEventWhichWins) {
  Harness h;
  h.apply(start_cmd(workflow({evented_job("a")})), kT0);
  h.apply(StepExecuted{"a", 1, started(3)}, at(1s));
  const auto seq = h.state->seq;

  // The run ended before its event was consumed: nothing changes yet, one
  // more poll comes event_grace later.
  Decision d = h.apply(StepPolled{"a", 1, succeeded({{"notebook_output", "{}"}})}, at(61s));
  EXPECT_FALSE(d.changed);
  EXPECT_TRUE(d.events.empty());
  ASSERT_EQ(d.effects.size(), 1u);
  const auto& poll = std::get<PollStep>(d.effects[0]);
  EXPECT_EQ(poll.due, at(91s));
  EXPECT_TRUE(poll.after_event_grace);
  EXPECT_EQ(h.step("a").status, StepStatus::kWaiting);
  EXPECT_EQ(h.state->seq, seq);

  // The event arrives within the grace: its output is the step's.
  d = h.apply(completion("a", 1, RunResult::kSuccess, {{"rows", 42}}), at(70s));
  EXPECT_EQ(types(d.events), (Strings{"step_succeeded", "workflow_succeeded"}));
  EXPECT_EQ(h.step("a").output, (json::object{{"rows", 42}}));

  // The grace poll then finds nothing to do.
  d = h.apply(StepPolled{"a", 1, succeeded({{"notebook_output", "{}"}}), true}, at(91s));
  EXPECT_FALSE(d.changed);
  EXPECT_TRUE(d.effects.empty());
  EXPECT_EQ(h.step("a").output, (json::object{{"rows", 42}}));
}

TEST(EngineEventGrace, WithoutTheEventTheGracePollEndsTheStep) {
  for (const RunResult end : {RunResult::kSuccess, RunResult::kFailed}) {
    Harness h;
    h.apply(start_cmd(workflow({evented_job("a", 5s)})), kT0);
    h.apply(StepExecuted{"a", 1, started(3)}, at(1s));
    const StepOutcome polled = end == RunResult::kSuccess ? succeeded({{"notebook_output", "x"}})
                                                          : failed("FAILED", "the task failed");
    Decision d = h.apply(StepPolled{"a", 1, polled}, at(61s));
    EXPECT_FALSE(d.changed);
    ASSERT_EQ(effects_of<PollStep>(d).size(), 1u);
    EXPECT_EQ(effects_of<PollStep>(d)[0].due, at(66s));
    d = h.apply(StepPolled{"a", 1, polled, /*after_event_grace=*/true}, at(66s));
    if (end == RunResult::kSuccess) {
      EXPECT_EQ(types(d.events), (Strings{"step_succeeded", "workflow_succeeded"}));
      EXPECT_EQ(h.step("a").output, (json::object{{"notebook_output", "x"}}));
    } else {
      EXPECT_EQ(types(d.events), (Strings{"step_failed", "workflow_failed"}));
    }
  }
}

TEST(EngineEventGrace, PollCompletionNoGraceTimeoutFirstAndStepsWithoutEventsEndAtOnce) {
  StepDefinition polled = evented_job("a");
  polled.completion = CompletionMode::kPoll;
  StepDefinition no_grace = evented_job("a", 0s);
  StepDefinition statement = job("a");  // e.g. sql: nothing ever publishes its event
  // The timeout (at 80 s) would fail the ended run before the grace (61 s + 30 s).
  StepDefinition timed = with_timeout(evented_job("a"), 80s);
  for (const StepDefinition& step : {polled, no_grace, statement, timed}) {
    Harness h;
    h.apply(start_cmd(workflow({step})), kT0);
    h.apply(StepExecuted{"a", 1, started(3)}, at(1s));
    const Decision d = h.apply(StepPolled{"a", 1, succeeded({{"n", 1}})}, at(61s));
    EXPECT_EQ(types(d.events), (Strings{"step_succeeded", "workflow_succeeded"}));
  }
}

TEST(EnginePoll, StepExecutedStillRunningActsLikeStarted) {
  Harness h;
  h.apply(start_cmd(workflow({job("a")})), kT0);
  auto outcome = still_running();
  outcome.handle = json::object{{"statement_id", "s-1"}};
  const Decision d = h.apply(StepExecuted{"a", 1, outcome}, at(1s));
  EXPECT_EQ(types(d.events), (Strings{"step_waiting"}));
  EXPECT_EQ(h.step("a").status, StepStatus::kWaiting);
  EXPECT_EQ(h.step("a").handle, json::value(json::object{{"statement_id", "s-1"}}));
  EXPECT_EQ(effects_of<PollStep>(d).size(), 1u);
}

// ------------------------------------------------------------ commands

TEST(EngineCancel, MidRunCancelsStepsAndSkipsRest) {
  Harness h;
  const auto def = workflow({job("a"), job("b"), job("c", {"a", "b"})});
  h.apply(start_cmd(def), kT0);
  h.apply(StepExecuted{"a", 1, started(10)}, at(1s));

  const Decision d = h.apply(CancelCommand{"user asked"}, at(2s));
  EXPECT_TRUE(d.changed);
  ASSERT_EQ(types(d.events), (Strings{"workflow_canceled"}));
  EXPECT_EQ(d.events[0].reason, "user asked");
  EXPECT_EQ(d.events[0].state, "canceled");
  const auto cancels = effects_of<CancelStep>(d);
  ASSERT_EQ(cancels.size(), 2u);
  EXPECT_EQ(cancels[0].step, "a");
  EXPECT_EQ(cancels[0].run_id, 10);
  EXPECT_EQ(cancels[1].step, "b");
  EXPECT_FALSE(cancels[1].run_id);
  EXPECT_EQ(h.state->status, WorkflowStatus::kCanceled);
  EXPECT_EQ(h.step("a").status, StepStatus::kCanceled);
  EXPECT_EQ(h.step("b").status, StepStatus::kCanceled);
  EXPECT_EQ(h.step("c").status, StepStatus::kSkipped);

  // Cancel on a terminal workflow or no workflow: no-op, no rejection.
  const Decision again = h.apply(CancelCommand{"again"}, at(3s));
  EXPECT_FALSE(again.changed);
  EXPECT_FALSE(again.rejection);
  const Decision none = decide(std::nullopt, CancelCommand{"x"}, kT0);
  EXPECT_FALSE(none.changed);
  EXPECT_FALSE(none.rejection);
  EXPECT_FALSE(none.state);
  expect_gap_free(h.all_events);
}

TEST(EngineRetryCommand, ResumesFromFailedStepOnly) {
  Harness h;
  const auto def = workflow({job("a"), job("b", {"a"}), job("c", {"b"})});
  h.apply(start_cmd(def), kT0);
  h.apply(StepExecuted{"a", 1, succeeded({{"x", 1}})}, at(1s));
  h.apply(StepExecuted{"b", 1, failed("X", "bad")}, at(2s));
  ASSERT_EQ(h.state->status, WorkflowStatus::kFailed);
  EXPECT_EQ(h.step("c").status, StepStatus::kSkipped);

  Decision d = h.apply(RetryCommand{}, at(3s));
  EXPECT_FALSE(d.rejection);
  ASSERT_EQ(types(d.events), (Strings{"workflow_started", "step_started"}));
  EXPECT_EQ(d.events[0].reason, "retry");
  EXPECT_EQ(d.events[1].step, "b");
  EXPECT_EQ(d.events[1].attempt, 2);
  ASSERT_EQ(d.effects.size(), 1u);
  EXPECT_EQ(std::get<ExecuteStep>(d.effects[0]).step, "b");
  EXPECT_EQ(std::get<ExecuteStep>(d.effects[0]).attempt, 2);
  EXPECT_EQ(h.state->status, WorkflowStatus::kRunning);
  EXPECT_EQ(h.step("a").status, StepStatus::kSucceeded);
  EXPECT_EQ(h.step("a").attempt, 1);
  EXPECT_EQ(h.step("a").output, (json::object{{"x", 1}}));
  EXPECT_EQ(h.step("c").status, StepStatus::kPending);
  EXPECT_EQ(h.step("c").attempt, 0);

  h.apply(StepExecuted{"b", 2, succeeded({})}, at(4s));
  EXPECT_EQ(h.step("c").status, StepStatus::kRunning);
  h.apply(StepExecuted{"c", 1, succeeded({})}, at(5s));
  EXPECT_EQ(h.state->status, WorkflowStatus::kSucceeded);
  expect_gap_free(h.all_events);
}

TEST(EngineRetryCommand, RetriedStepGetsItsRetryBudgetAgain) {
  Harness h;
  h.apply(start_cmd(workflow({with_retry(job("a"), 2, 5s)})), kT0);
  h.apply(StepExecuted{"a", 1, failed("X", "1")}, at(1s));
  h.apply(TimerFired{"a", 1, TimerKind::kRetryBackoff}, at(6s));
  h.apply(StepExecuted{"a", 2, failed("X", "2")}, at(7s));
  ASSERT_EQ(h.state->status, WorkflowStatus::kFailed);

  h.apply(RetryCommand{}, at(8s));
  EXPECT_EQ(h.step("a").attempt, 3);
  const Decision d = h.apply(StepExecuted{"a", 3, failed("X", "3")}, at(9s));
  EXPECT_EQ(types(d.events), (Strings{"step_retrying"}));
}

TEST(EngineRetryCommand, RejectedUnlessFailed) {
  Harness h;
  h.apply(start_cmd(workflow({job("a")})), kT0);
  const Decision d = h.apply(RetryCommand{}, at(1s));
  ASSERT_TRUE(d.rejection);
  EXPECT_EQ(d.rejection->reason, "not_failed");
  ASSERT_EQ(types(d.events), (Strings{"command_rejected"}));
  EXPECT_EQ(d.events[0].reason, "not_failed");
  EXPECT_EQ(d.events[0].seq, 3);
  EXPECT_TRUE(d.changed);
  EXPECT_EQ(h.state->status, WorkflowStatus::kRunning);
  EXPECT_TRUE(d.effects.empty());

  h.apply(CancelCommand{""}, at(2s));
  EXPECT_EQ(h.apply(RetryCommand{}, at(3s)).rejection->reason, "not_failed");

  const Decision none = decide(std::nullopt, RetryCommand{}, kT0);
  ASSERT_TRUE(none.rejection);
  EXPECT_EQ(none.rejection->reason, "not_failed");
  EXPECT_TRUE(none.events.empty());
  EXPECT_FALSE(none.state);
  expect_gap_free(h.all_events);
}

// ------------------------------------------------------------ sleep and signals

// A sleep is performed like any step; its outcome asks for a durable timer.
TEST(EngineSleep, WaitUntilOutcomeStartsATimerThenSucceeds) {
  Harness h;
  StepDefinition nap = job("nap");
  nap.type = "sleep";
  h.apply(StartCommand{"w", "wf", {}, workflow({nap, job("after", {"nap"})})}, kT0);
  StepOutcome wait;
  wait.kind = StepOutcome::Kind::kWaitUntil;
  wait.wake_at = at(30s);
  const Decision waiting = h.apply(StepExecuted{"nap", 1, wait}, at(1s));
  EXPECT_EQ(types(waiting.events), (Strings{"step_waiting"}));
  ASSERT_EQ(effects_of<StartTimer>(waiting).size(), 1u);
  EXPECT_EQ(effects_of<StartTimer>(waiting)[0].kind, TimerKind::kSleep);
  EXPECT_EQ(effects_of<StartTimer>(waiting)[0].due, at(30s));
  EXPECT_TRUE(effects_of<PollStep>(waiting).empty());
  EXPECT_EQ(h.step("nap").status, StepStatus::kWaiting);

  EXPECT_FALSE(h.apply(TimerFired{"nap", 0, TimerKind::kSleep}, at(30s)).changed);
  const Decision d = h.apply(TimerFired{"nap", 1, TimerKind::kSleep}, at(30s));
  EXPECT_EQ(types(d.events), (Strings{"step_succeeded", "step_started"}));
  EXPECT_EQ(h.step("nap").output, json::object{});
  EXPECT_EQ(h.step("after").status, StepStatus::kRunning);
  expect_gap_free(h.all_events);
}

TEST(EngineSignal, ResolvesWaitingStep) {
  Harness h;
  h.apply(StartCommand{"w", "wf", {}, workflow({gate("gate", "approved"), job("after", {"gate"})})},
          kT0);
  EXPECT_EQ(h.step("gate").status, StepStatus::kWaiting);
  EXPECT_EQ(types(h.all_events), (Strings{"workflow_started", "step_started", "step_waiting"}));

  // A name no step of the definition waits for: refused, and nothing is kept.
  const Decision wrong = h.apply(SignalCommand{"rejected", json::value("x")}, at(1s));
  ASSERT_TRUE(wrong.rejection);
  EXPECT_EQ(wrong.rejection->reason, "unknown_signal");
  EXPECT_EQ(types(wrong.events), (Strings{"command_rejected"}));
  EXPECT_EQ(wrong.events[0].reason, "unknown_signal");
  EXPECT_EQ(h.step("gate").status, StepStatus::kWaiting);
  EXPECT_TRUE(h.state->kept_signals.empty());

  const Decision d = h.apply(SignalCommand{"approved", json::object{{"by", "ana"}}}, at(2s));
  EXPECT_EQ(types(d.events), (Strings{"step_succeeded", "step_started"}));
  // The signal's value is the output.
  EXPECT_EQ(h.step("gate").output, (json::object{{"by", "ana"}}));
  EXPECT_EQ(d.events[0].output, (json::object{{"by", "ana"}}));
  EXPECT_TRUE(h.state->kept_signals.empty());

  // On no workflow: refused without state.
  const Decision none = decide(std::nullopt, SignalCommand{"approved", nullptr}, kT0);
  EXPECT_FALSE(none.changed);
  ASSERT_TRUE(none.rejection);
  EXPECT_EQ(none.rejection->reason, "not_running");
  expect_gap_free(h.all_events);
}

// A signal that comes while an earlier step still runs is kept, and the gate
// takes it as it starts: the producer need not know how far the workflow got.
TEST(EngineSignal, AnEarlySignalIsKeptThenTakenWhenTheStepWaits) {
  Harness h;
  h.apply(StartCommand{"w", "wf", {},
                       workflow({job("extract"), with_timeout(gate("gate", "approved", {"extract"}), 1h),
                                 job("after", {"gate"})})},
          kT0);
  const Decision kept = h.apply(SignalCommand{"approved", json::object{{"by", "ana"}}}, at(1s));
  EXPECT_FALSE(kept.rejection);
  EXPECT_EQ(types(kept.events), (Strings{"signal_kept"}));
  EXPECT_EQ(kept.events[0].signal, "approved");
  EXPECT_EQ(to_json(kept.events[0], "w", "wf").at("signal"), "approved");
  ASSERT_EQ(h.state->kept_signals.size(), 1u);
  EXPECT_EQ(h.state->kept_signals[0],
            (KeptSignal{"approved", json::object{{"by", "ana"}}, at(1s)}));
  EXPECT_EQ(h.step("gate").status, StepStatus::kPending);

  const Decision d = h.apply(StepExecuted{"extract", 1, succeeded({})}, at(5s));
  EXPECT_EQ(types(d.events), (Strings{"step_succeeded", "step_started", "step_waiting",
                                      "step_succeeded", "step_started"}));
  EXPECT_EQ(h.step("gate").status, StepStatus::kSucceeded);
  EXPECT_EQ(h.step("gate").output, (json::object{{"by", "ana"}}));
  EXPECT_EQ(h.step("after").status, StepStatus::kRunning);
  EXPECT_TRUE(h.state->kept_signals.empty());
  // The gate was resolved at once: no timeout timer is left for it.
  for (const auto& timer : effects_of<StartTimer>(d)) EXPECT_NE(timer.step, "gate");
  expect_gap_free(h.all_events);
}

// Each waiting step takes one signal, the oldest of its name; others stay kept.
TEST(EngineSignal, EachGateTakesTheOldestKeptSignalOfItsName) {
  Harness h;
  h.apply(StartCommand{"w", "wf", {},
                       workflow({job("extract"), gate("g1", "go", {"extract"}),
                                 gate("g2", "go", {"g1"}), gate("g3", "other", {"g2"})})},
          kT0);
  h.apply(SignalCommand{"go", 1}, at(1s));
  h.apply(SignalCommand{"other", 9}, at(2s));
  h.apply(SignalCommand{"go", 2}, at(3s));
  h.apply(SignalCommand{"go", 3}, at(4s));
  ASSERT_EQ(h.state->kept_signals.size(), 4u);
  h.apply(StepExecuted{"extract", 1, succeeded({})}, at(5s));
  EXPECT_EQ(h.step("g1").output, (json::object{{"value", 1}}));
  EXPECT_EQ(h.step("g2").output, (json::object{{"value", 2}}));
  EXPECT_EQ(h.step("g3").output, (json::object{{"value", 9}}));
  EXPECT_EQ(h.state->status, WorkflowStatus::kSucceeded);
  // The third "go" found no step left to take it.
  ASSERT_EQ(h.state->kept_signals.size(), 1u);
  EXPECT_EQ(h.state->kept_signals[0].value, 3);
  expect_gap_free(h.all_events);
}

// Two steps waiting for one name at once: one signal resolves one of them.
TEST(EngineSignal, OneSignalResolvesOneOfTwoParallelGates) {
  Harness h;
  h.apply(StartCommand{"w", "wf", {}, workflow({gate("a", "go"), gate("b", "go", {})})}, kT0);
  ASSERT_EQ(h.step("b").status, StepStatus::kWaiting);
  h.apply(SignalCommand{"go", 1}, at(1s));
  EXPECT_EQ(h.step("a").status, StepStatus::kSucceeded);
  EXPECT_EQ(h.step("b").status, StepStatus::kWaiting);
  h.apply(SignalCommand{"go", 2}, at(2s));
  EXPECT_EQ(h.step("b").output, (json::object{{"value", 2}}));
  EXPECT_EQ(h.state->status, WorkflowStatus::kSucceeded);
}

TEST(EngineSignal, RefusesMoreThanTheKeptLimit) {
  Harness h;
  h.apply(StartCommand{"w", "wf", {}, workflow({job("extract"), gate("g", "go", {"extract"})})},
          kT0);
  for (size_t i = 0; i < kMaxKeptSignals; ++i) {
    EXPECT_FALSE(h.apply(SignalCommand{"go", static_cast<int64_t>(i)}, at(1s)).rejection) << i;
  }
  const Decision full = h.apply(SignalCommand{"go", 1000}, at(2s));
  ASSERT_TRUE(full.rejection);
  EXPECT_EQ(full.rejection->reason, "too_many_signals");
  EXPECT_EQ(types(full.events), (Strings{"command_rejected"}));
  EXPECT_EQ(h.state->kept_signals.size(), kMaxKeptSignals);
  // Taking one makes room for one more.
  h.apply(StepExecuted{"extract", 1, succeeded({})}, at(3s));
  EXPECT_EQ(h.step("g").output, (json::object{{"value", 0}}));
  EXPECT_EQ(h.state->kept_signals.size(), kMaxKeptSignals - 1);
  expect_gap_free(h.all_events);
}

// A finished workflow takes no signal; its kept ones stay for a retry.
TEST(EngineSignal, AFinishedWorkflowRefusesSignalsAsNotRunning) {
  Harness h;
  h.apply(StartCommand{"w", "wf", {}, workflow({job("extract"), gate("g", "go", {"extract"})})},
          kT0);
  h.apply(SignalCommand{"go", 1}, at(1s));
  h.apply(StepExecuted{"extract", 1, failed("FAILED", "boom")}, at(2s));
  ASSERT_EQ(h.state->status, WorkflowStatus::kFailed);
  const Decision late = h.apply(SignalCommand{"go", 2}, at(3s));
  ASSERT_TRUE(late.rejection);
  EXPECT_EQ(late.rejection->reason, "not_running");
  EXPECT_EQ(types(late.events), (Strings{"command_rejected"}));
  ASSERT_EQ(h.state->kept_signals.size(), 1u);
  h.apply(RetryCommand{}, at(4s));
  h.apply(StepExecuted{"extract", 2, succeeded({})}, at(5s));
  EXPECT_EQ(h.step("g").output, (json::object{{"value", 1}}));
  EXPECT_EQ(h.state->status, WorkflowStatus::kSucceeded);
  expect_gap_free(h.all_events);
}

TEST(EngineSignal, ValuesThatAreNotObjects) {
  for (const auto& [value, output] :
       std::vector<std::pair<json::value, json::object>>{{nullptr, {}},
                                                          {json::value(7), {{"value", 7}}},
                                                          {json::value("yes"), {{"value", "yes"}}}}) {
    Harness h;
    h.apply(StartCommand{"w", "wf", {}, workflow({gate("gate", "go")})}, kT0);
    h.apply(SignalCommand{"go", value}, at(1s));
    EXPECT_EQ(h.step("gate").output, output);
  }
}

TEST(EngineSignal, OneSignalDoesNotPassTwoSequentialGates) {
  Harness h;
  h.apply(StartCommand{"w", "wf", {}, workflow({gate("g1", "go"), gate("g2", "go", {"g1"})})}, kT0);
  h.apply(SignalCommand{"go", 1}, at(1s));
  EXPECT_EQ(h.step("g1").status, StepStatus::kSucceeded);
  EXPECT_EQ(h.step("g2").status, StepStatus::kWaiting);
  h.apply(SignalCommand{"go", 2}, at(2s));
  EXPECT_EQ(h.state->status, WorkflowStatus::kSucceeded);
}

// ------------------------------------------------------------ emit

TEST(EngineEmit, RecordsGoOutWithTheSuccessOnly) {
  Harness h;
  h.apply(start_cmd(workflow({job("a")})), kT0);
  StepOutcome done = succeeded({{"topic", "t"}, {"key", "k"}});
  done.publish.push_back(OutboxRecord{"t", "k", R"({"x":1})", ""});
  const Decision d = h.apply(StepExecuted{"a", 1, done}, at(1s));
  // The engine names the step that emits each record.
  EXPECT_EQ(d.records, (std::vector<OutboxRecord>{{"t", "k", R"({"x":1})", "a"}}));
  // A late duplicate of the same result publishes nothing.
  EXPECT_TRUE(h.apply(StepExecuted{"a", 1, done}, at(2s)).records.empty());
}

// ------------------------------------------------------------ on_failure

WorkflowDefinition with_on_failure(std::vector<StepDefinition> steps,
                                   std::vector<StepDefinition> on_failure) {
  WorkflowDefinition d = workflow(std::move(steps));
  d.on_failure = std::move(on_failure);
  return d;
}

TEST(EngineOnFailure, RunsAfterAFailureThenTheWorkflowFails) {
  Harness h;
  const auto def = with_on_failure({job("a"), job("b", {"a"})}, {job("undo"), job("notify", {"undo"})});
  h.apply(start_cmd(def), kT0);
  EXPECT_EQ(h.step("undo").status, StepStatus::kPending);
  Decision d = h.apply(StepExecuted{"a", 1, failed("FAILED", "boom")}, at(1s));
  // a failed, b skipped; the workflow keeps running for its on_failure steps.
  EXPECT_EQ(types(d.events), (Strings{"step_failed", "step_started"}));
  EXPECT_EQ(h.state->status, WorkflowStatus::kRunning);
  EXPECT_EQ(h.step("b").status, StepStatus::kSkipped);
  EXPECT_EQ(h.step("undo").status, StepStatus::kRunning);
  EXPECT_EQ(effects_of<ExecuteStep>(d)[0].step, "undo");
  h.apply(StepExecuted{"undo", 1, succeeded({})}, at(2s));
  EXPECT_EQ(h.step("notify").status, StepStatus::kRunning);
  d = h.apply(StepExecuted{"notify", 1, succeeded({})}, at(3s));
  EXPECT_EQ(types(d.events), (Strings{"step_succeeded", "workflow_failed"}));
  EXPECT_EQ(d.events[1].step, "a");  // the failure it reports is a's
  EXPECT_EQ(d.events[1].error, (StepError{"FAILED", "boom"}));
  EXPECT_EQ(h.state->status, WorkflowStatus::kFailed);
  expect_gap_free(h.all_events);
}

TEST(EngineOnFailure, AFailingOnFailureStepSkipsTheRestAndEndsIt) {
  Harness h;
  const auto def = with_on_failure({job("a")}, {job("undo"), job("notify", {"undo"})});
  h.apply(start_cmd(def), kT0);
  h.apply(StepExecuted{"a", 1, failed("FAILED", "boom")}, at(1s));
  const Decision d = h.apply(StepExecuted{"undo", 1, failed("X", "undo failed")}, at(2s));
  EXPECT_EQ(types(d.events), (Strings{"step_failed", "workflow_failed"}));
  EXPECT_EQ(h.step("notify").status, StepStatus::kSkipped);
  EXPECT_EQ(d.events[1].error, (StepError{"FAILED", "boom"}));
}

TEST(EngineOnFailure, NotRunWhenTheWorkflowSucceedsAndRunAgainAfterARetry) {
  Harness h;
  h.apply(start_cmd(with_on_failure({job("a")}, {job("undo")})), kT0);
  h.apply(StepExecuted{"a", 1, failed("FAILED", "boom")}, at(1s));
  h.apply(StepExecuted{"undo", 1, succeeded({})}, at(2s));
  ASSERT_EQ(h.state->status, WorkflowStatus::kFailed);
  h.apply(RetryCommand{}, at(3s));
  EXPECT_EQ(h.step("undo").status, StepStatus::kPending);
  const Decision d = h.apply(StepExecuted{"a", 2, succeeded({})}, at(4s));
  EXPECT_EQ(types(d.events), (Strings{"step_succeeded", "workflow_succeeded"}));
  EXPECT_EQ(h.step("undo").status, StepStatus::kSkipped);
  EXPECT_EQ(h.step("undo").attempt, 1);
}

TEST(EngineOnFailure, CancelStopsThemToo) {
  Harness h;
  h.apply(start_cmd(with_on_failure({job("a")}, {job("undo")})), kT0);
  h.apply(StepExecuted{"a", 1, failed("FAILED", "boom")}, at(1s));
  const Decision d = h.apply(CancelCommand{"enough"}, at(2s));
  EXPECT_EQ(types(d.events), (Strings{"workflow_canceled"}));
  EXPECT_EQ(h.step("undo").status, StepStatus::kCanceled);
}

// ------------------------------------------------------------ JSON and strings

TEST(EngineJson, StatusEventShape) {
  StatusEvent e;
  e.type = "step_succeeded";
  e.seq = 7;
  e.at = from_epoch_ms(1'795'000'000'120);
  e.step = "transform";
  e.attempt = 1;
  e.run_id = 1234;
  e.run_page_url = "https://db/#job/1/run/1234";
  e.output = json::object{{"rows", 42}};
  e.state = "running";
  const json::object o = to_json(e, "order-4711", "daily_ingest");

  const json::object expected{{"v", 1},
                              {"type", "step_succeeded"},
                              {"workflow_id", "order-4711"},
                              {"workflow", "daily_ingest"},
                              {"seq", 7},
                              {"at", format_iso8601(e.at)},
                              {"step", "transform"},
                              {"attempt", 1},
                              {"run_id", 1234},
                              {"run_page_url", "https://db/#job/1/run/1234"},
                              {"output", json::object{{"rows", 42}}},
                              {"state", "running"}};
  EXPECT_EQ(o, expected);
  EXPECT_EQ(o.at("at").as_string(), "2026-11-18T11:06:40.120Z");
  // Insertion order follows the contract's example.
  std::vector<std::string> keys;
  for (const auto& kv : o) keys.emplace_back(kv.key());
  EXPECT_EQ(keys, (Strings{"v", "type", "workflow_id", "workflow", "seq", "at", "step", "attempt",
                           "run_id", "run_page_url", "output", "state"}));
}

TEST(EngineJson, ErrorAndReasonOnlyWhenPresent) {
  StatusEvent e;
  e.type = "workflow_failed";
  e.seq = 3;
  e.at = kT0;
  e.error = StepError{"FAILED", "boom"};
  e.state = "failed";
  json::object o = to_json(e, "w", "wf");
  EXPECT_EQ(o.at("error"), (json::object{{"code", "FAILED"}, {"message", "boom"}}));
  EXPECT_FALSE(o.contains("step"));
  EXPECT_FALSE(o.contains("attempt"));
  EXPECT_FALSE(o.contains("run_id"));
  EXPECT_FALSE(o.contains("run_page_url"));
  EXPECT_FALSE(o.contains("output"));
  EXPECT_FALSE(o.contains("reason"));

  StatusEvent r;
  r.type = "command_rejected";
  r.seq = 4;
  r.at = kT0;
  r.reason = "conflict";
  r.state = "running";
  o = to_json(r, "w", "wf");
  EXPECT_EQ(o.at("reason"), "conflict");
  EXPECT_FALSE(o.contains("error"));
}

TEST(EngineJson, EventsFromDecisionSerialize) {
  const Decision d = decide(std::nullopt, start_cmd(workflow({job("a")})), kT0);
  const json::object o = to_json(d.events[1], d.state->id, d.state->workflow);
  EXPECT_EQ(o.at("type"), "step_started");
  EXPECT_EQ(o.at("seq"), 2);
  EXPECT_EQ(o.at("step"), "a");
  EXPECT_EQ(o.at("attempt"), 1);
  EXPECT_EQ(o.at("state"), "running");
}

TEST(EngineStrings, RunResultAndTimerKindRoundTrip) {
  for (auto r : {RunResult::kSuccess, RunResult::kFailed, RunResult::kCanceled,
                 RunResult::kTimedOut}) {
    EXPECT_EQ(run_result_from_string(to_string(r)), r);
  }
  EXPECT_STREQ(to_string(RunResult::kSuccess), "SUCCESS");
  EXPECT_STREQ(to_string(RunResult::kTimedOut), "TIMEDOUT");
  EXPECT_FALSE(run_result_from_string("success"));
  EXPECT_FALSE(run_result_from_string(""));

  for (auto k : {TimerKind::kRetryBackoff, TimerKind::kTimeout, TimerKind::kSleep}) {
    EXPECT_EQ(timer_kind_from_string(to_string(k)), k);
  }
  EXPECT_STREQ(to_string(TimerKind::kRetryBackoff), "retry_backoff");
  EXPECT_FALSE(timer_kind_from_string("later"));
}

}  // namespace
}  // namespace brickwork

namespace brickwork {
namespace {

// ------------------------------------------------------------ limits and error kinds

TEST(EngineLimits, OutputOverTheLimitFailsTheStepWithoutRetry) {
  Harness h;
  const auto def = workflow({with_retry(job("a"), 3, 30s), job("b", {"a"})});
  h.apply(start_cmd(def), kT0);
  h.apply(StepExecuted{"a", 1, started(1)}, at(1s));
  json::object huge{{"blob", std::string(kMaxStepOutputBytes, 'x')}};
  Decision d = h.apply(completion("a", 1, RunResult::kSuccess, huge), at(2s));
  ASSERT_EQ(types(d.events), (Strings{"step_failed", "workflow_failed"}));
  ASSERT_TRUE(d.events[0].error);
  EXPECT_EQ(d.events[0].error->code, "too_large");
  EXPECT_FALSE(d.events[0].output);  // the status event does not carry it
  EXPECT_FALSE(h.step("a").output);
  EXPECT_EQ(h.step("b").status, StepStatus::kSkipped);
}

TEST(EngineLimits, OutputJustUnderTheLimitSucceeds) {
  Harness h;
  const auto def = workflow({job("a")});
  h.apply(start_cmd(def), kT0);
  json::object big{{"blob", std::string(kMaxStepOutputBytes - 100, 'x')}};
  Decision d = h.apply(StepExecuted{"a", 1, succeeded(big)}, at(1s));
  EXPECT_EQ(types(d.events), (Strings{"step_succeeded", "workflow_succeeded"}));
}

TEST(EngineErrors, NotRetryableFailureSkipsTheRetryPolicy) {
  Harness h;
  const auto def = workflow({with_retry(job("a"), 3, 30s)});
  h.apply(start_cmd(def), kT0);
  StepOutcome bad = failed("template", "input.url is missing");
  bad.retryable = false;
  Decision d = h.apply(StepExecuted{"a", 1, bad}, at(1s));
  EXPECT_EQ(types(d.events), (Strings{"step_failed", "workflow_failed"}));
  EXPECT_EQ(h.step("a").attempt, 1);
  EXPECT_EQ(h.step("a").error->code, "template");
}

TEST(EngineErrors, RetryableFailureStillRetries) {
  Harness h;
  const auto def = workflow({with_retry(job("a"), 3, 30s)});
  h.apply(start_cmd(def), kT0);
  Decision d = h.apply(StepExecuted{"a", 1, failed("INTERNAL", "unknown")}, at(1s));
  EXPECT_EQ(types(d.events), (Strings{"step_retrying"}));
}

TEST(EngineErrors, CompletionWithAnErrorCodeFailsWithoutRetry) {
  Harness h;
  const auto def = workflow({with_retry(job("a"), 3, 30s)});
  h.apply(start_cmd(def), kT0);
  h.apply(StepExecuted{"a", 1, started(7)}, at(1s));
  CompletionEvent ev = completion("a", 1, RunResult::kSuccess, {}, "output is 900000 bytes");
  ev.error_code = "too_large";
  Decision d = h.apply(ev, at(2s));
  ASSERT_EQ(types(d.events), (Strings{"step_failed", "workflow_failed"}));
  EXPECT_EQ(d.events[0].error, (StepError{"too_large", "output is 900000 bytes"}));
}

}  // namespace
}  // namespace brickwork
