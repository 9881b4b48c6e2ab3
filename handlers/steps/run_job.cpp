#include "handlers/steps/run_job.hpp"

#include "handlers/steps/action_fields.hpp"
#include "daemon/core/json_limits.hpp"
#include "daemon/databricks/api.hpp"

namespace brickwork {
namespace {

Error invalid(std::string message) {
  return Error{ErrorKind::kPermanent, "invalid_step", std::move(message)};
}

// A rendered value in an error message: short, whatever it rendered to.
std::string truncate_for_message(const json::value& v) {
  std::string text = json::serialize(v);
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

std::string as_parameter_string(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  return json::serialize(v);
}

class RunJobStep final : public StepType {
 public:
  std::string_view action_key() const override { return "run_job"; }

  std::optional<std::string> compile(StepDefinition& step) const override {
    const json::object& action = step.action;
    const json::value* job_id = action.if_contains("job_id");
    if (job_id == nullptr) return "run_job.job_id is required";
    if (job_id->is_string() && job_id->as_string().find("{{") != json::string::npos) {
      // checked when rendered
    } else if (const auto id = int64_from_json(*job_id); !id || *id <= 0) {
      return "run_job.job_id must be a positive 64-bit integer (or a {{ template }})";
    }
    if (const json::value* params = action.if_contains("parameters");
        params != nullptr && !params->is_object()) {
      return "run_job.parameters must be a mapping of name to value";
    }
    for (const auto& [key, value] : action) {
      if (key == "job_parameters" || key == "idempotency_token") {
        return "run_job." + std::string(key) + " is set by brickwork; use run_job.parameters";
      }
    }
    return std::nullopt;
  }

  Result<StepOutcome> execute(const StepContext& context, StepServices& services) const override {
    if (services.databricks == nullptr) {
      return invalid("run_job needs a Databricks workspace (databricks.host)");
    }
    auto rendered = rendered_action(context);
    if (!rendered) return rendered.error();
    const json::object& action = *rendered;

    RunNowRequest request;
    const json::value& job_id = action.at("job_id");
    const std::optional<int64_t> parsed_job_id = int64_from_json(job_id);
    if (!parsed_job_id || *parsed_job_id <= 0) {
      return invalid("run_job.job_id is " + truncate_for_message(job_id) +
                     ", not a positive 64-bit integer");
    }
    request.job_id = *parsed_job_id;
    if (const json::value* params = action.if_contains("parameters"); params != nullptr) {
      for (const auto& [name, value] : params->as_object()) {
        request.job_parameters[std::string(name)] = as_parameter_string(value);
      }
    }
    request.job_parameters["brickwork_workflow_id"] = context.workflow.id;
    request.job_parameters["brickwork_step"] = context.step.name;
    request.job_parameters["brickwork_token"] = context.callback_token;
    request.idempotency_token = context.idempotency_token;
    for (const auto& [key, value] : action) {
      if (key != "job_id" && key != "parameters") request.extra[key] = value;
    }

    auto run_id = services.databricks->run_now(request);
    if (!run_id) return run_id.error();
    StepOutcome outcome;
    outcome.kind = StepOutcome::Kind::kStarted;
    outcome.run_id = *run_id;
    outcome.run_page_url = services.databricks->host() + "/#job/" +
                           std::to_string(request.job_id) + "/run/" + std::to_string(*run_id);
    outcome.handle = json::object{{"job_id", request.job_id}};
    return outcome;
  }

  Result<StepOutcome> poll(const StepContext& context, StepServices& services) const override {
    if (services.databricks == nullptr) return invalid("run_job needs a Databricks workspace");
    if (!context.step.run_id) return invalid("run_job has no run to poll");
    auto run = services.databricks->get_run(*context.step.run_id);
    if (!run) return run.error();
    if (!run->terminal()) {
      StepOutcome outcome;
      outcome.kind = StepOutcome::Kind::kStillRunning;
      return outcome;
    }
    return outcome_of_finished_run(*run);
  }

  Status cancel(const StepContext& context, StepServices& services) const override {
    if (services.databricks == nullptr || !context.step.run_id) return ok_status();
    return services.databricks->cancel_run(*context.step.run_id);
  }
};

}  // namespace

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

std::unique_ptr<StepType> make_run_job_step() { return std::make_unique<RunJobStep>(); }

}  // namespace brickwork
