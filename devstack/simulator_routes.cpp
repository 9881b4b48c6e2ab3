// The simulator's Jobs API routes: run-now, runs/submit, runs/get,
// runs/get-output, jobs/list and runs/cancel, answered as
// docs/DATABRICKS.md describes. Called by route() under the lock.
#include <algorithm>

#include "daemon/core/base64.hpp"
#include "devstack/simulator_impl.hpp"

namespace brickwork {

namespace {

using simulator_detail::api_error;
using simulator_detail::collect_params;
using simulator_detail::collect_task_params;
using simulator_detail::json_response;
using simulator_detail::repair_history_json;
using simulator_detail::request_int64;
using simulator_detail::Run;
using simulator_detail::same_name_ignoring_case;
using simulator_detail::TaskWindow;

// API 2.2 lists at most this many tasks per runs/get response.
constexpr size_t kTasksPerPage = 100;
constexpr char kMultiTaskOutput[] =
    "Retrieving the output of runs with multiple tasks is not supported. Please retrieve the "
    "output of each individual task run instead.";

}  // namespace

std::optional<http::ServerResponse> DatabricksSimulator::Impl::check_token(const json::object& o,
                                                                           std::string& token) {
  const json::value* t = o.if_contains("idempotency_token");
  if (t == nullptr || t->is_null()) return std::nullopt;
  if (!t->is_string()) {
    return api_error(400, "INVALID_PARAMETER_VALUE", "idempotency_token must be a string");
  }
  token = std::string(t->get_string());
  if (token.size() > 64) {
    return api_error(400, "INVALID_PARAMETER_VALUE",
                     "idempotency_token must be at most 64 characters");
  }
  return std::nullopt;
}

http::ServerResponse DatabricksSimulator::Impl::run_now(const json::object& o) {
  ++stats.run_now_calls;
  const json::value* jid = o.if_contains("job_id");
  if (jid == nullptr) {
    return api_error(400, "INVALID_PARAMETER_VALUE", "Missing required field: job_id");
  }
  const auto job_id = request_int64(jid);
  if (!job_id) return api_error(400, "INVALID_PARAMETER_VALUE", "Invalid value for field job_id");
  std::string token;
  if (auto bad = check_token(o, token)) return *bad;
  if (!token.empty()) {
    if (auto it = run_by_token.find(token); it != run_by_token.end()) {
      return json_response(200,
                           json::object{{"run_id", it->second}, {"number_in_job", it->second}});
    }
  }
  const SimulatedJob* job = nullptr;
  if (auto it = options.jobs.find(*job_id); it != options.jobs.end()) {
    job = &it->second;
  } else if (options.default_job) {
    job = &*options.default_job;
  } else {
    return api_error(400, "INVALID_PARAMETER_VALUE",
                     "Job " + std::to_string(*job_id) + " does not exist.");
  }
  std::map<std::string, std::string> params;
  collect_params(o.if_contains("notebook_params"), params);
  collect_params(o.if_contains("job_parameters"), params);
  const int64_t id = create_run(*job, *job_id, false, job->name, std::move(params), token, {});
  return json_response(200, json::object{{"run_id", id}, {"number_in_job", id}});
}

http::ServerResponse DatabricksSimulator::Impl::submit(const json::object& o) {
  ++stats.submit_calls;
  std::vector<std::string> task_keys;
  std::map<std::string, std::string> params;
  collect_params(o.if_contains("job_parameters"), params);
  if (const json::value* tasks = o.if_contains("tasks"); tasks != nullptr && !tasks->is_null()) {
    if (!tasks->is_array()) {
      return api_error(400, "INVALID_PARAMETER_VALUE", "tasks must be an array");
    }
    for (const auto& t : tasks->get_array()) {
      const json::value* key = t.is_object() ? t.get_object().if_contains("task_key") : nullptr;
      if (key == nullptr || !key->is_string() || key->get_string().empty()) {
        return api_error(400, "INVALID_PARAMETER_VALUE", "Missing required field: task_key");
      }
      task_keys.emplace_back(key->get_string());
      collect_task_params(t.get_object(), params);
    }
  }
  std::string token;
  if (auto bad = check_token(o, token)) return *bad;
  if (!token.empty()) {
    if (auto it = run_by_token.find(token); it != run_by_token.end()) {
      return json_response(200, json::object{{"run_id", it->second}});
    }
  }
  std::string run_name;
  if (const json::value* n = o.if_contains("run_name"); n != nullptr && n->is_string()) {
    run_name = std::string(n->get_string());
  }
  SimulatedJob job;
  bool found = false;
  for (const auto& [id, j] : options.jobs) {
    if (!run_name.empty() && j.name == run_name) {
      job = j;
      found = true;
      break;
    }
  }
  if (!found && options.default_job) job = *options.default_job;
  const int64_t id =
      create_run(job, 0, true, run_name, std::move(params), token, std::move(task_keys));
  return json_response(200, json::object{{"run_id", id}});
}

std::variant<int64_t, http::ServerResponse> DatabricksSimulator::Impl::query_run_id(
    const std::map<std::string, std::string>& query) {
  auto it = query.find("run_id");
  if (it == query.end() || it->second.empty()) {
    return api_error(400, "INVALID_PARAMETER_VALUE", "Missing required field: run_id");
  }
  const json::value text(it->second);
  const auto run_id = request_int64(&text);
  if (!run_id) return api_error(400, "INVALID_PARAMETER_VALUE", "Invalid value for field run_id");
  return *run_id;
}

std::string DatabricksSimulator::Impl::page_token(const std::string& listing, size_t offset) {
  std::string token = base64(listing + "#" + std::to_string(offset));
  page_offsets[token] = offset;
  return token;
}

std::optional<size_t> DatabricksSimulator::Impl::page_offset(
    const std::map<std::string, std::string>& query, const std::string& listing) {
  auto it = query.find("page_token");
  if (it == query.end() || it->second.empty()) return 0;
  auto known = page_offsets.find(it->second);
  if (known == page_offsets.end() || page_token(listing, known->second) != it->second) {
    return std::nullopt;
  }
  return known->second;
}

http::ServerResponse DatabricksSimulator::Impl::get(const std::map<std::string, std::string>& query,
                                                    bool v22) {
  ++stats.get_calls;
  auto id = query_run_id(query);
  if (auto* bad = std::get_if<http::ServerResponse>(&id)) return *bad;
  const int64_t run_id = std::get<int64_t>(id);
  auto run = runs.find(run_id);
  if (run == runs.end()) {
    return api_error(400, "INVALID_PARAMETER_VALUE",
                     "Run " + std::to_string(run_id) + " does not exist.");
  }
  const size_t total = run->second.view.tasks.size();
  if (!v22) return json_response(200, run_json(run->second, base_url, TaskWindow{0, total}));
  const std::string listing = "runs/get:" + std::to_string(run_id);
  const auto offset = page_offset(query, listing);
  if (!offset) return api_error(400, "INVALID_PARAMETER_VALUE", "Invalid page_token");
  json::object body = run_json(run->second, base_url, TaskWindow{*offset, kTasksPerPage});
  if (const auto history = query.find("include_history");
      history != query.end() && history->second == "true") {
    body["repair_history"] = repair_history_json(run->second);
  }
  const bool more = *offset + kTasksPerPage < total;
  body["has_more"] = more;
  if (more) body["next_page_token"] = page_token(listing, *offset + kTasksPerPage);
  return json_response(200, body);
}

http::ServerResponse DatabricksSimulator::Impl::get_output(
    const std::map<std::string, std::string>& query) {
  ++stats.get_output_calls;
  auto id = query_run_id(query);
  if (auto* bad = std::get_if<http::ServerResponse>(&id)) return *bad;
  const int64_t run_id = std::get<int64_t>(id);
  // Jobs API 2.1+ refuses a job run's own id even when it has one task
  // (databricks-sdk-py#375; docs/DATABRICKS.md).
  if (runs.count(run_id) != 0) return api_error(400, "INVALID_PARAMETER_VALUE", kMultiTaskOutput);
  auto owner = run_of_task.find(run_id);
  if (owner == run_of_task.end()) {
    return api_error(400, "INVALID_PARAMETER_VALUE",
                     "Run " + std::to_string(run_id) + " does not exist.");
  }
  const Run& run = runs.at(owner->second);
  const auto task = std::find_if(run.view.tasks.begin(), run.view.tasks.end(),
                                 [&](const SimulatedTaskRun& t) { return t.run_id == run_id; });
  return json_response(200, run_output_json(run, *task, base_url));
}

http::ServerResponse DatabricksSimulator::Impl::list(
    const std::map<std::string, std::string>& query) {
  ++stats.list_calls;
  size_t limit = 20;
  if (auto it = query.find("limit"); it != query.end()) {
    const json::value text(it->second);
    const auto n = request_int64(&text);
    if (!n || *n < 1 || *n > 100) {
      return api_error(400, "INVALID_PARAMETER_VALUE", "limit must be between 1 and 100");
    }
    limit = static_cast<size_t>(*n);
  }
  const auto name = query.find("name");
  const bool filtered = name != query.end() && !name->second.empty();
  std::vector<std::pair<int64_t, const SimulatedJob*>> matching;
  for (const auto& [id, job] : options.jobs) {
    if (!filtered || same_name_ignoring_case(job.name, name->second)) {
      matching.emplace_back(id, &job);
    }
  }
  const std::string listing = "jobs/list:" + (filtered ? name->second : std::string());
  const auto offset = page_offset(query, listing);
  if (!offset) return api_error(400, "INVALID_PARAMETER_VALUE", "Invalid page_token");
  json::array jobs;
  for (size_t i = *offset; i < matching.size() && i < *offset + limit; ++i) {
    jobs.push_back(json::object{{"job_id", matching[i].first},
                                {"settings", json::object{{"name", matching[i].second->name}}}});
  }
  const bool more = *offset + limit < matching.size();
  json::object body{{"has_more", more}};
  if (!jobs.empty()) body["jobs"] = std::move(jobs);
  if (more) body["next_page_token"] = page_token(listing, *offset + limit);
  return json_response(200, body);
}

http::ServerResponse DatabricksSimulator::Impl::cancel(const json::object& o) {
  ++stats.cancel_calls;
  const json::value* rid = o.if_contains("run_id");
  if (rid == nullptr) {
    return api_error(400, "INVALID_PARAMETER_VALUE", "Missing required field: run_id");
  }
  const auto run_id = request_int64(rid);
  if (!run_id) return api_error(400, "INVALID_PARAMETER_VALUE", "Invalid value for field run_id");
  auto it = runs.find(*run_id);
  if (it == runs.end()) {
    return api_error(400, "INVALID_PARAMETER_VALUE",
                     "Run " + std::to_string(*run_id) + " does not exist.");
  }
  Run& run = it->second;
  if (!run.done && !run.view.cancel_requested) {
    run.view.cancel_requested = true;
    run.ends_at = std::min(run.ends_at, SteadyClock::now() + options.cancel_delay);
    due.emplace(run.ends_at, run.view.run_id);
    run.view.life_cycle_state = "TERMINATING";
    run.state_message = "Run is being cancelled.";
    wake.notify_all();
  }
  return json_response(200, json::object());
}

}  // namespace brickwork
