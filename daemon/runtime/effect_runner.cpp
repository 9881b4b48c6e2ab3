#include "daemon/runtime/effect_runner.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>

#include "daemon/core/logging.hpp"
#include "daemon/core/storable_text.hpp"
#include "daemon/core/thread_name.hpp"
#include "daemon/databricks/workspaces.hpp"
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
    // The step's own workspace: a run is polled, canceled and repaired
    // where its definition says it was started.
    if (services_.workspaces != nullptr) {
      services_.databricks = services_.workspaces->find(definition_->workspace);
    }
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

// Gives an effect that hit a transient error back, to be tried again later
// (a timer in Postgres: its due time; no thread waits for it). Stopping:
// due now, for the next daemon.
void reschedule_effect(EffectQueue& queue, const StoredEffect& stored, const Error& error,
                       bool stopping) {
  // Throttled by the client-side limit: nothing was sent and nothing failed,
  // so the effect comes back in about a second, however often it was.
  const bool throttled = error.code == "throttled";
  const Duration delay = stopping ? Duration(0) : retry_delay(throttled ? 0 : stored.tries);
  spdlog::log(throttled ? spdlog::level::debug : spdlog::level::warn,
              "effects: {} for workflow {} failed ({}: {}); again in {}",
              effect_name(stored.effect), stored.workflow_id, error.code, error.message,
              stopping ? std::string("the next daemon") : format_duration(delay));
  Status s = queue.reschedule_effect(stored.id, stored.lease_owner, now_ms() + delay);
  if (!s) spdlog::warn("effects: cannot reschedule: {}", s.error().message);
}

// Applies the results of a batch and deletes their effects in one
// transaction; a result whose claim lost its lease is left to the effect's
// new holder. On failure nothing is recorded; the caller may try again while
// the leases hold, or let them run out, and the effects are performed again
// (every action is safe to repeat per attempt).
Status record_results(RuntimeContext& context, WorkflowWriter& writer,
                      const std::vector<const StoredEffect*>& effects,
                      const std::vector<const EffectResult*>& results) {
  std::vector<const StoredEffect*> lost;
  PendingMetrics metrics;
  WorkflowTransaction::Handoff handoff;
  std::vector<FailureNote> failures;
  Status s = writer.transact([&](StoreTx& tx) {
    lost.clear();
    metrics.clear();
    const TimePoint now = now_ms();
    WorkflowTransaction wt(tx, context, now, &metrics);
    // Row locks in one global order, as every transaction takes them: the
    // workflows (in id order), then their effects (in id order, by
    // delete_effects). Locking effects first would let a transaction that
    // holds a workflow wait for one of its effects (40P01 under load).
    // Nothing is applied for a claim that lost its lease.
    std::vector<std::string> ids;
    std::vector<HeldLease> held;
    for (const StoredEffect* stored : effects) {
      ids.push_back(stored->workflow_id);
      held.push_back({stored->id, stored->lease_owner});
    }
    const std::set<int64_t> deleted = wt.preload_deleting_effects(ids, held);
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
Status record_alone(RuntimeContext& context, WorkflowWriter& writer, EffectQueue& queue,
                    const StoredEffect& stored, const EffectResult& result) {
  Status s = record_results(context, writer, {&stored}, {&result});
  if (s || s.error().transient()) return s;
  spdlog::error("effects: Postgres refused the result of {} effect {} for workflow {}: {}",
                effect_name(stored.effect), stored.id, stored.workflow_id, s.error().message);
  if (const std::optional<EffectResult> refused = as_refused(result, s.error())) {
    s = record_results(context, writer, {&stored}, {&*refused});
    if (s || s.error().transient()) return s;
  }
  reschedule_effect(queue, stored, s.error(), false);
  return ok_status();
}

// Records results in one transaction; when Postgres refuses the batch for
// a reason other than a transient one, one at a time (as intake does with
// inputs), so a result it refuses fails only its own step. Each effect
// recorded is released; on a transient error, `effects` and `results` keep
// only what is still to be recorded.
Status record_all(RuntimeContext& context, WorkflowWriter& writer, EffectQueue& queue,
                  std::vector<StoredEffect>& effects,
                  std::vector<EffectResult>& results,
                  const std::function<void(int64_t)>& release) {
  if (effects.size() > 1) {
    std::vector<const StoredEffect*> effect_pointers;
    std::vector<const EffectResult*> result_pointers;
    for (size_t i = 0; i < effects.size(); ++i) {
      effect_pointers.push_back(&effects[i]);
      result_pointers.push_back(&results[i]);
    }
    const Status s = record_results(context, writer, effect_pointers, result_pointers);
    if (s) {
      for (const auto& effect : effects) release(effect.id);
      return s;
    }
    if (s.error().transient()) return s;
    spdlog::error("effects: cannot record a batch of {} results: {}; recording one by one",
                  effects.size(), s.error().message);
  }
  for (size_t i = 0; i < effects.size(); ++i) {
    const Status s = record_alone(context, writer, queue, effects[i], results[i]);
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

// Records results on threads of their own: a call thread hands its result
// over the moment its effect ends and takes its next effect at once. Each
// recorder takes everything queued when it is free (group commit: results
// that ended together share one transaction, a multi-row statement costing
// much less per row than a small one), so a result waits at most for the
// commit in progress, never for another effect's call. Effects stay held,
// their leases renewed, until their results are committed.
class EffectRunner::ResultRecorder {
 public:
  ResultRecorder(RuntimeContext& context, std::function<void(int64_t)> release)
      : context_(context), release_(std::move(release)) {}
  ~ResultRecorder() { (void)stop(std::chrono::steady_clock::now()); }

  void start() {
    stopping_ = false;
    for (int i = 0; i < kRecorders; ++i) {
      threads_.emplace_back([this, i] {
        name_this_thread("bw-record-" + std::to_string(i));
        loop();
      });
    }
  }
  // Records what is queued while Postgres answers and `deadline` has not
  // passed, then stops. What it could not record stays held by the runner.
  std::vector<StoredEffect> stop(std::chrono::steady_clock::time_point deadline) {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      deadline_ = deadline;
    }
    queued_cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
    std::lock_guard lock(mutex_);
    std::vector<StoredEffect> left;
    for (auto& item : std::exchange(queue_, {})) left.push_back(std::move(item.stored));
    return left;
  }
  bool running() const { return !threads_.empty(); }

  // Queues one effect's result; never waits.
  void add(StoredEffect stored, EffectResult result) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(Item{std::move(stored), std::move(result)});
    }
    queued_cv_.notify_one();
  }
  size_t queued() const {
    std::lock_guard lock(mutex_);
    return queue_.size();
  }
  // Beyond this many results waiting (Postgres slower than the calls), the
  // dispatcher starts no more effects.
  static constexpr size_t kMaxQueued = 1024;

 private:
  struct Item {
    StoredEffect stored;
    EffectResult result;
  };
  // Two, so that results arriving while one commits wait for no commit but
  // their own: a completion event for the same workflow waits on its row
  // lock until its result is recorded. Every transaction locks its
  // workflows, then its effects, each in id order, so they cannot deadlock.
  static constexpr int kRecorders = 2;

  // Records `items`; false when Postgres is away (they are still to record).
  bool record(WorkflowWriter& writer, EffectQueue& queue, std::vector<Item>& items,
              bool stopping) {
    std::vector<StoredEffect> effects;
    std::vector<EffectResult> results;
    for (auto& item : items) {
      if (item.result.kind == EffectResult::Kind::kReschedule) {
        // Stopping: given back due now, for the next daemon.
        reschedule_effect(queue, item.stored, item.result.error, stopping);
        release_(item.stored.id);
        continue;
      }
      effects.push_back(std::move(item.stored));
      results.push_back(std::move(item.result));
    }
    items.clear();
    const Status recorded = record_all(context_, writer, queue, effects, results, release_);
    if (recorded || !recorded.error().transient()) return true;
    for (size_t i = 0; i < effects.size(); ++i) {
      items.push_back(Item{std::move(effects[i]), std::move(results[i])});
    }
    return false;
  }

  void loop() {
    auto store = context_.open_store();
    Liveness::Loop& heartbeat = context_.liveness().add(
        "effects/recorder/" + std::to_string(++started_), kLoopStallLimit);
    Duration backoff{100};
    std::unique_lock lock(mutex_);
    for (;;) {
      heartbeat.beat();
      queued_cv_.wait_for(lock, std::chrono::seconds(1),
                          [&] { return !queue_.empty() || stopping_; });
      if (queue_.empty() && stopping_) break;
      if (queue_.empty()) continue;
      if (stopping_ && std::chrono::steady_clock::now() >= deadline_) break;
      std::vector<Item> items = std::exchange(queue_, {});
      const bool stopping = stopping_;
      lock.unlock();
      // The dispatcher stops starting effects while this many wait.
      if (items.size() >= kMaxQueued) context_.effects_wakeup().notify();
      const bool recorded = record(*store, *store, items, stopping);
      lock.lock();
      if (recorded) {
        backoff = Duration(100);
        continue;
      }
      // Postgres away, a connection refused: the results are kept (their
      // leases are renewed meanwhile) and tried again after a pause, rather
      // than performed again after their leases run out. Stopping: left to
      // be given back.
      queue_.insert(queue_.begin(), std::make_move_iterator(items.begin()),
                    std::make_move_iterator(items.end()));
      if (stopping_) break;
      queued_cv_.wait_for(lock, backoff, [&] { return stopping_; });
      backoff = std::min(backoff * 2, Duration(5000));
    }
    heartbeat.retire();
  }

  RuntimeContext& context_;
  std::function<void(int64_t)> release_;
  mutable std::mutex mutex_;
  std::condition_variable queued_cv_;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point deadline_{};
  std::vector<Item> queue_;
  std::vector<std::thread> threads_;
  std::atomic<int> started_{0};
};

// One effect in hand, with the workflow state to perform it against.
struct EffectRunner::Job {
  StoredEffect stored;
  std::shared_ptr<const WorkflowState> state;  // null: see load_error
  std::optional<Error> load_error;             // neither: the workflow is gone
};

// Call threads of one kind of effect, and the effects waiting for them.
struct EffectRunner::Lane {
  std::string name;
  int32_t slots = 0;
  Duration stall_limit{0};
  std::deque<Job> queue;
  int32_t running = 0;
  std::condition_variable cv;  // an effect queued, or stopping
  std::vector<std::thread> threads;
};

EffectRunner::EffectRunner(RuntimeContext& context, StepServices services, std::string owner)
    : context_(context),
      services_(services),
      owner_(std::move(owner)),
      recorder_(std::make_unique<ResultRecorder>(context,
                                                 [this](int64_t id) { release(id); })) {}

EffectRunner::~EffectRunner() { stop(); }

void EffectRunner::start(Slots slots) { start(SlotsByWorkspace{{"", slots}}); }

void EffectRunner::start(SlotsByWorkspace slots) {
  stopping_ = false;
  keeper_stopping_ = false;
  slots.try_emplace("");  // the default workspace's lanes always exist
  lanes_.clear();
  lanes_by_workspace_.clear();
  const ConfigPtr config = context_.config();
  size_t capacity = 0;
  for (const auto& [workspace, wanted] : slots) {
    // Lane names (and the loops' names): "calls", "transfers"; "calls/eu" for workspace eu.
    const std::string suffix = workspace.empty() ? "" : "/" + workspace;
    const DatabricksConfig* settings = find_workspace(*config, workspace);
    const Duration retry_budget =
        settings != nullptr ? settings->retry_budget : config->databricks.retry_budget;
    auto calls = std::make_unique<Lane>();
    calls->name = "calls" + suffix;
    calls->slots = std::max(wanted.calls, 1);
    // One effect may retry Databricks calls for the whole retry budget, twice
    // over (a step type making two calls), before its thread is stuck.
    calls->stall_limit = 2 * retry_budget + kLoopStallLimit;
    auto transfers = std::make_unique<Lane>();
    transfers->name = "transfers" + suffix;
    transfers->slots = std::max(wanted.transfers, 1);
    // A transfer has no overall deadline, only one per read or write without
    // progress: a large upload on a slow link may take hours.
    transfers->stall_limit = std::chrono::hours(6);
    capacity += static_cast<size_t>(calls->slots + transfers->slots);
    lanes_by_workspace_[workspace] = WorkspaceLanes{calls.get(), transfers.get()};
    lanes_.push_back(std::move(calls));
    lanes_.push_back(std::move(transfers));
  }
  // Handed over: at most what the slots can start. Beyond it, effects are
  // written unleased and claimed as slots free up, so a daemon never hoards
  // (and renews the leases of) effects it cannot start.
  handoff_ = std::make_shared<EffectHandoff>(owner_, capacity, capacity);
  context_.set_handoff(handoff_);
  recorder_->start();
  for (const auto& lane : lanes_) {
    for (int32_t i = 0; i < lane->slots; ++i) {
      lane->threads.emplace_back([this, lane = lane.get(), i] {
        // "bw-calls-3", "bw-transfers-0", "bw-calls/eu-1" (cut at 15 characters).
        name_this_thread("bw-" + lane->name + "-" + std::to_string(i));
        call_loop(*lane, i);
      });
    }
  }
  dispatcher_ = std::thread([this] {
    name_this_thread("bw-dispatch");
    dispatch_loop();
  });
  lease_keeper_ = std::thread([this] {
    name_this_thread("bw-leases");
    lease_keeper_loop();
  });
}

void EffectRunner::stop(Duration grace) {
  if (!dispatcher_.joinable()) return;
  const auto begun = std::chrono::steady_clock::now();
  const auto deadline = begun + grace;
  context_.set_handoff(nullptr);
  {
    std::lock_guard lock(lanes_mutex_);
    stopping_ = true;
  }
  for (const auto& lane : lanes_) lane->cv.notify_all();
  context_.effects_wakeup().notify();
  dispatcher_.join();
  // Effects not begun are given back below with everything else held.
  {
    std::unique_lock lock(lanes_mutex_);
    for (const auto& lane : lanes_) lane->queue.clear();
    const auto idle = [&] { return running() == 0; };
    // Calls in flight get half the grace to end, then are canceled: the
    // other half is for recording and giving back.
    if (!idle_cv_.wait_until(lock, begun + grace / 2, idle)) {
      spdlog::warn("stopping: canceling {} effect(s) in flight", running());
      lock.unlock();
      if (services_.workspaces != nullptr) {
        services_.workspaces->cancel_calls();
      } else if (services_.databricks != nullptr) {
        services_.databricks->cancel_calls();
      }
      lock.lock();
      idle_cv_.wait(lock, idle);
    }
  }
  for (const auto& lane : lanes_) {
    for (auto& t : lane->threads) t.join();
    lane->threads.clear();
  }
  const std::vector<StoredEffect> unrecorded = recorder_->stop(deadline);
  if (!unrecorded.empty()) {
    spdlog::warn("stopping: {} result(s) not recorded (postgres away or no time left); their "
                 "effects are given back to be performed again",
                 unrecorded.size());
  }
  keeper_stopping_ = true;
  lease_keeper_.join();
  // Handed over and not begun, the last commits of the recorders included.
  std::vector<HeldLease> waiting = handoff_->leases();
  handoff_->take(waiting.size());
  std::atomic_store(&handoff_, std::shared_ptr<EffectHandoff>());
  std::vector<HeldLease> held = take_held();
  waiting.insert(waiting.end(), held.begin(), held.end());
  give_back(std::move(waiting));
}

// Effects given back go to Postgres unleased, so the next daemon claims them
// at once instead of after their lease. One try: with Postgres away, their
// leases simply run out.
void EffectRunner::give_back(std::vector<HeldLease> effects) {
  if (effects.empty()) return;
  Status s = context_.open_store()->release_leases(effects);
  if (!s) {
    spdlog::warn("effects: cannot give back {} effect(s) ({}): they run after their lease",
                 effects.size(), s.error().message);
  }
}

void EffectRunner::hold(const StoredEffect& effect) {
  std::lock_guard lock(held_mutex_);
  held_[effect.id] = effect.lease_owner;
}

void EffectRunner::release(int64_t effect_id) {
  std::lock_guard lock(held_mutex_);
  held_.erase(effect_id);
}

std::vector<HeldLease> EffectRunner::take_held() {
  std::lock_guard lock(held_mutex_);
  std::vector<HeldLease> held;
  for (const auto& [id, owner] : held_) held.push_back(HeldLease{id, owner});
  held_.clear();
  return held;
}

Status EffectRunner::renew_leases(EffectQueue& queue) {
  std::vector<HeldLease> held;
  if (const auto handoff = std::atomic_load(&handoff_); handoff != nullptr) {
    held = handoff->leases();
  }
  {
    std::lock_guard lock(held_mutex_);
    for (const auto& [id, owner] : held_) held.push_back(HeldLease{id, owner});
  }
  return queue.renew_leases(held, now_ms(), context_.config()->daemon.lease);
}

void EffectRunner::lease_keeper_loop() {
  auto store = context_.open_store();
  Liveness::Loop& heartbeat = context_.liveness().add("leases", kLoopStallLimit);
  auto next = std::chrono::steady_clock::now();
  while (!keeper_stopping_) {
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

int32_t EffectRunner::free_slots(const Lane& lane) {
  return std::max(0, lane.slots - lane.running - static_cast<int32_t>(lane.queue.size()));
}

EffectRunner::Lane* EffectRunner::lane_for(const StoredEffect& effect,
                                           const WorkflowState* state) const {
  const std::string& step_name = std::visit([](const auto& e) -> const std::string& { return e.step; },
                                            effect.effect);
  const StepDefinition* step =
      state != nullptr ? state->definition.find_step(step_name) : nullptr;
  auto lanes = lanes_by_workspace_.find(step != nullptr ? step->workspace : std::string());
  // "default" names the default workspace too; a workspace this daemon has
  // no lanes for fails its step in the default's lanes.
  if (lanes == lanes_by_workspace_.end()) lanes = lanes_by_workspace_.find("");
  const bool execute = std::holds_alternative<ExecuteStep>(effect.effect);
  const StepType* type =
      execute && step != nullptr ? context_.registry().find(step->type) : nullptr;
  return type != nullptr && type->is_transfer() ? lanes->second.transfers : lanes->second.calls;
}

int32_t EffectRunner::running() const {
  int32_t in_flight = 0;
  for (const auto& lane : lanes_) in_flight += lane->running;
  return in_flight;
}

void EffectRunner::dispatch_loop() {
  auto store = context_.open_store();
  Liveness::Loop& heartbeat = context_.liveness().add("effects/dispatch", kLoopStallLimit);
  Duration backoff{100};
  // Timers, polls, retries, effects written unleased and those of a daemon
  // that died are claimed from Postgres at each tick (and at once when a
  // transaction or a full claim says more are due); effects handed over
  // come at once, without a claim.
  constexpr auto kClaimTick = std::chrono::milliseconds(200);
  auto next_claim = std::chrono::steady_clock::now();
  bool claim_again = false;
  while (!stopping_) {
    heartbeat.beat();
    std::map<const Lane*, int32_t> free_by_lane;
    int32_t free_total = 0;
    if (recorder_->queued() < ResultRecorder::kMaxQueued) {
      std::lock_guard lock(lanes_mutex_);
      for (const auto& lane : lanes_) {
        free_total += free_by_lane[lane.get()] = free_slots(*lane);
      }
    }
    // Every slot taken: a call thread's end wakes us.
    if (free_total == 0) {
      context_.effects_wakeup().wait_for(kClaimTick);
      continue;
    }
    // Only what can start now: an effect whose lane is full keeps waiting
    // in the handoff, where later commits still refresh its state.
    std::vector<HandedEffect> handed = handoff_->take_if(
        static_cast<size_t>(free_total),
        [&](const StoredEffect& effect, const WorkflowState* state) {
          int32_t& free = free_by_lane[lane_for(effect, state)];
          if (free == 0) return false;
          --free;
          return true;
        });
    if (!handed.empty()) {
      dispatch(*store, std::move(handed));
      continue;
    }
    // Claimed effects are read before their lane is known, and nearly all
    // are calls (polls, timers, retries): claim only for free call slots. A
    // claim for free transfer slots would fill a call lane's queue with
    // polls, ahead of effects handed over for it, which would then wait for
    // as long as polls keep coming. A claimed upload may wait for its lane
    // behind the others, at most as many as the free call slots. (With
    // several workspaces, one workspace's free call slots may still claim
    // another's polls into its full lane: claims are not by workspace.)
    int32_t free_calls = 0;
    for (const auto& [workspace, lanes] : lanes_by_workspace_) free_calls += free_by_lane[lanes.calls];
    const auto free = static_cast<size_t>(free_calls);
    if (free == 0) {
      context_.effects_wakeup().wait_for(kClaimTick);
      continue;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now < next_claim && !claim_again && !handoff_->take_claim_request()) {
      context_.effects_wakeup().wait_for(next_claim - now);
      continue;
    }
    claim_again = false;
    next_claim = now + kClaimTick;
    // Each claim is its own lease owner: a later claim of the same effect by
    // this very daemon is a different holder.
    const std::string owner = owner_ + "/claim#" + std::to_string(++claims_);
    auto claimed = store->claim_due_effects(owner, static_cast<int32_t>(free), now_ms(),
                                            context_.config()->daemon.lease);
    if (!claimed) {
      spdlog::warn("effects: cannot claim: {}", claimed.error().message);
      context_.effects_wakeup().wait_for(backoff);
      backoff = std::min(backoff * 2, Duration(5000));
      continue;
    }
    backoff = Duration(100);
    if (claimed->effects.empty()) continue;
    claim_again = claimed->effects.size() == free;  // a full claim: more may be due
    std::vector<HandedEffect> batch;
    for (auto& effect : claimed->effects) batch.push_back(HandedEffect{std::move(effect), nullptr});
    dispatch(*store, std::move(batch), &claimed->workflows);
  }
  heartbeat.retire();
}

// Puts effects in hand in their lanes, each with its workflow's state (those
// handed over without one, with one read in one transaction), and wakes one
// call thread per effect.
void EffectRunner::dispatch(WorkflowReader& reader, std::vector<HandedEffect> effects,
                            const WorkflowReader::LoadedWorkflows* read_with_claim) {
  std::vector<std::string> ids;
  for (const auto& effect : effects) {
    hold(effect.stored);
    if (effect.state == nullptr && read_with_claim == nullptr) {
      ids.push_back(effect.stored.workflow_id);
    }
  }
  Result<WorkflowReader::LoadedWorkflows> loaded = WorkflowReader::LoadedWorkflows{};
  if (!ids.empty()) loaded = reader.get_workflows(ids);
  const WorkflowReader::LoadedWorkflows* workflows =
      read_with_claim != nullptr ? read_with_claim : loaded ? &*loaded : nullptr;
  std::vector<std::pair<Lane*, Job>> jobs;
  for (auto& [stored, state] : effects) {
    Job job{std::move(stored), std::move(state), std::nullopt};
    if (job.state == nullptr && workflows == nullptr) {
      job.load_error = loaded.error();
    } else if (job.state == nullptr) {
      const auto& one = workflows->at(job.stored.workflow_id);
      if (!one) {
        job.load_error = one.error();
      } else if (*one) {
        job.state = std::make_shared<const WorkflowState>(**one);
      }
    }
    Lane* lane = lane_for(job.stored, job.state.get());
    jobs.emplace_back(lane, std::move(job));
  }
  std::lock_guard lock(lanes_mutex_);
  for (auto& [lane, job] : jobs) {
    lane->queue.push_back(std::move(job));
    lane->cv.notify_one();
  }
}

void EffectRunner::call_loop(Lane& lane, int32_t index) {
  Liveness::Loop& heartbeat = context_.liveness().add(
      "effects/" + lane.name + "/" + std::to_string(index), lane.stall_limit);
  std::unique_lock lock(lanes_mutex_);
  for (;;) {
    heartbeat.beat();
    lane.cv.wait_for(lock, std::chrono::seconds(1),
                     [&] { return !lane.queue.empty() || stopping_; });
    if (stopping_) break;  // effects still queued are given back by stop()
    if (lane.queue.empty()) continue;
    Job job = std::move(lane.queue.front());
    lane.queue.pop_front();
    ++lane.running;
    const int32_t in_flight = running();
    if (in_flight > most_in_flight_.load()) most_in_flight_ = in_flight;
    lock.unlock();
    perform(job);
    heartbeat.beat();
    lock.lock();
    --lane.running;
    idle_cv_.notify_all();
    // The lane had no free slot, so the dispatcher may be waiting for this
    // one; a lane with slots to spare wakes no one (a wake-up costs both
    // threads a context switch, one per call otherwise).
    if (free_slots(lane) == 1) context_.effects_wakeup().notify();
  }
  heartbeat.retire();
}

void EffectRunner::perform(Job& job) {
  const StoredEffect& stored = job.stored;
  // Log lines about this effect name its workflow and step.
  LogScope scope(LogScope::workflow(
      stored.workflow_id, std::visit([](const auto& e) { return e.step; }, stored.effect)));
  const TimePoint started = now_ms();
  EffectExecution execution(context_, services_, stored);
  EffectResult result;
  if (job.state != nullptr) {
    result = execution.run(*job.state);
  } else if (job.load_error) {
    result = execution.run(Result<std::optional<WorkflowState>>(*job.load_error));
  }  // else the workflow is gone: nothing to apply, the effect is dropped
  spdlog::debug("effects: {} effect {} performed in {} ms", effect_name(stored.effect), stored.id,
                (now_ms() - started).count());
  recorder_->add(std::move(job.stored), std::move(result));
}

void EffectRunner::run_one(Store& store, const StoredEffect& stored) {
  Result<WorkflowReader::LoadedWorkflows> loaded = store.get_workflows({stored.workflow_id});
  EffectExecution execution(context_, services_, stored);
  EffectResult result =
      loaded ? execution.run(loaded->at(stored.workflow_id))
             : execution.run(Result<std::optional<WorkflowState>>(loaded.error()));
  if (result.kind == EffectResult::Kind::kReschedule) {
    reschedule_effect(store, stored, result.error, false);
    return;
  }
  std::vector<StoredEffect> effects{stored};
  std::vector<EffectResult> results{std::move(result)};
  (void)record_all(context_, store, store, effects, results,
                   [this](int64_t id) { release(id); });
}

}  // namespace brickwork
