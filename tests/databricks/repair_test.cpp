// jobs/runs/repair as brickwork reads and writes it (daemon/databricks/repair).
#include <gtest/gtest.h>

#include "daemon/databricks/repair.hpp"

namespace brickwork {
namespace {

json::value runs_get(const std::string& run_result, const std::vector<std::string>& task_results,
                     json::array history = {}) {
  json::array tasks;
  for (size_t i = 0; i < task_results.size(); ++i) {
    tasks.push_back(json::object{
        {"run_id", 2000 + static_cast<int64_t>(i)},
        {"task_key", "t" + std::to_string(i + 1)},
        {"state", json::object{{"life_cycle_state", "TERMINATED"},
                               {"result_state", task_results[i]}}}});
  }
  json::object body{{"run_id", 1001},
                    {"job_id", 7},
                    {"run_page_url", "https://x/#job/7/run/1001"},
                    {"state", json::object{{"life_cycle_state", "TERMINATED"},
                                           {"result_state", run_result}}},
                    {"tasks", std::move(tasks)}};
  if (!history.empty()) body["repair_history"] = std::move(history);
  return body;
}

TEST(RepairableRun, ReadsTaskResultsAndTheLatestRepairFromTheHistory) {
  auto run = parse_repairable_run(runs_get(
      "FAILED", {"SUCCESS", "FAILED", "UPSTREAM_FAILED"},
      json::array{json::object{{"type", "ORIGINAL"}, {"task_run_ids", json::array{1, 2}}},
                  json::object{{"type", "REPAIR"}, {"id", 734650698524001}},
                  json::object{{"type", "REPAIR"}, {"id", 734650698524002}}}));
  ASSERT_TRUE(run.ok()) << run.error().message;
  EXPECT_EQ(run->latest_repair_id, 734650698524002);
  EXPECT_EQ(run->failed_tasks(), (std::vector<std::string>{"t2", "t3"}));
  EXPECT_TRUE(run->worth_repairing());
  EXPECT_TRUE(run->all_tasks_listed);
}

TEST(RepairableRun, OnlyAFailedRunWithSomeTasksSucceededIsWorthRepairing) {
  auto none_before = parse_repairable_run(runs_get("FAILED", {"SUCCESS", "FAILED"}));
  ASSERT_TRUE(none_before.ok());
  EXPECT_FALSE(none_before->latest_repair_id);
  EXPECT_TRUE(none_before->worth_repairing());
  for (const auto& [result, tasks] :
       std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"SUCCESS", {"SUCCESS", "SUCCESS"}},
           {"FAILED", {"FAILED", "FAILED"}},      // nothing kept: a new run is the same
           {"CANCELED", {"SUCCESS", "CANCELED"}}}) {  // stopped by someone
    auto run = parse_repairable_run(runs_get(result, tasks));
    ASSERT_TRUE(run.ok());
    EXPECT_FALSE(run->worth_repairing()) << result;
  }
}

TEST(RepairableRun, RefusesAHistoryItDoesNotUnderstand) {
  EXPECT_FALSE(parse_repairable_run(runs_get("FAILED", {"FAILED"}, json::array{json::object{
                                                                 {"type", "REPAIR"}}}))
                   .ok());
  json::value body = runs_get("FAILED", {"FAILED"});
  body.as_object()["repair_history"] = "yes";
  EXPECT_FALSE(parse_repairable_run(body).ok());
}

TEST(RepairBody, NamesTheTasksOrAllFailedOnesAndTheLatestRepair) {
  RepairRequest first{1001, std::nullopt, {"t2"}, {{"brickwork_token", "2.x"}}, {}};
  EXPECT_EQ(json::serialize(repair_body(first)),
            R"({"run_id":1001,"rerun_tasks":["t2"],"job_parameters":{"brickwork_token":"2.x"}})");
  RepairRequest again{1001, 55, {}, {}, {{"brickwork_token", "3.y"}}};
  EXPECT_EQ(json::serialize(repair_body(again)),
            R"({"run_id":1001,"latest_repair_id":55,"rerun_all_failed_tasks":true,)"
            R"("notebook_params":{"brickwork_token":"3.y"}})");
}

}  // namespace
}  // namespace brickwork
