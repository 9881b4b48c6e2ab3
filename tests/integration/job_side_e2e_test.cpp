// The job side (integrations/databricks/brickwork_job.py) against a real
// daemon: the simulated job publishes no event of its own, so only the Python
// helper, run with the brickwork_* parameters the job received, can end the
// step before its (distant) poll.
#include <fcntl.h>

#include "tests/integration/harness.hpp"

namespace brickwork::testing {
namespace {

// Debian's interpreter, where python3-confluent-kafka is installed
// (scripts/install-deps.sh); a python3 earlier on PATH may lack it.
constexpr const char* kSystemPython = "/usr/bin/python3";

std::filesystem::path source_root() {
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
}

struct ProcessResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs `argv` with `env` added to this process's environment; waits. Everything
// is prepared before fork(): the child of a threaded process only redirects
// and execs (no allocation, which could wait forever on another thread's lock).
ProcessResult run_process(const std::vector<std::string>& argv,
                          const std::map<std::string, std::string>& env,
                          const std::filesystem::path& output_file) {
  std::vector<std::string> environment;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    if (!env.count(entry.substr(0, entry.find('=')))) environment.push_back(entry);
  }
  for (const auto& [name, value] : env) environment.push_back(name + "=" + value);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : environment) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const std::string output_path = output_file.string();

  const pid_t pid = fork();
  if (pid == 0) {
    const int out = ::open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out >= 0) {
      dup2(out, 1);
      dup2(out, 2);
    }
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  ProcessResult result;
  int status = 0;
  if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  }
  std::ifstream in(output_file);
  result.output.assign(std::istreambuf_iterator<char>(in), {});
  return result;
}

class JobSideEndToEnd : public EndToEndTest {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kSystemPython)) GTEST_SKIP() << "no " << kSystemPython;
  }

  // The run's parameters at the simulator once the step waits for its event.
  std::map<std::string, std::string> parameters_of_run(const std::string& id) {
    std::map<std::string, std::string> parameters;
    EXPECT_TRUE(eventually([&] {
      auto w = workflow(id);
      if (!w || w->steps[0].status != StepStatus::kWaiting) return false;
      for (const auto& [run_id, run] : stack_->simulator().stats().runs) {
        auto it = run.parameters.find("brickwork_workflow_id");
        if (it != run.parameters.end() && it->second == id) parameters = run.parameters;
      }
      return !parameters.empty();
    })) << id << " never waited with a run";
    return parameters;
  }

  // The shipped example script task, with the job's parameters as argv (as a
  // Python script task's `parameters` would pass them).
  ProcessResult run_count_lines_task(const std::map<std::string, std::string>& parameters) {
    std::vector<std::string> argv{
        kSystemPython, (source_root() / "integrations/databricks/examples/count_lines_task.py").string()};
    for (const auto& [name, value] : parameters) {
      argv.push_back("--" + name);
      argv.push_back(value);
    }
    return run_process(argv,
                       {{"BRICKWORK_KAFKA_BOOTSTRAP_SERVERS", config_->kafka.brokers},
                        {"BRICKWORK_EVENTS_TOPIC", config_->kafka.topics.events},
                        {"PYTHONDONTWRITEBYTECODE", "1"}},
                       dir_ / "job_task.txt");
  }

  void start_job_side_workflow(const std::string& id, const std::string& path,
                               KafkaHeaders headers = {}) {
    // The job runs for two minutes and never publishes itself; the poll is a
    // minute away: only the helper's event can end the step within the test.
    start_stack({{101, sim_job("count_lines", 120000, {}, "SUCCESS", /*emit_event=*/false)}});
    config(R"(  job_side:
    steps:
      - name: count
        run_job:
          job_id: 101
          parameters: {input_path: "{{ input.path }}"}
        completion: event
        poll_every: 60s
        retry: {max_attempts: 1}
)");
    start_daemon();
    send_command(json::object{{"type", "start"}, {"id", id}, {"workflow", "job_side"},
                              {"input", json::object{{"path", path}}}},
                 std::move(headers));
  }
};

TEST_F(JobSideEndToEnd, ScriptTaskPublishesSuccessWithItsOutput) {
  const std::string id = "job-side-ok";
  // The trace context goes from the command through the run to the event.
  const std::string traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  // The path is known once the stack's directory is.
  start_job_side_workflow(id, "", {{"traceparent", traceparent}});
  const auto parameters = parameters_of_run(id);
  ASSERT_FALSE(parameters.empty());
  ASSERT_TRUE(parameters.count("brickwork_token"));
  EXPECT_EQ(parameters.count("brickwork_traceparent") ? parameters.at("brickwork_traceparent") : "",
            traceparent);
  ASSERT_TRUE(parameters.count("input_path"));

  const auto input = dir_ / "orders.csv";
  std::ofstream(input) << "id,amount\n1,10\n2,20\n";
  auto with_input = parameters;
  with_input["input_path"] = input.string();
  const ProcessResult task = run_count_lines_task(with_input);
  ASSERT_EQ(task.exit_code, 0) << task.output;

  auto done = wait_terminal(id, 30s);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  ASSERT_TRUE(done->steps[0].output);
  EXPECT_EQ(*done->steps[0].output,
            (json::object{{"path", input.string()}, {"lines", 3}}));
  // Ended by the event, not by polling: the run is still going at the simulator.
  EXPECT_EQ(stack_->simulator().stats().events_emitted, 0);
  auto events = read_topic(config_->kafka.brokers, config_->kafka.topics.events, 10s);
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ(events->front().header("traceparent"), traceparent);
  EXPECT_TRUE(eventually([&] {
    const auto types = event_types(id);
    return std::find(types.begin(), types.end(), "workflow_succeeded") != types.end();
  })) << "no workflow_succeeded status event";
}

TEST_F(JobSideEndToEnd, ScriptTaskThatRaisesPublishesFailedWithTheMessage) {
  const std::string id = "job-side-failed";
  start_job_side_workflow(id, "/nonexistent/landing/orders.csv");
  const auto parameters = parameters_of_run(id);
  ASSERT_FALSE(parameters.empty());

  const ProcessResult task = run_count_lines_task(parameters);
  // The task fails too (the exception propagates after the event is out).
  EXPECT_NE(task.exit_code, 0) << task.output;
  EXPECT_NE(task.output.find("FileNotFoundError"), std::string::npos) << task.output;

  auto done = wait_terminal(id, 30s);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kFailed);
  ASSERT_TRUE(done->steps[0].error);
  EXPECT_EQ(done->steps[0].error->code, "FAILED");
  EXPECT_NE(done->steps[0].error->message.find("FileNotFoundError"), std::string::npos)
      << done->steps[0].error->message;
  EXPECT_NE(done->steps[0].error->message.find("/nonexistent/landing/orders.csv"),
            std::string::npos);
}

// The helper's own unit tests (parameters, secrets, flush timeout), run with
// the same interpreter so ctest covers them.
TEST(JobSideHelper, PythonUnitTestsPass) {
  if (!std::filesystem::exists(kSystemPython)) GTEST_SKIP() << "no " << kSystemPython;
  const auto out = std::filesystem::temp_directory_path() /
                   ("brickwork-job-helper-" + std::to_string(getpid()) + ".txt");
  const ProcessResult result = run_process(
      {kSystemPython, "-m", "unittest", "-v", "test_brickwork_job"},
      {{"PYTHONPATH", (source_root() / "integrations/databricks").string()},
       {"PYTHONDONTWRITEBYTECODE", "1"}},
      out);
  std::filesystem::remove(out);
  EXPECT_EQ(result.exit_code, 0) << result.output;
}

}  // namespace
}  // namespace brickwork::testing
