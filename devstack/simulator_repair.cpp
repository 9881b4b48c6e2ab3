// The simulator's jobs/runs/repair, as docs/DATABRICKS.md "Repairing a run"
// describes the real one: the failed (or named) tasks of a finished run run
// again inside it, each as a new task run; the run keeps its id, goes back
// to PENDING and ends again with its tasks' results. Called by route()
// under the lock.
#include <algorithm>

#include "devstack/simulator_impl.hpp"

namespace brickwork {

namespace {

using simulator_detail::api_error;
using simulator_detail::collect_params;
using simulator_detail::json_response;
using simulator_detail::request_int64;
using simulator_detail::Run;

http::ServerResponse invalid_repair(const std::string& message) {
  return api_error(400, "INVALID_PARAMETER_VALUE", message);
}

bool task_succeeded(const Run& run, const SimulatedTaskRun& task) {
  const std::string& result = task.result_state.empty() ? run.view.result_state : task.result_state;
  return result == "SUCCESS";
}

}  // namespace

http::ServerResponse DatabricksSimulator::Impl::repair(const json::object& o) {
  ++stats.repair_calls;
  stats.repairs_received.push_back(o);
  const auto run_id = request_int64(o.if_contains("run_id"));
  if (!run_id) return invalid_repair("Missing required field: run_id");
  auto it = runs.find(*run_id);
  if (it == runs.end()) return invalid_repair("Run " + std::to_string(*run_id) + " does not exist.");
  Run& run = it->second;
  if (!run.done) {
    return api_error(400, "INVALID_STATE",
                     "Run " + std::to_string(*run_id) + " is still active; it cannot be repaired.");
  }
  // Repairs of one run are sequential: each names the one before.
  // (No optional<int64_t> for the latest: GCC's -O1 -fsanitize=thread build
  // warns it may be used uninitialized.)
  const bool repaired_before = !run.view.repairs.empty();
  const int64_t latest = repaired_before ? run.view.repairs.back().repair_id : 0;
  const auto given = request_int64(o.if_contains("latest_repair_id"));
  if (repaired_before && !given) {
    return invalid_repair("The latest repair ID needs to be provided in order to create a new repair");
  }
  if (given.has_value() != repaired_before || (given && *given != latest)) {
    return invalid_repair("latest_repair_id " + std::to_string(given.value_or(0)) +
                   " is not the latest repair of run " + std::to_string(*run_id));
  }
  const json::value* named = o.if_contains("rerun_tasks");
  const json::value* all_failed = o.if_contains("rerun_all_failed_tasks");
  const bool rerun_all_failed = all_failed != nullptr && all_failed->is_bool() && all_failed->as_bool();
  if ((named != nullptr) == rerun_all_failed) {
    return invalid_repair("Exactly one of rerun_tasks or rerun_all_failed_tasks must be given.");
  }
  std::vector<std::string> keys;
  if (rerun_all_failed) {
    for (const SimulatedTaskRun& task : run.view.tasks) {
      if (!task_succeeded(run, task)) keys.push_back(task.task_key);
    }
  } else {
    if (!named->is_array() || named->as_array().empty()) {
      return invalid_repair("rerun_tasks must be a non-empty list of task keys");
    }
    for (const json::value& key : named->as_array()) {
      const bool known = key.is_string() &&
                         std::any_of(run.view.tasks.begin(), run.view.tasks.end(),
                                     [&](const SimulatedTaskRun& t) { return t.task_key == key.as_string(); });
      if (!known) return invalid_repair("Task " + json::serialize(key) + " is not a task of this run.");
      keys.emplace_back(key.as_string());
    }
  }
  if (keys.empty()) return invalid_repair("The run has no failed tasks to repair.");

  collect_params(o.if_contains("job_parameters"), run.view.parameters);
  collect_params(o.if_contains("notebook_params"), run.view.parameters);
  SimulatedRepair repair{next_repair_id++, to_epoch_ms(now_ms()), keys, {}};
  for (SimulatedTaskRun& task : run.view.tasks) {
    if (std::find(keys.begin(), keys.end(), task.task_key) == keys.end()) continue;
    // Tasks that did not run again keep their result; these start anew.
    task.run_id = next_run_id++;
    task.result_state.clear();
    run_of_task[task.run_id] = run.view.run_id;
    ++run.task_runs[task.task_key];
    repair.task_run_ids.push_back(task.run_id);
  }
  for (SimulatedTaskRun& task : run.view.tasks) {
    // Until now they mirrored the run; from now on they keep their own result.
    if (task.result_state.empty() && std::find(keys.begin(), keys.end(), task.task_key) == keys.end()) {
      task.result_state = run.view.result_state;
    }
  }
  run.view.repairs.push_back(repair);
  run.done = false;
  run.view.life_cycle_state = "PENDING";
  run.view.result_state.clear();
  run.view.event_emitted = false;
  run.view.cancel_requested = false;
  run.state_message = "Waiting for cluster";
  run.term_code.clear();
  run.term_type.clear();
  run.end_ms = 0;
  const auto now = SteadyClock::now();
  run.running_at = now + std::min(options.pending_for, run.job.duration);
  run.ends_at = now + run.job.duration;
  due.emplace(run.running_at, run.view.run_id);
  due.emplace(run.ends_at, run.view.run_id);
  wake.notify_all();
  return json_response(200, json::object{{"repair_id", repair.repair_id}});
}

}  // namespace brickwork
