#pragma once
// What every part of the running daemon shares: the configuration (on SIGHUP
// swapped for one with new workflow definitions only: reloaded_config), the
// token minter, the step registry, and wake-ups between threads so new work
// is picked up at once rather than at the next poll.
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "config/config.hpp"
#include "daemon/core/metrics.hpp"
#include "daemon/core/tokens.hpp"
#include "daemon/runtime/liveness.hpp"
#include "daemon/store/store.hpp"
#include "handlers/steps/step_type.hpp"

namespace brickwork {

class EffectHandoff;

// A latch-free wake-up: notify() makes the next (or current) wait_for return early.
class Wakeup {
 public:
  void notify() {
    {
      std::lock_guard lock(mutex_);
      pending_ = true;
    }
    cv_.notify_all();
  }
  template <class Rep, class Period>
  void wait_for(std::chrono::duration<Rep, Period> limit) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, limit, [&] { return pending_; });
    pending_ = false;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool pending_ = false;
};

class RuntimeContext {
 public:
  RuntimeContext(ConfigPtr config, const StepRegistry& registry)
      : config_(std::move(config)),
        tokens_(config_->callbacks.secret, config_->callbacks.previous_secrets),
        sealer_(std::make_shared<const SecretBox>(config_->callbacks.secret,
                                                  config_->callbacks.previous_secrets)),
        registry_(registry) {}

  ConfigPtr config() const { return std::atomic_load(&config_); }
  // Workflows started from now on use the new definitions; running ones keep
  // theirs. Callers pass the result of reloaded_config: the other settings
  // were bound at start and must not change here.
  void replace_config(ConfigPtr config) { std::atomic_store(&config_, std::move(config)); }

  // A Store on postgres.url, with its Lakebase password source if there is one.
  std::unique_ptr<Store> open_store() const {
    return Store::open(config()->postgres.url, store_password_, sealer_);
  }
  void set_store_password(std::shared_ptr<PasswordSource> password) {
    store_password_ = std::move(password);
  }
  const std::shared_ptr<PasswordSource>& store_password() const { return store_password_; }

  const TokenMinter& tokens() const { return tokens_; }
  const StepRegistry& registry() const { return registry_; }

  // Where transactions hand effects due now to this daemon's effect workers,
  // while they run (null otherwise: effects wait for a claim).
  std::shared_ptr<EffectHandoff> handoff() const { return std::atomic_load(&handoff_); }
  void set_handoff(std::shared_ptr<EffectHandoff> handoff) {
    std::atomic_store(&handoff_, std::move(handoff));
  }

  Wakeup& outbox_wakeup() { return outbox_wakeup_; }
  Wakeup& effects_wakeup() { return effects_wakeup_; }

  // The daemon's Prometheus series and its loops' heartbeats (/metrics,
  // /healthz and the systemd watchdog read them).
  Metrics& metrics() { return metrics_; }
  Liveness& liveness() { return liveness_; }

 private:
  ConfigPtr config_;
  std::shared_ptr<PasswordSource> store_password_;  // set before any thread starts
  TokenMinter tokens_;
  std::shared_ptr<const SecretBox> sealer_;  // sensitive outputs at rest
  const StepRegistry& registry_;
  std::shared_ptr<EffectHandoff> handoff_;
  Wakeup outbox_wakeup_;
  Wakeup effects_wakeup_;
  Metrics metrics_;
  Liveness liveness_;
};

}  // namespace brickwork
