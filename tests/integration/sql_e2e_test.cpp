// The sql step against the simulator's Statement Execution API: parameters
// as parameters, polling of a statement that outlives its wait, the API's
// error on FAILED, and cancel on step timeout.
#include "tests/integration/harness.hpp"

namespace brickwork::testing {
namespace {

class SqlStepTest : public EndToEndTest {
 protected:
  void start(std::vector<SimulatedStatement> statements) {
    LocalStackOptions options;
    options.simulator.statements = std::move(statements);
    auto stack = LocalStack::start(options);
    ASSERT_TRUE(stack) << stack.error().message;
    stack_ = std::move(*stack);
    dir_ = std::filesystem::temp_directory_path() /
           ("brickwork-e2e-" + std::to_string(getpid()) + "-sql-" + std::to_string(counter_++));
    std::filesystem::create_directories(dir_);
  }
};

SimulatedStatement statement(std::string match, int64_t ms, std::string outcome = "SUCCEEDED") {
  SimulatedStatement s;
  s.match = std::move(match);
  s.duration = Duration(ms);
  s.outcome = std::move(outcome);
  s.columns = {"day", "orders"};
  s.rows = json::array{json::array{"2026-11-24", "12"}, json::array{"2026-11-25", nullptr}};
  return s;
}

TEST_F(SqlStepTest, ParametersReachTheApiAsParametersNeverAsText) {
  start({});
  // Not the status topic, whose messages are status events (schemas/).
  ASSERT_TRUE(stack_->kafka().create_topic("sql.results", 1));
  config(R"(  query:
    steps:
      - name: q
        sql:
          warehouse_id: "{{ input.warehouse }}"
          statement: "SELECT :name AS name, :n AS n"
          parameters: {name: "{{ input.name }}", n: 42}
      - name: use
        emit: {topic: sql.results, value: {first: "{{ steps.q.output.rows.0.0 }}"}}
)");
  start_daemon();
  const std::string hostile = "x' OR '1'='1";
  start_workflow("sql-1", "query", {{"warehouse", "wh-1"}, {"name", hostile}});
  auto done = wait_terminal("sql-1");
  ASSERT_TRUE(done);
  ASSERT_EQ(done->status, WorkflowStatus::kSucceeded);
  // The simulator echoes each parameter as a column (named parameters have
  // no order: the stored definition is jsonb, which orders keys its own way).
  const json::object& out = *done->steps[0].output;
  std::map<std::string, json::value> echoed;
  const auto& columns = out.at("columns").as_array();
  const auto& row = out.at("rows").as_array().at(0).as_array();
  ASSERT_EQ(columns.size(), 2u);
  for (size_t i = 0; i < columns.size(); ++i) echoed[std::string(columns[i].as_string())] = row[i];
  EXPECT_EQ(echoed["name"], json::value(hostile));
  EXPECT_EQ(echoed["n"], json::value("42"));
  EXPECT_EQ(out.at("row_count"), 1);
  EXPECT_EQ(out.at("truncated"), false);
  const auto sent = stack_->simulator().stats().statements_received;
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].at("statement"), "SELECT :name AS name, :n AS n");  // the text as written
  EXPECT_EQ(sent[0].at("warehouse_id"), "wh-1");
  std::map<std::string, json::value> parameters;
  for (const auto& p : sent[0].at("parameters").as_array()) {
    parameters[std::string(p.at("name").as_string())] = p;
  }
  EXPECT_EQ(parameters["name"], json::parse(R"({"name": "name", "value": "x' OR '1'='1"})"));
  EXPECT_EQ(parameters["n"], json::parse(R"({"name": "n", "value": "42", "type": "BIGINT"})"));
}

TEST_F(SqlStepTest, AStatementThatOutlivesItsWaitIsPolledByItsId) {
  start({statement("slow", 1500)});
  config(R"(  query:
    steps:
      - name: q
        sql: {warehouse_id: wh-1, statement: "SELECT slow", wait_timeout: 0s, row_limit: 1}
        poll_every: 300ms
)");
  start_daemon();
  start_workflow("sql-2", "query");
  auto done = wait_terminal("sql-2");
  ASSERT_TRUE(done);
  ASSERT_EQ(done->status, WorkflowStatus::kSucceeded);
  const auto stats = stack_->simulator().stats();
  EXPECT_EQ(stats.statements_received.size(), 1u);  // executed once, then polled
  EXPECT_GE(stats.statement_polls, 1);
  const json::object& out = *done->steps[0].output;
  EXPECT_EQ(out.at("rows"), (json::array{json::array{"2026-11-24", "12"}}));
  EXPECT_EQ(out.at("truncated"), true);
  EXPECT_EQ(done->steps[0].handle.at("statement_id"), out.at("statement_id"));
}

TEST_F(SqlStepTest, FailedStatementFailsTheStepWithTheApisError) {
  start({statement("SELEC ", 0, "FAILED")});
  config(R"(  query:
    steps:
      - name: q
        sql: {warehouse_id: wh-1, statement: "SELEC 1"}
)");
  start_daemon();
  start_workflow("sql-3", "query");
  auto done = wait_terminal("sql-3");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kFailed);
  ASSERT_TRUE(done->steps[0].error);
  EXPECT_EQ(done->steps[0].error->code, "BAD_REQUEST");
  EXPECT_EQ(done->steps[0].error->message, "[PARSE_SYNTAX_ERROR] Syntax error");
}

TEST_F(SqlStepTest, StepTimeoutCancelsTheStatement) {
  start({statement("forever", 3'600'000)});
  config(R"(  query:
    steps:
      - name: q
        sql: {warehouse_id: wh-1, statement: "SELECT forever", wait_timeout: 0s}
        poll_every: 300ms
        timeout: 1s
)");
  start_daemon();
  start_workflow("sql-4", "query");
  auto done = wait_terminal("sql-4");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kFailed);
  EXPECT_EQ(done->steps[0].error->code, "TIMEDOUT");
  EXPECT_TRUE(eventually([&] { return stack_->simulator().stats().statement_cancels >= 1; }));
}

}  // namespace
}  // namespace brickwork::testing
