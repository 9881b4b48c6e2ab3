#include "daemon/runtime/retention_task.hpp"

#include <spdlog/spdlog.h>

#include "daemon/core/thread_name.hpp"

namespace brickwork {

std::vector<PurgeCutoff> retention_cutoffs(const RetentionConfig& retention, TimePoint now) {
  std::vector<PurgeCutoff> cutoffs;
  const std::pair<WorkflowStatus, Duration> kept[] = {
      {WorkflowStatus::kSucceeded, retention.succeeded},
      {WorkflowStatus::kFailed, retention.failed},
      {WorkflowStatus::kCanceled, retention.canceled}};
  for (const auto& [state, keep] : kept) {
    if (keep.count() > 0) cutoffs.push_back(PurgeCutoff{state, now - keep});
  }
  return cutoffs;
}

RetentionTask::RetentionTask(RuntimeContext& context, std::function<TimePoint()> clock)
    : context_(context), clock_(clock ? std::move(clock) : std::function<TimePoint()>(now_ms)) {}

void RetentionTask::start() {
  stopping_ = false;
  liveness_ = &context_.liveness().add("retention", kLoopStallLimit);
  thread_ = std::thread([this] {
    name_this_thread("bw-retention");
    loop();
  });
}

void RetentionTask::stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  thread_.join();
  liveness_->retire();
}

void RetentionTask::loop() {
  auto purger = WorkflowPurger::open(context_.config()->postgres.url, context_.store_password());
  while (!stopping_) {
    purge_round(*purger);
    // Waiting is not being stuck: a heartbeat every slice of the wait.
    const auto until = std::chrono::steady_clock::now() + context_.config()->retention.every;
    while (!stopping_ && std::chrono::steady_clock::now() < until) {
      liveness_->beat();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

void RetentionTask::purge_round(WorkflowPurger& purger) {
  const ConfigPtr config = context_.config();
  const RetentionConfig& retention = config->retention;
  const auto cutoffs = retention_cutoffs(retention, clock_());
  if (cutoffs.empty()) return;
  Metrics& metrics = context_.metrics();
  auto totals = purge_finished(purger, cutoffs, retention.batch_size, &stopping_,
                               [&](WorkflowStatus state, const PurgeBatch& batch) {
                                 metrics.count_workflows_purged(to_string(state), batch.workflows);
                                 liveness_->beat();
                               });
  if (!totals) {
    // The next round tries again; what was purged before the error stays purged.
    spdlog::warn("retention: purge stopped: {}", totals.error().message);
    return;
  }
  if (totals->total_workflows() > 0 || totals->definitions > 0) {
    spdlog::info("retention: purged {} finished workflows and {} unused definitions in {} batches "
                 "(longest {} ms)",
                 totals->total_workflows(), totals->definitions, totals->batches,
                 totals->longest_hold.count());
  }
}

}  // namespace brickwork
