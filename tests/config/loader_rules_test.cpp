// Rules of the loader beyond the basics in config_test.cpp: repeated keys,
// YAML scalar types, positions of depends_on and cycle errors, template
// references checked at load, Databricks and Kafka sanity checks.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "config/config.hpp"
#include "tests/config/with_steps.hpp"
#include "config/templates.hpp"

namespace brickwork {
namespace {

const char* kSecret = "callbacks:\n  secret: \"0123456789abcdef-0123456789abcdef-secret\"\n";  // lines 1-2

std::string rules_error(const std::string& yaml) {
  auto c = load_config_from_string(yaml, "rules.yaml", with_steps());
  return c ? "ok" : c.error().message;
}

// A workflow `w` whose steps start at line 6.
std::string steps_yaml(const std::string& steps) {
  return std::string(kSecret) + "workflows:\n  w:\n    steps:\n" + steps;
}

Result<Config> load_steps(const std::string& steps) {
  return load_config_from_string(steps_yaml(steps), "rules.yaml", with_steps());
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(LoaderRules, RepeatedKeysAreErrorsNotSilentlyIgnored) {
  // yaml-cpp keeps both; a lookup would see only the first.
  const std::string e = rules_error(std::string(kSecret) + "kafka: {group: a, group: b}\n");
  EXPECT_TRUE(has(e, "rules.yaml:3:")) << e;
  EXPECT_TRUE(has(e, "kafka.group: key given twice")) << e;
  const std::string secret = rules_error(std::string(kSecret) + "  secret: \"another-secret-value-x\"\n");
  EXPECT_TRUE(has(secret, "rules.yaml:3:3: callbacks.secret: key given twice")) << secret;
  EXPECT_FALSE(has(secret, "another-secret-value-x")) << secret;
  const std::string step = rules_error(steps_yaml(
      "      - name: a\n        run_job: {job_id: 1}\n        retry: {max_attempts: 2}\n"
      "        retry: {max_attempts: 9}\n"));
  EXPECT_TRUE(has(step, "rules.yaml:9:9: workflows.w.steps[0].retry: key given twice")) << step;
  const std::string action =
      rules_error(steps_yaml("      - name: a\n        run_job: {job_id: 1, job_id: 2}\n"));
  EXPECT_TRUE(has(action, "workflows.w.steps[0].run_job.job_id: key given twice")) << action;
}

TEST(LoaderRules, ScalarTypesFollowYaml12CoreSchema) {
  setenv("BW_RULES_JOB", "77", 1);
  auto c = load_steps(
      "      - name: a\n        run_job:\n          job_id: ${BW_RULES_JOB}\n"
      "          p: {i: -5, plus: +3, hex: 0x1F, oct: 0o17, f: 1.5, e: 2e3, big: 18446744073709551615,\n"
      "              quoted: \"12\", str_tag: !!str 12, nan: .nan, inf: inf, word: nan,\n"
      "              t: true, yes: yes, n: ~, empty: , s: 30s, ver: 1.2.3}\n");
  ASSERT_TRUE(c) << c.error().message;
  const json::object& a = c->workflows.at("w").steps[0].action;
  EXPECT_EQ(a.at("job_id"), 77);  // substituted first, then typed
  const json::object& p = a.at("p").as_object();
  EXPECT_EQ(p.at("i"), -5);
  EXPECT_EQ(p.at("plus"), 3);
  EXPECT_EQ(p.at("hex"), 31);
  EXPECT_EQ(p.at("oct"), 15);
  EXPECT_EQ(p.at("f"), 1.5);
  EXPECT_EQ(p.at("e"), 2000.0);
  EXPECT_TRUE(p.at("big").is_uint64());
  EXPECT_EQ(p.at("quoted"), "12");
  EXPECT_EQ(p.at("str_tag"), "12");
  // JSON has no NaN or infinity: those stay text rather than produce invalid JSON.
  EXPECT_EQ(p.at("nan"), ".nan");
  EXPECT_EQ(p.at("inf"), "inf");
  EXPECT_EQ(p.at("word"), "nan");
  EXPECT_EQ(p.at("t"), true);
  EXPECT_EQ(p.at("yes"), "yes");  // YAML 1.1 booleans are not 1.2 booleans
  EXPECT_TRUE(p.at("n").is_null());
  EXPECT_TRUE(p.at("empty").is_null());
  EXPECT_EQ(p.at("s"), "30s");
  EXPECT_EQ(p.at("ver"), "1.2.3");
  // Whatever the action holds, it serializes to JSON that parses again.
  EXPECT_NO_THROW(json::parse(json::serialize(a)));
}

TEST(LoaderRules, DollarDollarEscapesASubstitution) {
  auto s = substitute_env("cost: $${NOT_A_VAR} and $5");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(*s, "cost: ${NOT_A_VAR} and $5");
  unsetenv("BW_RULES_EMPTY");
  setenv("BW_RULES_EMPTY", "", 1);
  EXPECT_EQ(*substitute_env("${BW_RULES_EMPTY:-d}"), "d");  // as in the shell: empty takes the default
  EXPECT_EQ(*substitute_env("${BW_RULES_EMPTY}"), "");
  EXPECT_FALSE(substitute_env("${1BAD}"));
  EXPECT_FALSE(substitute_env("${UNCLOSED"));
}

TEST(LoaderRules, TwoActionsAreNamed) {
  const std::string e = rules_error(steps_yaml(
      "      - name: a\n        run_job: {job_id: 1}\n        sleep: {duration: 1s}\n"));
  EXPECT_TRUE(has(e, "rules.yaml:6:9: workflows.w.steps[0]")) << e;
  EXPECT_TRUE(has(e, "(run_job, sleep)")) << e;
}

TEST(LoaderRules, UnknownActionKeyListsTheActions) {
  const std::string e = rules_error(steps_yaml("      - name: a\n        run_jobs: {job_id: 1}\n"));
  EXPECT_TRUE(has(e, "rules.yaml:7:9: workflows.w.steps[0].run_jobs: unknown key")) << e;
  // The list comes from the step registry: the types this build has.
  std::string keys;
  for (const auto& k : StepRegistry::builtin().keys()) keys += (keys.empty() ? "" : ", ") + k;
  EXPECT_TRUE(has(e, "exactly one action: " + keys + ")")) << e;
  EXPECT_TRUE(has(keys, "run_job, ")) << keys;
}

TEST(LoaderRules, DependsOnErrorsPointAtTheEntry) {
  const std::string unknown = rules_error(steps_yaml(
      "      - name: a\n        run_job: {job_id: 1}\n        depends_on: [b, zz]\n"
      "      - name: b\n        run_job: {job_id: 2}\n"));
  EXPECT_TRUE(has(unknown, "rules.yaml:8:25: workflows.w.steps[0].depends_on[1]")) << unknown;
  EXPECT_TRUE(has(unknown, "no step named 'zz'")) << unknown;
  const std::string self = rules_error(steps_yaml(
      "      - name: a\n        run_job: {job_id: 1}\n        depends_on: [a]\n"));
  EXPECT_TRUE(has(self, "rules.yaml:8:22: workflows.w.steps[0].depends_on[0]")) << self;
  EXPECT_TRUE(has(self, "cannot depend on itself")) << self;
  const std::string twice = rules_error(steps_yaml(
      "      - name: a\n        run_job: {job_id: 1}\n      - name: b\n        run_job: {job_id: 1}\n"
      "        depends_on: [a, a]\n"));
  EXPECT_TRUE(has(twice, "workflows.w.steps[1].depends_on[1]: 'a' is listed twice")) << twice;
  // Later steps may be named; an empty list means "start at once".
  auto later = load_steps(
      "      - name: a\n        run_job: {job_id: 1}\n        depends_on: [b]\n"
      "      - name: b\n        run_job: {job_id: 2}\n        depends_on: []\n");
  ASSERT_TRUE(later) << later.error().message;
  EXPECT_EQ(later->workflows.at("w").steps[0].depends_on, std::vector<std::string>{"b"});
  EXPECT_TRUE(later->workflows.at("w").steps[1].depends_on.empty());
}

TEST(LoaderRules, CycleNamesItsStepsAndAPosition) {
  const std::string e = rules_error(steps_yaml(
      "      - name: a\n        run_job: {job_id: 1}\n        depends_on: [c]\n"
      "      - name: b\n        run_job: {job_id: 2}\n"
      "      - name: c\n        run_job: {job_id: 3}\n"));
  // a -> c -> b -> a (b depends on a by default, c on b).
  EXPECT_TRUE(has(e, "rules.yaml:6:9: workflows.w.steps[0].depends_on: depends_on has a cycle: "
                     "a -> c -> b -> a"))
      << e;
}

TEST(LoaderRules, DuplicateStepNameSaysWhereTheFirstIs) {
  const std::string e = rules_error(steps_yaml(
      "      - name: a\n        run_job: {job_id: 1}\n      - name: a\n        run_job: {job_id: 2}\n"));
  EXPECT_TRUE(has(e, "rules.yaml:8:15: workflows.w.steps[1].name")) << e;
  EXPECT_TRUE(has(e, "first at rules.yaml:6:9")) << e;
}

TEST(LoaderRules, TemplateReferencesAreCheckedAtLoad) {
  auto err = [](const std::string& value, const std::string& extra_steps = "") {
    return rules_error(steps_yaml("      - name: a\n        run_job: {job_id: 1}\n" + extra_steps +
                               "      - name: z\n        run_job:\n          job_id: 9\n"
                               "          parameters: {p: \"" + value + "\"}\n"));
  };
  EXPECT_EQ(err("{{ input.url }} {{ workflow.id }} {{ workflow.name }} {{ steps.a.run_id }}"), "ok");
  EXPECT_EQ(err("{{steps.a.output.rows.0}} {{ steps.a.state }}"), "ok");
  const std::string typo = err("{{ inptu.url }}");
  EXPECT_TRUE(has(typo, "rules.yaml:11:27: workflows.w.steps[1].run_job.parameters.p")) << typo;
  EXPECT_TRUE(has(typo, "{{ inptu.url }}: expected a path starting with input.")) << typo;
  EXPECT_TRUE(has(err("{{ steps.nope.output.x }}"), "no step named 'nope'"));
  EXPECT_TRUE(has(err("{{ steps.z.output.x }}"), "cannot read its own results"));
  EXPECT_TRUE(has(err("{{ steps.a.outputs }}"), "expected steps.a.output"));
  EXPECT_TRUE(has(err("{{ workflow.owner }}"), "expected workflow.id or workflow.name"));
  EXPECT_TRUE(has(err("{{ input.url"), "without its"));
  EXPECT_TRUE(has(err("{{ input url }}"), "is not a template path"));
  // b runs in parallel with z (both wait for a only): z may not read b.
  const std::string parallel = err("{{ steps.b.output.x }}",
                                   "      - name: b\n        depends_on: [a]\n        run_job: {job_id: 2}\n"
                                   "      - name: y\n        depends_on: [a]\n        run_job: {job_id: 3}\n");
  EXPECT_TRUE(has(parallel, "does not depend on 'b'")) << parallel;
  // Reached through another step: fine.
  auto transitive = load_steps(
      "      - name: a\n        run_job: {job_id: 1}\n      - name: b\n        run_job: {job_id: 2}\n"
      "      - name: c\n        run_job: {job_id: 3, parameters: {x: \"{{ steps.a.output.x }}\"}}\n");
  EXPECT_TRUE(transitive) << transitive.error().message;
}

TEST(LoaderRules, DatabricksHostAndCredentials) {
  auto dbx = [](const std::string& body) {
    return rules_error(std::string(kSecret) + "databricks:\n" + body);
  };
  const std::string plain = dbx("  host: \"http://example.cloud.databricks.com\"\n");
  EXPECT_TRUE(has(plain, "rules.yaml:4:9: databricks.host: http:// is accepted only")) << plain;
  EXPECT_TRUE(has(dbx("  host: \"ftp://x\"\n"), "expected https://"));
  EXPECT_EQ(dbx("  host: \"http://127.0.0.1:8080\"\n"), "ok");
  EXPECT_EQ(dbx("  host: \"http://[::1]:8080\"\n"), "ok");
  EXPECT_EQ(dbx("  host: \"http://localhost:8080\"\n"), "ok");
  // The same rule as the HTTP client: a name is not an address.
  EXPECT_TRUE(has(dbx("  host: \"http://127.example.com\"\n"), "http:// is accepted only"));
  EXPECT_TRUE(has(dbx("  host: \"http:///path\"\n"), "http:// is accepted only"));  // no host at all
  EXPECT_EQ(dbx("  host: \"adb-1.azuredatabricks.net\"\n"), "ok");
  auto c = load_config_from_string(
      std::string(kSecret) + "databricks: {host: \"https://x.cloud.databricks.com/\"}\n", "r.yaml", with_steps());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->databricks.host, "https://x.cloud.databricks.com");
  EXPECT_TRUE(has(dbx("  client_id: abc\n"), "client_id and client_secret"));
  const std::string both = dbx("  token: dapi-secret-token\n  client_id: a\n  client_secret: oauth-secret\n");
  EXPECT_TRUE(has(both, "not both")) << both;
  EXPECT_FALSE(has(both, "dapi-secret-token")) << both;
  EXPECT_FALSE(has(both, "oauth-secret")) << both;
  EXPECT_TRUE(has(dbx("  request_timeout: 0s\n"), "databricks.request_timeout: must be longer than 0"));
  // Unified authentication: the auth type by name and a profile.
  EXPECT_EQ(dbx("  auth_type: azure-msi\n  profile: prod\n"), "ok");
  const std::string unknown = dbx("  auth_type: azure-cli\n");
  EXPECT_TRUE(has(unknown, "databricks.auth_type: unknown auth type 'azure-cli'")) << unknown;
  EXPECT_TRUE(has(unknown, "google-id")) << unknown;
  EXPECT_EQ(dbx("  auth_type: file-oidc\n  client_id: federated-sp\n"), "ok");
  EXPECT_EQ(dbx("  auth_type: pat\n  token: t\n  client_id: a\n  client_secret: s\n"), "ok");
  auto named = load_config_from_string(
      std::string(kSecret) + "databricks: {auth_type: env-oidc, profile: ci}\n", "r.yaml", with_steps());
  ASSERT_TRUE(named) << named.error().message;
  EXPECT_EQ(named->databricks.auth_type, "env-oidc");
  EXPECT_EQ(named->databricks.profile, "ci");
}

TEST(LoaderRules, KafkaTopicsMustDiffer) {
  const std::string e = rules_error(std::string(kSecret) +
                                 "kafka:\n  topics: {commands: t1, status: t1}\n");
  EXPECT_TRUE(has(e, "rules.yaml:4:11: kafka.topics")) << e;
  EXPECT_TRUE(has(e, "commands and status are both \"t1\"")) << e;
  EXPECT_TRUE(has(rules_error(std::string(kSecret) + "kafka: {properties: {a: {b: c}}}\n"),
                  "kafka.properties.a: expected a string"));
  auto c = load_config_from_string(std::string(kSecret) +
                                       "kafka: {properties: {linger.ms: 5, enable.idempotence: true}}\n",
                                   "r.yaml", with_steps());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->kafka.properties.at("linger.ms"), "5");
  EXPECT_EQ(c->kafka.properties.at("enable.idempotence"), "true");
}

TEST(LoaderRules, DeeplyNestedActionIsRefused) {
  std::string deep = "x";
  for (int i = 0; i < 80; ++i) deep = "[" + deep + "]";
  const std::string e =
      rules_error(steps_yaml("      - name: a\n        run_job: {job_id: 1, p: " + deep + "}\n"));
  EXPECT_TRUE(has(e, "nested more than 64 levels deep")) << e;
}

TEST(LoaderRules, DurationsInEveryPlace) {
  auto c = load_config_from_string(
      std::string(kSecret) +
          "daemon: {batch_max_wait: 250ms, lease: 1m30s, shutdown_grace: 10}\n"
          "workflows:\n  w:\n    steps:\n"
          "      - name: a\n        run_job: {job_id: 1}\n        completion: poll\n"
          "        timeout: 1d\n        retry: {backoff: 2h}\n",
      "r.yaml", with_steps());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->daemon.batch_max_wait, Duration(250));
  EXPECT_EQ(c->daemon.lease, Duration(90'000));
  EXPECT_EQ(c->daemon.shutdown_grace, Duration(10'000));  // a bare number is seconds
  const StepDefinition& a = c->workflows.at("w").steps[0];
  EXPECT_EQ(a.poll_every, Duration(15'000));  // the default for completion: poll
  EXPECT_EQ(a.timeout, Duration(86'400'000));
  EXPECT_EQ(a.retry.backoff, Duration(7'200'000));
  EXPECT_EQ(a.retry.max_attempts, 1);
  const std::string bad = rules_error(std::string(kSecret) + "daemon: {lease: 1.5h}\n");
  EXPECT_TRUE(has(bad, "rules.yaml:3:17: daemon.lease: expected a duration like 250ms, 30s")) << bad;
  EXPECT_TRUE(has(bad, "got \"1.5h\"")) << bad;
}

TEST(LoaderRules, OutboxStallIsADurationWithinBounds) {
  auto c = load_config_from_string(std::string(kSecret) + "daemon: {outbox_stall: 5s}\n", "r.yaml",
                                   with_steps());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->daemon.outbox_stall, Duration(5000));
  EXPECT_EQ(DaemonConfig{}.outbox_stall, Duration(30'000));
  const std::string zero = rules_error(std::string(kSecret) + "daemon: {outbox_stall: 0s}\n");
  EXPECT_TRUE(has(zero, "daemon.outbox_stall: must be between 100ms and 10m, got 0")) << zero;
  const std::string word = rules_error(std::string(kSecret) + "daemon: {outbox_stall: soon}\n");
  EXPECT_TRUE(has(word, "daemon.outbox_stall: expected a duration like 250ms")) << word;
}

TEST(LoaderRules, CallSlotsAreCountsWithinBounds) {
  auto c = load_config_from_string(
      std::string(kSecret) + "databricks: {max_in_flight: 200, max_transfers: 4}\n", "r.yaml",
      with_steps());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->databricks.max_in_flight, 200);
  EXPECT_EQ(c->databricks.max_transfers, 4);
  EXPECT_EQ(DatabricksConfig{}.max_in_flight, 64);
  EXPECT_EQ(DatabricksConfig{}.max_transfers, 16);
  EXPECT_EQ(DaemonConfig{}.shutdown_grace, Duration(20'000));  // under systemd's 45 s
  const std::string zero = rules_error(std::string(kSecret) + "databricks: {max_in_flight: 0}\n");
  EXPECT_TRUE(has(zero, "databricks.max_in_flight")) << zero;
  const std::string word = rules_error(std::string(kSecret) + "databricks: {max_transfers: many}\n");
  EXPECT_TRUE(has(word, "databricks.max_transfers")) << word;
}

TEST(LoaderRules, RetentionKeepsFinishedWorkflowsByStateAndZeroKeepsForever) {
  const RetentionConfig defaults;
  EXPECT_EQ(defaults.succeeded, std::chrono::hours(24 * 7));
  EXPECT_EQ(defaults.failed, std::chrono::hours(24 * 30));
  EXPECT_EQ(defaults.canceled, std::chrono::hours(24 * 30));
  auto c = load_config_from_string(
      std::string(kSecret) + "retention: {succeeded: 2d, failed: 0, every: 30s, batch_size: 200}\n",
      "r.yaml", with_steps());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->retention.succeeded, std::chrono::hours(48));
  EXPECT_EQ(c->retention.failed, Duration(0));
  EXPECT_EQ(c->retention.canceled, defaults.canceled);
  EXPECT_EQ(c->retention.every, Duration(30'000));
  EXPECT_EQ(c->retention.batch_size, 200);
}

TEST(LoaderRules, RetentionRefusesWhatCannotBeMeant) {
  const auto error_of = [](const std::string& retention) {
    return rules_error(std::string(kSecret) + "retention: " + retention + "\n");
  };
  const std::string short_one = error_of("{succeeded: 10s}");
  EXPECT_TRUE(has(short_one, "retention.succeeded: must be 0 (keep forever) or at least 1m, got 10s"))
      << short_one;
  const std::string word = error_of("{failed: forever}");
  EXPECT_TRUE(has(word, "retention.failed: expected a duration like 250ms")) << word;
  const std::string unknown = error_of("{running: 1d}");
  EXPECT_TRUE(has(unknown, "running")) << unknown;
  const std::string every = error_of("{every: 2d}");
  EXPECT_TRUE(has(every, "retention.every: must be between 1s and 1d, got 48h")) << every;
  const std::string batch = error_of("{batch_size: 0}");
  EXPECT_TRUE(has(batch, "retention.batch_size")) << batch;
  const std::string scalar = error_of("7d");
  EXPECT_TRUE(has(scalar, "retention")) << scalar;
}

TEST(LoaderRules, WorkflowDefinedInTwoFilesNamesBoth) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("bw-rules-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir / "flows");
  std::ofstream(dir / "main.yaml") << kSecret << "workflows_dir: flows\n"
                                   << "workflows:\n  one:\n    steps:\n      - name: s\n"
                                      "        run_job: {job_id: 1}\n";
  std::ofstream(dir / "flows" / "a.yaml") << "workflows:\n  one:\n    steps:\n      - name: s\n"
                                             "        run_job: {job_id: 1}\n";
  std::ofstream(dir / "flows" / "notes.txt") << "not yaml: [";  // other files are ignored
  auto c = load_config((dir / "main.yaml").string(), with_steps());
  ASSERT_FALSE(c);
  const std::string& e = c.error().message;
  EXPECT_TRUE(has(e, "a.yaml:2:3: workflows.one")) << e;
  EXPECT_TRUE(has(e, "first at " + (dir / "main.yaml").string() + ":5:3")) << e;
  // A file in the directory holds only `workflows:`.
  std::filesystem::remove(dir / "flows" / "a.yaml");
  std::ofstream(dir / "flows" / "b.yaml") << "kafka: {}\n";
  auto other = load_config((dir / "main.yaml").string(), with_steps());
  ASSERT_FALSE(other);
  EXPECT_TRUE(has(other.error().message, "b.yaml:1:1: kafka: unknown key")) << other.error().message;
  std::filesystem::remove_all(dir);
}

TEST(TemplatePaths, CheckedListing) {
  auto ok = template_paths_in("a {{x.y}} b {{  steps.s.output.rows  }}");
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, (std::vector<std::string>{"x.y", "steps.s.output.rows"}));
  EXPECT_FALSE(template_paths_in("{{ }}"));
  EXPECT_FALSE(template_paths_in("{{ a..b }}"));
  EXPECT_FALSE(template_paths_in("{{ a"));
  EXPECT_TRUE(template_paths_in("no templates }} here"));
}

TEST(TemplatePaths, WholeStringNeedsExactlyOneTemplate) {
  const json::object scope{{"a", 1}};
  // Ends in "}}" but is not one template: rendered as text, not looked up as "a }}x".
  auto r = render_templates(json::value("{{ a }}x}}"), scope);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, "1x}}");
}

}  // namespace
}  // namespace brickwork
