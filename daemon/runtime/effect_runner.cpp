#include "daemon/runtime/effect_runner.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <random>
#include <set>
#include <stdexcept>

#include "daemon/core/logging.hpp"
#include "daemon/core/storable_text.hpp"
#include "daemon/runtime/workflow_transaction.hpp"

namespace brickwork {
// Internal to this file; named so that EffectRunner's members may use it.
namespace effect_detail {

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

const char* effect_name(const Effect& effect) {
  static constexpr const char* kNames[] = {"execute", "poll", "cancel", "timer"};
  return kNames[effect.index()];
}

// What performing one claimed effect came to. Results of one batch are
// recorded together, in one transaction.
struct EffectResult {
  enum class Kind {
    kApply,           // apply `input` (if any) and drop the effect
    kFailUnloadable,  // the workflow will never load: end it
    kReschedule,      // a transient error: give the effect back for later
  };
  Kind kind = Kind::kApply;
  std::optional<Input> input;
  Error error;
};

// One claimed effect, performed against its workflow's state as loaded.
class EffectExecution {
 public:
  EffectExecution(RuntimeContext& context, StepServices services, const StoredEffect& stored)
      : context_(context), services_(services), stored_(stored) {}

  EffectResult run(const Result<std::optional<WorkflowState>>& loaded) {
    if (!loaded && loaded.error().transient()) return reschedule(loaded.error());
    // It will never load: end the workflow instead of re-claiming this forever.
    if (!loaded) return EffectResult{EffectResult::Kind::kFailUnloadable, {}, loaded.error()};
    if (!*loaded) return {};
    return run(**loaded);
  }

  EffectResult run(const WorkflowState& workflow) {
    workflow_ = &workflow;
    return std::visit([this](const auto& effect) { return perform(effect); }, stored_.effect);
  }

 private:
  static EffectResult apply(Input input) { return EffectResult{{}, std::move(input), {}}; }
  static EffectResult reschedule(Error error) {
    return EffectResult{EffectResult::Kind::kReschedule, std::nullopt, std::move(error)};
  }

  EffectResult perform(const StartTimer& timer) {
    return apply(TimerFired{timer.step, timer.attempt, timer.kind});
  }

  EffectResult perform(const CancelStep& cancel) {
    if (!prepare(cancel.step)) return {};
    step_.run_id = cancel.run_id;
    step_.handle = cancel.handle;
    if (type_ == nullptr) return {};
    Status s = cancel_step(*type_, context_for(cancel.attempt), services_);
    if (!s && s.error().transient()) return reschedule(s.error());
    if (!s) {
      spdlog::warn("effects: cancel of {}/{} failed: {}", workflow_->id, step_.name,
                   s.error().message);
    }
    return {};
  }

  EffectResult perform(const ExecuteStep& execute) {
    return perform_step_call(execute.step, execute.attempt, StepStatus::kRunning,
                             [](const StepType& t, const StepContext& c, StepServices& s) {
                               return execute_step(t, c, s);
                             },
                             [&](StepOutcome o) -> Input {
                               return StepExecuted{execute.step, execute.attempt, std::move(o)};
                             });
  }

  EffectResult perform(const PollStep& poll) {
    return perform_step_call(poll.step, poll.attempt, StepStatus::kWaiting,
                             [](const StepType& t, const StepContext& c, StepServices& s) {
                               return poll_step(t, c, s);
                             },
                             [&](StepOutcome o) -> Input {
                               return StepPolled{poll.step, poll.attempt, std::move(o),
                                                 poll.after_event_grace};
                             });
  }

  template <class Call, class ToInput>
  EffectResult perform_step_call(const std::string& step_name, int32_t attempt,
                                 StepStatus expected, Call call, ToInput to_input) {
    if (!prepare(step_name)) return {};
    // Work for an attempt that has moved on is dropped, not performed.
    if (is_terminal(workflow_->status) || step_.attempt != attempt || step_.status != expected) {
      return {};
    }
    if (type_ == nullptr) {
      Error unknown{ErrorKind::kPermanent, "unknown_step_type",
                    "no step type '" + definition_->type + "'"};
      if (expected != StepStatus::kRunning) return {};
      return apply(to_input(failed_outcome(unknown)));
    }
    Result<StepOutcome> outcome = call(*type_, context_for(attempt), services_);
    if (!outcome && outcome.error().transient()) return reschedule(outcome.error());
    StepOutcome done = outcome ? std::move(*outcome) : failed_outcome(outcome.error());
    // Whatever a step type read, its error stays storable and small enough
    // for the step_failed event that repeats it.
    done.error.message = storable_text(done.error.message, kMaxErrorTextBytes);
    return apply(to_input(std::move(done)));
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
    const TokenMinter& tokens = context_.tokens();
    return StepContext{*workflow_,
                       *definition_,
                       step_,
                       attempt,
                       scope_,
                       tokens.callback_token(workflow_->id, step_.name, attempt),
                       tokens.idempotency_token(workflow_->id, step_.name, attempt,
                                                attempt_key_id()),
                       /*bound=*/nullptr};
  }

  // The secret an execute effect's attempt started with (ExecuteStep::key_id):
  // its idempotency token must not change if the secret is rotated before
  // the call is repeated.
  std::string attempt_key_id() const {
    const auto* execute = std::get_if<ExecuteStep>(&stored_.effect);
    if (execute == nullptr) return {};
    if (!execute->key_id.empty() && !context_.tokens().has_key(execute->key_id)) {
      spdlog::warn("effects: attempt {} of {}/{} started under callbacks secret {}, which is "
                   "neither callbacks.secret nor in callbacks.previous_secrets; its run call "
                   "uses the current secret's token (Databricks may start a second run)",
                   execute->attempt, workflow_->id, step_.name, execute->key_id);
    }
    return execute->key_id;
  }

  RuntimeContext& context_;
  StepServices services_;
  const StoredEffect& stored_;
  const WorkflowState* workflow_ = nullptr;
  const StepDefinition* definition_ = nullptr;
  const StepType* type_ = nullptr;
  StepState step_;
  json::object scope_;
};

// Gives effects that hit a transient error back, each to be tried again later.
void reschedule_effect(Store& store, const StoredEffect& stored, const Error& error) {
  const Duration delay = retry_delay(stored.tries);
  spdlog::warn("effects: {} for workflow {} failed ({}: {}); again in {}",
               effect_name(stored.effect), stored.workflow_id, error.code, error.message,
               format_duration(delay));
  Status s = store.reschedule_effect(stored.id, stored.lease_owner, now_ms() + delay);
  if (!s) spdlog::warn("effects: cannot reschedule: {}", s.error().message);
}

// Applies the results of a batch and deletes their effects in one
// transaction; a result whose claim lost its lease is left to the effect's
// new holder. On failure nothing is recorded; the caller may try again while
// the leases hold, or let them run out, and the effects are performed again
// (every action is safe to repeat per attempt).
Status record_results(RuntimeContext& context, Store& store,
                      const std::vector<const StoredEffect*>& effects,
                      const std::vector<const EffectResult*>& results) {
  std::vector<const StoredEffect*> lost;
  PendingMetrics metrics;
  WorkflowTransaction::Handoff handoff;
  std::vector<FailureNote> failures;
  Status s = store.transact([&](StoreTx& tx) {
    lost.clear();
    metrics.clear();
    const TimePoint now = now_ms();
    WorkflowTransaction wt(tx, context, now, &metrics);
    // The leases first: nothing is applied for a claim that lost its lease.
    std::vector<HeldLease> held;
    for (const StoredEffect* stored : effects) held.push_back({stored->id, stored->lease_owner});
    const std::set<int64_t> deleted = tx.delete_effects(held, now);
    std::vector<std::string> ids;
    for (const StoredEffect* stored : effects) {
      if (deleted.count(stored->id) != 0) ids.push_back(stored->workflow_id);
    }
    wt.preload(ids);
    for (size_t i = 0; i < effects.size(); ++i) {
      const StoredEffect& stored = *effects[i];
      const EffectResult& result = *results[i];
      if (deleted.count(stored.id) == 0) {
        lost.push_back(&stored);
        continue;
      }
      if (result.kind == EffectResult::Kind::kFailUnloadable) {
        wt.fail_unloadable(stored.workflow_id, result.error.message);
      } else if (result.input) {
        wt.apply(stored.workflow_id, *result.input);
      }
    }
    wt.finish();
    handoff = wt.take_handoff();
    failures = wt.take_failures();
  });
  if (!s) {
    spdlog::warn("effects: cannot record {} result(s): {}", effects.size(), s.error().message);
    return s;
  }
  log_failures(failures);
  metrics.commit(&context.metrics());
  for (const StoredEffect* stored : lost) {
    spdlog::warn("effects: lease of {} effect {} for workflow {} ran out; its new holder records it",
                 effect_name(stored->effect), stored->id, stored->workflow_id);
  }
  context.outbox_wakeup().notify();
  deliver_effects(context, std::move(handoff));
  return ok_status();
}

// The result as its step's failure, when Postgres refused to store it (a
// value it cannot hold): the same result would be refused every time.
// Nothing to replace for a result that is not a step's outcome.
std::optional<EffectResult> as_refused(const EffectResult& result, const Error& refusal) {
  if (!result.input) return std::nullopt;
  const Error error{ErrorKind::kPermanent, "invalid_output",
                    "Postgres refused to store the step's result (" + refusal.code + ")"};
  auto refused = [&](const auto& call) -> std::optional<EffectResult> {
    StepOutcome failed = failed_outcome(error);
    failed.run_id = call.outcome.run_id;
    failed.run_page_url = call.outcome.run_page_url;
    EffectResult replaced;
    replaced.input = std::decay_t<decltype(call)>{call.step, call.attempt, std::move(failed)};
    return replaced;
  };
  if (const auto* executed = std::get_if<StepExecuted>(&*result.input)) return refused(*executed);
  if (const auto* polled = std::get_if<StepPolled>(&*result.input)) return refused(*polled);
  return std::nullopt;
}

// One result alone. One that Postgres refuses for good fails its step
// instead; if even that cannot be stored, the effect is given back to be
// performed again later. Only a transient error is returned.
Status record_alone(RuntimeContext& context, Store& store, const StoredEffect& stored,
                    const EffectResult& result) {
  Status s = record_results(context, store, {&stored}, {&result});
  if (s || s.error().transient()) return s;
  spdlog::error("effects: Postgres refused the result of {} effect {} for workflow {}: {}",
                effect_name(stored.effect), stored.id, stored.workflow_id, s.error().message);
  if (const std::optional<EffectResult> refused = as_refused(result, s.error())) {
    s = record_results(context, store, {&stored}, {&*refused});
    if (s || s.error().transient()) return s;
  }
  reschedule_effect(store, stored, s.error());
  return ok_status();
}

// Records results in one transaction; when Postgres refuses the batch for
// a reason other than a transient one, one at a time (as intake does with
// inputs), so a result it refuses fails only its own step. Each effect
// recorded is released; on a transient error, `effects` and `results` keep
// only what is still to be recorded.
Status record_all(RuntimeContext& context, Store& store, std::vector<StoredEffect>& effects,
                  std::vector<EffectResult>& results,
                  const std::function<void(int64_t)>& release) {
  if (effects.size() > 1) {
    std::vector<const StoredEffect*> effect_pointers;
    std::vector<const EffectResult*> result_pointers;
    for (size_t i = 0; i < effects.size(); ++i) {
      effect_pointers.push_back(&effects[i]);
      result_pointers.push_back(&results[i]);
    }
    const Status s = record_results(context, store, effect_pointers, result_pointers);
    if (s) {
      for (const auto& effect : effects) release(effect.id);
      return s;
    }
    if (s.error().transient()) return s;
    spdlog::error("effects: cannot record a batch of {} results: {}; recording one by one",
                  effects.size(), s.error().message);
  }
  for (size_t i = 0; i < effects.size(); ++i) {
    const Status s = record_alone(context, store, effects[i], results[i]);
    if (s) {
      release(effects[i].id);
    } else {
      effects.erase(effects.begin(), effects.begin() + static_cast<std::ptrdiff_t>(i));
      results.erase(results.begin(), results.begin() + static_cast<std::ptrdiff_t>(i));
      return s;
    }
  }
  return ok_status();
}

}  // namespace effect_detail

using namespace effect_detail;

// Records the results of every worker on a thread of its own, all those
// queued in one transaction: a worker hands its results over and goes on to
// its next effects instead of waiting for a commit, and under load each
// transaction carries many results (a multi-row statement costs much less
// per row than a small one). Effects stay held, their leases renewed, until
// their results are committed.
class EffectRunner::ResultRecorder {
 public:
  ResultRecorder(RuntimeContext& context, std::function<void(int64_t)> release)
      : context_(context), release_(std::move(release)) {}
  ~ResultRecorder() { stop(); }

  void start() {
    stopping_ = false;
    for (int i = 0; i < kRecorders; ++i) threads_.emplace_back([this] { loop(); });
  }
  // Records what is queued, then stops.
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    queued_cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  bool running() const { return !threads_.empty(); }

  // Queues results; waits only while many are queued already (Postgres
  // slower than the calls).
  void add(std::vector<StoredEffect> effects, std::vector<EffectResult> results) {
    std::unique_lock lock(mutex_);
    room_cv_.wait(lock, [&] { return effects_.size() < kMaxQueued || stopping_; });
    for (auto& e : effects) effects_.push_back(std::move(e));
    for (auto& r : results) results_.push_back(std::move(r));
    queued_cv_.notify_all();
  }

 private:
  static constexpr size_t kMaxQueued = 1024;
  // Two, so that results arriving while one commits wait for no commit but
  // their own: a completion event for the same workflow waits on its row
  // lock until its result is recorded. Their transactions lock workflows in
  // id order, so they cannot deadlock.
  static constexpr int kRecorders = 2;

  void loop() {
    auto store = context_.open_store();
    Liveness::Loop& heartbeat = context_.liveness().add(
        "effects/recorder/" + std::to_string(++started_), kLoopStallLimit);
    Duration backoff{100};
    std::unique_lock lock(mutex_);
    for (;;) {
      heartbeat.beat();
      queued_cv_.wait_for(lock, std::chrono::seconds(1),
                          [&] { return !effects_.empty() || stopping_; });
      if (effects_.empty()) {
        if (stopping_) break;
        continue;
      }
      std::vector<StoredEffect> effects = std::exchange(effects_, {});
      std::vector<EffectResult> results = std::exchange(results_, {});
      room_cv_.notify_all();
      lock.unlock();
      const Status recorded = record_all(context_, *store, effects, results, release_);
      lock.lock();
      if (!recorded && recorded.error().transient() && !stopping_) {
        // Postgres away, a connection refused: the results are kept (their
        // leases are renewed meanwhile) and tried again after a pause,
        // rather than performed again after their leases run out.
        effects.insert(effects.end(), std::make_move_iterator(effects_.begin()),
                       std::make_move_iterator(effects_.end()));
        results.insert(results.end(), std::make_move_iterator(results_.begin()),
                       std::make_move_iterator(results_.end()));
        effects_ = std::move(effects);
        results_ = std::move(results);
        queued_cv_.wait_for(lock, backoff, [&] { return stopping_; });
        backoff = std::min(backoff * 2, Duration(5000));
        continue;
      }
      backoff = Duration(100);
      if (!recorded) {  // stopping with Postgres away: their leases will run out
        lock.unlock();
        for (const auto& effect : effects) release_(effect.id);
        lock.lock();
      }
    }
    heartbeat.retire();
  }

  RuntimeContext& context_;
  std::function<void(int64_t)> release_;
  std::mutex mutex_;
  std::condition_variable queued_cv_;
  std::condition_variable room_cv_;
  bool stopping_ = false;
  std::vector<StoredEffect> effects_;
  std::vector<EffectResult> results_;
  std::vector<std::thread> threads_;
  std::atomic<int> started_{0};
};

EffectRunner::EffectRunner(RuntimeContext& context, StepServices services, std::string owner)
    : context_(context),
      services_(services),
      owner_(std::move(owner)),
      recorder_(std::make_unique<ResultRecorder>(context,
                                                 [this](int64_t id) { release(id); })) {}

EffectRunner::~EffectRunner() { stop(); }

void EffectRunner::start(int32_t workers) {
  stopping_ = false;
  // Room for many claims' worth per worker; beyond it, effects are claimed
  // from Postgres as before. A state takes a few KiB, a bare effect little.
  const auto claims = static_cast<size_t>(std::max(workers, 1)) * kEffectsPerClaim;
  handoff_ = std::make_shared<EffectHandoff>(owner_, claims * 32, claims * 8);
  context_.set_handoff(handoff_);
  recorder_->start();
  for (int32_t i = 0; i < workers; ++i) {
    threads_.emplace_back([this, i] { worker_loop(i); });
  }
  threads_.emplace_back([this] { lease_keeper_loop(); });
}

void EffectRunner::stop() {
  context_.set_handoff(nullptr);
  stopping_ = true;
  context_.effects_wakeup().notify();
  // The workers first (their last results queued), then the recorder
  // commits those, and the lease keeper last: it renews to the end.
  for (size_t i = 0; i + 1 < threads_.size(); ++i) threads_[i].join();
  recorder_->stop();
  if (!threads_.empty()) threads_.back().join();
  threads_.clear();
  if (handoff_ == nullptr) return;
  // Effects handed over and not begun go back to Postgres unleased, so the
  // next daemon claims them at once instead of after their lease.
  std::vector<HeldLease> waiting = handoff_->leases();
  handoff_->take(waiting.size());
  handoff_.reset();
  if (waiting.empty()) return;
  Status s = context_.open_store()->release_leases(waiting);
  if (!s) {
    spdlog::warn("effects: cannot give back {} effect(s) not begun ({}): they run after their lease",
                 waiting.size(), s.error().message);
  }
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
  if (handoff_ != nullptr) held = handoff_->leases();
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
  // Timers, polls, retries, effects written unleased and those of a daemon
  // that died are claimed from Postgres at each tick; effects handed over
  // come at once, without a claim.
  constexpr auto kClaimTick = std::chrono::milliseconds(200);
  const auto run = [&](std::vector<HandedEffect> batch) {
    std::vector<StoredEffect> held;
    for (const auto& e : batch) held.push_back(e.stored);
    hold(held);
    // Each effect may take the whole stall limit: the worker is alive as long
    // as it moves from one to the next. Released once recorded.
    run_batch(*store, std::move(batch), [&] { heartbeat.beat(); });
  };
  while (!stopping_) {
    heartbeat.beat();
    std::vector<HandedEffect> handed = handoff_->take(kEffectsPerClaim);
    if (!handed.empty()) {
      run(std::move(handed));
      continue;
    }
    // One claim per tick for all the workers (whichever comes first), more
    // when asked for: an idle daemon claims five times a second, not forty.
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    int64_t due = next_claim_ms_.load();
    const bool tick = now >= due && next_claim_ms_.compare_exchange_strong(due, now + kClaimTick.count());
    if (!tick && !handoff_->take_claim_request()) {
      context_.effects_wakeup().wait_for(std::chrono::milliseconds(std::clamp<int64_t>(
          next_claim_ms_.load() - now, 1, kClaimTick.count())));
      continue;
    }
    const ConfigPtr config = context_.config();
    // Each claim is its own lease owner: a later claim of the same effect by
    // this very worker is a different holder.
    const std::string owner = worker + "#" + std::to_string(++claims_);
    auto claimed = store->claim_due_effects(owner, kEffectsPerClaim, now_ms(), config->daemon.lease);
    if (!claimed) {
      spdlog::warn("effects: cannot claim: {}", claimed.error().message);
      context_.effects_wakeup().wait_for(backoff);
      backoff = std::min(backoff * 2, Duration(5000));
      continue;
    }
    backoff = Duration(100);
    if (claimed->empty()) continue;
    // A full claim: more may be due, so the next free worker claims too.
    if (static_cast<int32_t>(claimed->size()) == kEffectsPerClaim) handoff_->request_claim();
    std::vector<HandedEffect> batch;
    for (auto& effect : *claimed) batch.push_back(HandedEffect{std::move(effect), nullptr});
    run(std::move(batch));
  }
  heartbeat.retire();
}

void EffectRunner::run_one(Store& store, const StoredEffect& stored) {
  run_batch(store, {stored});
}

void EffectRunner::run_batch(Store& store, const std::vector<StoredEffect>& batch,
                             const std::function<void()>& progress) {
  std::vector<HandedEffect> claimed;
  for (const auto& effect : batch) claimed.push_back(HandedEffect{effect, nullptr});
  run_batch(store, std::move(claimed), progress);
}

void EffectRunner::run_batch(Store& store, std::vector<HandedEffect> batch,
                             const std::function<void()>& progress) {
  const TimePoint started = now_ms();
  std::vector<std::string> ids;
  for (const auto& effect : batch) {
    if (effect.state == nullptr) ids.push_back(effect.stored.workflow_id);
  }
  // Every workflow not handed over with its effect, read in one transaction.
  Result<Store::LoadedWorkflows> loaded = Store::LoadedWorkflows{};
  if (!ids.empty()) loaded = store.get_workflows(ids);
  std::vector<StoredEffect> to_record;
  std::vector<EffectResult> results;
  for (const auto& [stored, handed_state] : batch) {
    // Log lines about this effect name its workflow and step.
    LogScope scope(LogScope::workflow(
        stored.workflow_id, std::visit([](const auto& e) { return e.step; }, stored.effect)));
    const TimePoint effect_started = now_ms();
    EffectExecution execution(context_, services_, stored);
    EffectResult result;
    if (handed_state != nullptr) {
      result = execution.run(*handed_state);
    } else if (loaded) {
      // By reference: a workflow is not copied per effect.
      result = execution.run(loaded->at(stored.workflow_id));
    } else {
      result = execution.run(Result<std::optional<WorkflowState>>(loaded.error()));
    }
    spdlog::debug("effects: {} effect {} performed in {} ms", effect_name(stored.effect), stored.id,
                  (now_ms() - effect_started).count());
    if (progress) progress();
    if (result.kind == EffectResult::Kind::kReschedule) {
      reschedule_effect(store, stored, result.error);
      release(stored.id);
      continue;
    }
    to_record.push_back(stored);
    results.push_back(std::move(result));
  }
  if (to_record.empty()) return;
  if (recorder_->running()) {
    recorder_->add(std::move(to_record), std::move(results));
    return;
  }
  // Not started (a test performing effects itself): recorded here, now.
  (void)record_all(context_, store, to_record, results, [this](int64_t id) { release(id); });
  for (const auto& effect : to_record) release(effect.id);
  spdlog::debug("effects: {} recorded in {} ms", batch.size(), (now_ms() - started).count());
}

}  // namespace brickwork
