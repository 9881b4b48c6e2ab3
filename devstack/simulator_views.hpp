#pragma once
// Inside the simulator: one run as it is kept, and the pure functions that
// turn it into the Jobs API's JSON (runs/get, tasks[], runs/get-output) or
// read a request's parameters. No locks, no clock: simulator.cpp owns the
// state and calls these under its lock.
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "devstack/simulator.hpp"

namespace brickwork::simulator_detail {

struct Run {
  SimulatedRun view;  // its tasks mirror the run's state
  bool submit = false;
  std::string run_name;
  SimulatedJob job;
  std::chrono::steady_clock::time_point running_at;
  std::chrono::steady_clock::time_point ends_at;
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  std::string state_message;
  std::string term_code;
  std::string term_type;
  bool done = false;
  std::map<std::string, int32_t> task_runs;  // task key → runs of it started (repairs too)
};

// A window of a run's tasks[] (API 2.2 pages them by 100; 2.1 lists all).
struct TaskWindow {
  size_t offset = 0;
  size_t count = 0;
};

// The runs/get body, with tasks[offset, offset + count).
json::object run_json(const Run& run, const std::string& base_url, TaskWindow tasks);

// runs/get's repair_history (include_history=true): the ORIGINAL run, then
// each REPAIR with its id, oldest first.
json::array repair_history_json(const Run& run);

// tasks[i] as runs/get lists it; also the `metadata` of its get-output.
json::object task_run_json(const Run& run, const SimulatedTaskRun& task,
                           const std::string& base_url);

// The runs/get-output body of one task run: metadata always; once the run
// ended SUCCESS, notebook_output {result, truncated: false} with the job's
// notebook_result, else its output serialized as JSON; after a failure,
// `error` with the state message (a failed notebook never reached exit()).
json::object run_output_json(const Run& run, const SimulatedTaskRun& task,
                             const std::string& base_url);

// A parameter value as Databricks keeps it: strings as they are, anything
// else as its JSON text.
std::string param_text(const json::value& v);
// Every key of a JSON object into `into`; anything else is ignored.
void collect_params(const json::value* obj, std::map<std::string, std::string>& into);
// The parameters one submitted task carries, wherever its type keeps them:
// notebook_task.base_parameters, python_wheel_task.named_parameters and
// sql_task.parameters (maps); spark_python_task.parameters,
// python_wheel_task.parameters and spark_jar_task.parameters (argument lists
// read as "--name value" or "--name=value").
void collect_task_params(const json::object& task, std::map<std::string, std::string>& into);

// jobs/list's name filter: exact but case-insensitive (ASCII), as documented.
bool same_name_ignoring_case(std::string_view a, std::string_view b);

}  // namespace brickwork::simulator_detail
