#include "daemon/runtime/effect_runner.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

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

}  // namespace

EffectRunner::EffectRunner(RuntimeContext& context, DatabricksApi* databricks, std::string owner)
    : context_(context), databricks_(databricks), owner_(std::move(owner)) {}

EffectRunner::~EffectRunner() { stop(); }

void EffectRunner::start(int32_t workers) {
  stopping_ = false;
  for (int32_t i = 0; i < workers; ++i) {
    threads_.emplace_back([this, i] { worker_loop(i); });
  }
}

void EffectRunner::stop() {
  stopping_ = true;
  context_.effects_wakeup().notify();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void EffectRunner::worker_loop(int32_t index) {
  auto store = Store::open(context_.config()->postgres.url);
  const std::string owner = owner_ + "/" + std::to_string(index);
  Duration backoff{100};
  while (!stopping_) {
    const ConfigPtr config = context_.config();
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
    for (const auto& effect : *claimed) {
      run_one(*store, effect);
    }
  }
}

void EffectRunner::run_one(Store& store, const StoredEffect& stored) {
  const TimePoint started = now_ms();
  auto loaded = store.get_workflow(stored.workflow_id);
  if (!loaded) {
    // The lease runs out and the effect comes back; nothing else to do.
    spdlog::warn("effects: cannot load workflow {}: {}", stored.workflow_id,
                 loaded.error().message);
    return;
  }
  auto apply = [&](std::optional<Input> input) {
    Status s = store.transact([&](StoreTx& tx) {
      WorkflowTransaction wt(tx, context_, now_ms());
      if (input) wt.apply(stored.workflow_id, *input);
      tx.delete_effect(stored.id);
      wt.finish();
    });
    if (!s) {
      spdlog::warn("effects: cannot record result for {}: {}", stored.workflow_id,
                   s.error().message);
      return;
    }
    context_.outbox_wakeup().notify();
    context_.effects_wakeup().notify();
  };
  if (!*loaded) {
    apply(std::nullopt);
    return;
  }
  const WorkflowState& workflow = **loaded;

  // Everything a step type needs for (step, attempt).
  struct Prepared {
    const StepDefinition* definition = nullptr;
    const StepType* type = nullptr;
    StepState step;
  };
  auto prepare = [&](const std::string& step_name) -> std::optional<Prepared> {
    const StepDefinition* def = workflow.definition.find_step(step_name);
    const StepState* step = workflow.find_step(step_name);
    if (def == nullptr || step == nullptr) return std::nullopt;
    const StepType* type = context_.registry().find(def->type);
    return Prepared{def, type, *step};
  };
  auto reschedule = [&](const Error& error) {
    const Duration delay = retry_delay(stored.tries);
    spdlog::warn("effects: {} for workflow {} failed ({}: {}); again in {}", stored.effect.index(),
                 stored.workflow_id, error.code, error.message, format_duration(delay));
    Status s = store.reschedule_effect(stored.id, now_ms() + delay);
    if (!s) spdlog::warn("effects: cannot reschedule: {}", s.error().message);
  };
  StepServices services{databricks_};
  const json::object scope = template_scope(workflow);

  std::visit(
      [&](const auto& effect) {
        using T = std::decay_t<decltype(effect)>;
        if constexpr (std::is_same_v<T, StartTimer>) {
          apply(TimerFired{effect.step, effect.attempt, effect.kind});
        } else {
          auto prepared = prepare(effect.step);
          if (!prepared) {
            apply(std::nullopt);
            return;
          }
          StepState& step = prepared->step;
          if constexpr (std::is_same_v<T, CancelStep>) {
            step.run_id = effect.run_id;
            step.handle = effect.handle;
          } else {
            // Work for an attempt that has moved on is dropped, not performed.
            const bool current = !is_terminal(workflow.status) && step.attempt == effect.attempt &&
                                 (std::is_same_v<T, ExecuteStep>
                                      ? step.status == StepStatus::kRunning
                                      : step.status == StepStatus::kWaiting);
            if (!current) {
              apply(std::nullopt);
              return;
            }
          }
          if (prepared->type == nullptr) {
            StepOutcome failed;
            failed.kind = StepOutcome::Kind::kFailed;
            failed.error = {"unknown_step_type", "no step type '" + prepared->definition->type + "'"};
            if constexpr (std::is_same_v<T, ExecuteStep>) {
              apply(StepExecuted{effect.step, effect.attempt, failed});
            } else {
              apply(std::nullopt);
            }
            return;
          }
          const StepContext ctx{workflow,
                                *prepared->definition,
                                step,
                                effect.attempt,
                                scope,
                                context_.tokens().callback_token(workflow.id, step.name,
                                                                 effect.attempt),
                                context_.tokens().idempotency_token(workflow.id, step.name,
                                                                    effect.attempt)};
          if constexpr (std::is_same_v<T, CancelStep>) {
            Status s = prepared->type->cancel(ctx, services);
            if (!s && s.error().transient()) {
              reschedule(s.error());
              return;
            }
            if (!s) {
              spdlog::warn("effects: cancel of {}/{} failed: {}", workflow.id, step.name,
                           s.error().message);
            }
            apply(std::nullopt);
          } else {
            Result<StepOutcome> outcome = std::is_same_v<T, ExecuteStep>
                                              ? prepared->type->execute(ctx, services)
                                              : prepared->type->poll(ctx, services);
            if (!outcome && outcome.error().transient()) {
              reschedule(outcome.error());
              return;
            }
            StepOutcome result;
            if (outcome) {
              result = *outcome;
            } else {
              result.kind = StepOutcome::Kind::kFailed;
              result.error = {outcome.error().code, outcome.error().message};
            }
            if constexpr (std::is_same_v<T, ExecuteStep>) {
              apply(StepExecuted{effect.step, effect.attempt, std::move(result)});
            } else {
              apply(StepPolled{effect.step, effect.attempt, std::move(result)});
            }
          }
        }
      },
      stored.effect);
  spdlog::debug("effects: {} done in {} ms", stored.id, (now_ms() - started).count());
}

}  // namespace brickwork
