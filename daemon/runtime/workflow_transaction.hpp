#pragma once
// Applies inputs to workflows inside one store transaction: loads each
// workflow once (row-locked), runs the engine, and records the new state, the
// effects and the outbox messages. Nothing is visible until the caller commits,
// so state, effects and status events change together or not at all.
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "daemon/engine/engine.hpp"
#include "daemon/runtime/effect_handoff.hpp"
#include "daemon/runtime/runtime_context.hpp"
#include "daemon/store/store.hpp"

namespace brickwork {

// A failed step, or a failed or canceled workflow, as a transaction decided
// it (from the decision's status events): what the operator's log says of it.
struct FailureNote {
  std::string event;  // step_failed, workflow_failed, workflow_canceled
  std::string workflow_id;
  std::string workflow;
  std::string step;  // empty for a cancel
  std::optional<int64_t> run_id;
  std::string code;  // the error's code; "canceled" for a cancel
  std::string message;
};

// One warning line per note, with workflow_id, step, run_id and error_code as
// fields. Call once the transaction has committed: a rolled-back one (retried,
// or failed) logs nothing.
void log_failures(const std::vector<FailureNote>& notes);

class WorkflowTransaction {
 public:
  // With `metrics`, workflows that finish and steps that end are recorded
  // there, for the caller to commit to the metrics once the transaction has.
  WorkflowTransaction(StoreTx& tx, const RuntimeContext& context, TimePoint now,
                      PendingMetrics* metrics = nullptr)
      : tx_(tx), context_(context), now_(now), metrics_(metrics), handoff_(context.handoff()) {}

  // The workflow as this transaction sees it (loaded and locked on first use).
  // Loads and locks the workflows not loaded yet, all at once: what workflow()
  // then finds without a round trip each.
  void preload(const std::vector<std::string>& ids);
  // The same, and deletes the held effects whose leases hold (the store's
  // delete_effects, in the statement that reads the steps): the ids deleted.
  std::set<int64_t> preload_deleting_effects(const std::vector<std::string>& ids,
                                             const std::vector<HeldLease>& held);
  // Empty when there is none, or when it cannot be loaded (see load_error).
  const std::optional<WorkflowState>& workflow(const std::string& id);
  // Why an existing workflow could not be loaded, or null.
  const Error* load_error(const std::string& id);
  // Runs the engine and records the decision. Returns the decision so the
  // caller can see a rejection (reason "unloadable" for a workflow that
  // cannot be loaded: no input can change it). A changed state is moved
  // into the transaction: the decision's `state` then says only whether a
  // workflow exists (read it with workflow()).
  Decision apply(const std::string& workflow_id, const Input& input);
  // Ends a running workflow that cannot be loaded as failed (code
  // "unloadable") and publishes workflow_failed, so its effects stop
  // coming back instead of looping forever.
  void fail_unloadable(const std::string& workflow_id, const std::string& reason);
  // A command refused before any workflow could take it (unknown workflow, an
  // invalid command with a usable id): command_rejected outside any sequence (seq 0).
  void publish_rejection_without_workflow(const std::string& workflow_id,
                                          const std::string& workflow, const Rejection& rejection);
  // Queues a dead letter for the outbox.
  void dead_letter(const std::string& key, const std::string& payload);
  // Writes every workflow this transaction changed. Call once, before commit.
  void finish();

  // What to hand to the effect workers once the transaction has committed.
  struct Handoff {
    std::shared_ptr<EffectHandoff> to;
    std::vector<HandedEffect> effects;  // leased to this daemon, with their state
    // New states of workflows whose effects were handed over before.
    std::vector<std::pair<std::string, std::shared_ptr<const WorkflowState>>> refreshed;
    bool claim_needed = false;  // effects due now were written unleased
  };
  // After finish(); deliver it with deliver_effects() after commit.
  Handoff take_handoff();

  size_t changed_workflows() const { return dirty_.size(); }

  // The failures decided so far, for log_failures() after commit.
  std::vector<FailureNote> take_failures() { return std::move(failures_); }

 private:
  void observe(const std::optional<WorkflowState>& before, const WorkflowState& after);
  // Keeps a FailureNote if `event` is a failure (state: the decision's, or null).
  void note_failure(const std::string& workflow_id, const std::string& workflow,
                    const StatusEvent& event, const WorkflowState* state);
  void add_effect(const std::string& workflow_id, Effect effect);
  // The ids of `ids` this transaction has not loaded yet.
  std::vector<std::string> not_loaded(const std::vector<std::string>& ids) const;
  // Caches a load's outcome (a workflow, none, or why it is unloadable).
  const std::optional<WorkflowState>& remember(const std::string& id,
                                               Result<std::optional<WorkflowState>> loaded);

  StoreTx& tx_;
  const RuntimeContext& context_;
  TimePoint now_;
  PendingMetrics* metrics_;
  std::map<std::string, std::optional<WorkflowState>> cache_;
  std::map<std::string, WorkflowRows> loaded_rows_;  // as loaded, for writing only changes
  std::map<std::string, Error> unloadable_;
  std::set<std::string> dirty_;
  // What the changed workflows add to their history, written by finish().
  std::map<std::string, HistoryChanges> history_;
  std::shared_ptr<EffectHandoff> handoff_;
  std::string lease_owner_;  // of the effects this transaction leases, once it has one
  size_t leased_ = 0;
  bool claim_needed_ = false;
  std::vector<FailureNote> failures_;
  std::vector<HandedEffect> handed_;
  std::vector<std::pair<std::string, std::shared_ptr<const WorkflowState>>> refreshed_;
};

// Hands a committed transaction's effects to the workers and wakes them.
void deliver_effects(RuntimeContext& context, WorkflowTransaction::Handoff handoff);

// The due time at which the shell should perform an effect.
TimePoint effect_due(const Effect& effect, TimePoint now);

// Whether any step of the workflow has a sensitive output (contract 6.3).
bool holds_sensitive_output(const WorkflowState& state);
// Values for {{ ... }} templates: input, workflow {id, name}, steps.NAME {output, run_id, state}.
json::object template_scope(const WorkflowState& state);

}  // namespace brickwork
