// The execution model against a simulator paced like a real workspace: many
// calls in flight at once, uploads in a lane of their own, bounded transfer
// tries, and a shutdown that ends within daemon.shutdown_grace whatever the
// workspace or Postgres do.
#include <pqxx/pqxx>

#include "tests/integration/harness.hpp"

namespace brickwork::testing {
namespace {

class Execution : public EndToEndTest {
 protected:
  // The configuration in use, changed by `edit`, for daemons started next.
  void tune(const std::function<void(Config&)>& edit) {
    auto tuned = std::make_shared<Config>(*config_);
    edit(*tuned);
    config_ = tuned;
  }

  std::optional<WorkflowStatus> status_of(const std::string& id) {
    auto w = workflow(id);
    if (!w) return std::nullopt;
    return w->status;
  }

  bool succeeded(const std::string& id) { return status_of(id) == WorkflowStatus::kSucceeded; }

  int64_t calls_of(const std::string& api) {
    const auto stats = stack_->simulator().stats();
    const auto it = stats.apis.find(api);
    return it == stats.apis.end() ? 0 : it->second.calls;
  }

  // Stops daemon `index` and returns how long that took.
  Duration stop_timed(size_t index) {
    const auto begun = std::chrono::steady_clock::now();
    daemons_.at(index)->stop();
    return std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - begun);
  }
};

constexpr const char* kOneRun = R"(  one:
    steps:
      - name: work
        run_job: {job_id: 101}
        poll_every: 1s
)";

constexpr const char* kUpload = R"(  put:
    steps:
      - name: put
        upload: {path: "/Volumes/main/raw/landing/{{ input.name }}.txt", content: "hello", overwrite: true}
)";

TEST_F(Execution, ManyMoreThanNineCallsAreInFlightWhenEachTakes200ms) {
  SimulatorPace pace;
  pace.latency_min = pace.latency_max = 200ms;
  start_stack({{101, sim_job("work", 100)}}, {}, pace);
  config(kOneRun);
  // This workspace sets no limits: without raising the client's own
  // (run-now 15/s), at most three 200 ms run-now calls could be in flight.
  tune([](Config& c) {
    c.databricks.limits["jobs/run-now"] = 1000;
    c.databricks.limits["jobs/runs/get"] = 1000;
  });
  start_daemon();
  for (int i = 0; i < 60; ++i) start_workflow("many-" + std::to_string(i), "one");
  for (int i = 0; i < 60; ++i) {
    auto done = wait_terminal("many-" + std::to_string(i), 90s);
    ASSERT_TRUE(done);
    EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  }
  // Eight workers with one call each could never have more than nine.
  EXPECT_GE(stack_->simulator().stats().max_in_flight, 20);
}

// A call whose turn under the client-side limit is far away holds no call
// thread: with two slots and run-now allowed once per 10 s, three run_job
// steps waiting for their turn would take both slots for 10-20 s; given back
// to Postgres instead, they leave the slots to a SQL step, which ends at once.
TEST_F(Execution, ACallFarFromItsTurnLeavesItsSlotToOtherWork) {
  start_stack({{101, sim_job("work", 100)}});
  config(std::string(kOneRun) + R"(  query:
    steps:
      - name: q
        sql: {warehouse_id: wh-1, statement: "SELECT 1"}
)");
  tune([](Config& c) {
    c.databricks.max_in_flight = 2;
    c.databricks.limits["jobs/run-now"] = 0.1;
  });
  start_daemon();
  for (int i = 0; i < 3; ++i) start_workflow("limited-" + std::to_string(i), "one");
  ASSERT_TRUE(eventually([&] { return calls_of("jobs/run-now") >= 1; }, 20s));
  const auto begun = std::chrono::steady_clock::now();
  start_workflow("query", "query");
  auto done = wait_terminal("query", 30s);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  EXPECT_LT(std::chrono::steady_clock::now() - begun, 5s);
  // The other two run-now calls are still waiting for their turns, and none
  // was sent before it.
  EXPECT_EQ(calls_of("jobs/run-now"), 1);
  EXPECT_FALSE(succeeded("limited-1") && succeeded("limited-2"));
}

TEST_F(Execution, QuickWorkflowsFinishWhileSlowUploadsAreInFlight) {
  SimulatorPace pace;
  pace.transfer_time = 10s;  // every Files API PUT
  start_stack({{101, sim_job("work", 100)}}, {}, pace);
  config(std::string(kOneRun) + kUpload);
  // Fewer slots than uploads: without a lane of their own, uploads would
  // take every slot and the quick workflows would wait for them.
  tune([](Config& c) {
    c.databricks.max_in_flight = 4;
    c.databricks.max_transfers = 2;
  });
  start_daemon();
  for (int i = 0; i < 6; ++i) start_workflow("upload-" + std::to_string(i), "put", {{"name", "f" + std::to_string(i)}});
  ASSERT_TRUE(eventually([&] { return calls_of("fs/files") >= 2; }, 20s));
  const auto quick_begun = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) start_workflow("quick-" + std::to_string(i), "one");
  for (int i = 0; i < 20; ++i) {
    auto done = wait_terminal("quick-" + std::to_string(i), 30s);
    ASSERT_TRUE(done);
    EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  }
  const auto quick_took = std::chrono::steady_clock::now() - quick_begun;
  // The first two uploads (10 s each) were still in flight meanwhile.
  EXPECT_LT(quick_took, 9s);
  for (int i = 0; i < 6; ++i) {
    EXPECT_NE(status_of("upload-" + std::to_string(i)), WorkflowStatus::kSucceeded)
        << "no upload had ended yet";
  }
  // Two at a time: six uploads of 10 s take three rounds.
  for (int i = 0; i < 6; ++i) {
    auto done = wait_terminal("upload-" + std::to_string(i), 90s);
    ASSERT_TRUE(done);
    EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  }
}

// Polls that fill the call slots (their API's limit keeps each waiting for
// its turn) while an upload holds one transfer slot of two: effects handed
// over for the call lane still get the next free call slot. The free
// transfer slot once let the dispatcher claim more polls into the call
// lane's queue, ahead of them, for as long as polls kept coming.
TEST_F(Execution, HandedWorkIsNotStarvedByPollsClaimedForFreeTransferSlots) {
  SimulatorPace pace;
  pace.transfer_time = 30s;
  start_stack({{101, sim_job("work", 100)}, {102, sim_job("long", 3'600'000)}}, {}, pace);
  config(std::string(kOneRun) + kUpload + R"(  waiting:
    steps:
      - name: wait
        run_job: {job_id: 102}
        poll_every: 1s
)");
  tune([](Config& c) {
    c.databricks.max_in_flight = 4;
    c.databricks.max_transfers = 2;
    c.databricks.limits["jobs/runs/get"] = 4;  // 20 polls a second asked of 4
  });
  start_daemon();
  for (int i = 0; i < 20; ++i) start_workflow("waiting-" + std::to_string(i), "waiting");
  start_workflow("upload", "put", {{"name", "slow"}});
  ASSERT_TRUE(eventually([&] { return calls_of("jobs/runs/get") >= 20 && calls_of("fs/files") >= 1; }, 30s));
  const auto begun = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) start_workflow("quick-" + std::to_string(i), "one");
  for (int i = 0; i < 5; ++i) {
    auto done = wait_terminal("quick-" + std::to_string(i), 20s);
    ASSERT_TRUE(done) << "quick-" << i << " still waits for a call slot";
    EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - begun, 15s);
  EXPECT_NE(status_of("upload"), WorkflowStatus::kSucceeded) << "the upload was still in flight";
}

TEST_F(Execution, AnUploadThatKeepsFailingEndsTransferFailedAfterBoundedTries) {
  SimulatorFaults faults;
  faults.error_rate = 1.0;
  faults.statuses = {503};
  faults.retry_after = Duration(0);
  start_stack({}, faults);
  config(kUpload);
  start_daemon();
  start_workflow("doomed", "put", {{"name", "doomed"}});
  // Without a bound on tries the upload would be retried for the whole
  // retry budget, then rescheduled, forever.
  auto done = wait_terminal("doomed", 60s);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kFailed);
  ASSERT_TRUE(done->steps[0].error);
  EXPECT_EQ(done->steps[0].error->code, "transfer_failed");
  EXPECT_EQ(calls_of("fs/files"), 3);
}

TEST_F(Execution, AHungCallIsCanceledAtShutdownAndItsEffectDoneByTheNextDaemon) {
  SimulatorPace pace;
  pace.never_answer = {"jobs/run-now"};
  start_stack({{101, sim_job("work", 100)}}, {}, pace);
  config(kOneRun);
  tune([](Config& c) { c.daemon.shutdown_grace = 4s; });
  start_daemon("hung");
  start_workflow("hung-1", "one");
  ASSERT_TRUE(eventually([&] { return calls_of("jobs/run-now") >= 1; }));
  const Duration took = stop_timed(0);
  // Without cancellation the call would wait for request_timeout (60 s),
  // then be retried for the retry budget.
  EXPECT_LT(took, 6s) << "shutdown_grace is 4s";
  // Given back: no lease left for the next daemon to wait out.
  EXPECT_EQ(sql("SELECT count(*) FROM effects WHERE kind = 'execute' AND lease_owner IS NULL")[0][0]
                .as<int>(),
            1);
  stack_->simulator().set_never_answer({});
  start_daemon("next");
  auto done = wait_terminal("hung-1", 30s);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  // The hung call had reached the workspace: its retry carried the same token.
  EXPECT_EQ(stack_->simulator().stats().runs_created, 1);
}

TEST_F(Execution, ShutdownWithPostgresStoppedEndsWithinTheGrace) {
  SimulatorPace pace;
  pace.latency_min = pace.latency_max = 1500ms;
  start_stack({{101, sim_job("work", 100)}}, {}, pace);
  config(kOneRun);
  tune([](Config& c) {
    c.daemon.shutdown_grace = 4s;
    c.daemon.lease = 3s;
  });
  start_daemon("cut-off");
  for (int i = 0; i < 5; ++i) start_workflow("cut-" + std::to_string(i), "one");
  ASSERT_TRUE(eventually([&] { return calls_of("jobs/run-now") >= 1; }));
  store_.reset();
  ASSERT_TRUE(stack_->postgres().stop().ok());
  const Duration took = stop_timed(0);
  EXPECT_LT(took, 6s) << "shutdown_grace is 4s";
  {
    const Status restarted = stack_->postgres().start_again();
    ASSERT_TRUE(restarted.ok()) << restarted.error().message;
  }
  // What it could not record is done again once its lease has run out.
  start_daemon("after");
  for (int i = 0; i < 5; ++i) {
    auto done = wait_terminal("cut-" + std::to_string(i), 60s);
    ASSERT_TRUE(done);
    EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  }
}

}  // namespace
}  // namespace brickwork::testing
