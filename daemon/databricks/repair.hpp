#pragma once
// jobs/runs/repair (docs/DATABRICKS.md "Repairing a run"): the failed tasks
// of a finished run run again inside that run, which keeps its run id; the
// tasks that succeeded are not run again. Over DatabricksApi::call, so the
// interface (and every fake of it) stays as it is.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "daemon/databricks/api.hpp"

namespace brickwork {

// A run as a repair sees it: jobs/runs/get with include_history=true.
struct RepairableRun {
  RunInfo run;
  // The id of its latest repair (the last REPAIR item of repair_history);
  // none before its first repair.
  std::optional<int64_t> latest_repair_id;
  // tasks[] holds every task run (no further page).
  bool all_tasks_listed = true;

  // Task keys of the task runs that did not succeed (listed ones only).
  std::vector<std::string> failed_tasks() const;
  // It ended failed (not canceled by a user, not skipped) and some of its
  // tasks succeeded while others did not: a repair runs less than a new run.
  bool worth_repairing() const;
};

// Pure: a runs/get body (include_history=true). Ill-typed fields are refused
// as parse_run_info refuses them.
Result<RepairableRun> parse_repairable_run(const json::value& body);
// GET /api/2.2/jobs/runs/get?run_id=&include_history=true. Safe to repeat.
Result<RepairableRun> get_repairable_run(DatabricksApi& api, int64_t run_id);

struct RepairRequest {
  int64_t run_id = 0;
  // Required by the API from the second repair of a run on.
  std::optional<int64_t> latest_repair_id;
  // Empty: rerun_all_failed_tasks (when not every task run could be listed).
  std::vector<std::string> rerun_tasks;
  std::map<std::string, std::string> job_parameters;   // a job's run (run_job)
  std::map<std::string, std::string> notebook_params;  // a one-time run's notebook tasks
};

// Pure: the request body.
json::object repair_body(const RepairRequest& request);
// POST /api/2.2/jobs/runs/repair: the new repair's id. Not safe to repeat
// blindly (each call is a repair): a caller that may repeat it first checks
// latest_repair_id.
Result<int64_t> repair_run(DatabricksApi& api, const RepairRequest& request);

}  // namespace brickwork
