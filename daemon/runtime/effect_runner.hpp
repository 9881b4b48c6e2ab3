#pragma once
// Performs the effects the engine asked for (start a run, poll it, cancel it,
// fire a timer) and feeds each result back as an engine input. Effects live in
// Postgres and are claimed with a lease (FOR UPDATE SKIP LOCKED), so several
// daemons share them, and an effect whose holder died is retried after the
// lease: safe because every Databricks call it makes can be repeated (run-now
// carries the attempt's idempotency token). A result is recorded only while
// its claim still holds the lease, and leases of effects in hand are renewed
// while their calls take long, so two holders never both record one effect.
//
// Each effect runs on its own as soon as a call slot is free: a dispatcher
// takes effects handed over (and claims due ones) only while slots are free,
// and a pool of call threads (`Slots::calls`, plus `Slots::transfers` for
// uploads in a lane of their own) performs them, one each. Each Databricks
// workspace has lanes of its own (its max_in_flight and max_transfers), so
// a busy or slow workspace never takes another's slots; steps that call no
// Databricks run in the default workspace's lanes. A result goes to
// the recorders the moment its effect ends; docs/ARCHITECTURE.md has the
// whole model and the rule for what a thread may hold.
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/databricks/api.hpp"
#include "daemon/runtime/effect_handoff.hpp"
#include "daemon/runtime/runtime_context.hpp"
#include "daemon/store/store.hpp"

namespace brickwork {

class EffectRunner {
 public:
  // How many effects run at once (databricks.max_in_flight), and how many of
  // those may be transfers (databricks.max_transfers) in a lane of their own.
  struct Slots {
    int32_t calls = 64;
    int32_t transfers = 16;
  };
  // Slots by workspace name ("" = the default workspace, always present).
  using SlotsByWorkspace = std::map<std::string, Slots>;

  // `services` is what step types may use (a null service makes the steps
  // that need it fail with a clear error); the pointers must outlive the runner.
  EffectRunner(RuntimeContext& context, StepServices services, std::string owner);
  ~EffectRunner();

  // Starts the dispatcher (with its own Postgres connection), the call
  // threads, the recorders and the lease keeper.
  void start(Slots slots);
  // With lanes for each workspace (an effect of a workspace not listed uses
  // the default workspace's).
  void start(SlotsByWorkspace slots);
  // Returns within about `grace`: nothing new starts, calls in flight may
  // end within half of it and are then canceled, results are recorded while
  // Postgres answers and time is left, and every effect not recorded is
  // given back (its lease cleared, one try) for the next daemon.
  void stop(Duration grace = std::chrono::seconds(20));

  // Performs one claimed effect with `store` and records its result, all on
  // the calling thread (tests).
  void run_one(Store& store, const StoredEffect& effect);
  // Renews the leases of every effect in hand once (exposed for tests).
  Status renew_leases(EffectQueue& queue);
  // The most effects performed at once since start (tests).
  int32_t most_in_flight() const { return most_in_flight_.load(); }

 private:
  struct Job;
  struct Lane;
  class ResultRecorder;

  void dispatch_loop();
  void call_loop(Lane& lane, int32_t index);
  void lease_keeper_loop();
  // Slots of a lane neither running nor promised to an effect queued.
  static int32_t free_slots(const Lane& lane);  // with lanes_mutex_ held
  // The lane an effect runs in: its step's workspace's, transfers for a step
  // type that moves a large body.
  Lane* lane_for(const StoredEffect& effect, const WorkflowState* state) const;
  int32_t running() const;  // with lanes_mutex_ held: effects performed now, every lane
  // Effects without a state are performed against their workflows as read:
  // in `read_with_claim` (the claim that took them read them), else by
  // `reader` now.
  void dispatch(WorkflowReader& reader, std::vector<HandedEffect> effects,
                const WorkflowReader::LoadedWorkflows* read_with_claim = nullptr);
  void perform(Job& job);
  void hold(const StoredEffect& effect);
  void release(int64_t effect_id);
  std::vector<HeldLease> take_held();
  void give_back(std::vector<HeldLease> effects);

  RuntimeContext& context_;
  StepServices services_;
  std::string owner_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> keeper_stopping_{false};
  std::thread dispatcher_;
  std::thread lease_keeper_;
  // The lanes, their queues and counts; one mutex for both.
  mutable std::mutex lanes_mutex_;
  std::condition_variable idle_cv_;  // a call ended
  std::vector<std::unique_ptr<Lane>> lanes_;
  struct WorkspaceLanes {
    Lane* calls = nullptr;
    Lane* transfers = nullptr;
  };
  std::map<std::string, WorkspaceLanes, std::less<>> lanes_by_workspace_;  // "" = default
  std::atomic<int32_t> most_in_flight_{0};
  std::mutex held_mutex_;
  std::map<int64_t, std::string> held_;  // effect id -> lease owner of its claim
  std::atomic<int64_t> claims_{0};
  std::shared_ptr<EffectHandoff> handoff_;  // while started
  std::unique_ptr<ResultRecorder> recorder_;
};

}  // namespace brickwork
