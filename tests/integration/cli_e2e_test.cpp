// The `brickwork` command line against a live stack: what an operator types.
#include <cstdio>

#include "tests/integration/harness.hpp"

namespace brickwork::testing {
namespace {

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout and stderr together
};

CommandResult run_command(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) result.out.append(buf, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

CommandResult run(const std::string& args) {
  return run_command(std::string(BRICKWORK_BINARY) + " " + args + " 2>&1");
}

CommandResult run_with_env(const std::string& env, const std::string& args) {
  return run_command(env + " " + std::string(BRICKWORK_BINARY) + " " + args + " 2>&1");
}

class Cli : public EndToEndTest {
 protected:
  std::string config_path() {
    const std::string path = (dir_ / "cli.yaml").string();
    std::ofstream(path) << yaml_;
    return path;
  }
};

TEST_F(Cli, CheckSubmitStatusListCancel) {
  start_stack({{101, sim_job("extract", 300, {{"rows", 3}})},
               {102, sim_job("slow", 60000, {}, "SUCCESS", false)}});
  config(R"(  quick:
    steps:
      - name: extract
        run_job: {job_id: 101}
  slow:
    steps:
      - name: wait
        run_job: {job_id: 102}
)");
  const std::string c = "-c " + config_path();
  start_daemon();

  auto check = run("check " + c);
  EXPECT_EQ(check.exit_code, 0) << check.out;
  EXPECT_NE(check.out.find("2 workflow(s)"), std::string::npos) << check.out;

  auto submit = run("submit quick --id cli-1 --input '{\"day\":\"2026-11-22\"}' " + c);
  ASSERT_EQ(submit.exit_code, 0) << submit.out;
  EXPECT_EQ(submit.out, "cli-1\n");
  auto done = wait_terminal("cli-1");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  EXPECT_EQ(done->input.at("day"), "2026-11-22");

  auto status = run("status cli-1 --json " + c);
  ASSERT_EQ(status.exit_code, 0) << status.out;
  auto v = json::parse(status.out);
  EXPECT_EQ(v.at("id"), "cli-1");
  EXPECT_EQ(v.at("workflow"), "quick");
  EXPECT_EQ(v.at("state"), "succeeded");
  EXPECT_TRUE(v.as_object().contains("created_at"));
  const auto& step = v.at("steps").at(0);
  EXPECT_EQ(step.at("name"), "extract");
  EXPECT_EQ(step.at("state"), "succeeded");
  EXPECT_EQ(step.at("attempt"), 1);
  EXPECT_TRUE(step.at("run_id").is_int64());
  EXPECT_EQ(step.at("output").at("rows"), 3);
  EXPECT_TRUE(step.at("error").is_null());

  auto table = run("status cli-1 " + c);
  EXPECT_EQ(table.exit_code, 0);
  EXPECT_NE(table.out.find("extract"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("succeeded"), std::string::npos) << table.out;

  auto unknown = run("status nobody " + c);
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.out.find("no workflow"), std::string::npos) << unknown.out;

  auto slow = run("submit slow " + c);
  ASSERT_EQ(slow.exit_code, 0) << slow.out;
  const std::string slow_id = slow.out.substr(0, slow.out.find('\n'));
  EXPECT_EQ(slow_id.rfind("slow-", 0), 0u) << slow_id;  // generated from the workflow name
  ASSERT_TRUE(eventually([&] {
    auto w = workflow(slow_id);
    return w && w->steps[0].status == StepStatus::kWaiting;
  }));

  auto list = run("list --json " + c);
  ASSERT_EQ(list.exit_code, 0) << list.out;
  auto rows = json::parse(list.out).as_array();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].at("id").as_string(), slow_id);  // newest first
  EXPECT_FALSE(rows[0].as_object().contains("steps"));
  auto running = run("list --state running --json " + c);
  EXPECT_EQ(json::parse(running.out).as_array().size(), 1u);
  EXPECT_NE(run("list --state bogus " + c).exit_code, 0);

  auto cancel = run("cancel " + slow_id + " --reason 'no longer needed' " + c);
  ASSERT_EQ(cancel.exit_code, 0) << cancel.out;
  auto canceled = wait_terminal(slow_id);
  ASSERT_TRUE(canceled);
  EXPECT_EQ(canceled->status, WorkflowStatus::kCanceled);
}

TEST_F(Cli, BadConfigurationAndArgumentsFailClearly) {
  start_stack({});
  config("  w:\n    steps:\n      - name: a\n        run_job: {job_id: 1}\n");
  const std::string bad = (dir_ / "bad.yaml").string();
  std::ofstream(bad) << "callbacks: {secret: \"0123456789abcdefgh\"}\nworkflows:\n  w:\n    steps:\n"
                        "      - name: a\n        run_job: {job_id: nope}\n";
  auto check = run("check -c " + bad);
  EXPECT_EQ(check.exit_code, 1);
  EXPECT_NE(check.out.find("bad.yaml:6:"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("job_id"), std::string::npos) << check.out;
  EXPECT_EQ(run("check -c /nonexistent/brickwork.yaml").exit_code, 1);
  const std::string c = "-c " + config_path();
  EXPECT_NE(run("submit no_such_workflow " + c).exit_code, 0);
  EXPECT_NE(run("submit w --input '[1]' " + c).exit_code, 0);
  EXPECT_NE(run("submit w --input '{oops' " + c).exit_code, 0);
  EXPECT_NE(run("frobnicate").exit_code, 0);
}

// A URL libpq cannot read is a configuration error at check time, named by
// its key and position, and the password in it is never shown; status fails
// the same way rather than retrying a connection that can never be made.
TEST(CliConfig, CheckRejectsAPostgresUrlLibpqCannotRead) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("brickwork-cli-url-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "url.yaml").string();
  std::ofstream(path) << "callbacks: {secret: \"0123456789abcdefgh\"}\n"
                         "postgres:\n  url: \"postgresql://bw:p%zzsecret@127.0.0.1:1/bw\"\n";
  auto check = run("check -c " + path);
  EXPECT_EQ(check.exit_code, 1) << check.out;
  EXPECT_NE(check.out.find("url.yaml:3:8: postgres.url: not a connection string libpq can read"),
            std::string::npos)
      << check.out;
  EXPECT_EQ(check.out.find("zzsecret"), std::string::npos) << check.out;
  auto status = run("status some-id -c " + path);
  EXPECT_EQ(status.exit_code, 1) << status.out;
  EXPECT_NE(status.out.find("postgres.url"), std::string::npos) << status.out;
  EXPECT_EQ(status.out.find("zzsecret"), std::string::npos) << status.out;
  std::filesystem::remove_all(dir);
}

// `brickwork signal` says whether the daemon took the signal, from the
// status topic, instead of leaving the operator to guess.
TEST_F(Cli, SignalReportsAcceptanceOrRefusal) {
  start_stack({});
  config(R"(  gated:
    steps:
      - name: approve
        wait_for_signal: {name: approved}
)");
  const std::string c = "-c " + config_path();
  start_daemon();
  start_workflow("cli-sig", "gated");
  ASSERT_TRUE(eventually([&] {
    auto w = workflow("cli-sig");
    return w && w->steps[0].status == StepStatus::kWaiting;
  }));
  auto wrong = run("signal cli-sig rejected " + c);
  EXPECT_EQ(wrong.exit_code, 1) << wrong.out;
  EXPECT_NE(wrong.out.find("refused: not_waiting"), std::string::npos) << wrong.out;
  auto right = run("signal cli-sig approved --value '{\"by\":\"ana\"}' " + c);
  EXPECT_EQ(right.exit_code, 0) << right.out;
  EXPECT_NE(right.out.find("accepted: step approve"), std::string::npos) << right.out;
  auto done = wait_terminal("cli-sig");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  auto sent = run("signal cli-sig approved --no-wait " + c);
  EXPECT_EQ(sent.exit_code, 0) << sent.out;
  auto bad_timeout = run("signal cli-sig approved --timeout soon " + c);
  EXPECT_EQ(bad_timeout.exit_code, 2) << bad_timeout.out;

  // Read-only commands need no callback secret at hand.
  std::string without_secret = yaml_;
  const size_t from = without_secret.find("callbacks:\n");
  ASSERT_NE(from, std::string::npos);
  without_secret.erase(from, without_secret.find("daemon:\n") - from);
  const std::string reader = (dir_ / "reader.yaml").string();
  std::ofstream(reader) << without_secret;
  auto read_only = run("status cli-sig -c " + reader);
  EXPECT_EQ(read_only.exit_code, 0) << read_only.out;
  EXPECT_EQ(run("list -c " + reader).exit_code, 0);
  EXPECT_EQ(run("check -c " + reader).exit_code, 1);  // the daemon does need it

  // Contract 8: usage errors exit 2; -c defaults to $BRICKWORK_CONFIG.
  EXPECT_EQ(run("signal cli-sig").exit_code, 2);
  EXPECT_EQ(run("no-such-subcommand").exit_code, 2);
  EXPECT_EQ(run("--help").exit_code, 0);
  const CommandResult from_env = run_with_env("BRICKWORK_CONFIG=" + config_path(), "check");
  EXPECT_EQ(from_env.exit_code, 0) << from_env.out;
  EXPECT_EQ(run_with_env("BRICKWORK_CONFIG=/nonexistent/brickwork.yaml", "check").exit_code, 1);
}

}  // namespace
}  // namespace brickwork::testing
