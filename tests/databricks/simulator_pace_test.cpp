// The simulator's real-workspace pace (devstack/simulator_pace.cpp): latency
// that delays each call without serializing them, per-API rate limits
// answered 429 + Retry-After, and slow uploads beside quick calls. Plain HTTP
// from many threads, so the client's own retries and pacing play no part.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "daemon/databricks/http.hpp"
#include "devstack/simulator.hpp"

namespace brickwork {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

struct PaceFixture : ::testing::Test {
  void start(SimulatorPace pace) {
    SimulatorOptions o;
    o.pace = std::move(pace);
    sim = std::make_unique<DatabricksSimulator>(std::move(o));
    ASSERT_TRUE(sim->start().ok());
  }

  // One call; its status (0 on a transport error) and Retry-After.
  std::pair<int, std::string> call(const std::string& method, const std::string& path,
                                   std::string body = "") {
    http::Request req;
    req.method = method;
    req.url = sim->base_url() + path;
    req.body = std::move(body);
    req.timeout = 30s;
    auto r = client.send(req);
    if (!r.ok()) return {0, r.error().message};
    if (r->status == 429) {
      EXPECT_NE(r->body.find("REQUEST_LIMIT_EXCEEDED"), std::string::npos) << r->body;
    }
    return {r->status, r->header("Retry-After")};
  }

  static double seconds_since(SteadyClock::time_point t) {
    return std::chrono::duration<double>(SteadyClock::now() - t).count();
  }

  http::Client client;
  std::unique_ptr<DatabricksSimulator> sim;
};

TEST_F(PaceFixture, LatencyDelaysEachCallButCallsOverlap) {
  SimulatorPace pace;
  ASSERT_TRUE(parse_simulator_latency("200ms", pace).ok());
  start(pace);
  const auto one = SteadyClock::now();
  EXPECT_EQ(call("GET", "/api/2.1/jobs/list").first, 200);
  EXPECT_GE(seconds_since(one), 0.19);

  // Ten calls at once: served one after another they would take 2 s.
  const auto all = SteadyClock::now();
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 10; ++i) {
    threads.emplace_back([&] {
      if (call("GET", "/api/2.1/jobs/list").first == 200) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 10);
  EXPECT_LT(seconds_since(all), 1.0);
  // A call leaves the simulator's count just after its answer is written.
  SimulatorStats stats = sim->stats();
  for (const auto until = SteadyClock::now() + std::chrono::seconds(2);
       stats.in_flight != 0 && SteadyClock::now() < until; stats = sim->stats()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GE(stats.max_in_flight, 5);
  EXPECT_EQ(stats.in_flight, 0);
  EXPECT_EQ(stats.apis.at("jobs/list").calls, 11);
}

TEST_F(PaceFixture, PastItsRateAnApiIsAnswered429WithRetryAfter) {
  SimulatorPace pace;
  ASSERT_TRUE(parse_simulator_limit("jobs/list=2/s", pace).ok());
  start(pace);
  std::vector<int> statuses;
  for (int i = 0; i < 6; ++i) {
    const auto [status, retry_after] = call("GET", "/api/2.1/jobs/list");
    statuses.push_back(status);
    if (status == 429) {
      EXPECT_EQ(retry_after, "1");
    }
  }
  // A bucket of one second's calls: two pass, then 429 (a third may pass if
  // the calls took over half a second under load).
  EXPECT_EQ(statuses[0], 200);
  EXPECT_EQ(statuses[1], 200);
  EXPECT_EQ(statuses[2], 429);
  const int throttled = static_cast<int>(std::count(statuses.begin(), statuses.end(), 429));
  EXPECT_GE(throttled, 3);
  // Other APIs have their own budget (none here): runs/get is not limited.
  EXPECT_EQ(call("GET", "/api/2.1/jobs/runs/get?run_id=1").first, 400);
  const SimulatorStats stats = sim->stats();
  EXPECT_EQ(stats.apis.at("jobs/list").calls, 6);
  EXPECT_EQ(stats.apis.at("jobs/list").answered_429, throttled);
  EXPECT_EQ(stats.apis.at("jobs/list").rate_limited, throttled);
  EXPECT_EQ(stats.apis.at("jobs/runs/get").answered_429, 0);
  // After Retry-After the API answers again.
  std::this_thread::sleep_for(1100ms);
  EXPECT_EQ(call("GET", "/api/2.1/jobs/list").first, 200);
}

TEST_F(PaceFixture, SlowUploadDoesNotDelayAConcurrentRunsGet) {
  SimulatorPace pace;
  pace.transfer_time = 3s;
  start(pace);
  const auto put_started = SteadyClock::now();
  double put_took = 0;
  int put_status = 0;
  std::thread upload([&] {
    put_status = call("PUT", "/api/2.0/fs/files/Volumes/main/raw/in/big.csv", "a,b\n1,2\n").first;
    put_took = seconds_since(put_started);
  });
  while (sim->stats().in_flight == 0 && seconds_since(put_started) < 5) std::this_thread::sleep_for(5ms);
  const auto get_started = SteadyClock::now();
  EXPECT_EQ(call("GET", "/api/2.1/jobs/runs/get?run_id=1").first, 400);  // answered, quickly
  EXPECT_LT(seconds_since(get_started), 1.0);
  upload.join();
  EXPECT_EQ(put_status, 204);
  EXPECT_GE(put_took, 2.9);
  EXPECT_EQ(sim->stats().apis.at("fs/files").calls, 1);
}

TEST_F(PaceFixture, TransferRateSetsTheUploadTime) {
  SimulatorPace pace;
  auto rate = parse_simulator_transfer_rate("200KiB/s");
  ASSERT_TRUE(rate.ok());
  pace.transfer_bytes_per_second = *rate;
  start(pace);
  const auto started = SteadyClock::now();
  EXPECT_EQ(call("PUT", "/api/2.0/fs/files/Volumes/main/raw/in/f.bin", std::string(100 * 1024, 'x')).first,
            204);
  EXPECT_GE(seconds_since(started), 0.45);  // 100 KiB at 200 KiB/s
}

TEST(SimulatorPace, ApiNamesAndJobsFileKeys) {
  EXPECT_EQ(simulator_api_name("/api/2.2/jobs/runs/get"), "jobs/runs/get");
  EXPECT_EQ(simulator_api_name("/api/2.1/jobs/runs/get-output"), "jobs/runs/get-output");
  EXPECT_EQ(simulator_api_name("/api/2.0/fs/files/Volumes/a/b"), "fs/files");
  EXPECT_EQ(simulator_api_name("/api/2.0/sql/statements/7/cancel"), "sql/statements");
  EXPECT_EQ(simulator_api_name("/api/2.1/unity-catalog/shares/s/permissions"), "unity-catalog/shares");
  EXPECT_EQ(simulator_api_name("/oidc/v1/token"), "oidc/token");
  EXPECT_EQ(simulator_api_name("/api/2.1/jobs/runs/getx"), "other");

  auto r = parse_simulator_jobs(R"(
latency: {min: 100ms, max: 500ms}
limits: {"jobs/run-now": 20/s, "jobs/runs/get": 100/s}
transfer_rate: 1MiB/s
transfer_time: 40s
)");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->pace.latency_min, Duration(100));
  EXPECT_EQ(r->pace.latency_max, Duration(500));
  EXPECT_EQ(r->pace.limits.at("jobs/run-now"), 20.0);
  EXPECT_EQ(r->pace.limits.at("jobs/runs/get"), 100.0);
  EXPECT_EQ(r->pace.transfer_bytes_per_second, 1048576.0);
  EXPECT_EQ(r->pace.transfer_time, Duration(40000));
  auto fixed = parse_simulator_jobs("latency: 200ms\n");
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ(fixed->pace.latency_min, Duration(200));
  EXPECT_EQ(fixed->pace.latency_max, Duration(200));
  // Off unless asked for.
  auto plain = parse_simulator_jobs("jobs: []\n");
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->pace.limits.empty());
  EXPECT_EQ(plain->pace.latency_max, Duration(0));

  auto bad_api = parse_simulator_jobs("limits: {\"jobs/run-later\": 20/s}\n", "sim.yaml");
  ASSERT_FALSE(bad_api.ok());
  EXPECT_NE(bad_api.error().message.find("sim.yaml:1"), std::string::npos) << bad_api.error().message;
  EXPECT_NE(bad_api.error().message.find("jobs/run-now"), std::string::npos) << bad_api.error().message;
  EXPECT_FALSE(parse_simulator_jobs("limits: {\"jobs/run-now\": fast}\n").ok());
  EXPECT_FALSE(parse_simulator_jobs("limits: {\"jobs/run-now\": 0/s}\n").ok());
  EXPECT_FALSE(parse_simulator_jobs("latency: {min: 500ms, max: 100ms}\n").ok());
  EXPECT_FALSE(parse_simulator_jobs("transfer_rate: 1MiB\n").ok());
  SimulatorPace pace;
  EXPECT_TRUE(parse_simulator_latency("100ms..500ms", pace).ok());
  EXPECT_FALSE(parse_simulator_latency("500ms..100ms", pace).ok());
  EXPECT_FALSE(parse_simulator_limit("jobs/run-now:20/s", pace).ok());
}

}  // namespace
}  // namespace brickwork
