#pragma once
// Performs the effects the engine asked for (start a run, poll it, cancel it,
// fire a timer) and feeds each result back as an engine input. Effects live in
// Postgres and are claimed with a lease (FOR UPDATE SKIP LOCKED), so several
// daemons share them, and an effect whose worker died is retried after the
// lease: safe because every Databricks call it makes can be repeated (run-now
// carries the attempt's idempotency token). A result is recorded only while
// its claim still holds the lease, and leases of effects in hand are renewed
// while their calls take long, so two workers never both record one effect.
#include <atomic>
#include <functional>
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
  // `services` is what step types may use (a null service makes the steps
  // that need it fail with a clear error); the pointers must outlive the runner.
  EffectRunner(RuntimeContext& context, StepServices services, std::string owner);
  ~EffectRunner();

  // Starts `workers` threads, each with its own Postgres connection, and one
  // that renews the leases of effects in hand.
  void start(int32_t workers);
  // Asks the workers to stop after the effect in hand and joins them.
  void stop();

  // Performs one claimed effect with `store` (exposed for tests).
  void run_one(Store& store, const StoredEffect& effect);
  // Performs claimed effects, their calls one after another, and records
  // all their results in one transaction.
  // `progress` is called after each effect is performed.
  void run_batch(Store& store, const std::vector<StoredEffect>& batch,
                 const std::function<void()>& progress = {});
  // The same for effects handed over, with the workflow state they were
  // decided from (a null state is read from the store).
  void run_batch(Store& store, std::vector<HandedEffect> batch,
                 const std::function<void()>& progress = {});
  // How many effects a worker claims at once: enough to share one commit,
  // few enough that the last one's call does not wait long for the others.
  static constexpr int32_t kEffectsPerClaim = 8;
  // Renews the leases of every effect in hand once (exposed for tests).
  Status renew_leases(Store& store);

 private:
  void worker_loop(int32_t index);
  void lease_keeper_loop();
  void hold(const std::vector<StoredEffect>& effects);
  void release(int64_t effect_id);

  RuntimeContext& context_;
  StepServices services_;
  std::string owner_;
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> threads_;
  std::mutex held_mutex_;
  std::map<int64_t, std::string> held_;  // effect id -> lease owner of its claim
  std::atomic<int64_t> claims_{0};
  std::atomic<int64_t> next_claim_ms_{0};  // steady clock: the next periodic claim
  std::shared_ptr<EffectHandoff> handoff_;  // while started
  class ResultRecorder;
  std::unique_ptr<ResultRecorder> recorder_;
};

}  // namespace brickwork
