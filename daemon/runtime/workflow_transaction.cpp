#include "daemon/runtime/workflow_transaction.hpp"

#include <spdlog/spdlog.h>

#include <iterator>

#include "daemon/core/logging.hpp"
#include "daemon/runtime/history_recorder.hpp"

namespace brickwork {

TimePoint effect_due(const Effect& effect, TimePoint now) {
  return std::visit(
      [&](const auto& e) -> TimePoint {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, PollStep> || std::is_same_v<T, StartTimer>) {
          return e.due;
        } else {
          return now;
        }
      },
      effect);
}

bool holds_sensitive_output(const WorkflowState& state) {
  for (const auto& step : state.steps) {
    const StepDefinition* def = state.definition.find_step(step.name);
    if (step.output && def != nullptr && def->plan.sensitive_output) return true;
  }
  return false;
}

json::object template_scope(const WorkflowState& state) {
  json::object steps;
  for (const auto& step : state.steps) {
    json::object s;
    s["state"] = to_string(step.status);
    s["attempt"] = step.attempt;
    s["output"] = step.output ? json::value(*step.output) : json::value(nullptr);
    s["run_id"] = step.run_id ? json::value(*step.run_id) : json::value(nullptr);
    steps[step.name] = std::move(s);
  }
  return json::object{{"input", state.input},
                      {"workflow", json::object{{"id", state.id}, {"name", state.workflow}}},
                      {"steps", std::move(steps)}};
}

std::vector<std::string> WorkflowTransaction::not_loaded(const std::vector<std::string>& ids) const {
  std::vector<std::string> missing;
  for (const auto& id : ids) {
    if (cache_.count(id) == 0) missing.push_back(id);
  }
  return missing;
}

void WorkflowTransaction::preload(const std::vector<std::string>& ids) {
  const std::vector<std::string> missing = not_loaded(ids);
  if (missing.empty()) return;
  for (auto& [id, loaded] : tx_.load_workflows_for_update(missing)) remember(id, std::move(loaded));
}

std::set<int64_t> WorkflowTransaction::preload_deleting_effects(
    const std::vector<std::string>& ids, const std::vector<HeldLease>& held) {
  const std::vector<std::string> missing = not_loaded(ids);
  std::set<int64_t> deleted;
  for (auto& [id, loaded] : tx_.load_workflows_deleting_effects(missing, held, now_, deleted)) {
    remember(id, std::move(loaded));
  }
  return deleted;
}

const std::optional<WorkflowState>& WorkflowTransaction::workflow(const std::string& id) {
  auto it = cache_.find(id);
  if (it != cache_.end()) return it->second;
  return remember(id, tx_.load_workflow_for_update(id));
}

const std::optional<WorkflowState>& WorkflowTransaction::remember(
    const std::string& id, Result<std::optional<WorkflowState>> loaded) {
  if (!loaded) {
    unloadable_.emplace(id, loaded.error());
    return cache_.emplace(id, std::nullopt).first->second;
  }
  if (*loaded) loaded_rows_.emplace(id, WorkflowRows::of(**loaded));
  return cache_.emplace(id, std::move(*loaded)).first->second;
}

const Error* WorkflowTransaction::load_error(const std::string& id) {
  workflow(id);
  auto it = unloadable_.find(id);
  return it == unloadable_.end() ? nullptr : &it->second;
}

void WorkflowTransaction::fail_unloadable(const std::string& workflow_id,
                                          const std::string& reason) {
  auto failed = tx_.fail_unloadable_workflow(workflow_id, now_);
  if (!failed) return;
  spdlog::error("workflow {} cannot be loaded ({}): failed it", workflow_id, reason);
  StatusEvent event;
  event.type = "workflow_failed";
  event.seq = failed->seq;
  event.at = now_;
  event.state = to_string(WorkflowStatus::kFailed);
  event.error = StepError{"unloadable", "the workflow's stored state cannot be read: " + reason};
  tx_.add_outbox(context_.config()->kafka.topics.status, workflow_id,
                 json::serialize(to_json(event, workflow_id, failed->workflow)));
}

Decision WorkflowTransaction::apply(const std::string& workflow_id, const Input& input) {
  const std::optional<WorkflowState>& current = workflow(workflow_id);
  if (const Error* error = load_error(workflow_id)) {
    Decision refused;
    refused.rejection = Rejection{"unloadable", error->message};
    return refused;
  }
  Decision decision = decide(current, input, now_);
  const ConfigPtr config = context_.config();
  const std::string& name =
      decision.state ? decision.state->workflow : (current ? current->workflow : std::string());
  const std::string& traceparent =
      decision.state ? decision.state->traceparent : (current ? current->traceparent : std::string());
  for (const auto& event : decision.events) {
    tx_.add_outbox(config->kafka.topics.status, workflow_id,
                   json::serialize(to_json(event, workflow_id, name)), false, "", "", traceparent);
    note_failure(workflow_id, name, event, decision.state ? &*decision.state : nullptr);
  }
  // Records steps publish (emit) go out with the change that produced them.
  // One may hold a sensitive output of an earlier step: those of a workflow
  // that has any are sealed until published.
  const bool sensitive = decision.state && holds_sensitive_output(*decision.state);
  for (const auto& record : decision.records) {
    tx_.add_outbox(record.topic, record.key, record.payload, sensitive, workflow_id, record.step,
                   traceparent);
  }
  for (const auto& effect : decision.effects) add_effect(workflow_id, effect);
  if (decision.changed && decision.state) {
    if (metrics_ != nullptr) observe(current, *decision.state);
    HistoryChanges changes = history_changes(current, *decision.state, decision.events, now_);
    HistoryChanges& history = history_[workflow_id];
    std::move(changes.attempts.begin(), changes.attempts.end(), std::back_inserter(history.attempts));
    std::move(changes.notes.begin(), changes.notes.end(), std::back_inserter(history.notes));
    cache_[workflow_id] = std::move(*decision.state);  // a state (its input) is not copied
    dirty_.insert(workflow_id);
  }
  return decision;
}

void WorkflowTransaction::note_failure(const std::string& workflow_id, const std::string& workflow,
                                       const StatusEvent& event, const WorkflowState* state) {
  const bool canceled = event.type == "workflow_canceled";
  if (event.type != "step_failed" && event.type != "workflow_failed" && !canceled) return;
  FailureNote note{event.type, workflow_id, workflow, event.step.value_or(""), event.run_id,
                   canceled ? "canceled" : "", canceled ? event.reason : ""};
  if (event.error) {
    note.code = event.error->code;
    note.message = event.error->message;
  }
  // workflow_failed names the step that failed it, not its run.
  if (!note.run_id && !note.step.empty() && state != nullptr) {
    if (const StepState* step = state->find_step(note.step)) note.run_id = step->run_id;
  }
  failures_.push_back(std::move(note));
}

void log_failures(const std::vector<FailureNote>& notes) {
  for (const FailureNote& note : notes) {
    LogScope scope(LogScope::workflow(note.workflow_id, note.step, note.run_id));
    scope.set("workflow", note.workflow);
    scope.set("error_code", note.code);
    if (note.event == "step_failed") {
      spdlog::warn("step {} failed: {}: {}", note.step, note.code, note.message);
    } else if (note.event == "workflow_failed") {
      spdlog::warn("workflow {} failed at step {}: {}: {}", note.workflow, note.step, note.code,
                   note.message);
    } else {
      spdlog::warn("workflow {} canceled: {}", note.workflow, note.message);
    }
  }
}

// What the engine's decision finished: the workflow (by its state) and each
// step attempt that ended (by its type), derived from the states before and
// after, so the engine itself counts nothing.
void WorkflowTransaction::observe(const std::optional<WorkflowState>& before,
                                  const WorkflowState& after) {
  const std::string& workflow = after.workflow;
  if (is_terminal(after.status) && !(before && is_terminal(before->status))) {
    const std::string state = to_string(after.status);
    metrics_->add([workflow, state](Metrics& m) { m.count_workflow_finished(workflow, state); });
  }
  for (const StepState& step : after.steps) {
    if (!step.started_at) continue;
    const StepState* previous = before ? before->find_step(step.name) : nullptr;
    const bool same_attempt = previous != nullptr && previous->attempt == step.attempt;
    const bool was_active = same_attempt && (previous->status == StepStatus::kRunning ||
                                             previous->status == StepStatus::kWaiting);
    // An attempt ends when the step finishes, or when it fails into a retry
    // (back to pending, without a finish time).
    const bool finished_now =
        step.finished_at && !(same_attempt && previous->finished_at == step.finished_at);
    const bool retrying = was_active && step.status == StepStatus::kPending;
    if (!finished_now && !retrying) continue;
    const TimePoint ended = finished_now ? *step.finished_at : now_;
    const StepDefinition* definition = after.definition.find_step(step.name);
    const std::string type = definition != nullptr ? definition->type : "unknown";
    const double seconds = std::chrono::duration<double>(ended - *step.started_at).count();
    metrics_->add([workflow, type, seconds](Metrics& m) { m.observe_step(workflow, type, seconds); });
  }
}

void WorkflowTransaction::publish_rejection_without_workflow(const std::string& workflow_id,
                                                             const std::string& workflow,
                                                             const Rejection& rejection) {
  StatusEvent event;
  event.type = "command_rejected";
  event.seq = 0;  // not part of any workflow's sequence: no workflow exists
  event.at = now_;
  event.reason = rejection.reason;
  event.error = StepError{rejection.reason, rejection.message};
  tx_.add_outbox(context_.config()->kafka.topics.status, workflow_id,
                 json::serialize(to_json(event, workflow_id, workflow)));
}

void WorkflowTransaction::dead_letter(const std::string& key, const std::string& payload) {
  tx_.add_outbox(context_.config()->kafka.topics.dead_letter, key, payload);
}

void WorkflowTransaction::add_effect(const std::string& workflow_id, Effect effect) {
  // An attempt's run call is keyed by the secret current as the attempt
  // starts, whatever the secret is when the call is made or repeated.
  if (auto* execute = std::get_if<ExecuteStep>(&effect)) {
    execute->key_id = context_.tokens().key_id();
  }
  const TimePoint due = effect_due(effect, now_);
  if (due > now_) {
    tx_.add_effect(workflow_id, effect, due);  // a timer or poll: claimed when due
    return;
  }
  if (handoff_ == nullptr || !handoff_->has_room(leased_ + 1)) {
    tx_.add_effect(workflow_id, effect, due);
    claim_needed_ = true;
    return;
  }
  if (lease_owner_.empty()) lease_owner_ = handoff_->next_owner();
  tx_.add_leased_effect(workflow_id, effect, due,
                        EffectLease{lease_owner_, now_ + context_.config()->daemon.lease});
  ++leased_;
}

void WorkflowTransaction::finish() {
  // Each changed workflow's final state, copied once for the effect workers
  // if they need it: for effects handed over earlier (performed with this
  // state once committed, not the one they were decided from) and for the
  // effects this transaction hands over. An effect an earlier input asked
  // for and a later one made moot is then dropped by the worker, as it
  // would be after a read.
  std::map<std::string, std::shared_ptr<const WorkflowState>> committed;
  const auto committed_state = [&](const std::string& id) {
    auto [it, inserted] = committed.try_emplace(id);
    if (inserted) {
      auto cached = cache_.find(id);
      if (cached != cache_.end() && cached->second) {
        it->second = std::make_shared<const WorkflowState>(*cached->second);
      }
    }
    return it->second;
  };
  for (const auto& id : dirty_) {
    const auto& state = cache_.at(id);
    if (!state) continue;
    auto loaded = loaded_rows_.find(id);
    if (loaded == loaded_rows_.end()) {
      tx_.create_workflow(*state);
    } else {
      tx_.save_workflow(*state, &loaded->second);
    }
    if (auto history = history_.find(id); history != history_.end()) {
      if (!history->second.empty()) tx_.record_history(id, history->second);
      history_.erase(history);
    }
    // Saved: a later finish() in this transaction compares with this.
    loaded_rows_.insert_or_assign(id, WorkflowRows::of(*state));
    if (handoff_ != nullptr && handoff_->waits_for(id)) {
      refreshed_.emplace_back(id, committed_state(id));
    }
  }
  dirty_.clear();
  if (leased_ == 0) return;
  for (StoredEffect& stored : tx_.take_leased_effects()) {
    std::shared_ptr<const WorkflowState> state = committed_state(stored.workflow_id);
    handed_.push_back(HandedEffect{std::move(stored), std::move(state)});
  }
  leased_ = 0;
}

WorkflowTransaction::Handoff WorkflowTransaction::take_handoff() {
  Handoff handoff{handoff_, std::move(handed_), std::move(refreshed_), claim_needed_};
  handed_.clear();
  refreshed_.clear();
  claim_needed_ = false;
  return handoff;
}

void deliver_effects(RuntimeContext& context, WorkflowTransaction::Handoff handoff) {
  // The dispatcher is woken only for work: most transactions that record a
  // result hand nothing over (the next effect is a poll due later).
  const bool work = handoff.claim_needed || !handoff.effects.empty();
  if (handoff.to != nullptr) {
    for (auto& [id, state] : handoff.refreshed) handoff.to->refresh(id, std::move(state));
    if (handoff.claim_needed) handoff.to->request_claim();
    if (!handoff.effects.empty()) handoff.to->push(std::move(handoff.effects));
  }
  if (work) context.effects_wakeup().notify();
}

}  // namespace brickwork
