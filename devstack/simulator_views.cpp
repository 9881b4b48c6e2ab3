// The simulator's JSON, shaped after the SDKs' Run, RunTask and RunOutput
// models (docs/DATABRICKS.md lists what is modelled and what is not).
#include "devstack/simulator_views.hpp"

#include <algorithm>

namespace brickwork::simulator_detail {

namespace {

json::object state_json(const Run& run) {
  json::object state{{"life_cycle_state", run.view.life_cycle_state},
                     {"state_message", run.state_message},
                     {"user_cancelled_or_timedout",
                      run.view.cancel_requested || run.view.result_state == "TIMEDOUT"}};
  if (run.done) state["result_state"] = run.view.result_state;
  return state;
}

json::object status_json(const Run& run) {
  const std::string& lcs = run.view.life_cycle_state;
  json::object status{
      {"state", lcs == "INTERNAL_ERROR" || lcs == "SKIPPED" ? std::string("TERMINATED") : lcs}};
  if (run.done) {
    status["termination_details"] = json::object{
        {"code", run.term_code}, {"type", run.term_type}, {"message", run.state_message}};
  }
  return status;
}

std::string page_url(const Run& run, int64_t run_id, const std::string& base_url) {
  return base_url + "/#job/" + std::to_string(run.view.job_id) + "/run/" + std::to_string(run_id);
}

// "--name value", "--name=value"; a "--flag" followed by another "--" (or
// by nothing) has the value "".
void collect_flag_params(const json::value* list, std::map<std::string, std::string>& into) {
  if (list == nullptr || !list->is_array()) return;
  const json::array& args = list->get_array();
  auto flag = [](const json::value& v) {
    return v.is_string() && v.get_string().size() > 2 &&
           std::string_view(v.get_string()).starts_with("--");
  };
  for (size_t i = 0; i < args.size(); ++i) {
    if (!flag(args[i])) continue;
    const std::string_view arg = std::string_view(args[i].get_string()).substr(2);
    if (const auto eq = arg.find('='); eq != std::string_view::npos) {
      into[std::string(arg.substr(0, eq))] = std::string(arg.substr(eq + 1));
    } else if (i + 1 < args.size() && !flag(args[i + 1])) {
      into[std::string(arg)] = param_text(args[++i]);
    } else {
      into[std::string(arg)] = "";
    }
  }
}

const json::value* task_field(const json::object& task, std::string_view type,
                              std::string_view field) {
  const json::value* t = task.if_contains(type);
  return t != nullptr && t->is_object() ? t->get_object().if_contains(field) : nullptr;
}

}  // namespace

json::object run_json(const Run& run, const std::string& base_url, TaskWindow window) {
  json::array params;
  for (const auto& [k, v] : run.view.parameters) {
    params.push_back(json::object{{"name", k}, {"default", ""}, {"value", v}});
  }
  const auto& all = run.view.tasks;
  const size_t begin = std::min(window.offset, all.size());
  const size_t end = std::min(all.size(), begin + window.count);
  json::array tasks;
  for (size_t i = begin; i < end; ++i) tasks.push_back(task_run_json(run, all[i], base_url));
  json::object out{{"run_id", run.view.run_id},
                   {"number_in_job", run.view.run_id},
                   {"run_name", run.run_name},
                   {"run_page_url", page_url(run, run.view.run_id, base_url)},
                   {"run_type", run.submit ? "SUBMIT_RUN" : "JOB_RUN"},
                   {"trigger", "ONE_TIME"},
                   {"attempt_number", 0},
                   {"start_time", run.start_ms},
                   {"end_time", run.end_ms},
                   {"state", state_json(run)},
                   {"status", status_json(run)},
                   {"tasks", std::move(tasks)},
                   {"job_parameters", std::move(params)}};
  if (!run.submit) out["job_id"] = run.view.job_id;
  return out;
}

json::array repair_history_json(const Run& run) {
  const auto ids = [](const std::vector<int64_t>& task_run_ids) {
    json::array out;
    for (int64_t id : task_run_ids) out.push_back(id);
    return out;
  };
  json::array history{json::object{{"type", "ORIGINAL"},
                                   {"start_time", run.start_ms},
                                   {"task_run_ids", ids(run.view.original_task_run_ids)}}};
  for (const SimulatedRepair& repair : run.view.repairs) {
    history.push_back(json::object{{"type", "REPAIR"},
                                   {"id", repair.repair_id},
                                   {"start_time", repair.start_ms},
                                   {"task_run_ids", ids(repair.task_run_ids)}});
  }
  return history;
}

json::object task_run_json(const Run& run, const SimulatedTaskRun& task,
                           const std::string& base_url) {
  json::object state = state_json(run);
  json::object status = status_json(run);
  if (!task.result_state.empty()) {  // ended on its own, whatever the run does now
    state = json::object{{"life_cycle_state", "TERMINATED"},
                         {"result_state", task.result_state},
                         {"state_message", ""},
                         {"user_cancelled_or_timedout", false}};
    status = json::object{{"state", "TERMINATED"}};
  }
  json::object out{{"run_id", task.run_id},
                   {"task_key", task.task_key},
                   {"run_page_url", page_url(run, task.run_id, base_url)},
                   {"attempt_number", 0},
                   {"start_time", run.start_ms},
                   {"end_time", run.end_ms},
                   {"state", std::move(state)},
                   {"status", std::move(status)}};
  if (!run.submit) out["job_id"] = run.view.job_id;
  return out;
}

json::object run_output_json(const Run& run, const SimulatedTaskRun& task,
                             const std::string& base_url) {
  json::object out{{"metadata", task_run_json(run, task, base_url)}};
  if (!run.done) return out;
  if (run.view.result_state == "SUCCESS") {
    const std::string result =
        run.job.notebook_result.empty() ? json::serialize(run.job.output) : run.job.notebook_result;
    out["notebook_output"] = json::object{{"result", result}, {"truncated", false}};
  } else if (run.view.result_state != "CANCELED") {
    out["error"] = run.state_message;
  }
  return out;
}

std::string param_text(const json::value& v) {
  return v.is_string() ? std::string(v.get_string()) : json::serialize(v);
}

void collect_params(const json::value* obj, std::map<std::string, std::string>& into) {
  if (obj == nullptr || !obj->is_object()) return;
  for (const auto& [k, v] : obj->get_object()) into[std::string(k)] = param_text(v);
}

void collect_task_params(const json::object& task, std::map<std::string, std::string>& into) {
  collect_params(task_field(task, "notebook_task", "base_parameters"), into);
  collect_params(task_field(task, "python_wheel_task", "named_parameters"), into);
  collect_params(task_field(task, "sql_task", "parameters"), into);
  collect_flag_params(task_field(task, "spark_python_task", "parameters"), into);
  collect_flag_params(task_field(task, "python_wheel_task", "parameters"), into);
  collect_flag_params(task_field(task, "spark_jar_task", "parameters"), into);
}

bool same_name_ignoring_case(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [&](char x, char y) { return lower(x) == lower(y); });
}

}  // namespace brickwork::simulator_detail
