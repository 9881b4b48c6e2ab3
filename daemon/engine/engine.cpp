#include "daemon/engine/engine.hpp"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <string>
#include <set>
#include <string_view>
#include <utility>

namespace brickwork {

// ------------------------------------------------------------ enum strings

const char* to_string(RunResult r) {
  switch (r) {
    case RunResult::kSuccess: return "SUCCESS";
    case RunResult::kFailed: return "FAILED";
    case RunResult::kCanceled: return "CANCELED";
    case RunResult::kTimedOut: return "TIMEDOUT";
  }
  return "FAILED";
}

std::optional<RunResult> run_result_from_string(std::string_view s) {
  for (RunResult r : {RunResult::kSuccess, RunResult::kFailed, RunResult::kCanceled,
                      RunResult::kTimedOut}) {
    if (s == to_string(r)) return r;
  }
  return std::nullopt;
}

const char* to_string(TimerKind k) {
  switch (k) {
    case TimerKind::kRetryBackoff: return "retry_backoff";
    case TimerKind::kTimeout: return "timeout";
    case TimerKind::kSleep: return "sleep";
  }
  return "timeout";
}

std::optional<TimerKind> timer_kind_from_string(std::string_view s) {
  for (TimerKind k : {TimerKind::kRetryBackoff, TimerKind::kTimeout, TimerKind::kSleep}) {
    if (s == to_string(k)) return k;
  }
  return std::nullopt;
}

// ------------------------------------------------------------ status JSON

json::object to_json(const StatusEvent& e, const std::string& workflow_id,
                     const std::string& workflow) {
  json::object o;
  o["v"] = 1;
  o["type"] = e.type;
  o["workflow_id"] = workflow_id;
  o["workflow"] = workflow;
  o["seq"] = e.seq;
  o["at"] = format_iso8601(e.at);
  if (e.step) o["step"] = *e.step;
  if (e.attempt) o["attempt"] = *e.attempt;
  if (e.run_id) o["run_id"] = *e.run_id;
  if (!e.run_page_url.empty()) o["run_page_url"] = e.run_page_url;
  if (e.output_redacted) {
    o["output"] = kRedactedOutput;
  } else if (e.output) {
    o["output"] = *e.output;
  }
  if (e.error) o["error"] = json::object{{"code", e.error->code}, {"message", e.error->message}};
  if (!e.reason.empty()) o["reason"] = e.reason;
  if (!e.signal.empty()) o["signal"] = e.signal;
  if (!e.state.empty()) o["state"] = e.state;
  return o;
}

// ------------------------------------------------------------ the engine

TimePoint next_poll_due(std::string_view workflow_id, std::string_view step, int32_t attempt,
                        Duration poll_every, TimePoint now) {
  // FNV-1a: the same spread on every build and machine.
  uint64_t hash = 14695981039346656037ull;
  const auto mix = [&](std::string_view bytes) {
    for (const char c : bytes) {
      hash ^= static_cast<unsigned char>(c);
      hash *= 1099511628211ull;
    }
  };
  mix(workflow_id);
  mix(std::string_view("\0", 1));
  mix(step);
  mix(std::to_string(attempt) + "@" + std::to_string(now.time_since_epoch().count()));
  const int64_t spread = std::max<int64_t>(poll_every.count(), 0) / 4;
  const int64_t jitter = spread > 0 ? static_cast<int64_t>(hash % static_cast<uint64_t>(spread + 1)) : 0;
  return now + poll_every + Duration(jitter);
}

namespace {

const StepDefinition* find_definition(const WorkflowDefinition& def, std::string_view name) {
  return def.find_step(name);
}

bool is_active(StepStatus s) { return s == StepStatus::kRunning || s == StepStatus::kWaiting; }

bool has_run(const StepState& step) { return step.run_id.has_value() || !step.handle.is_null(); }

// What a new attempt starts with in `handle`: for a step whose type repairs
// its runs, the run and handle of the attempt before (taken from run_id, or
// as the retry command left them); else nothing.
json::value next_attempt_handle(const StepState& step, const StepDefinition& def) {
  if (!def.plan.repairs_runs) return nullptr;
  if (step.run_id) {
    return json::object{{"previous_run_id", *step.run_id}, {"previous_handle", step.handle}};
  }
  const json::object* carried = step.handle.if_object();
  return carried != nullptr && carried->contains("previous_run_id") ? step.handle : nullptr;
}

// The run's own completion event carries the job's output, in the shape its
// later steps read; a poll only has runs/get-output. So a poll that sees the
// run end first waits this long for the event before it ends the step.
// Not when the step's timeout would come first: it would fail (and maybe
// run again) a run that has ended.
bool waits_for_event(const StepDefinition& def, const StepState& step, TimePoint now) {
  if (def.completion != CompletionMode::kEvent || !def.plan.completion_event ||
      def.event_grace <= Duration::zero()) {
    return false;
  }
  return !def.timeout || !step.started_at || now + def.event_grace < *step.started_at + *def.timeout;
}

// Unique names, known dependencies, no cycle: otherwise some step could never
// start and the workflow would hang instead of failing loudly.
std::optional<std::string> check_step_list(const std::vector<StepDefinition>& steps) {
  std::set<std::string_view> names;
  for (const auto& step : steps) names.insert(step.name);
  for (const auto& step : steps) {
    for (const auto& dep : step.depends_on) {
      if (!names.contains(dep)) {
        return "step '" + step.name + "' depends on unknown step '" + dep + "'";
      }
    }
  }
  std::set<std::string_view> placed;
  while (placed.size() < steps.size()) {
    bool progress = false;
    for (const auto& step : steps) {
      if (placed.contains(step.name)) continue;
      bool ready = true;
      for (const auto& dep : step.depends_on) ready = ready && placed.contains(dep);
      if (ready) {
        placed.insert(step.name);
        progress = true;
      }
    }
    if (!progress) return "the steps' depends_on form a cycle";
  }
  return std::nullopt;
}

std::optional<std::string> check_definition(const WorkflowDefinition& def) {
  std::set<std::string_view> names;
  for (const auto* list : {&def.steps, &def.on_failure}) {
    for (const auto& step : *list) {
      if (!names.insert(step.name).second) return "duplicate step name '" + step.name + "'";
    }
  }
  if (auto problem = check_step_list(def.steps)) return problem;
  return check_step_list(def.on_failure);
}

// What a signal's value becomes as the waiting step's output: an object as
// it is, nothing as {}, anything else under "value".
json::object signal_output(const json::value& value) {
  if (value.is_object()) return value.as_object();
  if (value.is_null()) return {};
  return json::object{{"value", value}};
}

// Whether some step of the definition (regular or on_failure) waits for a
// signal of this name: only such a signal can ever be taken, so only it is kept.
bool awaits_signal(const WorkflowDefinition& def, std::string_view name) {
  for (const auto* list : {&def.steps, &def.on_failure}) {
    for (const auto& step : *list) {
      if (step.plan.kind == StepPlan::Kind::kAwaitSignal && step.plan.signal == name) return true;
    }
  }
  return false;
}

// One decision in the making: a working copy of the state plus what it emits.
class Transition {
 public:
  Transition(WorkflowState state, TimePoint now) : now_(now) { d_.state = std::move(state); }

  WorkflowState& wf() { return *d_.state; }

  Decision finish() && {
    if (d_.changed) wf().updated_at = now_;
    return std::move(d_);
  }

  void mark_changed() { d_.changed = true; }
  void add_effect(Effect e) { d_.effects.push_back(std::move(e)); }
  void reject(std::string reason, std::string message) {
    d_.rejection = Rejection{std::move(reason), std::move(message)};
  }

  StatusEvent& emit(std::string type) {
    StatusEvent e;
    e.type = std::move(type);
    e.seq = ++wf().seq;
    e.at = now_;
    e.state = to_string(wf().status);
    d_.changed = true;
    d_.events.push_back(std::move(e));
    return d_.events.back();
  }

  StatusEvent& emit_for(std::string type, const StepState& step) {
    auto& e = emit(std::move(type));
    e.step = step.name;
    e.attempt = step.attempt;
    return e;
  }

  void emit_rejected(std::string reason, std::string message) {
    emit("command_rejected").reason = reason;
    reject(std::move(reason), std::move(message));
  }

  const StepDefinition& definition_of(const StepState& step) {
    const auto* def = find_definition(wf().definition, step.name);
    // The state's steps are created from its definition and never renamed.
    assert(def != nullptr);
    if (def == nullptr) {
      // Release builds: behave as a plain step the shell will refuse to run,
      // rather than read through a null pointer.
      static const StepDefinition kUnknown;
      return kUnknown;
    }
    return *def;
  }

  bool dependencies_succeeded(const StepDefinition& def) {
    for (const auto& dep : def.depends_on) {
      const auto* s = wf().find_step(dep);
      if (s == nullptr || s->status != StepStatus::kSucceeded) return false;
    }
    return true;
  }

  void add_records(const std::vector<OutboxRecord>& records, const std::string& step) {
    for (OutboxRecord record : records) {
      record.step = step;
      d_.records.push_back(std::move(record));
    }
  }

  bool is_compensation(const StepState& step) const {
    return d_.state->definition.is_on_failure_step(step.name);
  }

  // The failed step of the regular list while on_failure steps run: the
  // workflow is still `running` then, and ends `failed` once they finish.
  const StepState* failed_regular_step() {
    for (const auto& s : wf().steps) {
      if (s.status == StepStatus::kFailed && !is_compensation(s)) return &s;
    }
    return nullptr;
  }

  // Starts, in definition order, every pending step of the list now running
  // (the regular steps, or on_failure steps once the workflow has failed)
  // whose dependencies have all succeeded, then checks whether it is done.
  void start_ready_steps() {
    const bool compensating = failed_regular_step() != nullptr;
    for (size_t i = 0; i < wf().steps.size(); ++i) {
      if (wf().status != WorkflowStatus::kRunning) return;
      auto& step = wf().steps[i];
      if (step.status != StepStatus::kPending || is_compensation(step) != compensating) continue;
      if (!dependencies_succeeded(definition_of(step))) continue;
      start_step(wf().steps[i]);
    }
    if (compensating) {
      finish_compensation_if_done();
    } else {
      complete_if_done();
    }
  }

  void start_step(StepState& step) {
    const StepDefinition& def = definition_of(step);
    step.status = StepStatus::kRunning;
    step.attempt += 1;
    step.handle = next_attempt_handle(step, def);
    step.run_id.reset();
    step.run_page_url.clear();
    step.output.reset();
    step.error.reset();
    step.started_at = now_;
    step.finished_at.reset();
    emit_for("step_started", step);

    switch (def.plan.kind) {
      case StepPlan::Kind::kAwaitSignal:
        // Waiting at once, so a signal sent right after the start is not missed.
        step.status = StepStatus::kWaiting;
        emit_for("step_waiting", step);
        // A signal that came before the step waited resolves it now.
        if (take_kept_signal(step, def.plan.signal)) return;
        break;
      case StepPlan::Kind::kPerform:
        add_effect(ExecuteStep{step.name, step.attempt});
        break;
    }
    if (def.timeout) {
      add_effect(StartTimer{step.name, step.attempt, TimerKind::kTimeout, now_ + *def.timeout});
    }
  }

  bool awaits(const StepState& step, std::string_view signal) {
    const StepPlan& plan = definition_of(step).plan;
    return plan.kind == StepPlan::Kind::kAwaitSignal && plan.signal == signal;
  }

  // Resolves a waiting step with the oldest kept signal of its name, if any.
  bool take_kept_signal(StepState& step, const std::string& name) {
    auto& kept = wf().kept_signals;
    auto oldest = std::find_if(kept.begin(), kept.end(),
                               [&](const KeptSignal& s) { return s.name == name; });
    if (oldest == kept.end()) return false;
    const json::value value = std::move(oldest->value);
    kept.erase(oldest);
    succeed_step(step, signal_output(value), std::nullopt, {});
    return true;
  }

  void succeed_step(StepState& step, json::object output, std::optional<int64_t> run_id,
                    std::string run_page_url) {
    if (run_id) step.run_id = run_id;
    if (!run_page_url.empty()) step.run_page_url = std::move(run_page_url);
    if (const size_t size = json::serialize(output).size(); size > kMaxStepOutputBytes) {
      fail_attempt(step,
                   StepError{"too_large", "the step's output is " + std::to_string(size) +
                                              " bytes; the limit is " +
                                              std::to_string(kMaxStepOutputBytes)},
                   /*retryable=*/false);
      return;
    }
    step.status = StepStatus::kSucceeded;
    step.output = std::move(output);
    step.error.reset();
    step.finished_at = now_;
    auto& e = emit_for("step_succeeded", step);
    e.run_id = step.run_id;
    e.run_page_url = step.run_page_url;
    const StepDefinition* def = find_definition(wf().definition, step.name);
    if (def != nullptr && def->plan.sensitive_output) {
      e.output_redacted = true;
    } else {
      e.output = step.output;
    }
    start_ready_steps();
  }

  void complete_if_done() {
    if (wf().status != WorkflowStatus::kRunning) return;
    for (const auto& s : wf().steps) {
      if (is_compensation(s)) continue;
      if (s.status != StepStatus::kSucceeded && s.status != StepStatus::kSkipped) return;
    }
    for (auto& s : wf().steps) {
      if (is_compensation(s)) s.status = StepStatus::kSkipped;  // nothing failed
    }
    wf().status = WorkflowStatus::kSucceeded;
    emit("workflow_succeeded");
  }

  // Once every on_failure step has ended, the workflow fails with the error
  // of the step that failed it. An on_failure step that fails skips the rest.
  void finish_compensation_if_done() {
    if (wf().status != WorkflowStatus::kRunning) return;
    for (const auto& s : wf().steps) {
      if (is_compensation(s) && !is_terminal(s.status)) return;
    }
    const StepState* failed = failed_regular_step();
    assert(failed != nullptr);
    end_failed(*failed, failed->error.value_or(StepError{"FAILED", "a step failed"}));
  }

  // One attempt failed: retry after the backoff if the policy allows,
  // otherwise the step and with it the workflow fail.
  void fail_attempt(StepState& step, StepError error, bool retryable = true) {
    if (error.code.empty()) error.code = "FAILED";
    const RetryPolicy& policy = definition_of(step).retry;
    step.error = error;
    if (retryable && step.attempt - step.attempts_before_retry < policy.max_attempts) {
      // The error stays on the pending step so `status` shows why it is waiting.
      step.status = StepStatus::kPending;
      auto& e = emit_for("step_retrying", step);
      e.error = error;
      add_effect(StartTimer{step.name, step.attempt, TimerKind::kRetryBackoff,
                            now_ + policy.backoff});
      return;
    }
    step.status = StepStatus::kFailed;
    step.finished_at = now_;
    auto& e = emit_for("step_failed", step);
    e.run_id = step.run_id;
    e.run_page_url = step.run_page_url;
    e.error = error;
    const bool compensation = is_compensation(step);
    stop_other_steps(step, compensation);
    if (compensation) {
      finish_compensation_if_done();  // a failing on_failure step ends them all
      return;
    }
    if (d_.state->definition.on_failure.empty()) {
      end_failed(step, error);
      return;
    }
    start_ready_steps();  // the on_failure steps; the workflow fails after them
  }

  void end_failed(const StepState& failed, const StepError& error) {
    wf().status = WorkflowStatus::kFailed;
    auto& e = emit_for("workflow_failed", failed);
    e.error = error;
  }

  // A step of one list failed for good: the other steps of that list stop.
  // They change without events of their own (the contract has no
  // step_canceled/step_skipped): workflow_failed implies them, and `status`
  // shows each step's final state.
  void stop_other_steps(const StepState& failed, bool compensation) {
    for (auto& s : wf().steps) {
      if (&s == &failed || is_compensation(s) != compensation) continue;
      if (is_active(s.status)) {
        // A step whose run is not known yet is caught when its StepExecuted
        // arrives (see cancel_orphaned_run).
        if (has_run(s)) add_effect(CancelStep{s.name, s.attempt, s.run_id, s.handle});
        s.status = StepStatus::kCanceled;
        s.finished_at = now_;
      } else if (s.status == StepStatus::kPending) {
        s.status = StepStatus::kSkipped;
      }
    }
  }

  // An attempt was abandoned (canceled, timed out, failed) before the shell
  // told us what it had started: cancel that run so it is not left behind.
  // A duplicate result for the live attempt must not cancel it, nor one for an
  // attempt that already succeeded.
  void cancel_orphaned_run(const StepState& step, int32_t attempt, const StepOutcome& outcome) {
    if (outcome.kind != StepOutcome::Kind::kStarted &&
        outcome.kind != StepOutcome::Kind::kStillRunning) {
      return;
    }
    if (!outcome.run_id && outcome.handle.is_null()) return;
    const bool abandoned =
        attempt < step.attempt ||
        (attempt == step.attempt && step.status != StepStatus::kRunning &&
         step.status != StepStatus::kWaiting && step.status != StepStatus::kSucceeded);
    if (abandoned) add_effect(CancelStep{step.name, attempt, outcome.run_id, outcome.handle});
  }

 private:
  TimePoint now_;
  Decision d_;
};

Decision unchanged(const std::optional<WorkflowState>& current) {
  Decision d;
  d.state = current;
  return d;
}

bool is_current(const StepState* step, int32_t attempt) {
  return step != nullptr && step->attempt == attempt;
}

StepError completion_error(const CompletionEvent& ev) {
  StepError err;
  err.code = ev.error_code.empty() ? to_string(ev.state) : ev.error_code;
  err.message = ev.message.empty()
                    ? "the job run ended " + err.code + " without a message"
                    : ev.message;
  return err;
}

class Decider {
 public:
  Decider(const std::optional<WorkflowState>& current, TimePoint now)
      : current_(current), now_(now) {}

  Decision operator()(const StartCommand& cmd) {
    if (current_) {
      if (current_->workflow == cmd.workflow && current_->input == cmd.input) {
        return unchanged(current_);
      }
      Transition t(*current_, now_);
      t.emit_rejected("conflict", "workflow '" + cmd.id + "' already exists as '" +
                                      current_->workflow +
                                      "' with a different workflow or input");
      return std::move(t).finish();
    }
    if (!cmd.definition) {
      Decision d;
      d.rejection = Rejection{"unknown_workflow", "no workflow named '" + cmd.workflow + "'"};
      return d;
    }
    if (auto problem = check_definition(*cmd.definition)) {
      Decision d;
      d.rejection = Rejection{"invalid", "workflow '" + cmd.workflow + "': " + *problem};
      return d;
    }
    WorkflowState state;
    state.id = cmd.id;
    state.workflow = cmd.workflow;
    state.definition = *cmd.definition;
    state.input = cmd.input;
    state.traceparent = cmd.traceparent;
    state.status = WorkflowStatus::kRunning;
    state.created_at = now_;
    for (const auto* list : {&cmd.definition->steps, &cmd.definition->on_failure}) {
      for (const auto& def : *list) {
        StepState step;
        step.name = def.name;
        state.steps.push_back(std::move(step));
      }
    }
    Transition t(std::move(state), now_);
    t.emit("workflow_started");
    t.start_ready_steps();
    return std::move(t).finish();
  }

  // The reason goes into the event's `reason` field (free text, "canceled"
  // when the command gave none); `error` is kept for failures.
  Decision operator()(const CancelCommand& cmd) {
    if (!running()) return unchanged(current_);
    Transition t(*current_, now_);
    for (auto& s : t.wf().steps) {
      if (is_active(s.status)) {
        // Sent even without a run id: the shell may know of a call in flight.
        t.add_effect(CancelStep{s.name, s.attempt, s.run_id, s.handle});
        s.status = StepStatus::kCanceled;
        s.finished_at = now_;
      } else if (s.status == StepStatus::kPending) {
        s.status = StepStatus::kSkipped;
      }
    }
    t.wf().status = WorkflowStatus::kCanceled;
    t.emit("workflow_canceled").reason = cmd.reason.empty() ? "canceled" : cmd.reason;
    return std::move(t).finish();
  }

  // A retry is announced as workflow_started with reason "retry" (the
  // contract has no workflow_retried): consumers see the workflow running again.
  Decision operator()(const RetryCommand&) {
    if (!current_) {
      Decision d;
      d.rejection = Rejection{"not_failed", "no such workflow"};
      return d;
    }
    Transition t(*current_, now_);
    if (current_->status != WorkflowStatus::kFailed) {
      t.emit_rejected("not_failed", std::string("workflow is ") + to_string(current_->status) +
                                        ", only a failed workflow can be retried");
      return std::move(t).finish();
    }
    for (auto& s : t.wf().steps) {
      // on_failure steps run again if the workflow fails again.
      if (s.status == StepStatus::kFailed || s.status == StepStatus::kCanceled ||
          s.status == StepStatus::kSkipped || t.is_compensation(s)) {
        s.status = StepStatus::kPending;
        s.attempts_before_retry = s.attempt;
        s.handle = next_attempt_handle(s, t.definition_of(s));
        s.run_id.reset();
        s.run_page_url.clear();
        s.output.reset();
        s.error.reset();
        s.started_at.reset();
        s.finished_at.reset();
      }
    }
    t.wf().status = WorkflowStatus::kRunning;
    t.emit("workflow_started").reason = "retry";
    t.start_ready_steps();
    return std::move(t).finish();
  }

  // Signals are durable promises: one a step waits for resolves the first
  // such step (in definition order); any other is kept, and each step that
  // later waits for its name takes the oldest kept one (see start_step). One
  // signal resolves one step. Refused: a workflow that is not running, a name
  // no step of its definition waits for, and more than kMaxKeptSignals kept.
  Decision operator()(const SignalCommand& cmd) {
    if (!current_) {
      Decision d;
      d.rejection = Rejection{"not_running", "no workflow with this id"};
      return d;
    }
    Transition t(*current_, now_);
    if (!running()) {
      t.emit_rejected("not_running", "workflow '" + current_->id + "' is " +
                                         to_string(current_->status) +
                                         "; only a running workflow takes signals");
      return std::move(t).finish();
    }
    if (!awaits_signal(current_->definition, cmd.name)) {
      t.emit_rejected("unknown_signal", "no step of workflow '" + current_->id + "' (" +
                                            current_->workflow + ") waits for signal '" +
                                            cmd.name + "'");
      return std::move(t).finish();
    }
    for (auto& s : t.wf().steps) {
      if (s.status == StepStatus::kWaiting && t.awaits(s, cmd.name)) {
        t.succeed_step(s, signal_output(cmd.value), std::nullopt, {});
        return std::move(t).finish();
      }
    }
    if (t.wf().kept_signals.size() >= kMaxKeptSignals) {
      t.emit_rejected("too_many_signals",
                      "workflow '" + current_->id + "' already keeps " +
                          std::to_string(kMaxKeptSignals) +
                          " signals no step has taken; the limit is " +
                          std::to_string(kMaxKeptSignals));
      return std::move(t).finish();
    }
    t.wf().kept_signals.push_back(KeptSignal{cmd.name, cmd.value, now_});
    t.emit("signal_kept").signal = cmd.name;
    return std::move(t).finish();
  }

  Decision operator()(const CompletionEvent& ev) {
    if (!running()) return unchanged(current_);
    const auto* step = current_->find_step(ev.step);
    if (!is_current(step, ev.attempt) || !is_active(step->status)) return unchanged(current_);
    // The token binds an event to an attempt, not to a run: one that names
    // another run than the attempt's is refused, not applied.
    if (step->run_id && ev.run_id && *ev.run_id != *step->run_id) {
      Decision refused = unchanged(current_);
      refused.rejection = Rejection{
          "run_mismatch", "the event names run " + std::to_string(*ev.run_id) + ", but attempt " +
                              std::to_string(ev.attempt) + " of step '" + ev.step + "' is run " +
                              std::to_string(*step->run_id)};
      return refused;
    }
    Transition t(*current_, now_);
    auto& s = *t.wf().find_step(ev.step);
    if (ev.state == RunResult::kSuccess && ev.error_code.empty()) {
      t.succeed_step(s, ev.output, ev.run_id, {});
    } else {
      if (ev.run_id) s.run_id = ev.run_id;
      t.fail_attempt(s, completion_error(ev), /*retryable=*/ev.error_code.empty());
    }
    return std::move(t).finish();
  }

  Decision operator()(const StepExecuted& ev) {
    if (!running()) return orphan(ev.step, ev.attempt, ev.outcome);
    const auto* step = current_->find_step(ev.step);
    if (!is_current(step, ev.attempt) || step->status != StepStatus::kRunning) {
      return orphan(ev.step, ev.attempt, ev.outcome);
    }
    Transition t(*current_, now_);
    apply_outcome(t, *t.wf().find_step(ev.step), ev.outcome);
    return std::move(t).finish();
  }

  Decision operator()(const StepPolled& ev) {
    if (!running()) return unchanged(current_);
    const auto* step = current_->find_step(ev.step);
    if (!is_current(step, ev.attempt) || step->status != StepStatus::kWaiting) {
      return unchanged(current_);
    }
    Transition t(*current_, now_);
    auto& s = *t.wf().find_step(ev.step);
    switch (ev.outcome.kind) {
      case StepOutcome::Kind::kStarted:
      case StepOutcome::Kind::kStillRunning:
      case StepOutcome::Kind::kWaitUntil:
        // Nothing changed; only the next poll is scheduled.
        t.add_effect(PollStep{s.name, s.attempt, poll_due(t, s)});
        break;
      case StepOutcome::Kind::kSucceeded:
      case StepOutcome::Kind::kFailed: {
        const StepDefinition& def = t.definition_of(s);
        if (!ev.after_event_grace && waits_for_event(def, s, now_)) {
          // The run ended; its event may be behind in the consumer's lag.
          // A CompletionEvent meanwhile ends the step and this poll finds
          // it no longer waiting.
          t.add_effect(PollStep{s.name, s.attempt, now_ + def.event_grace,
                                /*after_event_grace=*/true});
          break;
        }
        apply_outcome(t, s, ev.outcome);
        break;
      }
    }
    return std::move(t).finish();
  }

  Decision operator()(const TimerFired& ev) {
    if (!running()) return unchanged(current_);
    const auto* step = current_->find_step(ev.step);
    if (!is_current(step, ev.attempt)) return unchanged(current_);
    Transition t(*current_, now_);
    auto& s = *t.wf().find_step(ev.step);
    const auto& def = t.definition_of(s);
    switch (ev.kind) {
      case TimerKind::kRetryBackoff:
        if (s.status != StepStatus::kPending) return unchanged(current_);
        t.start_step(s);
        break;
      case TimerKind::kSleep:
        // Only a kWaitUntil outcome starts this timer, for the waiting attempt.
        if (s.status != StepStatus::kWaiting) return unchanged(current_);
        t.succeed_step(s, json::object{}, std::nullopt, {});
        break;
      case TimerKind::kTimeout: {
        if (!is_active(s.status)) return unchanged(current_);
        const Duration limit = def.timeout.value_or(Duration::zero());
        // A step waiting for a signal has nothing in flight to cancel; for any
        // other, the step type decides what its cancel stops.
        if (def.plan.kind != StepPlan::Kind::kAwaitSignal) {
          t.add_effect(CancelStep{s.name, s.attempt, s.run_id, s.handle});
        }
        t.fail_attempt(s, StepError{def.plan.timeout_code,
                                    "step timed out after " + format_duration(limit)});
        break;
      }
    }
    return std::move(t).finish();
  }

 private:
  bool running() const { return current_ && current_->status == WorkflowStatus::kRunning; }

  // A StepExecuted that no longer applies: no state change, but a run it
  // reports may need canceling.
  Decision orphan(const std::string& step_name, int32_t attempt, const StepOutcome& outcome) {
    if (!current_) return unchanged(current_);
    const auto* step = current_->find_step(step_name);
    if (step == nullptr) return unchanged(current_);
    Transition t(*current_, now_);
    t.cancel_orphaned_run(*step, attempt, outcome);
    return std::move(t).finish();
  }

  void apply_outcome(Transition& t, StepState& s, const StepOutcome& outcome) {
    switch (outcome.kind) {
      case StepOutcome::Kind::kSucceeded:
        t.succeed_step(s, outcome.output, outcome.run_id, outcome.run_page_url);
        // Published with the success itself: only if the step did succeed.
        if (s.status == StepStatus::kSucceeded) t.add_records(outcome.publish, s.name);
        break;
      case StepOutcome::Kind::kWaitUntil: {
        s.status = StepStatus::kWaiting;
        s.handle = outcome.handle;
        t.emit_for("step_waiting", s);
        t.add_effect(StartTimer{s.name, s.attempt, TimerKind::kSleep, outcome.wake_at});
        break;
      }
      case StepOutcome::Kind::kFailed:
        if (outcome.run_id) s.run_id = outcome.run_id;
        if (!outcome.run_page_url.empty()) s.run_page_url = outcome.run_page_url;
        t.fail_attempt(s, outcome.error, outcome.retryable);
        break;
      case StepOutcome::Kind::kStarted:
      case StepOutcome::Kind::kStillRunning: {
        s.status = StepStatus::kWaiting;
        s.run_id = outcome.run_id;
        s.run_page_url = outcome.run_page_url;
        s.handle = outcome.handle;
        auto& e = t.emit_for("step_waiting", s);
        e.run_id = s.run_id;
        e.run_page_url = s.run_page_url;
        t.add_effect(PollStep{s.name, s.attempt, poll_due(t, s)});
        break;
      }
    }
  }

  TimePoint poll_due(Transition& t, const StepState& s) const {
    return next_poll_due(t.wf().id, s.name, s.attempt, t.definition_of(s).poll_every, now_);
  }

  const std::optional<WorkflowState>& current_;
  TimePoint now_;
};

}  // namespace

Decision decide(const std::optional<WorkflowState>& current, const Input& input, TimePoint now) {
  return std::visit(Decider(current, now), input);
}

}  // namespace brickwork
