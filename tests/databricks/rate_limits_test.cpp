// Client-side limits: the token buckets, their AIMD and the priority of
// work over polls, against a clock the test moves.
#include "daemon/databricks/rate_limits.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>

namespace brickwork {
namespace {

using namespace std::chrono_literals;

struct FakeClock {
  std::chrono::steady_clock::time_point now{std::chrono::hours(1000)};
  ApiLimiter::Clock clock() {
    return [this] { return now; };
  }
};

// Calls granted without waiting, one after another at one instant.
int immediate_grants(ApiLimiter& limiter, const std::string& api) {
  int n = 0;
  while (limiter.reserve(api, CallPriority::kWork).wait == 0ms) ++n;
  return n;
}

TEST(DatabricksApis, NamesCallsByApi) {
  EXPECT_EQ(databricks_api_name("/api/2.2/jobs/run-now"), "jobs/run-now");
  EXPECT_EQ(databricks_api_name("/api/2.2/jobs/runs/get?run_id=7"), "jobs/runs/get");
  EXPECT_EQ(databricks_api_name("/api/2.2/jobs/runs/get-output?run_id=7"), "jobs/runs/get-output");
  EXPECT_EQ(databricks_api_name("/api/2.0/fs/files/Volumes/a/b.csv?overwrite=true"), "fs/files");
  EXPECT_EQ(databricks_api_name("/api/2.0/sql/statements/01ef/cancel"), "sql/statements");
  EXPECT_EQ(databricks_api_name("/api/2.0/sql/statements"), "sql/statements");
  EXPECT_EQ(databricks_api_name("/api/2.1/unity-catalog/shares/s1"), "unity-catalog/shares");
  EXPECT_EQ(databricks_api_name("/api/2.0/clusters/list"), "other");
  EXPECT_EQ(databricks_api_name("/oidc/v1/token"), "");
  EXPECT_EQ(priority_of("GET", "jobs/runs/get", "/api/2.2/jobs/runs/get?run_id=1"), CallPriority::kPoll);
  EXPECT_EQ(priority_of("GET", "sql/statements", "/api/2.0/sql/statements/x"), CallPriority::kPoll);
  EXPECT_EQ(priority_of("GET", "sql/statements", "/api/2.0/sql/statements/x/result/chunks/1"),
            CallPriority::kWork);
  EXPECT_EQ(priority_of("POST", "jobs/run-now", "/api/2.2/jobs/run-now"), CallPriority::kWork);
  EXPECT_EQ(priority_of("POST", "jobs/runs/cancel", "/api/2.2/jobs/runs/cancel"), CallPriority::kWork);
  // Every default is for a name the configuration accepts, and below the published limits.
  for (const auto& [api, rate] : default_databricks_limits()) {
    EXPECT_NE(std::find(databricks_limit_api_names().begin(), databricks_limit_api_names().end(), api),
              databricks_limit_api_names().end())
        << api;
  }
  EXPECT_LT(default_databricks_limits().at("jobs/run-now"), 20);
  EXPECT_LT(default_databricks_limits().at("jobs/runs/get"), 100);
  EXPECT_EQ(databricks_limits_with({{"jobs/run-now", 3}}).at("jobs/run-now"), 3);
}

TEST(ApiLimiter, ABurstOfAQuarterSecondThenTheRate) {
  FakeClock clock;
  ApiLimiter limiter({{"jobs/run-now", 40}}, clock.clock());
  // A simultaneous burst of 40 is spread: 10 at once, then one per 25 ms,
  // so a workspace whose own burst is smaller sees the calls spaced.
  EXPECT_EQ(immediate_grants(limiter, "jobs/run-now"), 10);
  // The 11th was reserved 25 ms ahead; the next ones queue behind it.
  EXPECT_EQ(limiter.reserve("jobs/run-now", CallPriority::kWork).wait, 50ms);
  EXPECT_EQ(limiter.reserve("jobs/run-now", CallPriority::kWork).wait, 75ms);
  // Over a long run, calls go at the rate: 200 calls in 5 s.
  clock.now += 5300ms;
  EXPECT_EQ(immediate_grants(limiter, "jobs/run-now"), 10);  // refilled to the cap, no more
  // A slow API still sends one call at once.
  ApiLimiter slow({{"jobs/list", 2}}, clock.clock());
  EXPECT_EQ(immediate_grants(slow, "jobs/list"), 1);
  // An API without a limit of its own is under "other"; without one either, free.
  ApiLimiter no_other({{"jobs/run-now", 1}}, clock.clock());
  for (int i = 0; i < 100; ++i) EXPECT_EQ(no_other.reserve("fs/files", CallPriority::kWork).wait, 0ms);
  EXPECT_EQ(no_other.rate("fs/files"), 0);
  ApiLimiter with_other({{"other", 8}}, clock.clock());
  EXPECT_EQ(immediate_grants(with_other, "fs/files"), 2);
  // The token endpoint is never limited.
  for (int i = 0; i < 100; ++i) EXPECT_EQ(with_other.reserve("", CallPriority::kWork).wait, 0ms);
}

TEST(ApiLimiter, A429HalvesTheRateOnceAndPausesForRetryAfter) {
  FakeClock clock;
  ApiLimiter limiter({{"jobs/run-now", 16}, {"jobs/runs/get", 100}}, clock.clock());
  limiter.throttled("jobs/run-now", 2s);
  EXPECT_DOUBLE_EQ(limiter.rate("jobs/run-now"), 8);
  // Many calls in flight come back 429 together: one decrease, not one each.
  for (int i = 0; i < 5; ++i) limiter.throttled("jobs/run-now", 2s);
  EXPECT_DOUBLE_EQ(limiter.rate("jobs/run-now"), 8);
  // Retry-After holds every call of that API (the burst in hand is gone),
  // then they go at the lowered rate.
  EXPECT_EQ(limiter.reserve("jobs/run-now", CallPriority::kWork).wait, 2125ms);
  EXPECT_EQ(limiter.reserve("jobs/run-now", CallPriority::kWork).wait, 2250ms);
  // Other APIs are untouched.
  EXPECT_EQ(limiter.reserve("jobs/runs/get", CallPriority::kWork).wait, 0ms);
  EXPECT_DOUBLE_EQ(limiter.rate("jobs/runs/get"), 100);
  // A second 429 a second later halves again, down to a floor of 1/16.
  for (int i = 0; i < 10; ++i) {
    clock.now += 1s;
    limiter.throttled("jobs/run-now", 0s);
  }
  EXPECT_DOUBLE_EQ(limiter.rate("jobs/run-now"), 1);
}

TEST(ApiLimiter, TheRateGrowsBackSlowlyWhileCallsSucceed) {
  FakeClock clock;
  ApiLimiter limiter({{"jobs/run-now", 20}}, clock.clock());
  limiter.throttled("jobs/run-now", 1s);
  EXPECT_DOUBLE_EQ(limiter.rate("jobs/run-now"), 10);
  // +5% of 20/s per second of successes: 1/s per second.
  clock.now += 2s;
  EXPECT_TRUE(limiter.succeeded("jobs/run-now"));
  EXPECT_DOUBLE_EQ(limiter.rate("jobs/run-now"), 12);
  clock.now += 500ms;
  EXPECT_TRUE(limiter.succeeded("jobs/run-now"));
  EXPECT_DOUBLE_EQ(limiter.rate("jobs/run-now"), 12.5);
  // Never above what is configured.
  clock.now += 60s;
  EXPECT_TRUE(limiter.succeeded("jobs/run-now"));
  EXPECT_DOUBLE_EQ(limiter.rate("jobs/run-now"), 20);
  EXPECT_FALSE(limiter.succeeded("jobs/run-now"));
}

TEST(ApiLimiter, WorkWaitsItsTurnWhileABusyPollIsRefused) {
  FakeClock clock;
  ApiLimiter limiter({{"jobs/runs/get", 4}, {"sql/statements", 4}}, clock.clock());
  EXPECT_EQ(immediate_grants(limiter, "jobs/runs/get"), 1);  // a quarter second: one call
  // Reserved: 250 ms ahead. Polls may still queue up to kMaxPollWait...
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.reserve("jobs/runs/get", CallPriority::kPoll).granted);
  // ... then they are refused, nothing reserved, told when to come back.
  const auto refused = limiter.reserve("jobs/runs/get", CallPriority::kPoll);
  EXPECT_FALSE(refused.granted);
  EXPECT_EQ(refused.wait, 1250ms);
  EXPECT_FALSE(limiter.reserve("jobs/runs/get", CallPriority::kPoll).granted);
  // Work on the same API is never refused: it waits.
  const auto work = limiter.reserve("jobs/runs/get", CallPriority::kWork);
  EXPECT_TRUE(work.granted);
  EXPECT_EQ(work.wait, 1250ms);
  // Once the queue drained, polls are granted again.
  clock.now += 2s;
  EXPECT_TRUE(limiter.reserve("jobs/runs/get", CallPriority::kPoll).granted);
}

TEST(ApiLimiter, WorkIsRefusedOnlyPastTheLongestWaitOfACall) {
  FakeClock clock;
  ApiLimiter limiter({{"jobs/run-now", 1}}, clock.clock());
  // One now, then one a second: the 6th would wait 5 s, the 7th 6 s.
  for (int i = 0; i < 6; ++i) {
    const auto grant = limiter.reserve("jobs/run-now", CallPriority::kWork);
    EXPECT_TRUE(grant.granted);
    EXPECT_EQ(grant.wait, std::chrono::seconds(i));
  }
  const auto refused = limiter.reserve("jobs/run-now", CallPriority::kWork);
  EXPECT_FALSE(refused.granted);
  EXPECT_EQ(refused.wait, 6s);
  // Nothing was reserved by the refusal: a second later it is the 7th's turn.
  clock.now += 1s;
  EXPECT_EQ(limiter.reserve("jobs/run-now", CallPriority::kWork).wait, 5s);
}

}  // namespace
}  // namespace brickwork
