#include "daemon/databricks/repair.hpp"

#include "daemon/databricks/parsing.hpp"

namespace brickwork {
namespace {

using databricks_parsing::as_int64;

Error invalid(std::string message) {
  return Error{ErrorKind::kInvalidInput, "bad_run_info", std::move(message)};
}

bool task_succeeded(const RunTask& task) {
  return task.result_state == "SUCCESS" || task.result_state == "SUCCESS_WITH_FAILURES";
}

json::object string_map(const std::map<std::string, std::string>& values) {
  json::object out;
  for (const auto& [name, value] : values) out[name] = value;
  return out;
}

}  // namespace

std::vector<std::string> RepairableRun::failed_tasks() const {
  std::vector<std::string> keys;
  for (const RunTask& task : run.tasks) {
    if (!task_succeeded(task)) keys.push_back(task.task_key);
  }
  return keys;
}

bool RepairableRun::worth_repairing() const {
  if (!run.terminal() || run.succeeded() || run.life_cycle_state == "SKIPPED") return false;
  if (run.result_state == "CANCELED") return false;  // someone stopped it: run it anew
  bool some_succeeded = false;
  bool some_failed = !all_tasks_listed;
  for (const RunTask& task : run.tasks) {
    (task_succeeded(task) ? some_succeeded : some_failed) = true;
  }
  return some_succeeded && some_failed;
}

Result<RepairableRun> parse_repairable_run(const json::value& body) {
  auto run = parse_run_info(body);
  if (!run) return run.error();
  RepairableRun out{std::move(*run), std::nullopt, true};
  auto token = databricks_parsing::next_page_token(body, "jobs/runs/get");
  if (!token) return token.error();
  out.all_tasks_listed = token->empty();
  const json::value* history = body.as_object().if_contains("repair_history");
  if (history == nullptr || history->is_null()) return out;
  if (!history->is_array()) return invalid("repair_history is not an array");
  for (const json::value& item : history->as_array()) {
    const json::object* o = item.if_object();
    if (o == nullptr) return invalid("repair_history holds a non-object");
    const json::value* type = o->if_contains("type");
    if (type == nullptr || !type->is_string() || type->as_string() != "REPAIR") continue;
    const json::value* id = o->if_contains("id");
    const std::optional<int64_t> repair_id = id != nullptr ? as_int64(*id) : std::nullopt;
    if (!repair_id) return invalid("a REPAIR item of repair_history has no integer id");
    out.latest_repair_id = *repair_id;  // oldest first: the last one is the latest
  }
  return out;
}

Result<RepairableRun> get_repairable_run(DatabricksApi& api, int64_t run_id) {
  auto body = api.call("GET",
                       "/api/2.2/jobs/runs/get?run_id=" + std::to_string(run_id) +
                           "&include_history=true",
                       nullptr, true);
  if (!body) return body.error();
  return parse_repairable_run(*body);
}

json::object repair_body(const RepairRequest& request) {
  json::object body{{"run_id", request.run_id}};
  if (request.latest_repair_id) body["latest_repair_id"] = *request.latest_repair_id;
  if (request.rerun_tasks.empty()) {
    body["rerun_all_failed_tasks"] = true;
  } else {
    json::array keys;
    for (const std::string& key : request.rerun_tasks) keys.push_back(json::string(key));
    body["rerun_tasks"] = std::move(keys);
  }
  if (!request.job_parameters.empty()) body["job_parameters"] = string_map(request.job_parameters);
  if (!request.notebook_params.empty()) {
    body["notebook_params"] = string_map(request.notebook_params);
  }
  return body;
}

Result<int64_t> repair_run(DatabricksApi& api, const RepairRequest& request) {
  const json::value body = repair_body(request);
  auto answer = api.call("POST", "/api/2.2/jobs/runs/repair", &body, false);
  if (!answer) return answer.error();
  const json::object* o = answer->if_object();
  const json::value* id = o != nullptr ? o->if_contains("repair_id") : nullptr;
  const std::optional<int64_t> repair_id = id != nullptr ? as_int64(*id) : std::nullopt;
  if (!repair_id) {
    return Error{ErrorKind::kInvalidInput, "bad_response", "jobs/runs/repair: no repair_id"};
  }
  return *repair_id;
}

}  // namespace brickwork
