// Plain-value tests: runs/get parsing, error bodies, Retry-After, credential
// resolution and the simulator's YAML file.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "daemon/databricks/api.hpp"
#include "daemon/core/storable_text.hpp"
#include "daemon/databricks/client.hpp"
#include "devstack/simulator.hpp"

namespace brickwork {
namespace {

json::value J(const char* text) { return json::parse(text); }

TEST(ParseRunInfo, LegacyState) {
  auto r = parse_run_info(J(R"({"run_id": 7, "job_id": 3, "run_page_url": "u",
      "state": {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS", "state_message": ""}})"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->run_id, 7);
  EXPECT_EQ(r->job_id, 3);
  EXPECT_EQ(r->run_page_url, "u");
  EXPECT_TRUE(r->terminal());
  EXPECT_TRUE(r->succeeded());
}

TEST(ParseRunInfo, StatusOnly) {
  auto r = parse_run_info(J(R"({"run_id": 8, "status": {"state": "TERMINATED",
      "termination_details": {"code": "RUN_EXECUTION_ERROR", "type": "CLIENT_ERROR", "message": "boom"}}})"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->life_cycle_state, "TERMINATED");
  EXPECT_EQ(r->result_state, "FAILED");
  EXPECT_EQ(r->state_message, "boom");
  EXPECT_TRUE(r->terminal());
  EXPECT_FALSE(r->succeeded());

  auto internal = parse_run_info(J(R"({"run_id": 9, "status": {"state": "TERMINATED",
      "termination_details": {"code": "INTERNAL_ERROR", "type": "INTERNAL_ERROR"}}})"));
  ASSERT_TRUE(internal.ok());
  EXPECT_EQ(internal->life_cycle_state, "INTERNAL_ERROR");
  EXPECT_TRUE(internal->terminal());
  EXPECT_FALSE(internal->succeeded());

  auto running = parse_run_info(J(R"({"run_id": 10, "status": {"state": "RUNNING"}})"));
  ASSERT_TRUE(running.ok());
  EXPECT_FALSE(running->terminal());

  auto canceled = parse_run_info(J(R"({"run_id": 11, "status": {"state": "TERMINATED",
      "termination_details": {"code": "USER_CANCELED", "type": "SUCCESS"}}})"));
  ASSERT_TRUE(canceled.ok());
  EXPECT_EQ(canceled->result_state, "CANCELED");
  EXPECT_FALSE(canceled->succeeded());
}

TEST(ParseRunInfo, LegacyStateWinsAndStatusFillsGaps) {
  auto r = parse_run_info(J(R"({"run_id": 1, "state": {"life_cycle_state": "TERMINATED",
      "result_state": "SUCCESS_WITH_FAILURES"}, "status": {"state": "TERMINATED",
      "termination_details": {"code": "SUCCESS_WITH_FAILURES", "type": "SUCCESS", "message": "m"}}})"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->result_state, "SUCCESS_WITH_FAILURES");
  EXPECT_EQ(r->state_message, "m");
  EXPECT_TRUE(r->succeeded());
}

TEST(ParseRunInfo, DefensiveCases) {
  for (const char* bad : {
           R"([])",
           R"("x")",
           R"({})",
           R"({"run_id": "7", "state": {"life_cycle_state": "RUNNING"}})",
           R"({"run_id": 1.5, "state": {"life_cycle_state": "RUNNING"}})",
           R"({"run_id": 7})",
           R"({"run_id": 7, "state": "RUNNING"})",
           R"({"run_id": 7, "state": {"life_cycle_state": 3}})",
           R"({"run_id": 7, "state": {}})",
           R"({"run_id": 7, "job_id": "x", "state": {"life_cycle_state": "RUNNING"}})",
           R"({"run_id": 7, "status": {"state": "TERMINATED", "termination_details": []}})",
           R"({"run_id": -1e30, "state": {"life_cycle_state": "RUNNING"}})",
           R"({"run_id": 18446744073709551615, "state": {"life_cycle_state": "RUNNING"}})",
       }) {
    auto r = parse_run_info(J(bad));
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalidInput) << bad;
  }
  // Missing optional fields and nulls are fine.
  auto r = parse_run_info(J(R"({"run_id": 5, "job_id": null, "run_page_url": null,
      "state": {"life_cycle_state": "PENDING"}})"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->job_id, 0);
  EXPECT_FALSE(r->terminal());
}

TEST(RunInfo, TerminalAndSucceeded) {
  RunInfo i;
  for (const char* s : {"QUEUED", "PENDING", "RUNNING", "TERMINATING", "BLOCKED", "WAITING_FOR_RETRY"}) {
    i.life_cycle_state = s;
    EXPECT_FALSE(i.terminal()) << s;
  }
  for (const char* s : {"TERMINATED", "SKIPPED", "INTERNAL_ERROR"}) {
    i.life_cycle_state = s;
    EXPECT_TRUE(i.terminal()) << s;
  }
  i.life_cycle_state = "TERMINATED";
  i.result_state = "SUCCESS";
  EXPECT_TRUE(i.succeeded());
  i.result_state = "FAILED";
  EXPECT_FALSE(i.succeeded());
  i.life_cycle_state = "RUNNING";
  i.result_state = "SUCCESS";
  EXPECT_FALSE(i.succeeded());
}

TEST(ErrorFromHttp, Variants) {
  auto e = error_from_http(400, "Bad Request",
                           R"({"error_code":"INVALID_PARAMETER_VALUE","message":"Job 999 does not exist."})");
  EXPECT_EQ(e.kind, ErrorKind::kPermanent);
  EXPECT_EQ(e.code, "INVALID_PARAMETER_VALUE");
  EXPECT_EQ(e.message, "Job 999 does not exist.");

  e = error_from_http(400, "Bad Request", R"({"error_code": 4001, "message": "old api"})");
  EXPECT_EQ(e.code, "4001");
  EXPECT_EQ(e.message, "old api");

  e = error_from_http(500, "Internal Server Error", R"({"error": "something broke"})");
  EXPECT_EQ(e.kind, ErrorKind::kTransient);
  EXPECT_EQ(e.code, "http_500");
  EXPECT_EQ(e.message, "something broke");

  e = error_from_http(401, "Unauthorized", R"({"error":"invalid_client","error_description":"bad secret"})");
  EXPECT_EQ(e.kind, ErrorKind::kPermanent);
  EXPECT_EQ(e.code, "invalid_client");
  EXPECT_EQ(e.message, "bad secret");

  e = error_from_http(502, "Bad Gateway", "<html><body><pre>upstream down</pre></body></html>");
  EXPECT_EQ(e.kind, ErrorKind::kTransient);
  EXPECT_EQ(e.code, "http_502");
  EXPECT_EQ(e.message, "upstream down");

  e = error_from_http(504, "Gateway Timeout", "<html><body>nope</body></html>");
  EXPECT_EQ(e.message, "Gateway Timeout");
  e = error_from_http(503, "Service Unavailable", "");
  EXPECT_EQ(e.kind, ErrorKind::kTransient);
  EXPECT_EQ(e.code, "http_503");
  EXPECT_EQ(e.message, "Service Unavailable");
  e = error_from_http(503, "", "");
  EXPECT_EQ(e.message, "HTTP 503");

  e = error_from_http(403, "Forbidden", "PERMISSION_DENIED: not allowed");
  EXPECT_EQ(e.code, "PERMISSION_DENIED");
  EXPECT_EQ(e.message, "not allowed");
  e = error_from_http(403, "Forbidden", "plain words");
  EXPECT_EQ(e.code, "http_403");
  EXPECT_EQ(e.message, "plain words");

  e = error_from_http(400, "Bad Request", R"({"detail": "scim says no", "status": "400"})");
  EXPECT_EQ(e.message, "scim says no");

  EXPECT_EQ(error_from_http(404, "", R"({"error_code":"RESOURCE_DOES_NOT_EXIST","message":"x"})").kind,
            ErrorKind::kNotFound);
  EXPECT_EQ(error_from_http(400, "", R"({"error_code":"RESOURCE_DOES_NOT_EXIST","message":"x"})").kind,
            ErrorKind::kNotFound);
  EXPECT_EQ(error_from_http(409, "", R"({"error_code":"RESOURCE_ALREADY_EXISTS","message":"x"})").kind,
            ErrorKind::kConflict);
  // Unity Catalog names the missing or existing thing in its codes.
  EXPECT_EQ(error_from_http(400, "", R"({"error_code":"SHARE_DOES_NOT_EXIST","message":"x"})").kind,
            ErrorKind::kNotFound);
  EXPECT_EQ(error_from_http(400, "", R"({"error_code":"RECIPIENT_ALREADY_EXISTS","message":"x"})").kind,
            ErrorKind::kConflict);
  EXPECT_EQ(error_from_http(429, "", "").kind, ErrorKind::kTransient);
  EXPECT_EQ(error_from_http(400, "", R"({"error_code":"REQUEST_LIMIT_EXCEEDED","message":"x"})").kind,
            ErrorKind::kTransient);
  EXPECT_EQ(error_from_http(400, "", R"({"error_code":"INVALID_STATE","message":"ClusterNotReadyException: wait"})").kind,
            ErrorKind::kTransient);
  EXPECT_EQ(error_from_http(401, "", R"({"error_code":"UNAUTHENTICATED"})").kind, ErrorKind::kPermanent);
  EXPECT_EQ(error_from_http(501, "", "").kind, ErrorKind::kPermanent);
  // Not an object: falls back without crashing.
  EXPECT_EQ(error_from_http(400, "Bad Request", "[1,2]").code, "http_400");
  EXPECT_EQ(error_from_http(400, "Bad Request", R"({"error_code": null, "message": 5})").message,
            "Bad Request");
}

TEST(RetryAfter, Parses) {
  EXPECT_EQ(parse_retry_after("1"), Duration(1000));
  EXPECT_EQ(parse_retry_after(" 0 "), Duration(0));
  EXPECT_FALSE(parse_retry_after(""));
  EXPECT_FALSE(parse_retry_after("-1"));
  EXPECT_FALSE(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"));
}

class ResolveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("bw-dbx-resolve-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    env_["HOME"] = dir_.string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  EnvLookup env() const {
    auto copy = env_;
    return [copy](const std::string& n) -> std::optional<std::string> {
      auto it = copy.find(n);
      if (it == copy.end()) return std::nullopt;
      return it->second;
    };
  }
  void write_cfg(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }

  std::filesystem::path dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(ResolveTest, ExplicitConfigWins) {
  env_["DATABRICKS_HOST"] = "env.example.com";
  env_["DATABRICKS_TOKEN"] = "env-token";
  DatabricksConfig c;
  c.host = "adb-1.azuredatabricks.net/";
  c.token = "explicit";
  auto r = resolve_databricks_config(c, env());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->host, "https://adb-1.azuredatabricks.net");
  EXPECT_EQ(r->auth_type, "pat");
  EXPECT_EQ(r->attr("token"), "explicit");
}

TEST_F(ResolveTest, EnvironmentFillsGaps) {
  env_["DATABRICKS_HOST"] = "https://env.example.com";
  env_["DATABRICKS_CLIENT_ID"] = "cid";
  env_["DATABRICKS_CLIENT_SECRET"] = "sec";
  write_cfg(".databrickscfg", "[DEFAULT]\nhost = file.example.com\ntoken = file-token\n");
  auto r = resolve_databricks_config(DatabricksConfig{}, env());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->host, "https://env.example.com");
  EXPECT_EQ(r->auth_type, "oauth-m2m");  // file skipped: host set, no profile named
  EXPECT_EQ(r->attr("client_id"), "cid");
  EXPECT_EQ(r->config_file, "");
}

TEST_F(ResolveTest, DefaultProfileFromHome) {
  write_cfg(".databrickscfg",
            "; comment\n[DEFAULT]\nhost = file.example.com\ntoken = file-token\n\n[other]\nhost = o\n");
  auto r = resolve_databricks_config(DatabricksConfig{}, env());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->host, "https://file.example.com");
  EXPECT_EQ(r->attr("token"), "file-token");
  EXPECT_EQ(r->profile, "DEFAULT");
}

TEST_F(ResolveTest, NamedProfileAndConfigFileVariable) {
  write_cfg("custom.cfg",
            "[DEFAULT]\nhost = d.example.com\ntoken = d\n[prod]\nhost = https://prod.example.com\n"
            "client_id = pid\nclient_secret = psecret\n");
  env_["DATABRICKS_CONFIG_FILE"] = (dir_ / "custom.cfg").string();
  env_["DATABRICKS_CONFIG_PROFILE"] = "prod";
  env_["DATABRICKS_HOST"] = "https://env-host.example.com";  // named profile: file still read
  auto r = resolve_databricks_config(DatabricksConfig{}, env());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->host, "https://env-host.example.com");
  EXPECT_EQ(r->auth_type, "oauth-m2m");
  EXPECT_EQ(r->attr("client_secret"), "psecret");
  EXPECT_EQ(r->profile, "prod");

  env_["DATABRICKS_CONFIG_PROFILE"] = "missing";
  auto missing = resolve_databricks_config(DatabricksConfig{}, env());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "bad_profile");
}

TEST_F(ResolveTest, SettingsDefaultProfile) {
  write_cfg(".databrickscfg",
            "[__settings__]\ndefault_profile = dev\n[DEFAULT]\nhost = d\ntoken = d\n"
            "[dev]\nhost = dev.example.com\ntoken = devtok\n");
  auto r = resolve_databricks_config(DatabricksConfig{}, env());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->attr("token"), "devtok");
  EXPECT_EQ(r->profile, "dev");
}

TEST_F(ResolveTest, Failures) {
  auto none = resolve_databricks_config(DatabricksConfig{}, env());
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, "no_host");

  DatabricksConfig c;
  c.host = "https://x.example.com";
  auto no_creds = resolve_databricks_config(c, env());
  ASSERT_FALSE(no_creds.ok());
  EXPECT_EQ(no_creds.error().code, "no_credentials");

  c.client_id = "only-id";
  auto half = resolve_databricks_config(c, env());
  ASSERT_FALSE(half.ok());
  EXPECT_EQ(half.error().code, "no_credentials");

  DatabricksConfig insecure;
  insecure.host = "http://example.com";
  insecure.token = "t";
  auto r = resolve_databricks_config(insecure, env());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(r.error().code, "insecure_url");

  DatabricksConfig local;
  local.host = "http://127.0.0.1:8080";
  auto ok = resolve_databricks_config(local, env());
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->auth_type, "none");
  local.host = "http://localhost:1";
  EXPECT_TRUE(resolve_databricks_config(local, env()).ok());
  local.host = "http://[::1]:1";
  EXPECT_TRUE(resolve_databricks_config(local, env()).ok());
}

TEST(SimulatorFile, ParsesExample) {
  auto r = parse_simulator_jobs(R"(
jobs:
  - job_id: 101
    name: extract
    duration: 2s
    outcome: SUCCESS
    output: {rows: 42, name: "x", ratio: 0.5, ok: true, list: [1, "2"]}
    emit_event: true
  - job_id: 102
    name: broken
    duration: 250ms
    outcome: INTERNAL_ERROR
    emit_event: false
faults: {error_rate: 0.25, statuses: [429, 503], retry_after: 1s}
oauth: {client_id: c, client_secret: s, token_ttl: 10s}
)");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->jobs.size(), 2u);
  const SimulatedJob& j = r->jobs.at(101);
  EXPECT_EQ(j.name, "extract");
  EXPECT_EQ(j.duration, Duration(2000));
  EXPECT_EQ(j.output.at("rows").as_int64(), 42);
  EXPECT_EQ(j.output.at("name").as_string(), "x");
  EXPECT_TRUE(j.output.at("ok").as_bool());
  EXPECT_EQ(r->jobs.at(102).outcome, "INTERNAL_ERROR");
  EXPECT_FALSE(r->jobs.at(102).emit_event);
  EXPECT_DOUBLE_EQ(r->faults.error_rate, 0.25);
  EXPECT_EQ(r->faults.retry_after, Duration(1000));
  EXPECT_EQ(r->oauth_client_id, "c");
  EXPECT_EQ(r->oauth_token_ttl, Duration(10000));
}

TEST(SimulatorFile, Errors) {
  auto bad = parse_simulator_jobs("jobs:\n  - job_id: 1\n    outcome: MAYBE\n", "sim.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("sim.yaml:3"), std::string::npos) << bad.error().message;
  EXPECT_FALSE(parse_simulator_jobs("jobs:\n  - name: x\n").ok());
  EXPECT_FALSE(parse_simulator_jobs("jobs:\n  - job_id: 1\n    duration: soon\n").ok());
  EXPECT_FALSE(parse_simulator_jobs("faults: {error_rate: 2}\n").ok());
  EXPECT_FALSE(parse_simulator_jobs("nonsense: 1\n").ok());
  EXPECT_FALSE(load_simulator_jobs_file("/nonexistent/brickwork-sim.yaml").ok());
}

}  // namespace
}  // namespace brickwork

namespace brickwork {
namespace {

// A step_failed event repeats the text: a megabyte stack trace must not make
// it too large for the broker, and a cut must not split a character.
TEST(DatabricksTextCaps, ErrorTextsAndStateMessagesAreCutAt8KiB) {
  std::string huge;
  for (int i = 0; i < 50'000; ++i) huge += "\xc3\xa9";  // 100 KB of two-byte characters
  const Error e = error_from_http(
      400, "Bad Request", json::serialize(json::object{{"error_code", "X"}, {"message", huge}}));
  EXPECT_LE(e.message.size(), kMaxErrorTextBytes);
  EXPECT_GT(e.message.size(), kMaxErrorTextBytes - 8);
  EXPECT_EQ(e.message.substr(e.message.size() - 5), "\xc3\xa9...");
  const Error text = error_from_http(502, "Bad Gateway", "x" + huge);
  EXPECT_LE(text.message.size(), kMaxErrorTextBytes);

  json::object run{{"run_id", 7},
                   {"state", json::object{{"life_cycle_state", "TERMINATED"},
                                          {"result_state", "FAILED"},
                                          {"state_message", huge}}}};
  auto r = parse_run_info(run);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_LE(r->state_message.size(), kMaxErrorTextBytes);
  EXPECT_EQ(r->state_message.substr(r->state_message.size() - 3), "...");
  run["state"].as_object()["state_message"] = "";
  run["status"] = json::object{{"state", "TERMINATED"},
                               {"termination_details", json::object{{"code", "RUN_EXECUTION_ERROR"},
                                                                    {"type", "CLIENT_ERROR"},
                                                                    {"message", huge}}}};
  r = parse_run_info(run);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_LE(r->state_message.size(), kMaxErrorTextBytes);
}

TEST(DatabricksTextCaps, NulInAnErrorBodyOrANotebookResultBecomesTheReplacementCharacter) {
  const Error e = error_from_http(400, "Bad Request", R"({"error_code":"X","message":"a\u0000b"})");
  EXPECT_EQ(e.message, "a\xEF\xBF\xBD" "b");
  const Error raw = error_from_http(400, "Bad Request", std::string("oops\0!", 6));
  EXPECT_EQ(raw.message, "oops\xEF\xBF\xBD!");
  // The notebook returns JSON text: its \u0000 is U+0000 only once parsed.
  const json::object out = output_from_run_output(
      json::parse(R"({"notebook_output":{"result":"{\"x\":\"a\\u0000b\"}"}})").as_object());
  EXPECT_EQ(out.at("x"), "a\xEF\xBF\xBD" "b");
}

}  // namespace
}  // namespace brickwork
