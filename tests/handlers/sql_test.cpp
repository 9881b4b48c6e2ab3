// The sql step's two pure halves: what it sends as parameters, and what a
// StatementResponse becomes.
#include <gtest/gtest.h>

#include "daemon/databricks/api.hpp"
#include "daemon/engine/engine.hpp"

namespace brickwork {

json::array sql_parameters(const json::object& parameters);
Result<StepOutcome> sql_outcome(const json::value& response, int64_t row_limit,
                                DatabricksApi* databricks);

namespace {

TEST(SqlParameters, ValuesAreParametersWithTypesNeverText) {
  const json::array p = sql_parameters(json::object{{"name", "x' OR '1'='1"},
                                                    {"n", 42},
                                                    {"f", 1.5},
                                                    {"b", true},
                                                    {"none", nullptr},
                                                    {"obj", json::object{{"a", 1}}}});
  EXPECT_EQ(p, json::parse(R"([
    {"name": "name", "value": "x' OR '1'='1"},
    {"name": "n", "value": "42", "type": "BIGINT"},
    {"name": "f", "value": "1.5E0", "type": "DOUBLE"},
    {"name": "b", "value": "true", "type": "BOOLEAN"},
    {"name": "none"},
    {"name": "obj", "value": "{\"a\":1}"}])"));
}

TEST(SqlOutcome, SucceededKeepsRowsUpToTheLimit) {
  const json::value response = json::parse(R"({
    "statement_id": "s-1", "status": {"state": "SUCCEEDED"},
    "manifest": {"schema": {"columns": [{"name": "id"}, {"name": "v"}]},
                 "total_row_count": 3, "total_chunk_count": 1, "truncated": false},
    "result": {"data_array": [["1", "a"], ["2", null], ["3", "c"]]}})");
  auto all = sql_outcome(response, 1000, nullptr);
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(all->kind, StepOutcome::Kind::kSucceeded);
  EXPECT_EQ(all->output, json::parse(R"({"statement_id": "s-1", "columns": ["id", "v"],
      "rows": [["1", "a"], ["2", null], ["3", "c"]], "row_count": 3, "truncated": false})"));
  auto two = sql_outcome(response, 2, nullptr);
  ASSERT_TRUE(two);
  EXPECT_EQ(two->output.at("rows").as_array().size(), 2u);
  EXPECT_EQ(two->output.at("truncated"), true);
  EXPECT_EQ(two->output.at("row_count"), 3);
}

TEST(SqlOutcome, RunningFailedAndCanceled) {
  auto running = sql_outcome(json::parse(R"({"statement_id": "s-2", "status": {"state": "PENDING"}})"),
                             10, nullptr);
  ASSERT_TRUE(running);
  EXPECT_EQ(running->kind, StepOutcome::Kind::kStarted);
  EXPECT_EQ(running->handle, json::parse(R"({"statement_id": "s-2"})"));
  auto failed = sql_outcome(json::parse(R"({"statement_id": "s-3", "status": {"state": "FAILED",
      "error": {"error_code": "BAD_REQUEST", "message": "[PARSE_SYNTAX_ERROR] near 'SELEC'"}}})"),
                            10, nullptr);
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->kind, StepOutcome::Kind::kFailed);
  EXPECT_EQ(failed->error, (StepError{"BAD_REQUEST", "[PARSE_SYNTAX_ERROR] near 'SELEC'"}));
  auto canceled = sql_outcome(json::parse(R"({"statement_id": "s-4", "status": {"state": "CANCELED"}})"),
                              10, nullptr);
  ASSERT_TRUE(canceled);
  EXPECT_EQ(canceled->error.code, "CANCELED");
  EXPECT_FALSE(sql_outcome(json::parse(R"({"status": {}})"), 10, nullptr));
}

}  // namespace
}  // namespace brickwork
