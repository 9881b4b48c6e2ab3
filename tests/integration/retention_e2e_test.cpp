// Retention end to end (contract 7 `retention:`, 8 `purge`): the daemon's
// purge with its clock moved forward, `brickwork purge` by hand, and a
// purged id started again.
#include <pqxx/pqxx>

#include "tests/integration/harness.hpp"

namespace brickwork::testing {
namespace {

constexpr int64_t kDayMs = 86'400'000;

// "gate" waits for a signal, so a workflow stays running until told;
// "broken" fails at once. Retention looks every second.
constexpr const char* kRetentionWorkflows = R"(  gate:
    steps:
      - name: approve
        wait_for_signal: {name: go, timeout: 10m}
  broken:
    steps:
      - name: extract
        run_job: {job_id: 201}
retention: {succeeded: 7d, failed: 30d, every: 1s}
)";

CommandResult run_brickwork(const std::string& args) {
  return run_command(std::string(BRICKWORK_BINARY) + " " + args + " 2>&1");
}

class Retention : public EndToEndTest {
 protected:
  void SetUp() override {
    start_stack({{201, sim_job("extract", 100, {}, "FAILED")}});
    config(kRetentionWorkflows);
  }

  // Starts `id` of gate and lets it succeed.
  void succeed_gate(const std::string& id) {
    start_workflow(id, "gate");
    ASSERT_TRUE(eventually([&] { return step_is(id, "approve", StepStatus::kWaiting); }));
    signal(id, "go", json::object{});
    auto done = wait_terminal(id);
    ASSERT_TRUE(done);
    ASSERT_EQ(done->status, WorkflowStatus::kSucceeded);
  }

  bool gone(const std::string& id) {
    auto w = store().get_workflow(id);
    return w && !w->has_value();
  }

  int64_t rows(const std::string& query) {
    pqxx::connection c(config_->postgres.url);
    pqxx::work tx(c);
    return tx.exec1(query)[0].as<int64_t>();
  }

  std::string config_path() {
    const std::string path = (dir_ / "cli.yaml").string();
    std::ofstream(path) << yaml_;
    return path;
  }
};

TEST_F(Retention, TheDaemonPurgesWhatItsStateKeepsNoLongerWithItsRowsAndCountsIt) {
  {
    // Today: nothing is old enough.
    start_daemon("today");
    succeed_gate("w-ok");
    start_workflow("w-failed", "broken");
    ASSERT_EQ(wait_terminal("w-failed")->status, WorkflowStatus::kFailed);
    std::this_thread::sleep_for(1500ms);  // a retention round passed
    EXPECT_FALSE(gone("w-ok"));
    daemons_.clear();
  }
  // Eight days later: succeeded workflows (7d) go, failed ones (30d) stay.
  DaemonOptions later;
  later.retention_clock = [] { return now_ms() + Duration(8 * kDayMs); };
  InProcessDaemon& d = start_daemon("eight-days-later", later);
  ASSERT_TRUE(eventually([&] { return gone("w-ok"); }));
  EXPECT_EQ(rows("SELECT count(*) FROM steps WHERE workflow_id = 'w-ok'"), 0);
  EXPECT_FALSE(gone("w-failed"));
  EXPECT_EQ(rows("SELECT count(*) FROM steps WHERE workflow_id = 'w-failed'"), 1);
  const std::string metrics = d.daemon().context().metrics().exposition();
  EXPECT_NE(metrics.find("brickwork_workflows_purged_total{state=\"succeeded\"} 1"),
            std::string::npos)
      << metrics;
  // Only failed workflows use "broken" now; gate's definition went with w-ok.
  EXPECT_TRUE(eventually([&] { return rows("SELECT count(*) FROM definitions") == 1; }));

  // The purged id is free: a start with it begins a new workflow, stored
  // again with its definition.
  start_workflow("w-ok", "gate");
  ASSERT_TRUE(eventually([&] { return step_is("w-ok", "approve", StepStatus::kWaiting); }));
  EXPECT_EQ(workflow("w-ok")->status, WorkflowStatus::kRunning);
  EXPECT_EQ(rows("SELECT count(*) FROM definitions"), 2);
}

TEST_F(Retention, PurgeByHandCountsWithDryRunThenDeletes) {
  start_daemon();
  succeed_gate("a");
  succeed_gate("b");
  start_workflow("c", "broken");
  ASSERT_EQ(wait_terminal("c")->status, WorkflowStatus::kFailed);
  start_workflow("running", "gate");
  ASSERT_TRUE(eventually([&] { return step_is("running", "approve", StepStatus::kWaiting); }));
  // As if they had ended two days ago.
  {
    pqxx::connection c(config_->postgres.url);
    pqxx::work tx(c);
    tx.exec("UPDATE workflows SET created_at = created_at - interval '2 days',"
            " updated_at = updated_at - interval '2 days'");
    tx.commit();
  }
  const std::string c = "-c " + config_path();

  const CommandResult dry = run_brickwork("purge --older-than 1d --dry-run " + c);
  EXPECT_EQ(dry.exit_code, 0) << dry.out;
  EXPECT_NE(dry.out.find("would purge 3 workflows (succeeded 2, failed 1, canceled 0)"),
            std::string::npos)
      << dry.out;
  EXPECT_EQ(rows("SELECT count(*) FROM workflows"), 4) << "a dry run deletes nothing";

  const CommandResult too_young = run_brickwork("purge --older-than 3d --json " + c);
  EXPECT_EQ(too_young.exit_code, 0) << too_young.out;
  EXPECT_NE(too_young.out.find("\"succeeded\":0"), std::string::npos) << too_young.out;
  EXPECT_EQ(rows("SELECT count(*) FROM workflows"), 4);

  const CommandResult failed_only = run_brickwork("purge --older-than 1d --state failed " + c);
  EXPECT_EQ(failed_only.exit_code, 0) << failed_only.out;
  EXPECT_NE(failed_only.out.find("purged 1 workflows (failed 1)"), std::string::npos)
      << failed_only.out;
  EXPECT_TRUE(gone("c"));

  const CommandResult rest = run_brickwork("purge --older-than 1d " + c);
  EXPECT_EQ(rest.exit_code, 0) << rest.out;
  EXPECT_NE(rest.out.find("purged 2 workflows"), std::string::npos) << rest.out;
  EXPECT_TRUE(gone("a"));
  EXPECT_TRUE(gone("b"));
  EXPECT_FALSE(gone("running")) << "a running workflow is never purged";
  EXPECT_EQ(rows("SELECT count(*) FROM steps"), 1);

  const CommandResult bad_state = run_brickwork("purge --older-than 1d --state running " + c);
  EXPECT_EQ(bad_state.exit_code, 2) << bad_state.out;
  const CommandResult no_age = run_brickwork("purge " + c);
  EXPECT_EQ(no_age.exit_code, 2) << no_age.out;
}

}  // namespace
}  // namespace brickwork::testing
