#pragma once
// run_job: start an existing Databricks job with jobs/run-now and wait for it.
//
//   run_job:
//     job_id: 123                       # integer, or a template
//     parameters: {url: "{{ input.url }}"}   # job parameters (values become strings)
//     queue: {enabled: true}            # any other run-now field is passed through
//
// The job also receives brickwork_workflow_id, brickwork_step and
// brickwork_token (contract section 3) so its last task can publish the
// completion event; polling jobs/runs/get is the safety net.
#include <memory>

#include "handlers/steps/step_type.hpp"

namespace brickwork {

struct RunInfo;

std::unique_ptr<StepType> make_run_job_step();

// Maps a terminal run to the step's outcome (pure; shared with submit_run).
StepOutcome outcome_of_finished_run(const RunInfo& run);

}  // namespace brickwork
