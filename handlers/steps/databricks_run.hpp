#pragma once
// What run_job and submit_run share once Databricks has started their run:
// the brickwork_* parameters, polling (with the run's output from
// runs/get-output when polling ends it) and canceling.
#include <string>
#include <utility>
#include <vector>

#include "daemon/databricks/api.hpp"
#include "handlers/steps/step_type.hpp"

namespace brickwork {

// The job parameters every run receives (contract section 3).
struct BrickworkParameters {
  std::string workflow_id;
  std::string step;
  std::string token;
  std::string traceparent = {};  // the start command's, or empty

  // Name and value of each parameter to send: brickwork_traceparent only
  // when the workflow has one.
  std::vector<std::pair<std::string, std::string>> named() const {
    std::vector<std::pair<std::string, std::string>> out = {
        {"brickwork_workflow_id", workflow_id}, {"brickwork_step", step}, {"brickwork_token", token}};
    if (!traceparent.empty()) out.emplace_back("brickwork_traceparent", traceparent);
    return out;
  }
};
BrickworkParameters brickwork_parameters(const StepContext& context);

// A run just started: the step waits for its completion event or its poll.
StepOutcome started_run(int64_t run_id, std::string run_page_url, json::value handle);

// Maps a terminal run to the step's outcome (pure): success with
// {"result_state"}, or failure with the result (or life-cycle) state as code.
StepOutcome outcome_of_finished_run(const RunInfo& run);

// jobs/runs/get of the attempt's run; when it has ended in success, the
// output of its last task run (runs/get-output: the notebook's exit value)
// joins result_state, so {{ steps.X.output.* }} reads the same whether an
// event or a poll ended the step.
Result<StepOutcome> poll_run(const StepContext& context, StepServices& services);

// jobs/runs/cancel of the attempt's run, if it has one.
Status cancel_run(const StepContext& context, StepServices& services);

// The error of a step whose type needs Databricks when none is configured.
Error no_workspace(std::string_view type);

}  // namespace brickwork
