// What each control-flow step type accepts at load and what it compiles to,
// and the on_failure list.
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "tests/config/with_steps.hpp"

namespace brickwork {
namespace {

const char* kHeader = "callbacks:\n  secret: \"0123456789abcdef-0123456789abcdef-secret\"\nworkflows:\n  w:\n";

Result<Config> load_workflow_body(const std::string& body) {
  return load_config_from_string(std::string(kHeader) + body, "steps.yaml", with_steps());
}

std::string error_of_step(const std::string& step) {
  auto c = load_workflow_body("    steps:\n      - name: s\n" + step);
  return c ? "ok" : c.error().message;
}


TEST(StepTypes, SleepAcceptsForOrUntil) {
  EXPECT_EQ(error_of_step("        sleep: {for: 10m}\n"), "ok");
  EXPECT_EQ(error_of_step("        sleep: {until: \"2026-12-01T08:00:00Z\"}\n"), "ok");
  EXPECT_EQ(error_of_step("        sleep: {until: \"2026-12-01T10:00:00.5+02:00\"}\n"), "ok");
  EXPECT_EQ(error_of_step("        sleep: {until: \"2026-12-01t02:30:00-05:30\"}\n"), "ok");
  EXPECT_EQ(error_of_step("        sleep: {until: \"2026-12-01T08:00:00z\"}\n"), "ok");
  EXPECT_EQ(error_of_step("        sleep: {until: \"{{ input.at }}\"}\n"), "ok");
  EXPECT_TRUE(text_has(error_of_step("        sleep: {}\n"), "exactly one of for"));
  EXPECT_TRUE(text_has(error_of_step("        sleep: {for: 1s, until: \"2026-12-01T08:00:00Z\"}\n"),
                  "exactly one of for"));
  EXPECT_TRUE(text_has(error_of_step("        sleep: {for: soon}\n"), "sleep.for must be a duration"));
  EXPECT_TRUE(text_has(error_of_step("        sleep: {until: tomorrow}\n"), "RFC 3339"));
  EXPECT_TRUE(text_has(error_of_step("        sleep: {duration: 1s}\n"), "sleep.duration is not a field"));
}

TEST(StepTypes, WaitForSignalCompilesToAPlan) {
  auto c = load_workflow_body(
      "    steps:\n      - name: gate\n        wait_for_signal: {name: approved, timeout: 2h}\n"
      "      - name: plain\n        wait_for_signal: {}\n");
  ASSERT_TRUE(c) << c.error().message;
  const auto& steps = c->workflows.at("w").steps;
  EXPECT_EQ(steps[0].plan.kind, StepPlan::Kind::kAwaitSignal);
  EXPECT_EQ(steps[0].plan.signal, "approved");
  EXPECT_EQ(steps[0].plan.timeout_code, "timeout");
  EXPECT_EQ(steps[0].timeout, Duration(7'200'000));
  EXPECT_EQ(steps[1].plan.signal, "plain");  // the step's name by default
  EXPECT_FALSE(steps[1].timeout);
  EXPECT_TRUE(text_has(error_of_step("        wait_for_signal: {name: \"{{ input.x }}\"}\n"),
                  "plain, non-empty name"));
  EXPECT_TRUE(text_has(error_of_step("        wait_for_signal: {timeout: never}\n"), "duration"));
}

TEST(StepTypes, EmitNeedsATopicAndAValue) {
  EXPECT_EQ(error_of_step("        emit: {topic: a.b, value: {x: 1}}\n"), "ok");
  EXPECT_EQ(error_of_step("        emit: {topic: \"c.{{ input.client }}\", key: k, value: {x: 1}}\n"),
            "ok");
  EXPECT_TRUE(text_has(error_of_step("        emit: {value: {x: 1}}\n"), "emit.topic is required"));
  EXPECT_TRUE(text_has(error_of_step("        emit: {topic: \"bad topic\", value: {x: 1}}\n"),
                  "[A-Za-z0-9._-]"));
  EXPECT_TRUE(text_has(error_of_step("        emit: {topic: t}\n"), "emit.value is required"));
  EXPECT_TRUE(text_has(error_of_step("        emit: {topic: t, value: [1]}\n"), "emit.value is required"));
}

TEST(StepTypes, ATypeMaySetItsOwnPollEveryDefault) {
  auto c = load_workflow_body(
      "    steps:\n      - name: q\n        sql: {warehouse_id: w, statement: \"SELECT 1\"}\n"
      "      - name: r\n        sql: {warehouse_id: w, statement: \"SELECT 1\"}\n        poll_every: 1m\n"
      "      - name: j\n        run_job: {job_id: 1}\n");
  ASSERT_TRUE(c) << c.error().message;
  const auto& steps = c->workflows.at("w").steps;
  EXPECT_EQ(steps[0].poll_every, Duration(5000));   // sql's own default
  EXPECT_EQ(steps[1].poll_every, Duration(60000));  // as given
  EXPECT_EQ(steps[2].poll_every, Duration(60000));  // the common default
}

TEST(StepTypes, SqlStatementRefusesTemplatesLikePostgres) {
  // Values travel as parameters, names through IDENTIFIER(:name).
  EXPECT_EQ(error_of_step("        sql:\n          warehouse_id: w\n"
                          "          statement: \"SELECT * FROM IDENTIFIER(:t) WHERE id = :id\"\n"
                          "          parameters: {t: \"{{ input.table }}\", id: \"{{ input.id }}\"}\n"),
            "ok");
  const std::string e = error_of_step(
      "        sql:\n          warehouse_id: w\n"
      "          statement: \"SELECT * FROM t WHERE id = '{{ input.id }}'\"\n");
  EXPECT_TRUE(text_has(e, "steps.yaml:8:")) << e;  // file and line of the action
  EXPECT_TRUE(text_has(e, "sql.statement may not hold templates")) << e;
  EXPECT_TRUE(text_has(e, "IDENTIFIER(:name)")) << e;
  EXPECT_TRUE(text_has(error_of_step("        postgres: {database: d, statement: \"SELECT '{{ input.x }}'\"}\n"),
                       "postgres.statement may not hold templates"));
}

TEST(StepTypes, RunJobPlanIsPerformedByTheRuntime) {
  auto c = load_workflow_body("    steps:\n      - name: a\n        run_job: {job_id: 1}\n");
  ASSERT_TRUE(c) << c.error().message;
  StepPlan plan;
  plan.completion_event = true;  // its job may end it with job_completed
  EXPECT_EQ(c->workflows.at("w").steps[0].plan, plan);
}

// repair: true is the only way a step continues the run before it: without
// it (or with false) every retry starts a new run, as before repair existed.
// The flag survives the definition's trip through Postgres.
TEST(StepTypes, OnlyRepairTrueMakesARunJobOrSubmitRunRepairItsRuns) {
  auto c = load_workflow_body(
      "    steps:\n"
      "      - name: plain\n        run_job: {job_id: 1}\n"
      "      - name: repaired\n        run_job: {job_id: 1, repair: true}\n"
      "      - name: not_repaired\n        run_job: {job_id: 1, repair: false}\n"
      "      - name: submitted\n        submit_run: {tasks: [{task_key: t}], repair: true}\n");
  ASSERT_TRUE(c) << c.error().message;
  const WorkflowDefinition& def = c->workflows.at("w");
  auto stored = workflow_definition_from_json(to_json(def));
  ASSERT_TRUE(stored) << stored.error().message;
  for (const WorkflowDefinition* d : {&def, static_cast<const WorkflowDefinition*>(&*stored)}) {
    EXPECT_FALSE(d->find_step("plain")->plan.repairs_runs);
    EXPECT_TRUE(d->find_step("repaired")->plan.repairs_runs);
    EXPECT_FALSE(d->find_step("not_repaired")->plan.repairs_runs);
    EXPECT_TRUE(d->find_step("submitted")->plan.repairs_runs);
  }
  EXPECT_TRUE(text_has(error_of_step("        run_job: {job_id: 1, repair: yes please}\n"),
                       "run_job.repair must be true or false"));
}

TEST(StepTypes, EventGraceIsAStepDurationForCompletionByEvent) {
  auto c = load_workflow_body(
      "    steps:\n      - name: a\n        run_job: {job_id: 1}\n"
      "      - name: b\n        run_job: {job_id: 1}\n        event_grace: 2s\n");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->workflows.at("w").steps[0].event_grace, Duration(30'000));  // the default
  EXPECT_EQ(c->workflows.at("w").steps[1].event_grace, Duration(2'000));
  EXPECT_TRUE(text_has(error_of_step("        run_job: {job_id: 1}\n        event_grace: soon\n"),
                       "event_grace"));
  EXPECT_TRUE(text_has(error_of_step("        run_job: {job_id: 1}\n        completion: poll\n"
                                     "        event_grace: 5s\n"),
                       "applies only to completion: event"));
}

TEST(OnFailure, IsItsOwnListWithItsOwnDependencies) {
  auto c = load_workflow_body(
      "    steps:\n      - name: a\n        run_job: {job_id: 1}\n"
      "    on_failure:\n      - name: undo\n        run_job: {job_id: 2}\n"
      "      - name: notify\n        emit: {topic: ops, value: {id: \"{{ workflow.id }}\"}}\n");
  ASSERT_TRUE(c) << c.error().message;
  const auto& def = c->workflows.at("w");
  ASSERT_EQ(def.on_failure.size(), 2u);
  EXPECT_TRUE(def.on_failure[0].depends_on.empty());
  EXPECT_EQ(def.on_failure[1].depends_on, std::vector<std::string>{"undo"});
  EXPECT_TRUE(def.is_on_failure_step("undo"));
  EXPECT_FALSE(def.is_on_failure_step("a"));
  EXPECT_NE(def.find_step("notify"), nullptr);
}

TEST(OnFailure, NamesAreUniqueAcrossBothLists) {
  auto c = load_workflow_body(
      "    steps:\n      - name: a\n        run_job: {job_id: 1}\n"
      "    on_failure:\n      - name: a\n        run_job: {job_id: 2}\n");
  ASSERT_FALSE(c);
  EXPECT_TRUE(text_has(c.error().message, "is used twice")) << c.error().message;
  EXPECT_TRUE(text_has(c.error().message, "workflows.w.on_failure[0].name")) << c.error().message;
}

TEST(OnFailure, MayNotDependOnRegularSteps) {
  auto c = load_workflow_body(
      "    steps:\n      - name: a\n        run_job: {job_id: 1}\n"
      "    on_failure:\n      - name: undo\n        depends_on: [a]\n        run_job: {job_id: 2}\n");
  ASSERT_FALSE(c);
  EXPECT_TRUE(text_has(c.error().message, "no step named 'a' in this list")) << c.error().message;
}

}  // namespace
}  // namespace brickwork
