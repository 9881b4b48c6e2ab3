// Plain-value tests for what the new step types read: the tasks[] of
// runs/get, the step output of a get-output body, jobs/list pages, and the
// simulator file's task keys.
#include <gtest/gtest.h>

#include "daemon/databricks/api.hpp"
#include "daemon/databricks/client.hpp"
#include "daemon/databricks/parsing.hpp"
#include "devstack/simulator.hpp"

namespace brickwork {
namespace {

json::object body_of(const char* text) { return json::parse(text).as_object(); }

TEST(OutputFromRunOutput, JsonObjectResultIsTheOutput) {
  const auto out = output_from_run_output(body_of(
      R"({"metadata": {"run_id": 5}, "notebook_output": {"result": "{\"rows\": 42, \"ok\": true}",
          "truncated": false}})"));
  EXPECT_EQ(out, (json::object{{"rows", 42}, {"ok", true}}));
}

TEST(OutputFromRunOutput, AnythingElseIsText) {
  for (const char* text : {"done: 42 rows", "42", "[1, 2]", "\"quoted\"", "{not json", "", " ",
                           "null", "{\"a\": 1} trailing"}) {
    json::object body{{"notebook_output", json::object{{"result", text}}}};
    EXPECT_EQ(output_from_run_output(body), (json::object{{"result", text}})) << text;
  }
  // Deeper than brickwork's JSON depth limit: kept as text, never a crash.
  std::string deep;
  for (int i = 0; i < 200; ++i) deep += "{\"a\":";
  deep += "1";
  for (int i = 0; i < 200; ++i) deep += "}";
  json::object body{{"notebook_output", json::object{{"result", deep}}}};
  EXPECT_EQ(output_from_run_output(body), (json::object{{"result", deep}}));
}

TEST(OutputFromRunOutput, NoNotebookResultIsEmpty) {
  for (const char* text : {
           R"({})",
           R"({"metadata": {"run_id": 1}, "error": "boom"})",
           R"({"notebook_output": {}})",
           R"({"notebook_output": null})",
           R"({"notebook_output": "text"})",
           R"({"notebook_output": {"result": null}})",
           R"({"notebook_output": {"result": 42}})",
           R"({"notebook_output": {"result": {"rows": 1}}})",
           R"({"sql_output": {"query_output": {}}})",
       }) {
    EXPECT_TRUE(output_from_run_output(body_of(text)).empty()) << text;
  }
}

TEST(ParseRunInfoTasks, ListedInOrder) {
  auto r = parse_run_info(json::parse(R"({"run_id": 7, "state": {"life_cycle_state": "RUNNING"},
      "tasks": [{"run_id": 9, "task_key": "extract", "state": {}},
                {"run_id": 8, "task_key": "load"},
                {"run_id": 10}]})"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->tasks.size(), 3u);
  EXPECT_EQ(r->tasks[0].run_id, 9);
  EXPECT_EQ(r->tasks[0].task_key, "extract");
  EXPECT_EQ(r->tasks[1].run_id, 8);
  EXPECT_EQ(r->tasks[1].task_key, "load");
  EXPECT_EQ(r->tasks[2].task_key, "");

  for (const char* none :
       {R"({"run_id": 1, "state": {"life_cycle_state": "PENDING"}})",
        R"({"run_id": 1, "state": {"life_cycle_state": "PENDING"}, "tasks": null})",
        R"({"run_id": 1, "state": {"life_cycle_state": "PENDING"}, "tasks": []})"}) {
    auto empty = parse_run_info(json::parse(none));
    ASSERT_TRUE(empty.ok()) << none;
    EXPECT_TRUE(empty->tasks.empty()) << none;
  }
}

TEST(ParseRunInfoTasks, IllTypedEntriesAreRefused) {
  for (const char* bad : {
           R"({"tasks": {}})",
           R"({"tasks": "task_1"})",
           R"({"tasks": [1]})",
           R"({"tasks": [null]})",
           R"({"tasks": [{"task_key": "a"}]})",
           R"({"tasks": [{"run_id": "9", "task_key": "a"}]})",
           R"({"tasks": [{"run_id": 9.5}]})",
           R"({"tasks": [{"run_id": 18446744073709551615}]})",
           R"({"tasks": [{"run_id": 9, "task_key": 3}]})",
           R"({"tasks": [{"run_id": 9, "task_key": "a"}, {"run_id": null}]})",
       }) {
    json::object body = body_of(bad);
    body["run_id"] = 7;
    body["state"] = json::object{{"life_cycle_state", "RUNNING"}};
    auto r = parse_run_info(body);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalidInput) << bad;
    EXPECT_NE(r.error().message.find("tasks"), std::string::npos) << r.error().message;
  }
}

// A later page of a 2.2 runs/get need not repeat the run's state.
TEST(ParseRunInfoTasks, LaterPageHoldsOnlyTasks) {
  auto tasks = parse_run_tasks(json::parse(R"({"tasks": [{"run_id": 101, "task_key": "t101"}],
      "next_page_token": "x"})"));
  ASSERT_TRUE(tasks.ok()) << tasks.error().message;
  ASSERT_EQ(tasks->size(), 1u);
  EXPECT_EQ((*tasks)[0].run_id, 101);
  EXPECT_FALSE(parse_run_tasks(json::parse(R"({"tasks": [{"task_key": "t"}]})")).ok());
  EXPECT_FALSE(parse_run_tasks(json::parse("[]")).ok());
}

TEST(JobsListPage, MatchesExactNamesOnly) {
  auto page = parse_jobs_list_page(json::parse(R"({"jobs": [
      {"job_id": 1, "settings": {"name": "nightly"}},
      {"job_id": 2, "settings": {"name": "Nightly"}},
      {"job_id": 3, "settings": {"name": "nightly "}},
      {"job_id": 4, "settings": {}},
      {"settings": {"name": "other"}},
      {"job_id": 5},
      {"job_id": 6, "settings": {"name": "nightly", "tasks": []}}],
      "has_more": true, "next_page_token": "abc+/="})"),
                                   "nightly");
  ASSERT_TRUE(page.ok()) << page.error().message;
  EXPECT_EQ(page->matching_job_ids, (std::vector<int64_t>{1, 6}));
  EXPECT_EQ(page->next_page_token, "abc+/=");

  for (const char* empty : {R"({})", R"({"has_more": false})", R"({"jobs": null})",
                            R"({"jobs": []})", R"({"jobs": [], "next_page_token": null})"}) {
    auto r = parse_jobs_list_page(json::parse(empty), "nightly");
    ASSERT_TRUE(r.ok()) << empty;
    EXPECT_TRUE(r->matching_job_ids.empty()) << empty;
    EXPECT_EQ(r->next_page_token, "") << empty;
  }
}

TEST(JobsListPage, UnreadablePagesAreErrors) {
  for (const char* bad : {
           R"([])",
           R"({"jobs": {}})",
           R"({"jobs": [1]})",
           R"({"jobs": [{"job_id": 1, "settings": "nightly"}]})",
           R"({"jobs": [{"job_id": 1, "settings": {"name": 7}}]})",
           R"({"jobs": [{"settings": {"name": "nightly"}}]})",
           R"({"jobs": [{"job_id": "1", "settings": {"name": "nightly"}}]})",
           R"({"jobs": [], "next_page_token": 5})",
       }) {
    auto r = parse_jobs_list_page(json::parse(bad), "nightly");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalidInput) << bad;
    EXPECT_EQ(r.error().code, "bad_response") << bad;
  }
}

TEST(PercentEncode, KeepsUnreservedOnly) {
  using databricks_parsing::percent_encode;
  EXPECT_EQ(percent_encode("nightly_sales-v2.1~x"), "nightly_sales-v2.1~x");
  EXPECT_EQ(percent_encode("a b&c=d+e/f?g#h%"), "a%20b%26c%3Dd%2Be%2Ff%3Fg%23h%25");
  EXPECT_EQ(percent_encode("\xC3\xA9t\xC3\xA9"), "%C3%A9t%C3%A9");
  EXPECT_EQ(percent_encode(""), "");
}

TEST(SimulatorFileTasks, TasksAndNotebookResult) {
  auto r = parse_simulator_jobs(R"(
jobs:
  - job_id: 7
    name: fan_out
    tasks: 3
    notebook_result: '{"rows": 42}'
  - job_id: 8
    name: plain
)");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->jobs.at(7).tasks, 3);
  EXPECT_EQ(r->jobs.at(7).notebook_result, R"({"rows": 42})");
  EXPECT_EQ(r->jobs.at(8).tasks, 1);
  EXPECT_EQ(r->jobs.at(8).notebook_result, "");
  EXPECT_FALSE(parse_simulator_jobs("jobs:\n  - job_id: 1\n    tasks: 0\n").ok());
  EXPECT_FALSE(parse_simulator_jobs("jobs:\n  - job_id: 1\n    tasks: 1001\n").ok());
  EXPECT_FALSE(parse_simulator_jobs("jobs:\n  - job_id: 1\n    tasks: many\n").ok());
}

}  // namespace
}  // namespace brickwork
