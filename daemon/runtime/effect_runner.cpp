#include "daemon/runtime/effect_runner.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <stdexcept>

#include "daemon/core/logging.hpp"
#include "daemon/runtime/workflow_transaction.hpp"

namespace brickwork {
namespace {

// Backoff for an effect that hit a transient error: 1 s, 2 s, 4 s ... 60 s, with jitter.
Duration retry_delay(int32_t tries) {
  thread_local std::mt19937 rng{std::random_device{}()};
  const int64_t base = int64_t{1000} << std::min(tries, 6);
  std::uniform_int_distribution<int64_t> jitter(0, base / 4);
  return Duration(std::min<int64_t>(base, 60'000) + jitter(rng));
}

// A step type's error as the attempt's failure. Only an error of unknown
// cause is worth the step's retry policy: a 4xx, an invalid action or a
// template that cannot be rendered fail the same way every time.
StepOutcome failed_outcome(const Error& error) {
  StepOutcome failed;
  failed.kind = StepOutcome::Kind::kFailed;
  failed.error = {error.code, error.message};
  failed.retryable = error.kind == ErrorKind::kInternal;
  return failed;
}

// Thrown inside a recording transaction to roll it back: the claim no longer
// holds the effect, so its holder records the result instead.
class LeaseLost : public std::runtime_error {
 public:
  LeaseLost() : std::runtime_error("lease lost") {}
};

const char* effect_name(const Effect& effect) {
  static constexpr const char* kNames[] = {"execute", "poll", "cancel", "timer"};
  return kNames[effect.index()];
}

// One claimed effect, performed against one workflow's state.
class EffectExecution {
 public:
  EffectExecution(RuntimeContext& context, StepServices services, Store& store,
                  const StoredEffect& stored)
      : context_(context), services_(services), store_(store), stored_(stored) {}

  void run() {
    auto loaded = store_.get_workflow(stored_.workflow_id);
    if (!loaded && loaded.error().transient()) {
      reschedule(loaded.error());
      return;
    }
    if (!loaded) {
      // It will never load: end the workflow instead of re-claiming this forever.
      record_with([&](WorkflowTransaction& wt) {
        wt.fail_unloadable(stored_.workflow_id, loaded.error().message);
      });
      return;
    }
    if (!*loaded) {
      record(std::nullopt);
      return;
    }
    workflow_ = &**loaded;
    std::visit([this](const auto& effect) { perform(effect); }, stored_.effect);
  }

 private:
  void perform(const StartTimer& timer) {
    record(Input(TimerFired{timer.step, timer.attempt, timer.kind}));
  }

  void perform(const CancelStep& cancel) {
    if (!prepare(cancel.step)) return record(std::nullopt);
    step_.run_id = cancel.run_id;
    step_.handle = cancel.handle;
    if (type_ == nullptr) return record(std::nullopt);
    Status s = type_->cancel(context_for(cancel.attempt), services_);
    if (!s && s.error().transient()) return reschedule(s.error());
    if (!s) {
      spdlog::warn("effects: cancel of {}/{} failed: {}", workflow_->id, step_.name,
                   s.error().message);
    }
    record(std::nullopt);
  }

  void perform(const ExecuteStep& execute) {
    perform_step_call(execute.step, execute.attempt, StepStatus::kRunning,
                      [](const StepType& t, const StepContext& c, StepServices& s) {
                        return t.execute(c, s);
                      },
                      [&](StepOutcome o) -> Input {
                        return StepExecuted{execute.step, execute.attempt, std::move(o)};
                      });
  }

  void perform(const PollStep& poll) {
    perform_step_call(poll.step, poll.attempt, StepStatus::kWaiting,
                      [](const StepType& t, const StepContext& c, StepServices& s) {
                        return t.poll(c, s);
                      },
                      [&](StepOutcome o) -> Input {
                        return StepPolled{poll.step, poll.attempt, std::move(o)};
                      });
  }

  template <class Call, class ToInput>
  void perform_step_call(const std::string& step_name, int32_t attempt, StepStatus expected,
                         Call call, ToInput to_input) {
    if (!prepare(step_name)) return record(std::nullopt);
    // Work for an attempt that has moved on is dropped, not performed.
    if (is_terminal(workflow_->status) || step_.attempt != attempt || step_.status != expected) {
      return record(std::nullopt);
    }
    if (type_ == nullptr) {
      Error unknown{ErrorKind::kPermanent, "unknown_step_type",
                    "no step type '" + definition_->type + "'"};
      if (expected != StepStatus::kRunning) return record(std::nullopt);
      return record(to_input(failed_outcome(unknown)));
    }
    Result<StepOutcome> outcome = call(*type_, context_for(attempt), services_);
    if (!outcome && outcome.error().transient()) return reschedule(outcome.error());
    record(to_input(outcome ? std::move(*outcome) : failed_outcome(outcome.error())));
  }

  bool prepare(const std::string& step_name) {
    definition_ = workflow_->definition.find_step(step_name);
    const StepState* step = workflow_->find_step(step_name);
    if (definition_ == nullptr || step == nullptr) return false;
    type_ = context_.registry().find(definition_->type);
    step_ = *step;
    scope_ = template_scope(*workflow_);
    return true;
  }

  StepContext context_for(int32_t attempt) const {
    return StepContext{*workflow_,
                       *definition_,
                       step_,
                       attempt,
                       scope_,
                       context_.tokens().callback_token(workflow_->id, step_.name, attempt),
                       context_.tokens().idempotency_token(workflow_->id, step_.name, attempt)};
  }

  void record(std::optional<Input> input) {
    record_with([&](WorkflowTransaction& wt) {
      if (input) wt.apply(stored_.workflow_id, *input);
    });
  }

  // Applies the result and deletes the effect in one transaction, but only
  // while this claim still holds the lease.
  template <class Body>
  void record_with(Body body) {
    bool lease_lost = false;
    PendingMetrics metrics;
    Status s = store_.transact([&](StoreTx& tx) {
      metrics.clear();
      const TimePoint now = now_ms();
      // The lease first: nothing is applied for a claim that lost it.
      if (!tx.delete_effect(stored_.id, stored_.lease_owner, now)) {
        lease_lost = true;
        throw LeaseLost();
      }
      WorkflowTransaction wt(tx, context_, now, &metrics);
      body(wt);
      wt.finish();
    });
    if (s && !lease_lost) metrics.commit(&context_.metrics());
    if (lease_lost) {
      spdlog::warn("effects: lease of {} effect {} for workflow {} ran out; its new holder records it",
                   effect_name(stored_.effect), stored_.id, stored_.workflow_id);
      return;
    }
    if (!s) {
      spdlog::warn("effects: cannot record result for {}: {}", stored_.workflow_id,
                   s.error().message);
      return;
    }
    context_.outbox_wakeup().notify();
    context_.effects_wakeup().notify();
  }

  void reschedule(const Error& error) {
    const Duration delay = retry_delay(stored_.tries);
    spdlog::warn("effects: {} for workflow {} failed ({}: {}); again in {}",
                 effect_name(stored_.effect), stored_.workflow_id, error.code, error.message,
                 format_duration(delay));
    Status s = store_.reschedule_effect(stored_.id, stored_.lease_owner, now_ms() + delay);
    if (!s) spdlog::warn("effects: cannot reschedule: {}", s.error().message);
  }

  RuntimeContext& context_;
  StepServices services_;
  Store& store_;
  const StoredEffect& stored_;
  const WorkflowState* workflow_ = nullptr;
  const StepDefinition* definition_ = nullptr;
  const StepType* type_ = nullptr;
  StepState step_;
  json::object scope_;
};

}  // namespace

EffectRunner::EffectRunner(RuntimeContext& context, StepServices services, std::string owner)
    : context_(context), services_(services), owner_(std::move(owner)) {}

EffectRunner::~EffectRunner() { stop(); }

void EffectRunner::start(int32_t workers) {
  stopping_ = false;
  for (int32_t i = 0; i < workers; ++i) {
    threads_.emplace_back([this, i] { worker_loop(i); });
  }
  threads_.emplace_back([this] { lease_keeper_loop(); });
}

void EffectRunner::stop() {
  stopping_ = true;
  context_.effects_wakeup().notify();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void EffectRunner::hold(const std::vector<StoredEffect>& effects) {
  std::lock_guard lock(held_mutex_);
  for (const auto& e : effects) held_[e.id] = e.lease_owner;
}

void EffectRunner::release(int64_t effect_id) {
  std::lock_guard lock(held_mutex_);
  held_.erase(effect_id);
}

Status EffectRunner::renew_leases(Store& store) {
  std::vector<HeldLease> held;
  {
    std::lock_guard lock(held_mutex_);
    for (const auto& [id, owner] : held_) held.push_back(HeldLease{id, owner});
  }
  return store.renew_leases(held, now_ms(), context_.config()->daemon.lease);
}

void EffectRunner::lease_keeper_loop() {
  auto store = context_.open_store();
  Liveness::Loop& heartbeat = context_.liveness().add("leases", kLoopStallLimit);
  auto next = std::chrono::steady_clock::now();
  while (!stopping_) {
    heartbeat.beat();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (std::chrono::steady_clock::now() < next) continue;
    // A third of the lease: two renewals may fail before an effect is lost.
    next = std::chrono::steady_clock::now() + context_.config()->daemon.lease / 3;
    Status s = renew_leases(*store);
    if (!s) spdlog::warn("effects: cannot renew leases: {}", s.error().message);
  }
  heartbeat.retire();
}

void EffectRunner::worker_loop(int32_t index) {
  auto store = context_.open_store();
  const std::string worker = owner_ + "/" + std::to_string(index);
  // One effect may retry Databricks calls for the whole retry budget, twice
  // over (a step type making two calls) before it is stuck.
  Liveness::Loop& heartbeat = context_.liveness().add(
      "effects/" + std::to_string(index),
      2 * context_.config()->databricks.retry_budget + kLoopStallLimit);
  Duration backoff{100};
  while (!stopping_) {
    heartbeat.beat();
    const ConfigPtr config = context_.config();
    // Each claim is its own lease owner: a later claim of the same effect by
    // this very worker is a different holder.
    const std::string owner = worker + "#" + std::to_string(++claims_);
    auto claimed = store->claim_due_effects(owner, 4, now_ms(), config->daemon.lease);
    if (!claimed) {
      spdlog::warn("effects: cannot claim: {}", claimed.error().message);
      context_.effects_wakeup().wait_for(backoff);
      backoff = std::min(backoff * 2, Duration(5000));
      continue;
    }
    backoff = Duration(100);
    if (claimed->empty()) {
      // New effects wake us at once; timers and other daemons' work at the next tick.
      context_.effects_wakeup().wait_for(std::chrono::milliseconds(200));
      continue;
    }
    hold(*claimed);
    for (const auto& effect : *claimed) {
      run_one(*store, effect);
      release(effect.id);
    }
  }
  heartbeat.retire();
}

void EffectRunner::run_one(Store& store, const StoredEffect& stored) {
  const TimePoint started = now_ms();
  LogScope scope(LogScope::workflow(
      stored.workflow_id, std::visit([](const auto& e) { return e.step; }, stored.effect)));
  EffectExecution(context_, services_, store, stored).run();
  spdlog::debug("effects: {} done in {} ms", stored.id, (now_ms() - started).count());
}

}  // namespace brickwork
