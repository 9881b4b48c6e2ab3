#pragma once
// The daemon's retention loop: every `retention.every`, the finished
// workflows past their state's retention are purged (daemon/store/retention),
// on a connection and a thread of its own, so intake never waits on it
// beyond the short row locks of one batch.
#include <atomic>
#include <functional>
#include <thread>
#include <vector>

#include "daemon/runtime/runtime_context.hpp"
#include "daemon/store/retention.hpp"

namespace brickwork {

// What `retention` purges at `now`: one cutoff per finished state, none for
// a state kept forever (0).
std::vector<PurgeCutoff> retention_cutoffs(const RetentionConfig& retention, TimePoint now);

class RetentionTask {
 public:
  // `clock` is the time ages are measured against (tests move it forward).
  RetentionTask(RuntimeContext& context, std::function<TimePoint()> clock);
  ~RetentionTask() { stop(); }

  void start();
  // Ends the round in hand after its current batch.
  void stop();

 private:
  void loop();
  void purge_round(WorkflowPurger& purger);

  RuntimeContext& context_;
  std::function<TimePoint()> clock_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  Liveness::Loop* liveness_ = nullptr;
};

}  // namespace brickwork
