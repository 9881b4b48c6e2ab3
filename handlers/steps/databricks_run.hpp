#pragma once
// What run_job and submit_run share once Databricks has started their run:
// the brickwork_* parameters, polling (with the run's output from
// runs/get-output when polling ends it) and canceling.
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>
#include <string_view>

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

// `repair: true` (run_job, submit_run): checked when the configuration is
// loaded; sets the plan's repairs_runs, so a new attempt knows the run of the
// attempt before. Returns a message on error. The key never reaches the API.
std::optional<std::string> compile_repair(StepDefinition& step);
bool is_repair_key(std::string_view key);

// For an attempt after one whose run failed with some tasks succeeded (the
// engine left that run in the step's handle): the run repaired with
// jobs/runs/repair, only its failed tasks again, and waited on under the same
// run id. Nothing when there is no such run: the caller starts a new one.
// The repaired tasks get `parameters` (the new attempt's brickwork_token),
// as job parameters (`as_job_parameters`) or notebook parameters. Safe to
// repeat: a repair already made for this attempt is waited on, not repeated.
Result<std::optional<StepOutcome>> repair_previous_run(
    const StepContext& context, StepServices& services,
    const std::map<std::string, std::string>& parameters, bool as_job_parameters);

// The error of a step whose type needs Databricks when none is configured.
Error no_workspace(std::string_view type, std::string_view workspace = {});

}  // namespace brickwork
