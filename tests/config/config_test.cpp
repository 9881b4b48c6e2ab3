#include "config/config.hpp"

#include "tests/config/with_steps.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace brickwork {
namespace {

const char* kMinimal = R"(callbacks:
  secret: "0123456789abcdef-0123456789abcdef-secret"
)";

std::string with_workflows(const std::string& workflows) {
  return std::string(kMinimal) + "workflows:\n" + workflows;
}

std::string error_of(const std::string& yaml, const LoadOptions& options = with_steps()) {
  auto c = load_config_from_string(yaml, "test.yaml", options);
  return c ? "ok" : c.error().message;
}

TEST(Config, DefaultsWhenSectionsAreLeftOut) {
  auto c = load_config_from_string(kMinimal, "test.yaml", with_steps());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->kafka.brokers, "localhost:9092");
  EXPECT_EQ(c->kafka.group, "brickwork");
  EXPECT_EQ(c->kafka.topics.commands, "brickwork.commands");
  EXPECT_EQ(c->kafka.topics.dead_letter, "brickwork.dlq");
  EXPECT_EQ(c->daemon.batch_max_messages, 500);
  EXPECT_TRUE(c->workflows.empty());
}

TEST(Config, TheShippedExampleLoads) {
  setenv("BRICKWORK_CALLBACK_SECRET", "a-long-enough-secret-value-of-32-characters", 1);
  auto c = load_config(std::string(BRICKWORK_SOURCE_DIR) + "/config/examples/brickwork.yaml", with_steps());
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(c->workflows.count("daily_ingest"), 1u);
  // workflows.d/onboarding.yaml: every control-flow step type.
  ASSERT_EQ(c->workflows.count("onboarding"), 1u);
  EXPECT_EQ(c->workflows.at("onboarding").steps.size(), 5u);
  EXPECT_EQ(c->workflows.at("onboarding").on_failure.size(), 1u);
  // workflows.d/land_and_record.yaml: the data steps, into databases.results.
  ASSERT_EQ(c->workflows.count("land_and_record"), 1u);
  EXPECT_EQ(c->databases.count("results"), 1u);
  // workflows.d/delta_sharing.yaml: a client's share, its link sent on, and revoked.
  ASSERT_EQ(c->workflows.count("share_onboarding"), 1u);
  ASSERT_EQ(c->workflows.count("share_offboarding"), 1u);
  EXPECT_EQ(c->workflows.at("share_onboarding").steps[0].type, "delta_share");
  EXPECT_TRUE(c->workflows.at("share_onboarding").steps[0].plan.sensitive_output);
  const auto& steps = c->workflows.at("daily_ingest").steps;
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps[0].type, "run_job");
  EXPECT_EQ(steps[0].action.at("job_id"), 123);
  EXPECT_EQ(steps[0].retry.max_attempts, 3);
  EXPECT_EQ(steps[0].retry.backoff, Duration(30000));
  EXPECT_EQ(steps[0].timeout, Duration(2 * 3600 * 1000));
  EXPECT_EQ(steps[1].depends_on, std::vector<std::string>{"transform"});
  const auto& fan = c->workflows.at("fan_out").steps;
  EXPECT_EQ(fan[3].depends_on, (std::vector<std::string>{"clean", "features"}));
  EXPECT_EQ(fan[3].completion, CompletionMode::kPoll);
  EXPECT_EQ(fan[3].poll_every, Duration(15000));
  EXPECT_NE(fan[0].source_location.find("brickwork.yaml:"), std::string::npos);
}

TEST(Config, EnvironmentSubstitution) {
  setenv("BW_TEST_BROKERS", "kafka-1:9092", 1);
  unsetenv("BW_TEST_UNSET");
  auto c = load_config_from_string(std::string(kMinimal) +
                                       "kafka:\n  brokers: \"${BW_TEST_BROKERS}\"\n"
                                       "  group: \"${BW_TEST_UNSET:-fallback}\"\n",
                                   "test.yaml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->kafka.brokers, "kafka-1:9092");
  EXPECT_EQ(c->kafka.group, "fallback");
  const std::string missing =
      error_of(std::string(kMinimal) + "kafka:\n  brokers: \"${BW_TEST_UNSET}\"\n");
  EXPECT_NE(missing.find("test.yaml:4:"), std::string::npos) << missing;
  EXPECT_NE(missing.find("BW_TEST_UNSET is not set"), std::string::npos) << missing;
}

TEST(Config, ErrorsNameFileLineColumnAndPath) {
  const std::string e = error_of(with_workflows(R"(  w:
    steps:
      - name: a
        run_job: {job_id: 1}
        retry: {max_attempts: x}
)"));
  EXPECT_NE(e.find("test.yaml:8:"), std::string::npos) << e;
  EXPECT_NE(e.find("workflows.w.steps[0].retry.max_attempts"), std::string::npos) << e;
  EXPECT_NE(e.find("expected an integer"), std::string::npos) << e;
}

TEST(Config, MetricsListenIsHostPortOrAConfigurationError) {
  auto c = load_config_from_string(std::string(kMinimal) +
                                       "daemon: {metrics_listen: \"127.0.0.1:9464\", log_level: DEBUG}\n",
                                   "test.yaml", with_steps());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->daemon.metrics_listen, "127.0.0.1:9464");
  EXPECT_EQ(c->daemon.log_level, "debug");  // in any case, as BRICKWORK_LOG_LEVEL
  const std::string e =
      error_of(std::string(kMinimal) + "daemon: {metrics_listen: \"127.0.0.1:99999\"}\n");
  EXPECT_NE(e.find("test.yaml:3:"), std::string::npos) << e;
  EXPECT_NE(e.find("daemon.metrics_listen"), std::string::npos) << e;
  EXPECT_NE(e.find("0 to 65535"), std::string::npos) << e;
  EXPECT_NE(error_of(std::string(kMinimal) + "daemon: {metrics_listen: \"9464\"}\n").find("no port"),
            std::string::npos);
}

TEST(Config, DatabricksLimitsAreCallsPerSecondByKnownApi) {
  auto c = load_config_from_string(
      std::string(kMinimal) + "databricks:\n  limits: {\"jobs/run-now\": 12, \"other\": 0.5}\n",
      "test.yaml", with_steps());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->databricks.limits,
            (std::map<std::string, double>{{"jobs/run-now", 12}, {"other", 0.5}}));
  const std::string unknown =
      error_of(std::string(kMinimal) + "databricks:\n  limits: {\"jobs/runnow\": 12}\n");
  EXPECT_NE(unknown.find("test.yaml:4:"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("databricks.limits.jobs/runnow"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("expected one of jobs/run-now,"), std::string::npos) << unknown;
  for (const char* bad : {"0", "-3", "fast", "[1]", "20/s"}) {
    const std::string e = error_of(std::string(kMinimal) +
                                   "databricks:\n  limits: {\"jobs/runs/get\": " + bad + "}\n");
    EXPECT_NE(e.find("databricks.limits.jobs/runs/get"), std::string::npos) << bad << ": " << e;
    EXPECT_NE(e.find("a number above 0"), std::string::npos) << bad << ": " << e;
  }
  EXPECT_NE(error_of(std::string(kMinimal) + "databricks:\n  limits: 15\n").find("databricks.limits"),
            std::string::npos);
}

TEST(Config, FilesAllowedDirsAreAbsoluteDirectories) {
  auto c = load_config_from_string(std::string(kMinimal) +
                                       "files: {allowed_dirs: [/var/lib/exports, /srv/out]}\n",
                                   "test.yaml", with_steps());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->files.allowed_dirs, (std::vector<std::string>{"/var/lib/exports", "/srv/out"}));
  const std::string relative = error_of(std::string(kMinimal) + "files: {allowed_dirs: [exports]}\n");
  EXPECT_NE(relative.find("test.yaml:"), std::string::npos) << relative;
  EXPECT_NE(relative.find("files.allowed_dirs[0]"), std::string::npos) << relative;
  EXPECT_NE(error_of(std::string(kMinimal) + "files: {allowed_dirs: [/]}\n").find("other than /"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "files: {allowed_dirs: /tmp}\n").find("a list"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "files: {allowed: [/tmp]}\n").find("files.allowed"),
            std::string::npos);
}

TEST(Config, YamlSyntaxErrorHasAPosition) {
  const std::string e = error_of("kafka: {brokers: [unclosed\n");
  EXPECT_NE(e.find("test.yaml:"), std::string::npos) << e;
  EXPECT_NE(e.find("invalid YAML"), std::string::npos) << e;
}

TEST(Config, TyposAreRejected) {
  EXPECT_NE(error_of(std::string(kMinimal) + "kafak: {}\n").find("unknown key"), std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "kafka: {brokerz: x}\n").find("kafka.brokerz"),
            std::string::npos);
  EXPECT_NE(error_of(with_workflows("  w:\n    steps:\n      - name: a\n        run_job: {job_id: 1}\n"
                                    "        retries: 3\n"))
                .find("unknown key"),
            std::string::npos);
}

TEST(Config, SecretIsRequiredLongAndNeverEchoed) {
  EXPECT_NE(error_of("kafka: {}\n").find("callbacks.secret"), std::string::npos);
  const std::string e = error_of("callbacks: {secret: shortsecret}\n");
  EXPECT_NE(e.find("at least 32"), std::string::npos) << e;
  EXPECT_EQ(e.find("shortsecret"), std::string::npos) << e;
  // 16 characters used to be enough; an HMAC key deserves 32.
  const std::string sixteen = error_of("callbacks: {secret: \"0123456789abcdef\"}\n");
  EXPECT_NE(sixteen.find("test.yaml:1:21: callbacks.secret: must be at least 32 characters"),
            std::string::npos)
      << sixteen;
}

TEST(Config, PreviousSecretsAreListedAndLongToo) {
  const std::string current = "callbacks:\n  secret: \"0123456789abcdef-0123456789abcdef\"\n";
  auto c = load_config_from_string(
      current + "  previous_secrets: [\"an-earlier-secret-of-thirty-two-chars\"]\n", "test.yaml",
      with_steps());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->callbacks.previous_secrets,
            std::vector<std::string>{"an-earlier-secret-of-thirty-two-chars"});
  const std::string short_one =
      error_of(current + "  previous_secrets: [\"an-earlier-secret-of-thirty-two-chars\", "
                         "\"old-short-secret\"]\n");
  EXPECT_NE(short_one.find("callbacks.previous_secrets[1]: must be at least 32 characters"),
            std::string::npos)
      << short_one;
  EXPECT_EQ(short_one.find("old-short-secret"), std::string::npos) << short_one;
  EXPECT_NE(error_of(current + "  previous_secrets: \"one-secret-not-in-a-list-0123456789\"\n")
                .find("callbacks.previous_secrets: expected a list of secrets"),
            std::string::npos);
}

TEST(Config, StepRules) {
  auto step_error = [](const std::string& steps) {
    return error_of(with_workflows("  w:\n    steps:\n" + steps));
  };
  EXPECT_NE(step_error("      - name: a\n").find("has no action"), std::string::npos);
  EXPECT_NE(step_error("      - name: a\n        run_job: {job_id: 1}\n        sleep: {for: 1s}\n")
                .find("2 actions"),
            std::string::npos);
  EXPECT_NE(step_error("      - run_job: {job_id: 1}\n").find("needs a name"), std::string::npos);
  EXPECT_NE(step_error("      - name: a\n        run_job: {job_id: 1}\n"
                       "      - name: a\n        run_job: {job_id: 2}\n")
                .find("used twice"),
            std::string::npos);
  EXPECT_NE(step_error("      - name: a\n        run_job: {job_id: 1}\n        depends_on: [zz]\n")
                .find("no step named 'zz'"),
            std::string::npos);
  EXPECT_NE(step_error("      - name: a\n        run_job: {job_id: 1}\n        depends_on: [b]\n"
                       "      - name: b\n        run_job: {job_id: 2}\n        depends_on: [a]\n")
                .find("cycle"),
            std::string::npos);
  EXPECT_NE(step_error("      - name: a\n        run_job: {job_id: 1}\n        completion: sometimes\n")
                .find("expected event or poll"),
            std::string::npos);
  EXPECT_NE(step_error("      - name: a\n        run_job: {job_id: 1}\n        timeout: soon\n")
                .find("expected a duration"),
            std::string::npos);
}

TEST(Config, EffectiveDependsOnAndParallelSteps) {
  auto c = load_config_from_string(with_workflows(R"(  w:
    steps:
      - name: a
        run_job: {job_id: 1}
      - name: b
        run_job: {job_id: 2}
      - name: c
        depends_on: [a]
        run_job: {job_id: 3}
      - name: d
        depends_on: []
        run_job: {job_id: 4}
)"),
                                   "test.yaml", with_steps());
  ASSERT_TRUE(c) << c.error().message;
  const auto& s = c->workflows.at("w").steps;
  EXPECT_TRUE(s[0].depends_on.empty());
  EXPECT_EQ(s[1].depends_on, std::vector<std::string>{"a"});
  EXPECT_EQ(s[2].depends_on, std::vector<std::string>{"a"});
  EXPECT_TRUE(s[3].depends_on.empty());
  EXPECT_EQ(s[0].poll_every, Duration(60000));
}

TEST(Config, ActionValuesKeepTheirYamlTypes) {
  auto c = load_config_from_string(with_workflows(R"(  w:
    steps:
      - name: a
        run_job:
          job_id: 12
          parameters: {n: 3, f: 1.5, b: true, s: "007", plain: text, t: "{{ input.x }}"}
)"),
                                   "test.yaml", with_steps());
  ASSERT_TRUE(c) << c.error().message;
  const auto& params = c->workflows.at("w").steps[0].action.at("parameters").as_object();
  EXPECT_TRUE(params.at("n").is_int64());
  EXPECT_TRUE(params.at("f").is_double());
  EXPECT_TRUE(params.at("b").is_bool());
  EXPECT_EQ(params.at("s"), "007");  // quoted: stays a string
  EXPECT_EQ(params.at("plain"), "text");
  EXPECT_EQ(params.at("t"), "{{ input.x }}");
}

TEST(Config, ActionValidatorMessageGetsTheStepsLocation) {
  const std::string e = error_of(with_workflows("  w:\n    steps:\n      - name: a\n        run_job: {}\n"));
  EXPECT_NE(e.find("test.yaml:7:"), std::string::npos) << e;
  EXPECT_NE(e.find("run_job needs exactly one of job_id or job_name"), std::string::npos) << e;
}

TEST(Config, WorkflowsDirectory) {
  const auto dir = std::filesystem::temp_directory_path() / ("bw-config-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir / "flows");
  std::ofstream(dir / "flows" / "a.yaml") << "workflows:\n  one:\n    steps:\n      - name: s\n        run_job: {job_id: 1}\n";
  std::ofstream(dir / "flows" / "b.yml") << "workflows:\n  two:\n    steps:\n      - name: s\n        sleep: {for: 1s}\n";
  std::ofstream(dir / "main.yaml") << kMinimal << "workflows_dir: flows\n";
  auto c = load_config((dir / "main.yaml").string(), with_steps());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->workflows.size(), 2u);
  std::ofstream(dir / "flows" / "c.yaml") << "workflows:\n  one:\n    steps:\n      - name: s\n        run_job: {job_id: 1}\n";
  auto dup = load_config((dir / "main.yaml").string(), with_steps());
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().message.find("c.yaml"), std::string::npos) << dup.error().message;
  EXPECT_NE(dup.error().message.find("defined twice"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(Durations, Forms) {
  EXPECT_EQ(parse_duration("250ms"), Duration(250));
  EXPECT_EQ(parse_duration("30s"), Duration(30000));
  EXPECT_EQ(parse_duration("5m"), Duration(300000));
  EXPECT_EQ(parse_duration("2h"), Duration(7200000));
  EXPECT_EQ(parse_duration("1h30m"), Duration(5400000));
  EXPECT_EQ(parse_duration("45"), Duration(45000));
  EXPECT_FALSE(parse_duration("soon"));
  EXPECT_FALSE(parse_duration("-5s"));
  EXPECT_FALSE(parse_duration(""));
}

}  // namespace
}  // namespace brickwork
