#include "handlers/steps/databricks_run.hpp"

#include <spdlog/spdlog.h>

#include "handlers/steps/action_fields.hpp"

namespace brickwork {

BrickworkParameters brickwork_parameters(const StepContext& context) {
  return {context.workflow.id, context.step.name, context.callback_token,
          context.workflow.traceparent};
}

StepOutcome started_run(int64_t run_id, std::string run_page_url, json::value handle) {
  StepOutcome outcome;
  outcome.kind = StepOutcome::Kind::kStarted;
  outcome.run_id = run_id;
  outcome.run_page_url = std::move(run_page_url);
  outcome.handle = std::move(handle);
  return outcome;
}

StepOutcome outcome_of_finished_run(const RunInfo& run) {
  StepOutcome outcome;
  outcome.run_id = run.run_id;
  outcome.run_page_url = run.run_page_url;
  if (run.succeeded()) {
    outcome.kind = StepOutcome::Kind::kSucceeded;
    outcome.output = json::object{{"result_state", run.result_state}};
    return outcome;
  }
  outcome.kind = StepOutcome::Kind::kFailed;
  outcome.error.code = !run.result_state.empty() ? run.result_state : run.life_cycle_state;
  outcome.error.message = run.state_message.empty()
                              ? "run " + std::to_string(run.run_id) + " ended " +
                                    run.life_cycle_state +
                                    (run.result_state.empty() ? "" : "/" + run.result_state)
                              : run.state_message;
  return outcome;
}

Error no_workspace(std::string_view type) {
  return invalid_action(std::string(type) + " needs a Databricks workspace (databricks.host)");
}

Result<StepOutcome> poll_run(const StepContext& context, StepServices& services) {
  if (!context.step.run_id) {
    return Error{ErrorKind::kInternal, "no_run", "the step has no run to poll"};
  }
  auto run = services.databricks->get_run(*context.step.run_id);
  if (!run) return run.error();
  if (!run->terminal()) {
    StepOutcome outcome;
    outcome.kind = StepOutcome::Kind::kStillRunning;
    return outcome;
  }
  StepOutcome outcome = outcome_of_finished_run(*run);
  if (outcome.kind != StepOutcome::Kind::kSucceeded || run->tasks.empty()) return outcome;
  // get-output answers only for a task run; the last one is the job's result.
  auto output = services.databricks->get_run_output(run->tasks.back().run_id);
  if (!output && output.error().transient()) return output.error();
  if (!output) {
    // The run succeeded; what it returned cannot be read. Say so, keep going.
    spdlog::warn("run {} of {}/{} succeeded but its output cannot be read: {}", run->run_id,
                 context.workflow.id, context.step.name, output.error().message);
    return outcome;
  }
  json::object merged = output_from_run_output(*output);
  merged["result_state"] = run->result_state;
  outcome.output = std::move(merged);
  return outcome;
}

Status cancel_run(const StepContext& context, StepServices& services) {
  if (!context.step.run_id) return ok_status();
  return services.databricks->cancel_run(*context.step.run_id);
}

}  // namespace brickwork
