// Lakebase as a real Postgres role that logs in only with a password, which
// the simulator's credentials endpoint sets to each token it issues, VALID
// UNTIL its expiry: open sessions survive, new ones need the current token.
// Credentials here live 3 s, so the daemon renews them many times while
// workflows run and every connection of the role is cut, twice.
#include <pqxx/pqxx>

#include "tests/integration/harness.hpp"

namespace brickwork::testing {
namespace {

constexpr const char* kRole = "lb_app";

class Lakebase : public EndToEndTest {
 protected:
  void start(Duration ttl, std::vector<SimulatedStatement> statements = {}) {
    LocalStackOptions options;
    options.simulator.jobs = {{101, sim_job("work", 300, {{"rows", 1}})}};
    options.simulator.statements = std::move(statements);
    options.simulator.lakebase_role = kRole;
    options.simulator.lakebase_credential_ttl = ttl;
    auto stack = LocalStack::start(options);
    ASSERT_TRUE(stack) << stack.error().message;
    stack_ = std::move(*stack);
    dir_ = std::filesystem::temp_directory_path() /
           ("brickwork-e2e-" + std::to_string(getpid()) + "-lakebase-" + std::to_string(counter_++));
    std::filesystem::create_directories(dir_);
    pqxx::connection admin(stack_->postgres().url());
    pqxx::nontransaction tx(admin);
    tx.exec(std::string("CREATE ROLE ") + TempPostgres::kPasswordGroup + " NOLOGIN");
    tx.exec(std::string("CREATE ROLE ") + kRole + " LOGIN IN ROLE " + TempPostgres::kPasswordGroup);
    tx.exec(std::string("CREATE DATABASE lakebase OWNER ") + kRole);
    tx.exec(std::string("CREATE DATABASE results OWNER ") + kRole);
  }

  std::string role_url(const std::string& database) {
    const std::string admin = stack_->postgres().url(database);  // postgresql://brickwork@host:port/db
    return "postgresql://" + std::string(kRole) + admin.substr(admin.find('@'));
  }

  // The stack's configuration with the store and a database on the role.
  void config_on_lakebase(const std::string& workflows) {
    std::string yaml = stack_->config_yaml(workflows, "e2e");
    const size_t at = yaml.find("postgres:\n");
    const size_t end = yaml.find("databricks:\n");
    yaml.replace(at, end - at,
                 "postgres:\n  url: \"" + role_url("lakebase") +
                     "\"\n  lakebase: {instance: brickwork-db}\n"
                     "databases:\n  results:\n    url: \"" + role_url("results") +
                     "\"\n    lakebase: {endpoint: projects/p/branches/main/endpoints/primary}\n");
    yaml_ = yaml;
    LoadOptions load;
    load.steps = steps_;
    auto loaded = load_config_from_string(yaml_, "e2e.yaml", load);
    ASSERT_TRUE(loaded) << loaded.error().message;
    config_ = std::make_shared<const Config>(std::move(*loaded));
  }

  int terminate_role_connections() {
    pqxx::connection admin(stack_->postgres().url());
    pqxx::nontransaction tx(admin);
    return tx.exec_params("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                          " WHERE usename = $1",
                          std::string(kRole))[0][0]
        .as<int>();
  }
};

// `brickwork ARGS`: its exit code, stdout alone (what `| jq` reads) and stderr.
struct SeparateOutputs : CommandResult {
  std::string err;
};

SeparateOutputs run_brickwork_apart(const std::string& args, const std::filesystem::path& err_file) {
  SeparateOutputs result;
  static_cast<CommandResult&>(result) =
      run_command(std::string(BRICKWORK_BINARY) + " " + args + " 2>'" + err_file.string() + "'");
  std::ifstream in(err_file);
  result.err.assign(std::istreambuf_iterator<char>(in), {});
  return result;
}

TEST_F(Lakebase, WithoutTheCurrentTokenNoOneLogsIn) {
  start(Duration(60'000));
  EXPECT_THROW(pqxx::connection(role_url("lakebase")), pqxx::broken_connection);
}

TEST_F(Lakebase, WorkflowsRunOnShortLivedCredentialsWhileConnectionsAreCut) {
  start(Duration(3000));
  config_on_lakebase(R"(  one:
    steps:
      - name: work
        run_job: {job_id: 101}
        poll_every: 1s
      - name: record
        postgres:
          database: results
          statement: "SELECT $1::text AS workflow, current_user AS who"
          parameters: ["{{ workflow.id }}"]
)");
  // The store lives on the role: migrate through the same credentials.
  start_daemon();
  int cut = 0;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 5; ++i) {
      start_workflow("lb-" + std::to_string(round) + "-" + std::to_string(i), "one");
    }
    std::this_thread::sleep_for(2500ms);  // a token expires meanwhile
    if (round < 2) cut += terminate_role_connections();
  }
  EXPECT_GT(cut, 0) << "the daemon held no connection to cut";
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 5; ++i) {
      const std::string id = "lb-" + std::to_string(round) + "-" + std::to_string(i);
      auto done = wait_terminal(id, 120s);
      ASSERT_TRUE(done) << id;
      ASSERT_EQ(done->status, WorkflowStatus::kSucceeded)
          << id << (done->steps[1].error ? ": " + done->steps[1].error->message : "");
      EXPECT_EQ(done->steps[1].output->at("rows").at(0).at("who"), json::value(kRole));
    }
  }
  // Renewed at about half of each 3 s lifetime while the test ran, and after refusals.
  EXPECT_GE(stack_->simulator().stats().credentials_issued, 4);
}

// The CLI on a Lakebase store logs the credential it fetches; the log goes
// to stderr, so `status --json` prints the JSON alone on stdout.
TEST_F(Lakebase, StatusJsonPrintsOnlyJsonOnStdout) {
  start(Duration(60'000));
  config_on_lakebase(R"(  one:
    steps:
      - name: work
        run_job: {job_id: 101}
        poll_every: 1s
)");
  start_daemon();
  start_workflow("lb-cli", "one");
  auto done = wait_terminal("lb-cli", 60s);
  ASSERT_TRUE(done);
  ASSERT_EQ(done->status, WorkflowStatus::kSucceeded);
  const auto config_file = dir_ / "cli.yaml";
  std::ofstream(config_file) << yaml_;
  const SeparateOutputs status = run_brickwork_apart(
      "status lb-cli --json -c '" + config_file.string() + "'", dir_ / "cli.err");
  ASSERT_EQ(status.exit_code, 0) << status.err;
  boost::system::error_code ec;
  const json::value parsed = json::parse(status.out, ec);  // strict: the whole of stdout
  ASSERT_FALSE(ec) << "stdout is not one JSON value: " << status.out;
  EXPECT_EQ(parsed.at("id"), "lb-cli");
  EXPECT_EQ(parsed.at("state"), "succeeded");
  EXPECT_NE(status.err.find("new database credential"), std::string::npos) << status.err;
}

// config/examples/workflows.d/land_and_record.yaml as shipped: upload a
// file, count it with sql, record the count with postgres in a database on
// Lakebase (short-lived credentials).
TEST_F(Lakebase, TheShippedDataExampleLandsCountsAndRecords) {
  SimulatedStatement count;
  count.match = "read_files";
  count.columns = {"orders"};
  count.rows = json::array{json::array{"3"}};
  start(Duration(3000), {count});
  {
    pqxx::connection results(stack_->postgres().url("results"));
    pqxx::work tx(results);
    tx.exec(std::string("SET ROLE ") + kRole);
    tx.exec("CREATE TABLE orders_daily (day date PRIMARY KEY, orders bigint NOT NULL)");
    tx.commit();
  }
  std::ifstream in(std::string(BRICKWORK_SOURCE_DIR) +
                   "/config/examples/workflows.d/land_and_record.yaml");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  config_on_lakebase(text.substr(text.find("workflows:\n") + std::string("workflows:\n").size()));
  start_daemon();
  start_workflow("land-1", "land_and_record",
                 {{"day", "2026-11-25"}, {"warehouse", "wh-1"}, {"csv", "id\n1\n2\n3\n"}});
  auto done = wait_terminal("land-1", 120s);
  ASSERT_TRUE(done);
  ASSERT_EQ(done->status, WorkflowStatus::kSucceeded)
      << (done->steps[2].error ? done->steps[2].error->message : "");
  EXPECT_EQ(done->steps[2].output->at("rows"),
            json::parse(R"([{"day": "2026-11-25", "orders": 3}])"));
  const auto stats = stack_->simulator().stats();
  EXPECT_EQ(stats.files.at("/Volumes/main/raw/landing/2026-11-25/orders.csv").second, "id\n1\n2\n3\n");
  ASSERT_EQ(stats.statements_received.size(), 1u);
  EXPECT_EQ(stats.statements_received[0].at("parameters").at(0).at("value"),
            "/Volumes/main/raw/landing/2026-11-25/orders.csv");
}

}  // namespace
}  // namespace brickwork::testing
