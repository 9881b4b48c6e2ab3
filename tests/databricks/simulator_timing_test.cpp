// The simulator under a benchmark's load: runs change state when due however
// many others are in flight, and an observer sees each run as it is created.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "daemon/databricks/api.hpp"
#include "daemon/databricks/client.hpp"
#include "devstack/simulator.hpp"

namespace brickwork {
namespace {

using namespace std::chrono_literals;

struct SimulatorTimingTest : ::testing::Test {
  void start(SimulatorOptions options) {
    options.pending_for = 20ms;
    options.cancel_delay = 20ms;
    sim = std::make_unique<DatabricksSimulator>(std::move(options));
    ASSERT_TRUE(sim->start().ok());
    DatabricksConfig cfg;
    cfg.host = sim->base_url();
    DatabricksClientOptions o;
    o.env = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
    auto c = make_databricks_api(cfg, o);
    ASSERT_TRUE(c.ok()) << c.error().message;
    api = std::move(*c);
  }
  int64_t run_now(int64_t job_id, std::map<std::string, std::string> parameters = {}) {
    RunNowRequest req;
    req.job_id = job_id;
    req.job_parameters = std::move(parameters);
    auto id = api->run_now(req);
    EXPECT_TRUE(id.ok()) << id.error().message;
    return id.ok() ? *id : 0;
  }
  // The run's life_cycle_state once it is `want`, or the last one seen after 5 s.
  std::string wait_state(int64_t run_id, const std::string& want) {
    std::string state;
    const auto end = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < end) {
      auto run = sim->run(run_id);
      state = run ? run->life_cycle_state : "";
      if (state == want) break;
      std::this_thread::sleep_for(5ms);
    }
    return state;
  }

  std::unique_ptr<DatabricksSimulator> sim;
  std::unique_ptr<DatabricksApi> api;
};

SimulatedJob timed_job(const char* name, Duration duration) {
  SimulatedJob j;
  j.name = name;
  j.duration = duration;
  return j;
}

TEST_F(SimulatorTimingTest, ObserverSeesEachRunBeforeTheAnswer) {
  SimulatorOptions o;
  o.jobs[7] = timed_job("observed", 1h);
  start(o);
  std::mutex mu;
  std::vector<SimulatedRun> seen;
  sim->set_run_observer([&](const SimulatedRun& run) {
    std::lock_guard lock(mu);
    seen.push_back(run);
  });

  const int64_t id = run_now(7, {{"brickwork_workflow_id", "wf-1"}, {"brickwork_step", "a"}});
  std::lock_guard lock(mu);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].run_id, id);
  EXPECT_EQ(seen[0].job_id, 7);
  EXPECT_EQ(seen[0].parameters.at("brickwork_workflow_id"), "wf-1");
  EXPECT_EQ(seen[0].parameters.at("brickwork_step"), "a");
}

TEST_F(SimulatorTimingTest, RunsChangeWhenDueWithManyInFlight) {
  SimulatorOptions o;
  o.jobs[1] = timed_job("waiting", 1h);
  o.jobs[2] = timed_job("short", 50ms);
  start(o);
  std::vector<int64_t> waiting;
  for (int i = 0; i < 300; ++i) waiting.push_back(run_now(1));

  // A short run ends on the timer alone, without a request to advance it.
  const int64_t short_run = run_now(2);
  EXPECT_EQ(wait_state(short_run, "TERMINATED"), "TERMINATED");
  EXPECT_EQ(sim->run(short_run)->result_state, "SUCCESS");
  // The long runs went from PENDING to RUNNING and stay there.
  EXPECT_EQ(wait_state(waiting.front(), "RUNNING"), "RUNNING");
  EXPECT_EQ(wait_state(waiting.back(), "RUNNING"), "RUNNING");
  // A cancel brings a long run's end forward.
  ASSERT_TRUE(api->cancel_run(waiting[150]).ok());
  EXPECT_EQ(wait_state(waiting[150], "TERMINATED"), "TERMINATED");
  EXPECT_EQ(sim->run(waiting[150])->result_state, "CANCELED");
  EXPECT_EQ(sim->run(waiting[151])->life_cycle_state, "RUNNING");
}

}  // namespace
}  // namespace brickwork
