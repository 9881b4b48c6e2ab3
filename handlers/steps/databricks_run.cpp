#include "handlers/steps/databricks_run.hpp"

#include <spdlog/spdlog.h>

#include "daemon/core/json_limits.hpp"
#include "daemon/databricks/repair.hpp"
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

Error no_workspace(std::string_view type, std::string_view workspace) {
  if (!workspace.empty() && workspace != kDefaultWorkspace) {
    return invalid_action(std::string(type) + " names workspace '" + std::string(workspace) +
                          "', which this daemon does not have (workspaces:)");
  }
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

std::optional<std::string> compile_repair(StepDefinition& step) {
  const json::value* repair = step.action.if_contains("repair");
  if (repair == nullptr) return std::nullopt;
  if (!repair->is_bool()) return step.type + ".repair must be true or false";
  step.plan.repairs_runs = repair->as_bool();
  return std::nullopt;
}

bool is_repair_key(std::string_view key) { return key == "repair"; }

Result<std::optional<StepOutcome>> repair_previous_run(
    const StepContext& context, StepServices& services,
    const std::map<std::string, std::string>& parameters, bool as_job_parameters) {
  using Nothing = std::optional<StepOutcome>;
  const json::object* carried = context.step.handle.if_object();
  const json::value* previous = carried != nullptr ? carried->if_contains("previous_run_id") : nullptr;
  const std::optional<int64_t> run_id = previous != nullptr ? as_int64(*previous) : std::nullopt;
  if (!run_id) return Nothing();
  // The repair the attempt before ended with, if it was one.
  std::optional<int64_t> known_repair;
  if (const json::value* before = carried->if_contains("previous_handle");
      before != nullptr && before->is_object()) {
    if (const json::value* id = before->as_object().if_contains("repair_id")) {
      known_repair = as_int64(*id);
    }
  }
  auto run = get_repairable_run(*services.databricks, *run_id);
  if (!run) return run.error();
  json::object handle{{"repair_of", *run_id}};
  if (run->run.job_id != 0) handle["job_id"] = run->run.job_id;
  if (run->latest_repair_id && run->latest_repair_id != known_repair) {
    // This attempt repaired it already (its outcome was lost): wait on that repair.
    handle["repair_id"] = *run->latest_repair_id;
    return Nothing(started_run(*run_id, run->run.run_page_url, std::move(handle)));
  }
  if (!run->worth_repairing()) return Nothing();
  RepairRequest request;
  request.run_id = *run_id;
  request.latest_repair_id = known_repair;
  if (run->all_tasks_listed) request.rerun_tasks = run->failed_tasks();
  (as_job_parameters ? request.job_parameters : request.notebook_params) = parameters;
  auto repair_id = repair_run(*services.databricks, request);
  if (!repair_id) return repair_id.error();
  spdlog::info("{}/{}: repairing run {} (repair {}), attempt {}", context.workflow.id,
               context.step.name, *run_id, *repair_id, context.attempt);
  handle["repair_id"] = *repair_id;
  return Nothing(started_run(*run_id, run->run.run_page_url, std::move(handle)));
}

Status cancel_run(const StepContext& context, StepServices& services) {
  if (!context.step.run_id) return ok_status();
  return services.databricks->cancel_run(*context.step.run_id);
}

}  // namespace brickwork
