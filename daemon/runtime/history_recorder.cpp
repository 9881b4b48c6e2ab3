#include "daemon/runtime/history_recorder.hpp"

namespace brickwork {
namespace {

// How an attempt ended, if the step's current attempt has.
std::optional<std::string> attempt_end(const StepState& step) {
  if (step.attempt == 0) return std::nullopt;
  switch (step.status) {
    case StepStatus::kSucceeded:
    case StepStatus::kFailed:
    case StepStatus::kCanceled:
      return std::string(to_string(step.status));
    case StepStatus::kPending:
      // Failed, with the next attempt waiting for its backoff.
      if (step.error) return std::string("failed");
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

AttemptRecord attempt_record(const StepState& step, std::string state, TimePoint now) {
  AttemptRecord record;
  record.step = step.name;
  record.attempt = step.attempt;
  record.state = std::move(state);
  record.run_id = step.run_id;
  record.run_page_url = step.run_page_url;
  record.started_at = step.started_at;
  record.ended_at = step.finished_at.value_or(now);
  record.error = step.error;
  if (step.status == StepStatus::kSucceeded && step.output) {
    record.output_bytes = static_cast<int64_t>(json::serialize(*step.output).size());
  }
  return record;
}

bool is_signal_step(const WorkflowState& state, const std::string& step) {
  const StepDefinition* def = state.definition.find_step(step);
  return def != nullptr && def->plan.kind == StepPlan::Kind::kAwaitSignal;
}

}  // namespace

HistoryChanges history_changes(const std::optional<WorkflowState>& before,
                               const WorkflowState& after,
                               const std::vector<StatusEvent>& events, TimePoint now) {
  HistoryChanges changes;
  for (const StepState& step : after.steps) {
    auto end = attempt_end(step);
    if (!end) continue;
    const StepState* previous = before ? before->find_step(step.name) : nullptr;
    if (previous != nullptr && previous->attempt == step.attempt && attempt_end(*previous)) {
      continue;  // recorded when it ended
    }
    changes.attempts.push_back(attempt_record(step, std::move(*end), now));
  }
  for (const StatusEvent& event : events) {
    HistoryNote note{event.at, "", "", "", ""};
    if (event.type == "signal_kept") {
      note.kind = "signal_kept";
      note.signal = event.signal;
    } else if (event.type == "step_succeeded" && event.step &&
               is_signal_step(after, *event.step)) {
      note.kind = "signal_delivered";
      note.step = *event.step;
      note.signal = after.definition.find_step(*event.step)->plan.signal;
    } else if (event.type == "workflow_canceled") {
      note.kind = "cancel";
      note.detail = event.reason;
    } else if (event.type == "workflow_started" && event.reason == "retry") {
      note.kind = "retry";
    } else {
      continue;
    }
    changes.notes.push_back(std::move(note));
  }
  return changes;
}

}  // namespace brickwork
