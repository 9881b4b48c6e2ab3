// submit_run: a one-time run (jobs/runs/submit), waited for like run_job.
//
//   submit_run:
//     run_name: "ingest {{ input.day }}"       # default: <workflow id>/<step>
//     tasks:
//       - task_key: ingest
//         notebook_task:
//           notebook_path: /Repos/etl/ingest
//           base_parameters: {day: "{{ input.day }}"}
//         existing_cluster_id: 0123-456789-abcdefgh
//     timeout_seconds: 3600                    # any other runs/submit field, templated
//     repair: true                             # a retry re-runs only the run's failed
//                                              # tasks (jobs/runs/repair)
//
// Every task receives the three brickwork_* parameters wherever its type takes
// parameters: notebook base_parameters, sql_task parameters, run_job_task
// job_parameters, python_wheel_task named_parameters, and as
// "--brickwork_workflow_id", "<id>", ... appended to the parameters list of
// spark_python_task, python_wheel_task (without named_parameters) and
// spark_jar_task. The attempt's idempotency token makes a repeated submit
// return the same run.
#include "handlers/steps/action_fields.hpp"
#include "handlers/steps/databricks_run.hpp"

namespace brickwork {
namespace {

void add_to_map(json::object& task, std::string_view type, std::string_view field,
                const BrickworkParameters& bw) {
  json::object& spec = task[type].as_object();
  json::value& params = spec[field];
  if (!params.is_object()) params = json::object{};
  for (const auto& [name, value] : bw.named()) params.as_object()[name] = value;
}

void append_to_list(json::object& task, std::string_view type, const BrickworkParameters& bw) {
  json::object& spec = task[type].as_object();
  json::value& params = spec["parameters"];
  if (!params.is_array()) params = json::array{};
  for (const auto& [name, value] : bw.named()) {
    params.as_array().emplace_back("--" + name);
    params.as_array().emplace_back(value);
  }
}

bool has_object(const json::object& task, std::string_view type) {
  const json::value* v = task.if_contains(type);
  return v != nullptr && v->is_object();
}

// Puts the brickwork_* parameters into one task, by its type.
void add_brickwork_parameters(json::object& task, const BrickworkParameters& bw) {
  if (has_object(task, "notebook_task")) add_to_map(task, "notebook_task", "base_parameters", bw);
  if (has_object(task, "sql_task")) add_to_map(task, "sql_task", "parameters", bw);
  if (has_object(task, "run_job_task")) add_to_map(task, "run_job_task", "job_parameters", bw);
  if (has_object(task, "spark_python_task")) append_to_list(task, "spark_python_task", bw);
  if (has_object(task, "spark_jar_task")) append_to_list(task, "spark_jar_task", bw);
  if (has_object(task, "python_wheel_task")) {
    if (task.at("python_wheel_task").as_object().contains("named_parameters")) {
      add_to_map(task, "python_wheel_task", "named_parameters", bw);
    } else {
      append_to_list(task, "python_wheel_task", bw);
    }
  }
}

// submit_run's action, checked: the runs/submit body (its strings may hold
// templates), without the brickwork_* parameters and idempotency token each
// attempt adds.
struct SubmitRunAction final : BoundAction {
  json::object body;
};

class SubmitRunStep final : public StepType {
 public:
  std::string_view action_key() const override { return "submit_run"; }
  bool calls_databricks() const override { return true; }

  Result<BoundActionPtr> compile(StepDefinition& step) const override {
    step.plan.completion_event = true;  // the run's task may publish job_completed
    const json::object& action = step.action;
    const json::value* tasks = action.if_contains("tasks");
    if (tasks == nullptr || !tasks->is_array() || tasks->as_array().empty()) {
      return compile_error("submit_run.tasks must be a non-empty list of tasks (each with a task_key)");
    }
    for (const auto& task : tasks->as_array()) {
      if (!task.is_object() || !task.as_object().contains("task_key")) {
        return compile_error("submit_run.tasks: every task needs a task_key");
      }
    }
    if (const json::value* name = action.if_contains("run_name");
        name != nullptr && !name->is_string()) {
      return compile_error("submit_run.run_name must be a string");
    }
    if (action.contains("idempotency_token")) {
      return compile_error("submit_run.idempotency_token is set by brickwork (one per attempt)");
    }
    if (auto e = compile_repair(step)) return compile_error(*e);
    auto bound = std::make_shared<SubmitRunAction>();
    bound->body = action;
    return BoundActionPtr(std::move(bound));
  }

  Result<StepOutcome> execute(const StepContext& context, StepServices& services) const override {
    auto rendered = render_object(context.action<SubmitRunAction>().body, context);
    if (!rendered) return rendered.error();
    json::object body = std::move(*rendered);
    body.erase("repair");
    const BrickworkParameters bw = brickwork_parameters(context);
    if (context.definition.plan.repairs_runs) {
      // The repaired notebook tasks get this attempt's token; other task
      // types keep the first run's, whose event is then ignored: a poll ends
      // the step.
      const auto named = bw.named();
      const std::map<std::string, std::string> parameters(named.begin(), named.end());
      auto repaired = repair_previous_run(context, services, parameters, false);
      if (!repaired) return repaired.error();
      if (*repaired) return std::move(**repaired);
    }
    for (auto& task : body["tasks"].as_array()) {
      if (!task.is_object()) return invalid_action("submit_run.tasks must render to objects");
      add_brickwork_parameters(task.as_object(), bw);
    }
    if (!body.contains("run_name")) body["run_name"] = bw.workflow_id + "/" + bw.step;
    body["idempotency_token"] = context.idempotency_token;
    auto run_id = services.databricks->submit_run(body);
    if (!run_id) return run_id.error();
    return started_run(*run_id, services.databricks->host() + "/#job/runs/" +
                                    std::to_string(*run_id),
                       json::object{{"submitted", true}});
  }

  Result<StepOutcome> poll(const StepContext& context, StepServices& services) const override {
    return poll_run(context, services);
  }

  Status cancel(const StepContext& context, StepServices& services) const override {
    return cancel_run(context, services);
  }
};

}  // namespace

std::unique_ptr<StepType> make_submit_run_step() { return std::make_unique<SubmitRunStep>(); }

}  // namespace brickwork
