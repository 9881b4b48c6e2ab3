// The postgres step against a second, real database: parameters only,
// rows as JSON with their types, and a name checked at load.
#include <pqxx/pqxx>

#include "tests/integration/harness.hpp"

namespace brickwork::testing {
namespace {

class PostgresStep : public EndToEndTest {
 protected:
  // A database "results" beside the store's, with one table.
  std::string make_results_database() {
    {
      pqxx::connection admin(stack_->postgres().url("postgres"));
      pqxx::nontransaction tx(admin);
      tx.exec("CREATE DATABASE results");
    }
    const std::string url = stack_->postgres().url("results");
    pqxx::connection c(url);
    pqxx::work tx(c);
    tx.exec("CREATE TABLE orders_daily (day date PRIMARY KEY, n bigint NOT NULL, note text,"
            " ratio numeric, ok boolean, extra jsonb)");
    tx.commit();
    return url;
  }

  // The stack's configuration with `databases:` added before `workflows:`.
  ConfigPtr config_with_databases(const std::string& databases_yaml,
                                  const std::string& workflows_yaml) {
    const std::string yaml = stack_->config_yaml(workflows_yaml, "e2e");
    const size_t at = yaml.find("workflows:\n");
    yaml_ = yaml.substr(0, at) + databases_yaml + yaml.substr(at);
    LoadOptions load;
    load.steps = steps_;
    auto loaded = load_config_from_string(yaml_, "e2e.yaml", load);
    EXPECT_TRUE(loaded) << loaded.error().message;
    if (!loaded) return nullptr;
    config_ = std::make_shared<const Config>(std::move(*loaded));
    return config_;
  }
};

constexpr const char* kWorkflows = R"(  record:
    steps:
      - name: upsert
        postgres:
          database: results
          statement: >-
            INSERT INTO orders_daily (day, n, note, ratio, ok, extra)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (day) DO UPDATE SET n = EXCLUDED.n
            RETURNING day::text AS day, n, note, ratio, ok, extra
          parameters: ["{{ input.day }}", "{{ input.n }}", "{{ input.note }}", 0.5, true, {source: brickwork}]
      - name: count
        postgres:
          database: results
          statement: "SELECT count(*) AS orders, max(n) AS top, NULL::text AS nothing FROM orders_daily WHERE note = $1"
          parameters: ["{{ input.note }}"]
)";

TEST_F(PostgresStep, WritesAndReadsWithParametersOnlyAndTypedRows) {
  start_stack({});
  const std::string url = make_results_database();
  ASSERT_TRUE(config_with_databases("databases:\n  results:\n    url: \"" + url + "\"\n", kWorkflows));
  start_daemon();
  const std::string hostile = "x'); DROP TABLE orders_daily; --";
  start_workflow("pg-1", "record", {{"day", "2026-11-25"}, {"n", 42}, {"note", hostile}});
  auto done = wait_terminal("pg-1");
  ASSERT_TRUE(done);
  ASSERT_EQ(done->status, WorkflowStatus::kSucceeded)
      << (done->steps[0].error ? done->steps[0].error->message : "");
  EXPECT_EQ(done->steps[0].output->at("rows"),
            json::parse(R"([{"day": "2026-11-25", "n": 42, "note": "x'); DROP TABLE orders_daily; --",
                            "ratio": 0.5, "ok": true, "extra": {"source": "brickwork"}}])"));
  EXPECT_EQ(done->steps[0].output->at("row_count"), 1);
  EXPECT_EQ(done->steps[1].output->at("rows"),
            json::parse(R"([{"orders": 1, "top": 42, "nothing": null}])"));
  pqxx::connection c(url);
  pqxx::work tx(c);
  EXPECT_EQ(tx.exec("SELECT note FROM orders_daily")[0][0].as<std::string>(), hostile);
}

TEST_F(PostgresStep, AnUnknownDatabaseNameIsAConfigurationError) {
  start_stack({});
  LoadOptions load;
  load.steps = steps_;
  auto loaded = load_config_from_string(stack_->config_yaml(kWorkflows, "e2e"), "e2e.yaml", load);
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message.find("postgres.database 'results' is not a name under databases:"),
            std::string::npos)
      << loaded.error().message;
}

TEST_F(PostgresStep, AFailingStatementFailsTheStepWithItsSqlState) {
  start_stack({});
  const std::string url = make_results_database();
  ASSERT_TRUE(config_with_databases("databases:\n  results:\n    url: \"" + url + "\"\n",
                                    R"yaml(  broken:
    steps:
      - name: bad
        postgres: {database: results, statement: "INSERT INTO no_such_table VALUES ($1)", parameters: [1]}
)yaml"));
  start_daemon();
  start_workflow("pg-2", "broken");
  auto done = wait_terminal("pg-2");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kFailed);
  ASSERT_TRUE(done->steps[0].error);
  EXPECT_EQ(done->steps[0].error->code, "42P01");  // undefined_table
}

}  // namespace
}  // namespace brickwork::testing
