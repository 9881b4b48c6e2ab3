#include "daemon/runtime/history_recorder.hpp"

#include <gtest/gtest.h>

#include "daemon/runtime/status_view.hpp"

namespace brickwork {
namespace {

using namespace std::chrono_literals;

const TimePoint kStart = from_epoch_ms(1'795'000'000'000);

WorkflowDefinition job_then_gate() {
  WorkflowDefinition def;
  def.name = "approvals";
  StepDefinition job;
  job.name = "extract";
  job.type = "run_job";
  job.retry = RetryPolicy{2, 10s};
  StepDefinition gate;
  gate.name = "approve";
  gate.type = "wait_for_signal";
  gate.depends_on = {"extract"};
  gate.plan.kind = StepPlan::Kind::kAwaitSignal;
  gate.plan.signal = "approved";
  def.steps = {job, gate};
  return def;
}

StepOutcome outcome(StepOutcome::Kind kind) {
  StepOutcome o;
  o.kind = kind;
  return o;
}

// Runs inputs through the engine like the shell, keeping what each decision
// adds to the history.
struct Recorder {
  std::optional<WorkflowState> state;
  HistoryChanges all;

  HistoryChanges apply(const Input& input, TimePoint now) {
    Decision d = decide(state, input, now);
    HistoryChanges changes;
    if (d.changed && d.state) changes = history_changes(state, *d.state, d.events, now);
    if (d.state) state = d.state;
    all.attempts.insert(all.attempts.end(), changes.attempts.begin(), changes.attempts.end());
    all.notes.insert(all.notes.end(), changes.notes.begin(), changes.notes.end());
    return changes;
  }
};

TEST(HistoryRecorder, KeepsEachAttemptOnceAsItEndsWithSignalsAndCommands) {
  Recorder r;
  r.apply(StartCommand{"w", "approvals", {}, job_then_gate()}, kStart);
  EXPECT_TRUE(r.all.empty());  // nothing has ended yet
  r.apply(SignalCommand{"approved", json::object{{"by", "ana"}}}, kStart + 1s);

  StepOutcome started = outcome(StepOutcome::Kind::kStarted);
  started.run_id = 11;
  started.run_page_url = "https://db/run/11";
  r.apply(StepExecuted{"extract", 1, started}, kStart + 2s);
  EXPECT_TRUE(r.all.attempts.empty());
  CompletionEvent failed;
  failed.step = "extract";
  failed.attempt = 1;
  failed.state = RunResult::kFailed;
  failed.run_id = 11;
  failed.message = "boom";
  const HistoryChanges first_end = r.apply(failed, kStart + 3s);
  ASSERT_EQ(first_end.attempts.size(), 1u);
  EXPECT_EQ(first_end.attempts[0],
            (AttemptRecord{"extract", 1, "failed", 11, "https://db/run/11", kStart,
                           kStart + 3s, StepError{"FAILED", "boom"}, std::nullopt}));
  // The backoff passing changes the failed attempt's step, not its record.
  EXPECT_TRUE(r.apply(TimerFired{"extract", 1, TimerKind::kRetryBackoff}, kStart + 13s)
                  .attempts.empty());
  StepOutcome done = outcome(StepOutcome::Kind::kSucceeded);
  done.output = json::object{{"rows", 5}};
  const HistoryChanges second_end = r.apply(StepExecuted{"extract", 2, done}, kStart + 14s);
  // Attempt 2 succeeded, and the kept signal resolved the gate at once.
  ASSERT_EQ(second_end.attempts.size(), 2u);
  EXPECT_EQ(second_end.attempts[0].attempt, 2);
  EXPECT_EQ(second_end.attempts[0].state, "succeeded");
  EXPECT_EQ(second_end.attempts[0].started_at, kStart + 13s);
  EXPECT_EQ(second_end.attempts[0].output_bytes, 10);  // {"rows":5}
  EXPECT_EQ(second_end.attempts[1].step, "approve");
  EXPECT_EQ(second_end.attempts[1].output_bytes, 12);  // {"by":"ana"}
  ASSERT_EQ(r.all.notes.size(), 2u);
  EXPECT_EQ(r.all.notes[0], (HistoryNote{kStart + 1s, "signal_kept", "", "approved", ""}));
  EXPECT_EQ(r.all.notes[1], (HistoryNote{kStart + 14s, "signal_delivered", "approve", "approved", ""}));
}

TEST(HistoryRecorder, RetryAndCancelCommandsAndCanceledAttempts) {
  Recorder r;
  WorkflowDefinition def = job_then_gate();
  def.steps[0].retry = RetryPolicy{1, 10s};
  r.apply(StartCommand{"w", "approvals", {}, def}, kStart);
  StepOutcome failed = outcome(StepOutcome::Kind::kFailed);
  failed.error = StepError{"FAILED", "boom"};
  r.apply(StepExecuted{"extract", 1, failed}, kStart + 1s);
  ASSERT_EQ(r.state->status, WorkflowStatus::kFailed);
  const HistoryChanges retried = r.apply(RetryCommand{}, kStart + 2s);
  EXPECT_TRUE(retried.attempts.empty());
  EXPECT_EQ(retried.notes, (std::vector<HistoryNote>{{kStart + 2s, "retry", "", "", ""}}));
  r.apply(StepExecuted{"extract", 2, outcome(StepOutcome::Kind::kStarted)}, kStart + 3s);
  const HistoryChanges canceled = r.apply(CancelCommand{"wrong day"}, kStart + 4s);
  ASSERT_EQ(canceled.attempts.size(), 1u);
  EXPECT_EQ(canceled.attempts[0].attempt, 2);
  EXPECT_EQ(canceled.attempts[0].state, "canceled");
  EXPECT_EQ(canceled.notes, (std::vector<HistoryNote>{{kStart + 4s, "cancel", "", "", "wrong day"}}));
  EXPECT_EQ(r.all.attempts.size(), 2u);  // attempt 1 failed, attempt 2 canceled
}

TEST(HistoryView, TheTimelineIsInTimeOrderAndTheJsonHasEveryField) {
  WorkflowHistory h;
  h.workflow = WorkflowSummary{"w", "approvals", WorkflowStatus::kRunning, kStart, kStart + 9s};
  h.attempts = {AttemptRecord{"extract", 1, "failed", 11, "https://db/run/11", kStart,
                              kStart + 3s, StepError{"FAILED", "boom"}, std::nullopt},
                AttemptRecord{"extract", 2, "running", std::nullopt, "", kStart + 5s,
                              std::nullopt, std::nullopt, std::nullopt}};
  h.notes = {HistoryNote{kStart + 1s, "signal_kept", "", "approved", ""},
             HistoryNote{kStart + 4s, "retry", "", "", ""}};
  const std::string table = history_table(h);
  const std::vector<std::string> in_order = {"workflow started", "step started", "signal kept",
                                             "step failed", "retry", "step started"};
  size_t from = 0;
  for (const std::string& what : in_order) {
    from = table.find(what, from);
    ASSERT_NE(from, std::string::npos) << what << " in\n" << table;
    ++from;
  }
  EXPECT_NE(table.find("FAILED: boom"), std::string::npos) << table;
  EXPECT_NE(table.find("now running"), std::string::npos) << table;

  const json::object j = history_json(h);
  EXPECT_EQ(j.at("id"), "w");
  EXPECT_EQ(j.at("state"), "running");
  const json::array& attempts = j.at("attempts").as_array();
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].at("error").at("code"), "FAILED");
  EXPECT_EQ(attempts[0].at("run_id"), 11);
  EXPECT_EQ(attempts[0].at("ended_at").as_string(), format_iso8601(kStart + 3s));
  EXPECT_TRUE(attempts[1].at("ended_at").is_null());
  const json::array& timeline = j.at("timeline").as_array();
  ASSERT_EQ(timeline.size(), 2u);
  EXPECT_EQ(timeline[0].at("kind"), "signal_kept");
  EXPECT_EQ(timeline[0].at("signal"), "approved");
}

}  // namespace
}  // namespace brickwork
