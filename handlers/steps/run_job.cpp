// run_job: start an existing Databricks job with jobs/run-now and wait for it.
//
//   run_job:
//     job_id: 123                       # integer, or a template; or instead:
//     job_name: nightly_ingest          # resolved with jobs/list?name= (exactly one match)
//     parameters: {url: "{{ input.url }}"}   # job parameters (values become strings)
//     queue: {enabled: true}            # any other run-now field is passed through
//     repair: true                      # a retry re-runs only the failed tasks of
//                                       # the run before (jobs/runs/repair)
//
// The job also receives brickwork_workflow_id, brickwork_step and
// brickwork_token (contract section 3) so its last task can publish the
// completion event, and brickwork_traceparent when the start command carried
// one; polling jobs/runs/get is the safety net.
#include <map>
#include <mutex>

#include "daemon/core/json_limits.hpp"
#include "handlers/steps/action_fields.hpp"
#include "handlers/steps/databricks_run.hpp"

namespace brickwork {
namespace {

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

// run_job's action, checked: which job, and what else goes to run-now.
struct RunJobAction final : BoundAction {
  std::optional<json::value> job_id;  // a positive integer, or a {{ template }} string
  std::optional<json::value> job_name;  // instead of job_id: a name, or a {{ template }}
  json::object parameters;            // values may hold templates
  json::object extra;                 // other run-now fields, passed through
};

class RunJobStep final : public StepType {
 public:
  std::string_view action_key() const override { return "run_job"; }
  bool calls_databricks() const override { return true; }

  Result<BoundActionPtr> compile(StepDefinition& step) const override {
    step.plan.completion_event = true;  // the job may publish job_completed
    const json::object& action = step.action;
    const json::value* job_id = action.if_contains("job_id");
    const json::value* job_name = action.if_contains("job_name");
    if ((job_id == nullptr) == (job_name == nullptr)) {
      return compile_error("run_job needs exactly one of job_id or job_name");
    }
    auto bound = std::make_shared<RunJobAction>();
    if (job_name != nullptr) {
      if (!job_name->is_string() || job_name->as_string().empty()) {
        return compile_error("run_job.job_name must be a job's name (a non-empty string)");
      }
      bound->job_name = *job_name;
    } else {
      if (!holds_template(*job_id)) {
        if (const auto id = int64_from_json(*job_id); !id || *id <= 0) {
          return compile_error(
              "run_job.job_id must be a positive 64-bit integer (or a {{ template }})");
        }
      }
      bound->job_id = *job_id;
    }
    if (const json::value* params = action.if_contains("parameters"); params != nullptr) {
      if (!params->is_object()) return compile_error("run_job.parameters must be a mapping of name to value");
      bound->parameters = params->as_object();
    }
    for (const auto& [key, value] : action) {
      if (key == "job_parameters" || key == "idempotency_token") {
        return compile_error("run_job." + std::string(key) +
                             " is set by brickwork; use run_job.parameters");
      }
      if (key != "job_id" && key != "job_name" && key != "parameters" && !is_repair_key(key)) {
        bound->extra[key] = value;
      }
    }
    if (auto e = compile_repair(step)) return compile_error(*e);
    return BoundActionPtr(std::move(bound));
  }

  Result<StepOutcome> execute(const StepContext& context, StepServices& services) const override {
    const auto& action = context.action<RunJobAction>();
    RunNowRequest request;
    if (action.job_name) {
      auto name = render_value(*action.job_name, context);
      if (!name) return name.error();
      if (!name->is_string()) return invalid_action("run_job.job_name must render to a string");
      auto id = resolve(context.workflow.id, std::string(name->as_string()), *services.databricks);
      if (!id) return id.error();
      request.job_id = *id;
    } else {
      auto job_id = render_value(*action.job_id, context);
      if (!job_id) return job_id.error();
      const std::optional<int64_t> parsed = int64_from_json(*job_id);
      if (!parsed || *parsed <= 0) {
        return invalid_action("run_job.job_id is " + truncate_for_message(*job_id) +
                              ", not a positive 64-bit integer");
      }
      request.job_id = *parsed;
    }
    auto params = render_object(action.parameters, context);
    if (!params) return params.error();
    for (const auto& [name, value] : *params) {
      request.job_parameters[std::string(name)] = as_parameter_string(value);
    }
    for (const auto& [name, value] : brickwork_parameters(context).named()) {
      request.job_parameters[name] = value;
    }
    request.idempotency_token = context.idempotency_token;
    auto extra = render_object(action.extra, context);
    if (!extra) return extra.error();
    request.extra = std::move(*extra);
    if (context.definition.plan.repairs_runs) {
      auto repaired = repair_previous_run(context, services, request.job_parameters, true);
      if (!repaired) return repaired.error();
      if (*repaired) return std::move(**repaired);
    }

    auto run_id = services.databricks->run_now(request);
    if (!run_id) return run_id.error();
    return started_run(*run_id,
                       services.databricks->host() + "/#job/" + std::to_string(request.job_id) +
                           "/run/" + std::to_string(*run_id),
                       json::object{{"job_id", request.job_id}});
  }

  Result<StepOutcome> poll(const StepContext& context, StepServices& services) const override {
    return poll_run(context, services);
  }

  Status cancel(const StepContext& context, StepServices& services) const override {
    return cancel_run(context, services);
  }

 private:
  // A job name resolves once per workflow run, so every attempt of every
  // step of that run starts the same job even if names change meanwhile.
  Result<int64_t> resolve(const std::string& workflow_id, const std::string& name,
                          DatabricksApi& databricks) const {
    const std::string key = workflow_id + '\n' + name;
    {
      std::lock_guard lock(mutex_);
      if (auto it = resolved_.find(key); it != resolved_.end()) return it->second;
    }
    auto ids = databricks.find_jobs_by_name(name);
    if (!ids) return ids.error();
    if (ids->empty()) {
      return Error{ErrorKind::kPermanent, "job_not_found", "no job is named '" + name + "'"};
    }
    if (ids->size() > 1) {
      return Error{ErrorKind::kPermanent, "job_name_ambiguous",
                   std::to_string(ids->size()) + " jobs are named '" + name +
                       "'; use job_id, or rename them"};
    }
    std::lock_guard lock(mutex_);
    if (resolved_.size() >= 10'000) resolved_.clear();  // bounded: a cache, not a record
    resolved_[key] = ids->front();
    return ids->front();
  }

  mutable std::mutex mutex_;
  mutable std::map<std::string, int64_t> resolved_;
};

}  // namespace

std::unique_ptr<StepType> make_run_job_step() { return std::make_unique<RunJobStep>(); }

}  // namespace brickwork
