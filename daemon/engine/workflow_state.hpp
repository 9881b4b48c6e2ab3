#pragma once
// The state of one workflow instance and its steps: plain values, persisted by
// the store and transformed only by the engine.
#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "daemon/core/time.hpp"

namespace brickwork {

enum class WorkflowStatus { kRunning, kSucceeded, kFailed, kCanceled };
enum class StepStatus { kPending, kRunning, kWaiting, kSucceeded, kFailed, kCanceled, kSkipped };

const char* to_string(WorkflowStatus s);
const char* to_string(StepStatus s);
std::optional<WorkflowStatus> workflow_status_from_string(std::string_view s);
std::optional<StepStatus> step_status_from_string(std::string_view s);
bool is_terminal(WorkflowStatus s);
bool is_terminal(StepStatus s);

struct StepError {
  std::string code;
  std::string message;
  bool operator==(const StepError&) const = default;
};

struct StepState {
  std::string name;
  StepStatus status = StepStatus::kPending;
  int32_t attempt = 0;                  // 0 until first started
  std::optional<int64_t> run_id;        // Databricks run of the current attempt
  std::string run_page_url;
  json::value handle;                   // step-type specific (statement id, ...); null if none
  std::optional<json::object> output;   // set on success
  std::optional<StepError> error;       // set on failure
  std::optional<TimePoint> started_at;  // of the current attempt
  std::optional<TimePoint> finished_at;
  // Attempts made before the last retry command. The retry policy counts only
  // attempts above this, so a retried workflow gets its steps' full retry
  // budget again while attempt numbers (and idempotency tokens) keep growing.
  // Persist it with the step; a store that does not falls back to counting
  // all attempts (fewer automatic retries, never more).
  int32_t attempts_before_retry = 0;
  bool operator==(const StepState&) const = default;
};

// A signal no step was waiting for when it came: kept until a step waits for
// its name (signals are durable promises, contract section 2).
struct KeptSignal {
  std::string name;
  json::value value;
  TimePoint received_at{};
  bool operator==(const KeptSignal&) const = default;
};

struct WorkflowState {
  std::string id;
  std::string workflow;            // definition name
  WorkflowDefinition definition;   // the definition it started with
  json::object input;
  WorkflowStatus status = WorkflowStatus::kRunning;
  int64_t seq = 0;                 // last status event's seq
  TimePoint created_at{};
  TimePoint updated_at{};
  std::vector<StepState> steps;    // in definition order
  std::vector<KeptSignal> kept_signals;  // oldest first
  // The W3C traceparent of the start command (empty: none), carried to
  // status events, emitted records and Databricks runs.
  std::string traceparent;

  StepState* find_step(std::string_view name);
  const StepState* find_step(std::string_view name) const;
};

}  // namespace brickwork
