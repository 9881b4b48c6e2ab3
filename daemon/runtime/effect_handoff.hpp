#pragma once
// Effects that must run now go from the transaction that decided them
// straight to this daemon's effect workers. The transaction writes them
// already leased to this daemon, and after it commits they are handed over
// together with the workflow state they were decided from. A worker then
// neither claims them (no scan of the effects table) nor reads their
// workflow. Postgres stays the record: if the daemon dies, the effects are
// claimed like any other once their lease runs out, and the result is
// recorded against the workflow as it is then, under its row lock.
//
// While an effect waits here, later commits of this daemon that change its
// workflow (a cancel, a completion) replace the state it will be performed
// with, so a worker sees what a read would show: a run is not started for a
// workflow canceled meanwhile.
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/engine/workflow_state.hpp"
#include "daemon/store/store.hpp"

namespace brickwork {

struct HandedEffect {
  StoredEffect stored;
  // The workflow as last committed by this daemon; null: read it.
  std::shared_ptr<const WorkflowState> state;
};

class EffectHandoff {
 public:
  // `owner` prefixes each transaction's lease owner. At most about
  // `capacity` effects wait, beyond which effects are written unleased for
  // the next claim (a bound on what a dying daemon leaves leased); states
  // are kept for at most `with_state` workflows, the others' effects read
  // theirs (a bound on memory).
  EffectHandoff(std::string owner, size_t capacity, size_t with_state)
      : owner_(std::move(owner)), capacity_(capacity), with_state_(with_state) {}

  // A lease owner for one transaction's handed effects, unique per call.
  std::string next_owner() { return owner_ + "/handoff#" + std::to_string(++transactions_); }
  bool has_room(size_t more) const {
    std::lock_guard lock(mutex_);
    return waiting_.size() + more <= capacity_;
  }

  void push(std::vector<HandedEffect> effects) {
    std::lock_guard lock(mutex_);
    for (auto& e : effects) {
      Workflow& workflow = workflows_[e.stored.workflow_id];
      ++workflow.waiting;
      keep_newer(workflow, std::move(e.state));
      waiting_.push_back(std::move(e.stored));
    }
  }
  std::vector<HandedEffect> take(size_t limit) {
    return take_if(limit, [](const StoredEffect&, const WorkflowState*) { return true; });
  }
  // The oldest effects `accept` takes (given each with its workflow's state
  // or null), up to `limit`; the others keep waiting, in order, their state
  // still refreshed. The effect runner takes only what a free slot of the
  // effect's lane can start now.
  template <class Accept>
  std::vector<HandedEffect> take_if(size_t limit, Accept accept) {
    std::lock_guard lock(mutex_);
    std::vector<HandedEffect> taken;
    for (auto next = waiting_.begin(); next != waiting_.end() && taken.size() < limit;) {
      auto it = workflows_.find(next->workflow_id);
      std::shared_ptr<const WorkflowState> state = it->second.state;
      if (!accept(*next, state.get())) {
        ++next;
        continue;
      }
      StoredEffect stored = std::move(*next);
      next = waiting_.erase(next);
      if (--it->second.waiting == 0) {
        if (it->second.state != nullptr) --stateful_;
        workflows_.erase(it);
      }
      taken.push_back(HandedEffect{std::move(stored), std::move(state)});
    }
    return taken;
  }

  // Whether an effect of this workflow waits (its state is worth passing on).
  bool waits_for(const std::string& workflow_id) const {
    std::lock_guard lock(mutex_);
    return workflows_.count(workflow_id) != 0;
  }
  // A newer committed state of a workflow whose effects wait.
  void refresh(const std::string& workflow_id, std::shared_ptr<const WorkflowState> state) {
    std::lock_guard lock(mutex_);
    auto it = workflows_.find(workflow_id);
    if (it != workflows_.end()) keep_newer(it->second, std::move(state));
  }

  // The leases of the effects waiting, to renew with those in hand.
  std::vector<HeldLease> leases() const {
    std::lock_guard lock(mutex_);
    std::vector<HeldLease> held;
    held.reserve(waiting_.size());
    for (const auto& e : waiting_) held.push_back({e.id, e.lease_owner});
    return held;
  }
  size_t size() const {
    std::lock_guard lock(mutex_);
    return waiting_.size();
  }

  // Effects due now were written without a lease (no room, or not this
  // daemon's to hand): the workers should claim from Postgres now rather
  // than at their next tick.
  void request_claim() { claim_requested_ = true; }
  bool take_claim_request() { return claim_requested_.exchange(false); }

 private:
  struct Workflow {
    std::shared_ptr<const WorkflowState> state;
    int32_t waiting = 0;
  };

  // Keeps `state` if it is newer than the one kept (or none is, room allowing).
  void keep_newer(Workflow& workflow, std::shared_ptr<const WorkflowState> state) {
    if (state == nullptr) return;
    if (workflow.state == nullptr) {
      if (stateful_ >= with_state_) return;
      ++stateful_;
      workflow.state = std::move(state);
    } else if (state->seq >= workflow.state->seq) {
      workflow.state = std::move(state);
    }
  }

  const std::string owner_;
  const size_t capacity_;
  const size_t with_state_;
  std::atomic<int64_t> transactions_{0};
  std::atomic<bool> claim_requested_{false};
  mutable std::mutex mutex_;
  std::deque<StoredEffect> waiting_;
  std::unordered_map<std::string, Workflow> workflows_;  // of the effects waiting
  size_t stateful_ = 0;                                   // of workflows_, those with a state
};

}  // namespace brickwork
