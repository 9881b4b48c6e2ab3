// The HTTP client against the simulator on loopback: real sockets, real HTTP.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon/databricks/api.hpp"
#include "daemon/databricks/client.hpp"
#include "daemon/databricks/http.hpp"
#include "devstack/http_server.hpp"
#include "devstack/simulator.hpp"

namespace brickwork {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

EnvLookup no_env() {
  return [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
}

SimulatedJob job(std::string name, Duration duration, std::string outcome = "SUCCESS") {
  SimulatedJob j;
  j.name = std::move(name);
  j.duration = duration;
  j.outcome = std::move(outcome);
  return j;
}

SimulatorOptions sim_options() {
  SimulatorOptions o;
  o.pending_for = 20ms;
  o.cancel_delay = 50ms;
  o.jobs[101] = job("extract", 200ms);
  o.jobs[101].output = json::object{{"rows", 42}};
  o.jobs[102] = job("slow", 30s);
  o.jobs[103] = job("broken", 100ms, "INTERNAL_ERROR");
  o.jobs[104] = job("failing", 100ms, "FAILED");
  o.jobs[104].message = "bad data";
  return o;
}

struct Fixture : ::testing::Test {
  void start(SimulatorOptions options = sim_options()) {
    sim = std::make_unique<DatabricksSimulator>(std::move(options));
    ASSERT_TRUE(sim->start().ok());
  }

  std::unique_ptr<DatabricksApi> client(DatabricksConfig cfg = {}) {
    if (cfg.host.empty()) cfg.host = sim->base_url();
    DatabricksClientOptions o;
    o.backoff_initial = 10ms;
    o.backoff_max = 100ms;
    o.env = no_env();
    o.counters = counters;
    auto c = make_databricks_api(cfg, o);
    EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
    return c.ok() ? std::move(*c) : nullptr;
  }

  RunInfo wait_terminal(DatabricksApi& api, int64_t run_id, Duration limit = 10s) {
    const auto end = SteadyClock::now() + limit;
    while (SteadyClock::now() < end) {
      auto info = api.get_run(run_id);
      EXPECT_TRUE(info.ok()) << info.error().message;
      if (info.ok() && info->terminal()) return *info;
      std::this_thread::sleep_for(25ms);
    }
    ADD_FAILURE() << "run " << run_id << " did not end";
    return {};
  }

  std::unique_ptr<DatabricksSimulator> sim;
  std::shared_ptr<DatabricksClientCounters> counters = std::make_shared<DatabricksClientCounters>();
};

TEST_F(Fixture, RunNowThenGetUntilSuccess) {
  start();
  auto api = client();
  RunNowRequest req;
  req.job_id = 101;
  req.job_parameters = {{"url", "s3://x"}};
  req.idempotency_token = "tok-1";
  auto id = api->run_now(req);
  ASSERT_TRUE(id.ok()) << id.error().message;
  auto first = api->get_run(*id);
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->terminal());
  const RunInfo info = wait_terminal(*api, *id);
  EXPECT_EQ(info.run_id, *id);
  EXPECT_EQ(info.job_id, 101);
  EXPECT_EQ(info.life_cycle_state, "TERMINATED");
  EXPECT_EQ(info.result_state, "SUCCESS");
  EXPECT_TRUE(info.succeeded());
  EXPECT_EQ(info.run_page_url, sim->base_url() + "/#job/101/run/" + std::to_string(*id));
  EXPECT_EQ(sim->run(*id)->parameters.at("url"), "s3://x");
  EXPECT_EQ(api->host(), sim->base_url());
}

TEST_F(Fixture, SameIdempotencyTokenSameRun) {
  start();
  auto api = client();
  RunNowRequest req;
  req.job_id = 101;
  req.idempotency_token = "bw1-same";
  auto a = api->run_now(req);
  auto b = api->run_now(req);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  const auto s = sim->stats();
  EXPECT_EQ(s.run_now_calls, 2);
  EXPECT_EQ(s.runs_created, 1);
  EXPECT_EQ(s.runs_per_token.at("bw1-same"), 1);

  req.idempotency_token = std::string(65, 'x');
  auto too_long = api->run_now(req);
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.error().kind, ErrorKind::kInvalidInput);
}

TEST_F(Fixture, UnknownJobIsPermanentAndNotRetried) {
  start();
  auto api = client();
  RunNowRequest req;
  req.job_id = 999;
  auto r = api->run_now(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kPermanent);
  EXPECT_EQ(r.error().code, "INVALID_PARAMETER_VALUE");
  EXPECT_EQ(r.error().message, "Job 999 does not exist.");
  EXPECT_EQ(sim->stats().run_now_calls, 1);
  EXPECT_EQ(sim->stats().requests, 1);
  EXPECT_EQ(counters->retries.load(), 0);

  auto missing = api->get_run(424242);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "INVALID_PARAMETER_VALUE");
  EXPECT_EQ(missing.error().message, "Run 424242 does not exist.");
  EXPECT_EQ(sim->stats().get_calls, 1);
}

TEST_F(Fixture, TransientFaultsAreRetried) {
  start();
  auto api = client();
  sim->set_faults(SimulatorFaults{0.3, {429, 503}, 0s, 7});
  for (int i = 0; i < 15; ++i) {
    RunNowRequest req;
    req.job_id = 101;
    req.idempotency_token = "fault-" + std::to_string(i);
    auto id = api->run_now(req);
    ASSERT_TRUE(id.ok()) << id.error().message;
    auto info = api->get_run(*id);
    ASSERT_TRUE(info.ok()) << info.error().message;
  }
  auto s = sim->stats();
  EXPECT_GT(s.faults_injected, 0);
  EXPECT_GT(s.faults_by_status[429] + s.faults_by_status[503], 0);
  EXPECT_EQ(counters->retries.load(), s.faults_injected);
  EXPECT_EQ(s.runs_created, 15);  // retried run-now never made a second run
}

TEST_F(Fixture, OtherTransientStatusesAreRetried) {
  start();
  auto api = client();
  sim->set_faults(SimulatorFaults{0.5, {500, 502, 504}, std::nullopt, 3});
  for (int i = 0; i < 6; ++i) {
    auto info = api->get_run(1);
    EXPECT_FALSE(info.ok());  // run 1 does not exist: the final answer is a 400
    EXPECT_EQ(info.error().code, "INVALID_PARAMETER_VALUE");
  }
  EXPECT_GT(sim->stats().faults_injected, 0);
}

TEST_F(Fixture, RetryBudgetExhaustedIsTransient) {
  start();
  DatabricksConfig cfg;
  cfg.retry_budget = 300ms;
  auto api = client(cfg);
  sim->set_faults(SimulatorFaults{1.0, {503}, 0s, 1});
  const auto t0 = SteadyClock::now();
  auto r = api->get_run(1);
  const auto elapsed = SteadyClock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().transient());
  EXPECT_EQ(r.error().code, "TEMPORARILY_UNAVAILABLE");
  EXPECT_LT(elapsed, 3s);
  EXPECT_GT(sim->stats().faults_injected, 1);
}

TEST_F(Fixture, RetryAfterIsHonoured) {
  start();
  auto api = client();
  sim->set_faults(SimulatorFaults{1.0, {429}, 1s, 1});
  std::atomic<bool> done{false};
  std::thread healer([&] {
    while (!done && sim->stats().faults_injected == 0) std::this_thread::sleep_for(2ms);
    sim->set_faults(SimulatorFaults{});
  });
  const auto t0 = SteadyClock::now();
  RunNowRequest req;
  req.job_id = 101;
  auto r = api->run_now(req);
  const auto elapsed = SteadyClock::now() - t0;
  done = true;
  healer.join();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_GE(elapsed, 900ms);
  EXPECT_LT(elapsed, 10s);
  EXPECT_EQ(sim->stats().faults_by_status[429], 1);
}

// A 429's Retry-After holds every call of that API, not only the one that
// got it: a run-now started during the pause reaches the workspace only
// after it.
TEST_F(Fixture, RetryAfterHoldsEveryCallOfThatApi) {
  SimulatorOptions options = sim_options();
  options.pace.limits = {{"jobs/run-now", 1}};  // one a second; Retry-After: 1
  start(options);
  DatabricksConfig cfg;
  cfg.limits = {{"jobs/run-now", 50}};  // the client thinks it may send many more
  auto api = client(cfg);
  const auto run = [&](const std::string& token) {
    RunNowRequest req;
    req.job_id = 101;
    req.idempotency_token = token;
    return api->run_now(req);
  };
  ASSERT_TRUE(run("first").ok());
  std::thread refused([&] { EXPECT_TRUE(run("second").ok()); });  // 429, then waits
  ASSERT_TRUE([&] {
    for (int i = 0; i < 500 && counters->throttled.load() == 0; ++i) std::this_thread::sleep_for(2ms);
    return counters->throttled.load() == 1;
  }());
  const auto paused_at = SteadyClock::now();
  std::thread later([&] { EXPECT_TRUE(run("third").ok()); });
  std::this_thread::sleep_for(700ms);
  // Nothing more reached the workspace during the pause.
  EXPECT_EQ(sim->stats().apis.at("jobs/run-now").calls, 2);
  refused.join();
  later.join();
  EXPECT_GE(SteadyClock::now() - paused_at, 900ms);
  EXPECT_EQ(sim->stats().runs_created, 3);
}

// Polls do not queue behind a busy limit: they come back at once, transient
// ("throttled"), for the caller to try later, while work keeps its turn.
TEST_F(Fixture, APollFindingItsLimitBusyIsDeferred) {
  start();
  DatabricksConfig cfg;
  cfg.limits = {{"jobs/runs/get", 2}};
  auto api = client(cfg);
  RunNowRequest req;
  req.job_id = 101;
  auto id = api->run_now(req);
  ASSERT_TRUE(id.ok());
  std::atomic<int> deferred{0};
  const auto t0 = SteadyClock::now();
  std::vector<std::thread> pollers;
  for (int i = 0; i < 8; ++i) {
    pollers.emplace_back([&] {
      auto info = api->get_run(*id);
      if (!info.ok()) {
        EXPECT_EQ(info.error().code, "throttled");
        EXPECT_TRUE(info.error().transient());
        ++deferred;
      }
    });
  }
  for (auto& t : pollers) t.join();
  // 1 at once (a quarter second's), 2 more within the second a poll may
  // wait, the rest refused.
  EXPECT_EQ(deferred.load(), 5);
  EXPECT_LT(SteadyClock::now() - t0, 2s);
  EXPECT_EQ(counters->polls_deferred.load(), 5);
  EXPECT_EQ(sim->stats().get_calls, 3);
}

// Work waits its turn, but not for long in a call thread: a run-now whose
// turn is further than ApiLimiter::kMaxWorkWait away comes back at once,
// transient ("throttled"), nothing sent, for its effect to be tried later;
// so does a retry told to wait longer than that (Retry-After: 8 s).
TEST_F(Fixture, WorkWhoseTurnIsFarAwayHoldsNoCallThread) {
  start();
  DatabricksConfig cfg;
  cfg.limits = {{"jobs/run-now", 0.1}};  // one per 10 s
  auto api = client(cfg);
  RunNowRequest req;
  req.job_id = 101;
  ASSERT_TRUE(api->run_now(req).ok());
  auto t0 = SteadyClock::now();
  auto second = api->run_now(req);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, "throttled");
  EXPECT_TRUE(second.error().transient());
  EXPECT_LT(SteadyClock::now() - t0, 1s);
  EXPECT_EQ(sim->stats().apis.at("jobs/run-now").calls, 1);

  sim->set_faults(SimulatorFaults{1.0, {503}, 8s, 1});
  t0 = SteadyClock::now();
  auto polled = api->get_run(1);
  ASSERT_FALSE(polled.ok());
  EXPECT_TRUE(polled.error().transient());
  EXPECT_EQ(polled.error().code, "TEMPORARILY_UNAVAILABLE");
  EXPECT_NE(polled.error().message.find("tried again later"), std::string::npos)
      << polled.error().message;
  EXPECT_LT(SteadyClock::now() - t0, 3s);
  EXPECT_EQ(sim->stats().faults_injected, 1);
}

TEST_F(Fixture, NonIdempotentCallIsNotRetried) {
  start();
  auto api = client();
  sim->set_faults(SimulatorFaults{1.0, {503}, 0s, 1});
  json::value body = json::object{{"job_id", 101}};
  auto r = api->call("POST", "/api/2.2/jobs/run-now", &body, false);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().transient());
  EXPECT_EQ(sim->stats().requests, 1);

  sim->set_faults(SimulatorFaults{});
  auto ok = api->call("POST", "/api/2.2/jobs/run-now", &body, false);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_TRUE(ok->as_object().at("run_id").is_int64());
  auto bad_path = api->call("GET", "api/x", nullptr, true);
  ASSERT_FALSE(bad_path.ok());
}

TEST_F(Fixture, PatIsSent) {
  SimulatorOptions o = sim_options();
  o.bearer_token = "dapi-good";
  start(o);
  DatabricksConfig good;
  good.token = "dapi-good";
  auto api = client(good);
  RunNowRequest req;
  req.job_id = 101;
  EXPECT_TRUE(api->run_now(req).ok());

  DatabricksConfig bad;
  bad.token = "dapi-wrong";
  auto wrong = client(bad);
  auto r = wrong->run_now(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kPermanent);
  EXPECT_EQ(r.error().code, "UNAUTHENTICATED");
  EXPECT_EQ(sim->stats().unauthorized, 1);
}

TEST_F(Fixture, OAuthTokenCachedAndRenewed) {
  SimulatorOptions o = sim_options();
  o.oauth_client_id = "sp-id";
  o.oauth_client_secret = "sp-secret";
  o.oauth_token_ttl = 2s;  // renewed once less than 1 s is left
  start(o);
  DatabricksConfig cfg;
  cfg.client_id = "sp-id";
  cfg.client_secret = "sp-secret";
  auto api = client(cfg);
  RunNowRequest req;
  req.job_id = 101;
  auto id = api->run_now(req);
  ASSERT_TRUE(id.ok()) << id.error().message;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(api->get_run(*id).ok());
  EXPECT_EQ(sim->stats().token_calls, 1);
  EXPECT_EQ(counters->token_fetches.load(), 1);

  std::this_thread::sleep_for(1200ms);
  ASSERT_TRUE(api->get_run(*id).ok());
  EXPECT_EQ(sim->stats().token_calls, 2);
  ASSERT_TRUE(api->get_run(*id).ok());
  EXPECT_EQ(sim->stats().token_calls, 2);

  DatabricksConfig wrong;
  wrong.client_id = "sp-id";
  wrong.client_secret = "not-the-secret";
  auto bad = client(wrong);
  auto r = bad->get_run(*id);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kPermanent);
  EXPECT_EQ(r.error().code, "invalid_client");
  EXPECT_EQ(r.error().message.find("not-the-secret"), std::string::npos);
}

TEST_F(Fixture, OAuthTokenFetchRetriedThroughFaults) {
  SimulatorOptions o = sim_options();
  o.oauth_client_id = "sp-id";
  o.oauth_client_secret = "sp-secret";
  start(o);
  sim->set_faults(SimulatorFaults{0.4, {429, 503}, 0s, 11});
  DatabricksConfig cfg;
  cfg.client_id = "sp-id";
  cfg.client_secret = "sp-secret";
  auto api = client(cfg);
  for (int i = 0; i < 5; ++i) {
    RunNowRequest req;
    req.job_id = 101;
    req.idempotency_token = "oauth-" + std::to_string(i);
    auto r = api->run_now(req);
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  EXPECT_EQ(sim->stats().token_calls, 1);
  EXPECT_GT(sim->stats().faults_injected, 0);
}

TEST_F(Fixture, PlainHttpToRemoteHostRejected) {
  DatabricksConfig cfg;
  cfg.host = "http://adb-123.azuredatabricks.net";
  cfg.token = "t";
  DatabricksClientOptions o;
  o.env = no_env();
  auto r = make_databricks_api(cfg, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "insecure_url");
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidInput);

  http::Client raw;
  auto direct = raw.send(http::Request{"GET", "http://example.com/", {}, "", 1s, {}, ""});
  ASSERT_FALSE(direct.ok());
  EXPECT_EQ(direct.error().code, "insecure_url");
}

TEST_F(Fixture, CompletionEventCarriesToken) {
  start();
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<std::string, std::string>> events;
  sim->set_sink([&](const std::string& key, const std::string& payload) {
    std::lock_guard lock(mu);
    events.emplace_back(key, payload);
    cv.notify_all();
  });
  auto api = client();
  RunNowRequest req;
  req.job_id = 101;
  req.job_parameters = {{"brickwork_workflow_id", "order-4711"},
                        {"brickwork_step", "transform"},
                        {"brickwork_token", "tok-abc"}};
  auto id = api->run_now(req);
  ASSERT_TRUE(id.ok());
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return !events.empty(); }));
  }
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].first, "order-4711");
  const json::object e = json::parse(events[0].second).as_object();
  EXPECT_EQ(e.at("type").as_string(), "job_completed");
  EXPECT_EQ(e.at("workflow_id").as_string(), "order-4711");
  EXPECT_EQ(e.at("step").as_string(), "transform");
  EXPECT_EQ(e.at("token").as_string(), "tok-abc");
  EXPECT_EQ(e.at("state").as_string(), "SUCCESS");
  EXPECT_EQ(e.at("run_id").as_int64(), *id);
  EXPECT_EQ(e.at("output").as_object().at("rows").as_int64(), 42);
  EXPECT_EQ(sim->stats().events_emitted, 1);

  // A failing job reports FAILED with its message; a run without the
  // parameters reports nothing.
  req.job_id = 104;
  auto failed = api->run_now(req);
  ASSERT_TRUE(failed.ok());
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return events.size() == 2; }));
  }
  const json::object f = json::parse(events[1].second).as_object();
  EXPECT_EQ(f.at("state").as_string(), "FAILED");
  EXPECT_EQ(f.at("message").as_string(), "bad data");
  const RunInfo info = wait_terminal(*api, *failed);
  EXPECT_EQ(info.result_state, "FAILED");
  EXPECT_EQ(info.state_message, "bad data");
}

TEST_F(Fixture, CancelEndsCanceledWithoutEvent) {
  start();
  std::atomic<int> events{0};
  sim->set_sink([&](const std::string&, const std::string&) { ++events; });
  auto api = client();
  RunNowRequest req;
  req.job_id = 102;
  req.job_parameters = {{"brickwork_workflow_id", "w"}, {"brickwork_step", "s"}, {"brickwork_token", "t"}};
  auto id = api->run_now(req);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(api->cancel_run(*id).ok());
  const RunInfo info = wait_terminal(*api, *id);
  EXPECT_EQ(info.life_cycle_state, "TERMINATED");
  EXPECT_EQ(info.result_state, "CANCELED");
  EXPECT_FALSE(info.succeeded());
  EXPECT_EQ(events.load(), 0);
  EXPECT_EQ(sim->stats().cancel_calls, 1);
  EXPECT_EQ(sim->stats().runs.at(*id).result_state, "CANCELED");
  EXPECT_TRUE(api->cancel_run(*id).ok());  // again: a no-op
  auto unknown = api->cancel_run(987654);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, "INVALID_PARAMETER_VALUE");
}

TEST_F(Fixture, InternalErrorIsTerminal) {
  start();
  auto api = client();
  RunNowRequest req;
  req.job_id = 103;
  auto id = api->run_now(req);
  ASSERT_TRUE(id.ok());
  const RunInfo info = wait_terminal(*api, *id);
  EXPECT_EQ(info.life_cycle_state, "INTERNAL_ERROR");
  EXPECT_TRUE(info.terminal());
  EXPECT_FALSE(info.succeeded());
}

TEST_F(Fixture, SubmitRunWithTokenAndNotebookParameters) {
  start();
  std::atomic<int> events{0};
  sim->set_sink([&](const std::string&, const std::string&) { ++events; });
  auto api = client();
  json::object body = json::parse(R"({"run_name": "extract", "idempotency_token": "sub-1",
      "tasks": [{"task_key": "main", "notebook_task": {"notebook_path": "/x",
        "base_parameters": {"brickwork_workflow_id": "w1", "brickwork_step": "s1",
                            "brickwork_token": "t1"}}}]})").as_object();
  auto a = api->submit_run(body);
  auto b = api->submit_run(body);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(sim->stats().runs_created, 1);
  const RunInfo info = wait_terminal(*api, *a);
  EXPECT_TRUE(info.succeeded());
  const auto end = SteadyClock::now() + 2s;
  while (events.load() == 0 && SteadyClock::now() < end) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(events.load(), 1);
}

TEST_F(Fixture, ConnectionRefusedIsTransient) {
  start();
  const std::string url = sim->base_url();
  sim->stop();
  DatabricksConfig cfg;
  cfg.host = url;
  cfg.retry_budget = 200ms;
  auto api = client(cfg);
  auto r = api->get_run(1);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().transient());
  EXPECT_EQ(r.error().code, "connection_error");
  EXPECT_GT(counters->retries.load(), 0);
}

TEST_F(Fixture, SlowServerTimesOut) {
  auto server = http::Server::start("127.0.0.1", 0, [](const http::ServerRequest&) {
    std::this_thread::sleep_for(400ms);
    return http::ServerResponse{200, {}, "{}"};
  });
  ASSERT_TRUE(server.ok());
  DatabricksConfig cfg;
  cfg.host = "http://127.0.0.1:" + std::to_string((*server)->port());
  cfg.request_timeout = 100ms;
  cfg.retry_budget = 150ms;
  DatabricksClientOptions o;
  o.env = no_env();
  o.backoff_initial = 10ms;
  auto api = make_databricks_api(cfg, o);
  ASSERT_TRUE(api.ok());
  auto r = (*api)->get_run(1);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().transient());
  EXPECT_EQ(r.error().code, "timeout");
}

TEST_F(Fixture, KeepAliveSurvivesServerRestartOnSamePort) {
  start();
  auto api = client();
  RunNowRequest req;
  req.job_id = 101;
  ASSERT_TRUE(api->run_now(req).ok());
  const uint16_t port = sim->port();
  sim->stop();
  SimulatorOptions o = sim_options();
  o.port = port;
  sim = std::make_unique<DatabricksSimulator>(o);
  ASSERT_TRUE(sim->start().ok());
  auto r = api->run_now(req);  // the pooled connection is dead; a fresh one is used
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(counters->retries.load(), 0);
}

TEST(HttpClient, ConcurrentCallers) {
  SimulatorOptions o = sim_options();
  DatabricksSimulator sim(o);
  ASSERT_TRUE(sim.start().ok());
  DatabricksConfig cfg;
  cfg.host = sim.base_url();
  DatabricksClientOptions opts;
  opts.env = no_env();
  auto api = make_databricks_api(cfg, opts);
  ASSERT_TRUE(api.ok());
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        RunNowRequest req;
        req.job_id = 101;
        req.idempotency_token = "c-" + std::to_string(t) + "-" + std::to_string(i);
        if ((*api)->run_now(req).ok()) ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 80);
  EXPECT_EQ(sim.stats().runs_created, 80);
}

// As many callers at once as the workspace has call slots reuse their
// connections: every one kept when its call ends, none opened anew (for
// HTTPS, a handshake each) because an idle one was closed a moment before.
// The callers go in rounds, all of them idle between two, as a burst of
// effects claimed together ends together; with 16 kept, 8 connections were
// opened in every round.
TEST(HttpClient, EveryCallSlotKeepsItsConnection) {
  SimulatorOptions o = sim_options();
  o.pace.latency_min = o.pace.latency_max = 100ms;  // a round's calls overlap
  DatabricksSimulator sim(o);
  ASSERT_TRUE(sim.start().ok());
  DatabricksConfig cfg;
  cfg.host = sim.base_url();
  cfg.max_in_flight = 20;
  cfg.max_transfers = 4;
  cfg.limits = {{"jobs/run-now", 10'000}};  // not the client's pace: its connections
  DatabricksClientOptions opts;
  opts.env = no_env();
  auto api = make_databricks_api(cfg, opts);
  ASSERT_TRUE(api.ok());
  constexpr int kCallers = 24;
  constexpr int kRounds = 4;
  std::atomic<int> ok{0};
  std::barrier round_ended(kCallers);
  std::vector<std::thread> threads;
  for (int t = 0; t < kCallers; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        RunNowRequest req;
        req.job_id = 101;
        req.idempotency_token = "k-" + std::to_string(t) + "-" + std::to_string(i);
        if ((*api)->run_now(req).ok()) ++ok;
        round_ended.arrive_and_wait();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kCallers * kRounds);
  EXPECT_GT(sim.stats().max_in_flight, 16);  // more at once than 16 kept connections
  EXPECT_LE(sim.stats().connections, kCallers);
}


}  // namespace
}  // namespace brickwork

namespace brickwork {
namespace {

// A server that answers every request 200 with "{}".
std::unique_ptr<http::Server> answering_server() {
  auto server = http::Server::start("127.0.0.1", 0, [](const http::ServerRequest&) {
    return http::ServerResponse{200, {}, "{}"};
  });
  return server.ok() ? std::move(*server) : nullptr;
}

// TLS against a plain-HTTP listener: the handshake fails and comes back as a
// value (never an exception or a hang).
TEST(HttpClient, TlsHandshakeFailureIsAnError) {
  auto server = answering_server();
  ASSERT_NE(server, nullptr);
  http::Client client;
  http::Request req;
  req.url = "https://127.0.0.1:" + std::to_string(server->port()) + "/";
  req.timeout = std::chrono::seconds(5);
  auto r = client.send(req);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().code == "tls_error" || r.error().code == "connection_error") << r.error().code;
}


// Threads of this process named `name`.
int threads_named(const std::string& name) {
  int count = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string line;
    if (std::getline(comm, line) && line == name) ++count;
  }
  return count;
}

// A request to an address runs on the thread that sends it: no other
// thread wakes to do its I/O and to hand its response back (two wake-ups
// per call, which on a busy host cost more than the call).
TEST(HttpClient, ARequestToAnAddressNeedsNoOtherThread) {
  auto server = answering_server();
  ASSERT_NE(server, nullptr);
  const int before = threads_named("bw-http-io");
  http::Client client;
  http::Request req;
  req.url = "http://127.0.0.1:" + std::to_string(server->port()) + "/";
  for (int i = 0; i < 3; ++i) {
    auto r = client.send(req);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_EQ(threads_named("bw-http-io"), before);
  EXPECT_EQ(server->connections_accepted(), 1) << "the connection was not kept";
}

// A host name is looked up (on the client's one lookup thread), and each of
// its addresses tried in turn.
TEST(HttpClient, AHostNameIsLookedUp) {
  auto server = answering_server();
  ASSERT_NE(server, nullptr);
  http::Client client;
  http::Request req;
  req.url = "http://localhost:" + std::to_string(server->port()) + "/";
  auto r = client.send(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
}

// cancel_all() (a daemon stopping) ends a request waiting for its answer at
// once, and refuses the next.
TEST(HttpClient, CancelAllEndsARequestInFlight) {
  std::mutex mutex;
  std::condition_variable answered_cv;
  bool answer = false;
  auto server = http::Server::start("127.0.0.1", 0, [&](const http::ServerRequest&) {
    std::unique_lock lock(mutex);
    answered_cv.wait_for(lock, 5s, [&] { return answer; });
    return http::ServerResponse{200, {}, "{}"};
  });
  ASSERT_TRUE(server.ok());
  http::Client client;
  http::Request req;
  req.url = "http://127.0.0.1:" + std::to_string((*server)->port()) + "/";
  req.timeout = 10s;
  std::optional<Result<http::Response>> result;
  std::chrono::steady_clock::duration took{};
  std::thread sender([&] {
    const auto begun = std::chrono::steady_clock::now();
    result.emplace(client.send(req));
    took = std::chrono::steady_clock::now() - begun;
  });
  std::this_thread::sleep_for(200ms);
  client.cancel_all();
  sender.join();
  {
    std::lock_guard lock(mutex);
    answer = true;
  }
  answered_cv.notify_all();
  ASSERT_TRUE(result.has_value());
  ASSERT_FALSE(result->ok());
  EXPECT_EQ(result->error().code, "canceled");
  EXPECT_LT(took, 2s);
  auto next = client.send(req);
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.error().code, "canceled");
}

}  // namespace
}  // namespace brickwork
