#pragma once
// The workflow engine: a pure function from (state, input, now) to
// (new state, effects, status events). No I/O, no clock, no randomness.
// The shell persists the decision atomically (state + effects + outbox) and
// performs the effects; their results come back as inputs.
#include <boost/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "daemon/engine/workflow_state.hpp"

namespace brickwork {

// A step's output, serialized, may be at most this large: status events
// repeat it, and they must stay well inside Kafka's message size limit. A
// larger output fails the step with code too_large (not retried: the same
// work would produce the same output).
inline constexpr size_t kMaxStepOutputBytes = 512 * 1024;
// A running workflow keeps at most this many signals that no step has taken
// yet; the next is refused (too_many_signals).
inline constexpr size_t kMaxKeptSignals = 100;
// What status events, dead letters and `brickwork status` show in place of a
// sensitive step output (contract 6.3).
inline constexpr std::string_view kRedactedOutput = "<redacted>";

// ---------------------------------------------------------------- inputs

struct StartCommand {
  std::string id;
  std::string workflow;
  json::object input;
  // Resolved by the shell from the configuration; absent when the name is unknown.
  std::optional<WorkflowDefinition> definition;
  std::string traceparent = {};  // the command's valid traceparent header, or empty
};
struct CancelCommand { std::string reason; };
struct RetryCommand {};
struct SignalCommand { std::string name; json::value value; };

enum class RunResult { kSuccess, kFailed, kCanceled, kTimedOut };
const char* to_string(RunResult r);
std::optional<RunResult> run_result_from_string(std::string_view s);

// A job_completed event whose token the shell has already verified and bound
// to the attempt it was issued for.
struct CompletionEvent {
  std::string step;
  int32_t attempt = 0;
  RunResult state = RunResult::kSuccess;
  std::optional<int64_t> run_id;
  json::object output;
  std::string message;
  // Set when the shell found the event's content unusable (e.g. too_large):
  // the step fails with this code whatever `state` says, without retry.
  std::string error_code;
};

// A record a step publishes through the outbox (emit): written in the same
// transaction as the step's success, so it goes out exactly once.
struct OutboxRecord {
  std::string topic;
  std::string key;
  std::string payload;
  std::string step;  // the step that emits it (set by the engine)
  bool operator==(const OutboxRecord&) const = default;
};

// What performing a step's action (or checking on it) found out.
struct StepOutcome {
  enum class Kind {
    kSucceeded,     // done, with output
    kFailed,        // done, with error (retry policy applies)
    kStarted,       // accepted and running elsewhere (a Databricks run): now waiting
    kStillRunning,  // a poll saw it still running
    kWaitUntil,     // waiting for a durable timer at `wake_at` (sleep), then succeeds
  };
  Kind kind = Kind::kSucceeded;
  json::object output;
  StepError error;
  // kFailed only: false when trying again cannot help (a 4xx, a template
  // that cannot be rendered, an invalid action): the step's retry policy is
  // then skipped.
  bool retryable = true;
  std::optional<int64_t> run_id;
  std::string run_page_url;
  json::value handle;  // kept on the step for later polls / cancel
  TimePoint wake_at{};  // kWaitUntil
  // kSucceeded: published with the step's success, exactly once.
  std::vector<OutboxRecord> publish;
};

struct StepExecuted { std::string step; int32_t attempt = 0; StepOutcome outcome; };
// `after_event_grace`: from the PollStep of that name (see PollStep).
struct StepPolled {
  std::string step;
  int32_t attempt = 0;
  StepOutcome outcome;
  bool after_event_grace = false;
};

enum class TimerKind { kRetryBackoff, kTimeout, kSleep };
const char* to_string(TimerKind k);
std::optional<TimerKind> timer_kind_from_string(std::string_view s);
struct TimerFired { std::string step; int32_t attempt = 0; TimerKind kind = TimerKind::kTimeout; };

using Input = std::variant<StartCommand, CancelCommand, RetryCommand, SignalCommand,
                           CompletionEvent, StepExecuted, StepPolled, TimerFired>;

// ---------------------------------------------------------------- effects

// Perform the step's action for this attempt (for run_job: jobs/run-now with
// the attempt's idempotency token). Result: StepExecuted. `key_id` names the
// callbacks secret that keys that token: the engine knows no secrets, so the
// shell fills it in as it writes the effect, and a call repeated after a crash
// sends the same token even if the secret was rotated in between.
struct ExecuteStep { std::string step; int32_t attempt = 0; std::string key_id{}; };
// Check on a waiting step at `due` (for run_job: jobs/runs/get). Result: StepPolled.
// `after_event_grace`: an earlier poll saw the run end while its completion
// event had not arrived; this poll, event_grace later, completes the step
// from what it finds unless the event came meanwhile.
struct PollStep {
  std::string step;
  int32_t attempt = 0;
  TimePoint due{};
  bool after_event_grace = false;
};
// Cancel what the attempt has in flight (jobs/runs/cancel). No result input.
struct CancelStep { std::string step; int32_t attempt = 0; std::optional<int64_t> run_id; json::value handle; };
// Fire TimerFired at `due`.
struct StartTimer { std::string step; int32_t attempt = 0; TimerKind kind = TimerKind::kTimeout; TimePoint due{}; };

using Effect = std::variant<ExecuteStep, PollStep, CancelStep, StartTimer>;

// ---------------------------------------------------------------- status

// One status event (contract section 4). `seq` is assigned by the engine.
struct StatusEvent {
  std::string type;  // workflow_started, step_started, ...
  int64_t seq = 0;
  TimePoint at{};
  std::optional<std::string> step;
  std::optional<int32_t> attempt;
  std::optional<int64_t> run_id;
  std::string run_page_url;
  std::optional<json::object> output;
  // The step's output is sensitive (contract 6.3): the event says so instead.
  bool output_redacted = false;
  std::optional<StepError> error;
  std::string reason;  // command_rejected
  std::string signal;  // signal_kept: the signal's name
  std::string state;   // workflow state after the event (convenience for consumers)
};

// The JSON of a status event for `workflow_id` / `workflow` (contract section 4).
json::object to_json(const StatusEvent& e, const std::string& workflow_id,
                     const std::string& workflow);

// ---------------------------------------------------------------- decisions

// Why a command could not be applied (contract section 2 reason codes).
struct Rejection {
  // conflict, unknown_workflow, not_failed, not_running, unknown_signal,
  // too_many_signals, invalid; for a completion event: run_mismatch
  std::string reason;
  std::string message;
};

struct Decision {
  std::optional<WorkflowState> state;  // new state; empty if none exists (rejected start)
  std::vector<Effect> effects;
  std::vector<StatusEvent> events;     // seq already assigned, in order
  std::vector<OutboxRecord> records;   // published by steps (emit), after the events
  std::optional<Rejection> rejection;  // the input was refused
  bool changed = false;                // state must be written
};

// When the next safety-net poll of a waiting step is due: poll_every after
// `now`, plus up to a quarter of poll_every more, derived from a hash of the
// workflow, step, attempt and `now` (the engine stays pure) so that many
// steps started together do not poll together.
TimePoint next_poll_due(std::string_view workflow_id, std::string_view step, int32_t attempt,
                        Duration poll_every, TimePoint now);

// Apply one input to a workflow's state. `current` is empty when no workflow
// with that id exists yet. Inputs that no longer apply (a completion for an
// older attempt, a timer for a finished step) yield an unchanged Decision.
Decision decide(const std::optional<WorkflowState>& current, const Input& input, TimePoint now);

}  // namespace brickwork
