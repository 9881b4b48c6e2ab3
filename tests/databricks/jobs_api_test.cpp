// jobs/list, task runs, runs/get-output and runs/submit's task parameters:
// the HTTP client against the simulator on loopback.
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

SimulatedJob quick_job(std::string name, int32_t tasks = 1) {
  SimulatedJob j;
  j.name = std::move(name);
  j.duration = 100ms;
  j.tasks = tasks;
  return j;
}

// runs/submit runs whose run_name names no job.
SimulatorOptions one_off_runs() {
  SimulatorOptions o;
  o.default_job = quick_job("");
  return o;
}

// Completion events as the simulator publishes them.
struct EventLog {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<json::object> events;

  CompletionSink sink() {
    return [this](const std::string&, const std::string& payload) {
      std::lock_guard lock(mu);
      events.push_back(json::parse(payload).as_object());
      cv.notify_all();
    };
  }
  std::optional<json::object> wait_for(size_t n) {
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, 5s, [&] { return events.size() >= n; })) return std::nullopt;
    return events[n - 1];
  }
};

struct JobsApiTest : ::testing::Test {
  void start(SimulatorOptions options) {
    options.pending_for = 20ms;
    sim = std::make_unique<DatabricksSimulator>(std::move(options));
    ASSERT_TRUE(sim->start().ok());
    DatabricksConfig cfg;
    cfg.host = sim->base_url();
    DatabricksClientOptions o;
    o.backoff_initial = 10ms;
    o.backoff_max = 100ms;
    o.env = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
    o.counters = counters;
    auto c = make_databricks_api(cfg, o);
    ASSERT_TRUE(c.ok()) << c.error().message;
    api = std::move(*c);
  }

  RunInfo finished(int64_t run_id) {
    const auto end = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < end) {
      auto info = api->get_run(run_id);
      EXPECT_TRUE(info.ok()) << info.error().message;
      if (info.ok() && info->terminal()) return *info;
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "run " << run_id << " did not end";
    return {};
  }

  int64_t run(int64_t job_id, std::map<std::string, std::string> parameters = {}) {
    RunNowRequest req;
    req.job_id = job_id;
    req.job_parameters = std::move(parameters);
    auto id = api->run_now(req);
    EXPECT_TRUE(id.ok()) << id.error().message;
    return id.ok() ? *id : 0;
  }

  std::unique_ptr<DatabricksSimulator> sim;
  std::unique_ptr<DatabricksApi> api;
  std::shared_ptr<DatabricksClientCounters> counters = std::make_shared<DatabricksClientCounters>();
};

TEST_F(JobsApiTest, FindJobsByNameFollowsEveryPage) {
  SimulatorOptions o;
  for (int64_t id = 1000; id < 1150; ++id) o.jobs[id] = quick_job("nightly");  // two pages of 100
  o.jobs[2000] = quick_job("Nightly");  // the API's filter ignores case; brickwork does not
  o.jobs[2001] = quick_job("NIGHTLY");
  o.jobs[2002] = quick_job("nightly-backfill");
  o.jobs[2003] = quick_job("a&b=c d+e/\xC3\xA9");
  start(o);

  auto many = api->find_jobs_by_name("nightly");
  ASSERT_TRUE(many.ok()) << many.error().message;
  ASSERT_EQ(many->size(), 150u);
  EXPECT_EQ(many->front(), 1000);
  EXPECT_EQ(many->back(), 1149);
  EXPECT_EQ(sim->stats().list_calls, 2);

  auto upper = api->find_jobs_by_name("Nightly");
  ASSERT_TRUE(upper.ok());
  EXPECT_EQ(*upper, (std::vector<int64_t>{2000}));

  auto odd = api->find_jobs_by_name("a&b=c d+e/\xC3\xA9");  // reaches the server as it is
  ASSERT_TRUE(odd.ok()) << odd.error().message;
  EXPECT_EQ(*odd, (std::vector<int64_t>{2003}));

  auto none = api->find_jobs_by_name("weekly");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  auto empty = api->find_jobs_by_name("");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(counters->retries.load(), 0);
}

TEST_F(JobsApiTest, JobsListPagesAsDocumented) {
  SimulatorOptions o;
  for (int64_t id = 1; id <= 5; ++id) o.jobs[id] = quick_job("job-" + std::to_string(id));
  start(o);
  auto first = api->call("GET", "/api/2.2/jobs/list?limit=2", nullptr, true);
  ASSERT_TRUE(first.ok()) << first.error().message;
  const json::object& p1 = first->as_object();
  EXPECT_TRUE(p1.at("has_more").as_bool());
  ASSERT_EQ(p1.at("jobs").as_array().size(), 2u);
  EXPECT_EQ(p1.at("jobs").as_array()[0].at("job_id").as_int64(), 1);
  EXPECT_EQ(p1.at("jobs").as_array()[0].at("settings").at("name").as_string(), "job-1");

  // Default limit 20: the rest in one page, the last page has no token.
  const std::string token(p1.at("next_page_token").as_string());
  std::string encoded;
  for (char c : token) {
    if (c == '+' || c == '/' || c == '=') {
      static constexpr char kHex[] = "0123456789ABCDEF";
      encoded += '%';
      encoded += kHex[static_cast<unsigned char>(c) >> 4];
      encoded += kHex[static_cast<unsigned char>(c) & 15];
    } else {
      encoded += c;
    }
  }
  auto second = api->call("GET", "/api/2.1/jobs/list?page_token=" + encoded, nullptr, true);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(second->as_object().at("jobs").as_array().size(), 3u);
  EXPECT_FALSE(second->as_object().at("has_more").as_bool());
  EXPECT_FALSE(second->as_object().contains("next_page_token"));

  auto nothing = api->call("GET", "/api/2.2/jobs/list?name=zzz", nullptr, true);
  ASSERT_TRUE(nothing.ok());
  EXPECT_FALSE(nothing->as_object().contains("jobs"));  // only there when something matched

  for (const char* bad : {"/api/2.2/jobs/list?limit=0", "/api/2.2/jobs/list?limit=101",
                          "/api/2.2/jobs/list?page_token=forged"}) {
    auto r = api->call("GET", bad, nullptr, true);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, "INVALID_PARAMETER_VALUE") << bad;
    EXPECT_EQ(r.error().kind, ErrorKind::kPermanent) << bad;
  }
}

TEST_F(JobsApiTest, TaskRunOutputJsonObjectOrText) {
  SimulatorOptions o;
  o.jobs[1] = quick_job("structured");
  o.jobs[1].output = json::object{{"rows", 42}};
  o.jobs[2] = quick_job("chatty");
  o.jobs[2].notebook_result = "done: 42 rows";
  start(o);

  const int64_t structured = run(1);
  const RunInfo info = finished(structured);
  ASSERT_EQ(info.tasks.size(), 1u);
  EXPECT_EQ(info.tasks[0].task_key, "task_1");
  EXPECT_NE(info.tasks[0].run_id, structured);
  auto body = api->get_run_output(info.tasks[0].run_id);
  ASSERT_TRUE(body.ok()) << body.error().message;
  EXPECT_EQ(body->at("metadata").at("run_id").as_int64(), info.tasks[0].run_id);
  EXPECT_EQ(body->at("metadata").at("state").at("result_state").as_string(), "SUCCESS");
  EXPECT_FALSE(body->at("notebook_output").at("truncated").as_bool());
  EXPECT_EQ(output_from_run_output(*body), (json::object{{"rows", 42}}));

  const RunInfo chatty = finished(run(2));
  ASSERT_EQ(chatty.tasks.size(), 1u);
  auto text = api->get_run_output(chatty.tasks[0].run_id);
  ASSERT_TRUE(text.ok()) << text.error().message;
  EXPECT_EQ(output_from_run_output(*text), (json::object{{"result", "done: 42 rows"}}));
  EXPECT_EQ(sim->stats().get_output_calls, 2);
}

TEST_F(JobsApiTest, OutputBeforeTheEndAndAfterAFailure) {
  SimulatorOptions o;
  o.jobs[1] = quick_job("slow");
  o.jobs[1].duration = 30s;
  o.jobs[2] = quick_job("failing");
  o.jobs[2].outcome = "FAILED";
  o.jobs[2].message = "bad data";
  start(o);

  auto running = api->get_run(run(1));
  ASSERT_TRUE(running.ok());
  ASSERT_EQ(running->tasks.size(), 1u);
  auto early = api->get_run_output(running->tasks[0].run_id);
  ASSERT_TRUE(early.ok()) << early.error().message;
  EXPECT_TRUE(early->contains("metadata"));
  EXPECT_TRUE(output_from_run_output(*early).empty());

  const RunInfo failed = finished(run(2));
  ASSERT_EQ(failed.tasks.size(), 1u);
  auto after = api->get_run_output(failed.tasks[0].run_id);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->at("error").as_string(), "bad data");
  EXPECT_TRUE(output_from_run_output(*after).empty());
}

TEST_F(JobsApiTest, JobRunIdIsRefusedByGetOutput) {
  SimulatorOptions o;
  o.jobs[1] = quick_job("fan_out", 3);
  o.jobs[2] = quick_job("single");
  start(o);

  const int64_t parent = run(1);
  const RunInfo info = finished(parent);
  ASSERT_EQ(info.tasks.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(info.tasks[i].task_key, "task_" + std::to_string(i + 1));
    EXPECT_NE(info.tasks[i].run_id, parent);
    auto out = api->get_run_output(info.tasks[i].run_id);
    ASSERT_TRUE(out.ok()) << out.error().message;
    EXPECT_EQ(out->at("metadata").at("task_key").as_string(), info.tasks[i].task_key);
  }
  EXPECT_EQ(sim->run(parent)->tasks.size(), 3u);
  EXPECT_EQ(sim->stats().runs_created, 1);

  const int64_t requests = sim->stats().requests;
  auto refused = api->get_run_output(parent);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "INVALID_PARAMETER_VALUE");
  EXPECT_EQ(refused.error().kind, ErrorKind::kPermanent);
  EXPECT_EQ(refused.error().message,
            "Retrieving the output of runs with multiple tasks is not supported. Please retrieve "
            "the output of each individual task run instead.");
  EXPECT_EQ(sim->stats().requests, requests + 1);  // not retried

  // Jobs API 2.1+ refuses a job run's own id even with a single task.
  auto single = api->get_run_output(finished(run(2)).run_id);
  ASSERT_FALSE(single.ok());
  EXPECT_EQ(single.error().message, refused.error().message);

  auto unknown = api->get_run_output(987654);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, "INVALID_PARAMETER_VALUE");
  EXPECT_EQ(unknown.error().message, "Run 987654 does not exist.");
}

TEST_F(JobsApiTest, RunsGetPagesTasksInApi22) {
  SimulatorOptions o;
  o.jobs[1] = quick_job("wide", 250);
  start(o);
  const int64_t parent = run(1);
  const int64_t gets = sim->stats().get_calls;
  auto info = api->get_run(parent);
  ASSERT_TRUE(info.ok()) << info.error().message;
  ASSERT_EQ(info->tasks.size(), 250u);
  for (size_t i = 0; i < 250; ++i) {
    EXPECT_EQ(info->tasks[i].task_key, "task_" + std::to_string(i + 1));
    EXPECT_EQ(info->tasks[i].run_id, sim->run(parent)->tasks[i].run_id);
  }
  EXPECT_EQ(sim->stats().get_calls, gets + 3);  // 100 + 100 + 50

  // 2.1 lists every task in one response.
  auto v21 =
      api->call("GET", "/api/2.1/jobs/runs/get?run_id=" + std::to_string(parent), nullptr, true);
  ASSERT_TRUE(v21.ok());
  EXPECT_EQ(v21->as_object().at("tasks").as_array().size(), 250u);
  EXPECT_FALSE(v21->as_object().contains("next_page_token"));
}

TEST_F(JobsApiTest, SubmitReadsNotebookTaskParameters) {
  start(one_off_runs());
  EventLog log;
  sim->set_sink(log.sink());
  json::object body = json::parse(R"({"run_name": "one-off", "idempotency_token": "bw1-nb",
      "tasks": [{"task_key": "main", "notebook_task": {"notebook_path": "/Shared/etl",
        "base_parameters": {"day": "2026-11-22", "brickwork_workflow_id": "wf-1",
                            "brickwork_step": "transform", "brickwork_token": "tok-1"}}}]})")
                          .as_object();
  auto id = api->submit_run(body);
  ASSERT_TRUE(id.ok()) << id.error().message;
  const auto recorded = sim->run(*id)->parameters;
  EXPECT_EQ(recorded.at("brickwork_workflow_id"), "wf-1");
  EXPECT_EQ(recorded.at("brickwork_step"), "transform");
  EXPECT_EQ(recorded.at("brickwork_token"), "tok-1");
  EXPECT_EQ(recorded.at("day"), "2026-11-22");

  auto event = log.wait_for(1);
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->at("workflow_id").as_string(), "wf-1");
  EXPECT_EQ(event->at("step").as_string(), "transform");
  EXPECT_EQ(event->at("token").as_string(), "tok-1");
  EXPECT_EQ(event->at("run_id").as_int64(), *id);

  const RunInfo info = finished(*id);
  ASSERT_EQ(info.tasks.size(), 1u);
  EXPECT_EQ(info.tasks[0].task_key, "main");
  EXPECT_EQ(sim->stats().submit_calls, 1);
}

TEST_F(JobsApiTest, SubmitReadsPythonTaskArguments) {
  start(one_off_runs());
  EventLog log;
  sim->set_sink(log.sink());
  json::object body = json::parse(R"({"run_name": "py", "idempotency_token": "bw1-py",
      "tasks": [{"task_key": "prepare", "spark_python_task": {"python_file": "/x.py",
                   "parameters": ["--verbose", "--brickwork_workflow_id", "wf-2",
                                  "--brickwork_step=score", "--brickwork_token", "tok-2", "plain"]}},
                {"task_key": "after", "depends_on": [{"task_key": "prepare"}],
                 "notebook_task": {"notebook_path": "/y"}}]})")
                          .as_object();
  auto a = api->submit_run(body);
  auto b = api->submit_run(body);  // the same token: the same run
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(sim->stats().runs_created, 1);
  EXPECT_EQ(sim->stats().runs_per_token.at("bw1-py"), 1);
  const auto recorded = sim->run(*a)->parameters;
  EXPECT_EQ(recorded.at("brickwork_workflow_id"), "wf-2");
  EXPECT_EQ(recorded.at("brickwork_step"), "score");
  EXPECT_EQ(recorded.at("brickwork_token"), "tok-2");
  EXPECT_EQ(recorded.at("verbose"), "");

  auto event = log.wait_for(1);
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->at("workflow_id").as_string(), "wf-2");
  EXPECT_EQ(event->at("step").as_string(), "score");
  EXPECT_EQ(event->at("token").as_string(), "tok-2");

  const RunInfo info = finished(*a);
  ASSERT_EQ(info.tasks.size(), 2u);
  EXPECT_EQ(info.tasks[0].task_key, "prepare");
  EXPECT_EQ(info.tasks[1].task_key, "after");
}

TEST_F(JobsApiTest, SubmitReadsOtherTaskTypes) {
  start(one_off_runs());
  const char* bodies[] = {
      R"({"tasks": [{"task_key": "w", "python_wheel_task": {"package_name": "p", "entry_point": "e",
          "named_parameters": {"brickwork_workflow_id": "w", "brickwork_step": "s", "brickwork_token": "t"}}}]})",
      R"({"tasks": [{"task_key": "w", "python_wheel_task": {"package_name": "p", "entry_point": "e",
          "parameters": ["--brickwork_workflow_id", "w", "--brickwork_step", "s", "--brickwork_token", "t"]}}]})",
      R"({"tasks": [{"task_key": "j", "spark_jar_task": {"main_class_name": "M",
          "parameters": ["--brickwork_workflow_id", "w", "--brickwork_step", "s", "--brickwork_token", "t"]}}]})",
      R"({"tasks": [{"task_key": "q", "sql_task": {"warehouse_id": "wh", "query": {"query_id": "x"},
          "parameters": {"brickwork_workflow_id": "w", "brickwork_step": "s", "brickwork_token": "t"}}}]})",
  };
  for (const char* text : bodies) {
    auto id = api->submit_run(json::parse(text).as_object());
    ASSERT_TRUE(id.ok()) << text;
    const auto p = sim->run(*id)->parameters;
    EXPECT_EQ(
        p.count("brickwork_workflow_id") + p.count("brickwork_step") + p.count("brickwork_token"),
        3u)
        << text;
  }
}

TEST_F(JobsApiTest, SubmitRefusesWhatDatabricksRefuses) {
  start(one_off_runs());
  for (
      const char* bad : {
          R"({"tasks": {"task_key": "a"}})",
          R"({"tasks": [{"notebook_task": {"notebook_path": "/x"}}]})",
          R"({"tasks": [{"task_key": "", "notebook_task": {"notebook_path": "/x"}}]})",
          R"({"tasks": [{"task_key": "a"}], "idempotency_token": "0123456789012345678901234567890123456789012345678901234567890123x"})",
      }) {
    auto r = api->submit_run(json::parse(bad).as_object());
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, "INVALID_PARAMETER_VALUE") << bad;
    EXPECT_EQ(r.error().kind, ErrorKind::kPermanent) << bad;
  }
  EXPECT_EQ(sim->stats().runs_created, 0);
}

TEST_F(JobsApiTest, FaultsApplyToTheNewCalls) {
  SimulatorOptions o;
  o.jobs[1] = quick_job("nightly");
  o.jobs[1].output = json::object{{"rows", 1}};
  start(o);
  const RunInfo info = finished(run(1));
  ASSERT_EQ(info.tasks.size(), 1u);
  sim->set_faults(SimulatorFaults{0.5, {429, 503}, 0s, 5});
  for (int i = 0; i < 8; ++i) {
    auto ids = api->find_jobs_by_name("nightly");
    ASSERT_TRUE(ids.ok()) << ids.error().message;
    EXPECT_EQ(*ids, (std::vector<int64_t>{1}));
    auto out = api->get_run_output(info.tasks[0].run_id);
    ASSERT_TRUE(out.ok()) << out.error().message;
    EXPECT_EQ(output_from_run_output(*out), (json::object{{"rows", 1}}));
  }
  EXPECT_GT(sim->stats().faults_injected, 0);
  EXPECT_EQ(counters->retries.load(), sim->stats().faults_injected);
}

// The simulator under a benchmark's load: runs change state when due however
// many others are in flight, and an observer sees each run as it is created.
struct SimulatorTimingTest : JobsApiTest {
  void start(SimulatorOptions options) {
    options.cancel_delay = 20ms;
    JobsApiTest::start(std::move(options));
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

  const int64_t id = run(7, {{"brickwork_workflow_id", "wf-1"}, {"brickwork_step", "a"}});
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
  for (int i = 0; i < 300; ++i) waiting.push_back(run(1));

  // A short run ends on the timer alone, without a request to advance it.
  const int64_t short_run = run(2);
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
