#include "daemon/engine/workflow_state.hpp"

#include <array>
#include <utility>

namespace brickwork {
namespace {

constexpr std::array<std::pair<WorkflowStatus, const char*>, 4> kWorkflowNames{{
    {WorkflowStatus::kRunning, "running"},
    {WorkflowStatus::kSucceeded, "succeeded"},
    {WorkflowStatus::kFailed, "failed"},
    {WorkflowStatus::kCanceled, "canceled"},
}};

constexpr std::array<std::pair<StepStatus, const char*>, 7> kStepNames{{
    {StepStatus::kPending, "pending"},
    {StepStatus::kRunning, "running"},
    {StepStatus::kWaiting, "waiting"},
    {StepStatus::kSucceeded, "succeeded"},
    {StepStatus::kFailed, "failed"},
    {StepStatus::kCanceled, "canceled"},
    {StepStatus::kSkipped, "skipped"},
}};

}  // namespace

const char* to_string(WorkflowStatus s) {
  for (const auto& [value, name] : kWorkflowNames) {
    if (value == s) return name;
  }
  return "running";
}

const char* to_string(StepStatus s) {
  for (const auto& [value, name] : kStepNames) {
    if (value == s) return name;
  }
  return "pending";
}

std::optional<WorkflowStatus> workflow_status_from_string(std::string_view s) {
  for (const auto& [value, name] : kWorkflowNames) {
    if (s == name) return value;
  }
  return std::nullopt;
}

std::optional<StepStatus> step_status_from_string(std::string_view s) {
  for (const auto& [value, name] : kStepNames) {
    if (s == name) return value;
  }
  return std::nullopt;
}

bool is_terminal(WorkflowStatus s) { return s != WorkflowStatus::kRunning; }

bool is_terminal(StepStatus s) {
  return s == StepStatus::kSucceeded || s == StepStatus::kFailed || s == StepStatus::kCanceled ||
         s == StepStatus::kSkipped;
}

StepState* WorkflowState::find_step(std::string_view name) {
  for (auto& step : steps) {
    if (step.name == name) return &step;
  }
  return nullptr;
}

const StepState* WorkflowState::find_step(std::string_view name) const {
  for (const auto& step : steps) {
    if (step.name == name) return &step;
  }
  return nullptr;
}

}  // namespace brickwork
