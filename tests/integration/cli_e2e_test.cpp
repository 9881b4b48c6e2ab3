// The `brickwork` command line against a live stack: what an operator types.
#include <cstdio>
#include <future>
#include <sstream>

#include <pqxx/pqxx>

#include "tests/integration/harness.hpp"

namespace brickwork::testing {
namespace {

// stdout and stderr together.
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
  std::ofstream(bad) << "callbacks: {secret: \"0123456789abcdefgh-0123456789abcdefgh\"}\n"
                        "workflows:\n  w:\n    steps:\n"
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
  std::ofstream(path) << "callbacks: {secret: \"0123456789abcdefgh-0123456789abcdefgh\"}\n"
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

// A configuration with several mistakes: `check` names them all at once, one
// line each, in the order of the file (it used to stop at the first), and
// with --json reports them as JSON (it used to print nothing).
TEST(CliConfig, CheckReportsEveryErrorAsTextOrJson) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("brickwork-cli-errors-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "errors.yaml").string();
  std::ofstream(path) << "callbacks: {secret: \"0123456789abcdefgh-0123456789abcdefgh\"}\n"
                         "daemon: {lease: soon}\n"
                         "workflows:\n"
                         "  a:\n    steps:\n"
                         "      - name: one\n        run_job: {job_id: nope}\n"
                         "      - name: two\n        sleep: {for: never}\n"
                         "  b:\n    steps:\n"
                         "      - name: three\n        emit: {topic: t}\n";
  auto check = run("check -c " + path);
  EXPECT_EQ(check.exit_code, 1) << check.out;
  const std::vector<std::string> expected = {"errors.yaml:2:", "daemon.lease", "job_id", "sleep.for",
                                             "emit.value"};
  size_t at = 0;
  for (const auto& part : expected) {
    const size_t found = check.out.find(part, at);
    EXPECT_NE(found, std::string::npos) << part << " (in order) in:\n" << check.out;
    if (found != std::string::npos) at = found;
  }
  auto as_json = run_command(std::string(BRICKWORK_BINARY) + " check --json -c " + path +
                             " 2>/dev/null");
  EXPECT_EQ(as_json.exit_code, 1);
  boost::system::error_code ec;
  const json::value report = json::parse(as_json.out, ec);
  ASSERT_FALSE(ec) << as_json.out;
  EXPECT_EQ(report.at("ok"), false);
  EXPECT_EQ(report.at("config").as_string(), path);
  ASSERT_EQ(report.at("errors").as_array().size(), 4u) << as_json.out;
  EXPECT_NE(std::string(report.at("errors").as_array()[3].as_string()).find("emit.value"),
            std::string::npos);
  std::filesystem::remove_all(dir);
}

// `check --workflows FILE` reads one workflows_dir file alone, with no
// configuration (no -c, no callbacks secret).
TEST(CliConfig, CheckWorkflowsChecksOneWorkflowsFileAlone) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("brickwork-cli-workflows-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string good = (dir / "good.yaml").string();
  std::ofstream(good) << "workflows:\n  w:\n    steps:\n      - name: a\n        sleep: {for: 1s}\n";
  auto ok = run("check --workflows " + good + " -c /nonexistent/brickwork.yaml");
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_NE(ok.out.find("good.yaml: ok, 1 workflow(s): w (1 steps)"), std::string::npos) << ok.out;
  const std::string bad = (dir / "bad.yaml").string();
  std::ofstream(bad) << "kafka: {}\nworkflows:\n  w:\n    steps:\n      - name: a\n        sleep: {}\n";
  auto refused = run("check --workflows " + bad);
  EXPECT_EQ(refused.exit_code, 1) << refused.out;
  EXPECT_NE(refused.out.find("bad.yaml:1:1: kafka"), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("exactly one of for"), std::string::npos) << refused.out;
  auto as_json = run_command(std::string(BRICKWORK_BINARY) + " check --json --workflows " + bad +
                             " 2>/dev/null");
  EXPECT_EQ(as_json.exit_code, 1);
  EXPECT_EQ(json::parse(as_json.out).at("errors").as_array().size(), 2u) << as_json.out;
  std::filesystem::remove_all(dir);
}

// A callbacks secret keys HMAC tokens and the sealing key: `check` refuses
// one of 16 characters (it used to pass), current or previous, and never
// shows it.
TEST(CliConfig, CheckRefusesACallbackSecretUnder32Characters) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("brickwork-cli-secret-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string current = (dir / "current.yaml").string();
  std::ofstream(current) << "callbacks: {secret: \"sixteen-chars-16\"}\n";
  auto check = run("check -c " + current);
  EXPECT_EQ(check.exit_code, 1) << check.out;
  EXPECT_NE(check.out.find("callbacks.secret: must be at least 32 characters"), std::string::npos)
      << check.out;
  EXPECT_EQ(check.out.find("sixteen-chars-16"), std::string::npos) << check.out;
  const std::string previous = (dir / "previous.yaml").string();
  std::ofstream(previous) << "callbacks:\n  secret: \"0123456789abcdefgh-0123456789abcdefgh\"\n"
                             "  previous_secrets: [\"sixteen-chars-16\"]\n";
  check = run("check -c " + previous);
  EXPECT_EQ(check.exit_code, 1) << check.out;
  EXPECT_NE(check.out.find("callbacks.previous_secrets[0]: must be at least 32 characters"),
            std::string::npos)
      << check.out;
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
  EXPECT_NE(wrong.out.find("refused: unknown_signal"), std::string::npos) << wrong.out;
  auto right = run("signal cli-sig approved --value '{\"by\":\"ana\"}' " + c);
  EXPECT_EQ(right.exit_code, 0) << right.out;
  EXPECT_NE(right.out.find("delivered: step approve"), std::string::npos) << right.out;
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


// Lines of `out` that parse as JSON objects, in order.
std::vector<json::object> json_lines(const std::string& out) {
  std::vector<json::object> objects;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    boost::system::error_code ec;
    json::value v = json::parse(line, ec);
    if (!ec && v.is_object()) objects.push_back(v.as_object());
  }
  return objects;
}

std::set<std::string> keys_of(const json::object& o) {
  std::set<std::string> keys;
  for (const auto& [k, v] : o) keys.insert(std::string(k));
  return keys;
}

// Scripts can wait for a workflow and branch on how it ended (contract 8):
// 0 succeeded, 3 failed, 4 canceled, 5 --timeout first; and cancel and retry
// say whether the daemon took them.
TEST_F(Cli, WaitAndFollowExitByOutcomeAndCommandsReportTheirAnswer) {
  start_stack({{101, sim_job("quick", 200, {{"rows", 3}})},
               {102, sim_job("broken", 200, {}, "FAILED")},
               {103, sim_job("slow", 60000, {}, "SUCCESS", false)}});
  config(R"(  quick:
    steps:
      - name: extract
        run_job: {job_id: 101}
  failing:
    steps:
      - name: extract
        run_job: {job_id: 102}
  slow:
    steps:
      - name: wait
        run_job: {job_id: 103}
)");
  const std::string c = "-c " + config_path();
  start_daemon();

  auto ok = run("submit quick --id w-ok --wait --timeout 60s " + c);
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_EQ(ok.out.rfind("w-ok\n", 0), 0u) << ok.out;  // the id first, then the events
  EXPECT_NE(ok.out.find("step_succeeded  extract (attempt 1)"), std::string::npos) << ok.out;
  EXPECT_NE(ok.out.find("workflow_succeeded"), std::string::npos) << ok.out;
  // The same start again is a no-op: its outcome comes from Postgres at once.
  auto again = run("submit quick --id w-ok --wait --timeout 10s " + c);
  EXPECT_EQ(again.exit_code, 0) << again.out;
  EXPECT_NE(again.out.find("succeeded"), std::string::npos) << again.out;

  auto failed = run("submit failing --id w-fail --wait --json " + c);
  EXPECT_EQ(failed.exit_code, 3) << failed.out;
  auto lines = json_lines(failed.out);
  ASSERT_GE(lines.size(), 4u) << failed.out;
  EXPECT_EQ(lines[0], (json::object{{"id", "w-fail"}}));
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].at("workflow_id"), "w-fail");
    EXPECT_EQ(lines[i].at("v"), 1);
  }
  EXPECT_EQ(lines[1].at("type"), "workflow_started");
  EXPECT_EQ(lines.back().at("type"), "workflow_failed");
  EXPECT_TRUE(lines.back().at("error").is_object());
  // Already ended: --follow prints the state and returns at once.
  auto followed_failed = run("status w-fail --follow " + c);
  EXPECT_EQ(followed_failed.exit_code, 3) << followed_failed.out;
  EXPECT_NE(followed_failed.out.find("failed"), std::string::npos) << followed_failed.out;

  auto timed_out = run("submit slow --id w-slow --wait --timeout 2s " + c);
  EXPECT_EQ(timed_out.exit_code, 5) << timed_out.out;
  EXPECT_NE(timed_out.out.find("still running after"), std::string::npos) << timed_out.out;
  ASSERT_TRUE(eventually([&] {
    auto w = workflow("w-slow");
    return w && w->steps[0].status == StepStatus::kWaiting;
  }));

  // status --follow --json: the state as contract 8 shows it, then events.
  auto follower = std::async(std::launch::async,
                             [&] { return run("status w-slow --follow --json --timeout 60s " + c); });
  std::this_thread::sleep_for(3s);  // the follower reads the state and starts tailing
  auto cancel = run("cancel w-slow --reason 'not today' " + c);
  EXPECT_EQ(cancel.exit_code, 0) << cancel.out;
  EXPECT_NE(cancel.out.find("canceled: w-slow"), std::string::npos) << cancel.out;
  auto followed = follower.get();
  EXPECT_EQ(followed.exit_code, 4) << followed.out;
  auto follow_lines = json_lines(followed.out);
  ASSERT_GE(follow_lines.size(), 2u) << followed.out;
  EXPECT_EQ(keys_of(follow_lines[0]),
            (std::set<std::string>{"id", "workflow", "state", "created_at", "updated_at", "steps"}));
  EXPECT_EQ(follow_lines[0].at("state"), "running");
  EXPECT_EQ(follow_lines.back().at("type"), "workflow_canceled");
  EXPECT_EQ(follow_lines.back().at("reason"), "not today");

  // A cancel that changes nothing says so; an unknown id is an error.
  auto cancel_again = run("cancel w-slow --json " + c);
  EXPECT_EQ(cancel_again.exit_code, 0) << cancel_again.out;
  auto no_op = json_lines(cancel_again.out);
  ASSERT_EQ(no_op.size(), 1u) << cancel_again.out;
  EXPECT_EQ(no_op[0].at("result"), "no_op");
  EXPECT_EQ(no_op[0].at("state"), "canceled");
  EXPECT_EQ(run("cancel nobody " + c).exit_code, 1);

  auto refused = run("retry w-ok --json " + c);
  EXPECT_EQ(refused.exit_code, 1) << refused.out;
  auto refusal = json_lines(refused.out);
  ASSERT_EQ(refusal.size(), 1u) << refused.out;
  EXPECT_EQ(refusal[0], (json::object{{"id", "w-ok"}, {"command", "retry"},
                                      {"result", "refused"}, {"reason", "not_failed"}}));
  auto retried = run("retry w-fail " + c);
  EXPECT_EQ(retried.exit_code, 0) << retried.out;
  EXPECT_NE(retried.out.find("retrying: w-fail"), std::string::npos) << retried.out;
  auto refollow = run("status w-fail --follow --timeout 60s " + c);
  EXPECT_EQ(refollow.exit_code, 3) << refollow.out;  // job 102 fails every time
  auto sent = run("retry w-fail --no-wait --json " + c);
  EXPECT_EQ(sent.exit_code, 0) << sent.out;
  EXPECT_EQ(json::parse(sent.out).at("result"), "sent");

  auto submitted = run("submit quick --json " + c);
  ASSERT_EQ(submitted.exit_code, 0) << submitted.out;
  EXPECT_EQ(keys_of(json::parse(submitted.out).as_object()), std::set<std::string>{"id"});

  // status --json is exactly contract 8's object.
  auto status = run("status w-ok --json " + c);
  ASSERT_EQ(status.exit_code, 0) << status.out;
  const auto shown = json::parse(status.out).as_object();
  EXPECT_EQ(keys_of(shown),
            (std::set<std::string>{"id", "workflow", "state", "created_at", "updated_at", "steps"}));
  auto step_keys = keys_of(shown.at("steps").at(0).as_object());
  step_keys.erase("run_page_url");  // present when Databricks gave one
  EXPECT_EQ(step_keys, (std::set<std::string>{"name", "state", "attempt", "run_id", "output",
                                              "error"}));

  // Usage errors exit 2.
  EXPECT_EQ(run("submit quick --timeout 5s " + c).exit_code, 2);
  EXPECT_EQ(run("status w-ok --follow --timeout soon " + c).exit_code, 2);
  EXPECT_EQ(run("migrate --topics --partitions 0 " + c).exit_code, 2);
  EXPECT_EQ(run("cancel " + c).exit_code, 2);
  auto help = run("submit --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Example:"), std::string::npos) << help.out;
}

// check --connect reaches each service with the configured credentials and
// names the one that failed.
TEST_F(Cli, CheckConnectNamesWhatFailedAndWhy) {
  start_stack({{101, sim_job("quick", 200)}});
  config("  w:\n    steps:\n      - name: a\n        run_job: {job_id: 101}\n");
  const std::string good = config_path();
  auto connected = run("check --connect -c " + good);
  EXPECT_EQ(connected.exit_code, 0) << connected.out;
  for (const char* line : {"\nkafka: ok", "\nkafka topics: ok", "\npostgres: ok",
                           "\ndatabricks: ok"}) {
    EXPECT_NE(connected.out.find(line), std::string::npos) << line << "\n" << connected.out;
  }
  auto as_json = run("check --connect --json -c " + good);
  EXPECT_EQ(as_json.exit_code, 0) << as_json.out;
  const auto report = json::parse(as_json.out).as_object();
  EXPECT_EQ(report.at("ok"), true);
  EXPECT_EQ(report.at("connect").as_array().size(), 4u);
  EXPECT_EQ(keys_of(report.at("connect").at(0).as_object()),
            (std::set<std::string>{"target", "ok", "detail"}));

  auto variant = [&](const std::string& from, const std::string& to, const std::string& name) {
    std::string text = yaml_;
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  };
  auto bad_token = run("check --connect -c " +
                       variant(LocalStack::kDatabricksToken, "wrong-token", "token.yaml"));
  EXPECT_EQ(bad_token.exit_code, 1) << bad_token.out;
  EXPECT_NE(bad_token.out.find("databricks: FAILED"), std::string::npos) << bad_token.out;
  EXPECT_NE(bad_token.out.find("UNAUTHENTICATED: Invalid access token"), std::string::npos)
      << bad_token.out;
  EXPECT_EQ(bad_token.out.find("wrong-token"), std::string::npos) << bad_token.out;
  EXPECT_NE(bad_token.out.find("postgres: ok"), std::string::npos) << bad_token.out;

  {
    pqxx::connection admin(stack_->postgres().url());
    pqxx::nontransaction tx(admin);
    tx.exec(std::string("CREATE ROLE ") + TempPostgres::kPasswordGroup + " NOLOGIN");
    tx.exec(std::string("CREATE ROLE pw_user LOGIN PASSWORD 'right-one' IN ROLE ") +
            TempPostgres::kPasswordGroup);
  }
  const std::string url = stack_->postgres().url();
  const std::string host_part = url.substr(url.find('@'));
  auto right_password = run("check --connect -c " +
                            variant(url, "postgresql://pw_user:right-one" + host_part, "pw.yaml"));
  EXPECT_EQ(right_password.exit_code, 0) << right_password.out;
  auto bad_password = run("check --connect -c " +
                          variant(url, "postgresql://pw_user:wrong-one" + host_part, "badpw.yaml"));
  EXPECT_EQ(bad_password.exit_code, 1) << bad_password.out;
  EXPECT_NE(bad_password.out.find("postgres: FAILED"), std::string::npos) << bad_password.out;
  EXPECT_NE(bad_password.out.find("password authentication failed"), std::string::npos)
      << bad_password.out;
  EXPECT_EQ(bad_password.out.find("wrong-one"), std::string::npos) << bad_password.out;

  auto no_broker = run("check --connect -c " +
                       variant(stack_->kafka().bootstrap_servers(), "127.0.0.1:1", "kafka.yaml"));
  EXPECT_EQ(no_broker.exit_code, 1) << no_broker.out;
  EXPECT_NE(no_broker.out.find("kafka: FAILED"), std::string::npos) << no_broker.out;
  EXPECT_NE(no_broker.out.find("127.0.0.1:1"), std::string::npos) << no_broker.out;

  // Without --connect, check still reads kafka.properties as librdkafka would.
  auto typo = run("check -c " + variant("postgres:\n", "  properties: {sasl.mechanisms.typo: PLAIN}\npostgres:\n",
                                        "props.yaml"));
  EXPECT_EQ(typo.exit_code, 1) << typo.out;
  EXPECT_NE(typo.out.find("sasl.mechanisms.typo"), std::string::npos) << typo.out;

  // A workflow with Databricks steps and no Databricks credentials: check
  // and the daemon refuse it at once.
  std::string no_databricks = yaml_;
  const size_t from = no_databricks.find("databricks:\n");
  no_databricks.erase(from, no_databricks.find("callbacks:\n") - from);
  const std::string path = (dir_ / "nodbx.yaml").string();
  std::ofstream(path) << no_databricks;
  const std::string env = "env -u DATABRICKS_HOST -u DATABRICKS_TOKEN -u DATABRICKS_CLIENT_ID "
                          "-u DATABRICKS_CLIENT_SECRET -u DATABRICKS_CONFIG_PROFILE "
                          "-u DATABRICKS_CONFIG_FILE HOME=" + dir_.string();
  auto refused_check = run_with_env(env, "check -c " + path);
  EXPECT_EQ(refused_check.exit_code, 1) << refused_check.out;
  EXPECT_NE(refused_check.out.find("w/a (run_job)"), std::string::npos) << refused_check.out;
  auto refused_daemon = run_with_env(env, "daemon -c " + path);
  EXPECT_EQ(refused_daemon.exit_code, 1) << refused_daemon.out;
  EXPECT_NE(refused_daemon.out.find("no Databricks credentials resolve"), std::string::npos)
      << refused_daemon.out;
}

// migrate --topics leaves existing topics alone and reports each one.
// librdkafka 2.0's mock cluster has no CreateTopics, so a missing topic here
// shows the refusal path; creation itself needs a real broker.
TEST_F(Cli, MigrateTopicsReportsEachTopic) {
  start_stack({});
  config("  {}\n");
  auto all_there = run("migrate --topics -c " + config_path());
  EXPECT_EQ(all_there.exit_code, 0) << all_there.out;
  EXPECT_NE(all_there.out.find("schema is up to date"), std::string::npos) << all_there.out;
  EXPECT_NE(all_there.out.find("topic brickwork.status: exists with 4 partition(s), left as it is"),
            std::string::npos)
      << all_there.out;

  std::string text = yaml_;
  const std::string status_topic = "status: \"" + stack_->topics().status + "\"";
  text.replace(text.find(status_topic), status_topic.size(), "status: \"other.status\"");
  const std::string path = (dir_ / "topics.yaml").string();
  std::ofstream(path) << text;
  auto missing = run("migrate --topics --partitions 6 --json -c " + path);
  EXPECT_EQ(missing.exit_code, 1) << missing.out;
  const auto report = json::parse(missing.out.substr(0, missing.out.find('\n'))).as_object();
  EXPECT_EQ(report.at("schema"), "up_to_date");
  const auto& topics = report.at("topics").as_array();
  ASSERT_EQ(topics.size(), 4u);
  EXPECT_EQ(topics[0].at("result"), "exists");
  EXPECT_EQ(topics[0].at("partitions"), 4);
  EXPECT_EQ(topics[2].at("topic"), "other.status");
  EXPECT_EQ(topics[2].at("result"), "failed");
  EXPECT_FALSE(topics[2].at("error").as_string().empty());
}

}  // namespace
}  // namespace brickwork::testing
