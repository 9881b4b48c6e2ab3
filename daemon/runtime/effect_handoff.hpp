#pragma once
// Effects that must run now go from the transaction that decided them
// straight to this daemon's effect workers. The transaction writes them
// already leased to this daemon, and after it commits they are handed over
// together with the workflow state they were decided from. A worker then
// neither claims them (no scan of the effects table) nor reads their
// workflow. Postgres stays the record: if the daemon dies, the effects are
// claimed like any other once their lease runs out, and the result is
// recorded against the workflow as it is then, under its row lock.
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/engine/workflow_state.hpp"
#include "daemon/store/store.hpp"

namespace brickwork {

struct HandedEffect {
  StoredEffect stored;
  // The workflow as committed with the effect (shared by its effects).
  std::shared_ptr<const WorkflowState> state;
};

class EffectHandoff {
 public:
  // `owner` prefixes each transaction's lease owner. At most about
  // `capacity` effects wait, beyond which effects are written unleased for
  // the next claim (a bound on what a dying daemon leaves leased); the first
  // `with_state` of them keep their workflow's state, the rest read it
  // (a bound on memory).
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
      if (e.state != nullptr && stateful_ >= with_state_) e.state.reset();
      if (e.state != nullptr) ++stateful_;
      waiting_.push_back(std::move(e));
    }
  }
  std::vector<HandedEffect> take(size_t limit) {
    std::lock_guard lock(mutex_);
    std::vector<HandedEffect> taken;
    while (!waiting_.empty() && taken.size() < limit) {
      if (waiting_.front().state != nullptr) --stateful_;
      taken.push_back(std::move(waiting_.front()));
      waiting_.pop_front();
    }
    return taken;
  }
  // The leases of the effects waiting, to renew with those in hand.
  std::vector<HeldLease> leases() const {
    std::lock_guard lock(mutex_);
    std::vector<HeldLease> held;
    held.reserve(waiting_.size());
    for (const auto& e : waiting_) held.push_back({e.stored.id, e.stored.lease_owner});
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
  const std::string owner_;
  const size_t capacity_;
  const size_t with_state_;
  size_t stateful_ = 0;  // of waiting_, those with their state
  std::atomic<int64_t> transactions_{0};
  std::atomic<bool> claim_requested_{false};
  mutable std::mutex mutex_;
  std::deque<HandedEffect> waiting_;
};

}  // namespace brickwork
