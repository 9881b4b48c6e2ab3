// Issue 6: inputs a hostile producer or a careless operator could send, and
// faults inside the daemon, none of which may stall the outbox, poison a
// workflow, retry what cannot succeed or record one effect twice. Real
// Postgres, librdkafka's mock cluster and the Databricks simulator.
#include <pqxx/pqxx>

#include "daemon/kafka/kafka.hpp"
#include "daemon/runtime/effect_runner.hpp"
#include "daemon/runtime/workflow_transaction.hpp"
#include "tests/integration/harness.hpp"

namespace brickwork::testing {
namespace {

constexpr const char* kOneStep = R"(  one:
    steps:
      - name: work
        run_job: {job_id: 101}
        poll_every: 1s
)";

class Hardening : public EndToEndTest {
 protected:
  // Waits until every workflow `prefix`0..n-1 succeeded and its last status
  // event (workflow_succeeded) is on the status topic.
  void expect_succeeded_and_published(const std::string& prefix, int n) {
    for (int i = 0; i < n; ++i) {
      auto done = wait_terminal(prefix + std::to_string(i));
      ASSERT_TRUE(done);
      EXPECT_EQ(done->status, WorkflowStatus::kSucceeded) << prefix << i;
    }
    ASSERT_TRUE(eventually([&] {
      auto events = all_status_events();
      for (int i = 0; i < n; ++i) {
        const std::string id = prefix + std::to_string(i);
        auto types = event_types_of(events[id], id);
        if (types.empty() || types.back() != "workflow_succeeded") return false;
      }
      return true;
    }, 60s)) << "status events of " << prefix << "* did not all arrive";
  }

  std::map<std::string, std::string> dead_letter_reasons_by_key() {
    std::map<std::string, std::string> out;
    for (const auto& d : dead_letters()) {
      if (d.at("key").is_string()) {
        out[std::string(d.at("key").as_string())] = std::string(d.at("reason").as_string());
      }
    }
    return out;
  }
};

TEST_F(Hardening, OversizedFieldsAndDeepInputAreFollowedByNormalWorkflows) {
  start_stack({{101, sim_job("work", 300, {{"rows", 1}})}});
  config(kOneStep);
  start_daemon();
  const std::string commands = config_->kafka.topics.commands;
  // The name would make command_rejected about 950 KB: over what the broker takes.
  send(commands, "huge-name",
       R"({"type":"start","id":"huge-name","workflow":")" + std::string(950'000, 'w') + "\"}");
  // A running workflow and a cancel whose reason would overflow workflow_canceled.
  start_workflow("cancel-me", "one");
  send(commands, "cancel-me",
       R"({"type":"cancel","id":"cancel-me","reason":")" + std::string(900'000, 'r') + "\"}");
  // A forged completion whose step name would overflow any event repeating it.
  send(config_->kafka.topics.events, "cancel-me",
       R"({"type":"job_completed","workflow_id":"cancel-me","token":"1.x","state":"SUCCESS","step":")" +
           std::string(900'000, 's') + "\"}");
  // Input nested 40 deep: accepted inbound, so it must load back from Postgres.
  json::value deep = json::object{{"leaf", true}};
  for (int i = 0; i < 40; ++i) deep = json::object{{"n", deep}};
  start_workflow("deep", "one", json::object{{"d", deep}});
  for (int i = 0; i < 5; ++i) start_workflow("after-" + std::to_string(i), "one");

  expect_succeeded_and_published("after-", 5);
  auto deep_done = wait_terminal("deep");
  ASSERT_TRUE(deep_done);
  EXPECT_EQ(deep_done->status, WorkflowStatus::kSucceeded);
  EXPECT_EQ(deep_done->input.at("d"), deep);
  auto canceled = wait_terminal("cancel-me");
  ASSERT_TRUE(canceled);
  EXPECT_EQ(canceled->status, WorkflowStatus::kSucceeded);  // the oversized cancel was refused

  std::map<std::string, std::string> reasons;
  ASSERT_TRUE(eventually([&] {
    reasons = dead_letter_reasons_by_key();
    return reasons.size() >= 2;
  }));
  EXPECT_EQ(reasons["huge-name"], "too_large");
  int too_large = 0;
  EXPECT_TRUE(eventually([&] {
    too_large = 0;
    for (const auto& d : dead_letters()) too_large += d.at("reason") == "too_large";
    return too_large == 3;
  })) << too_large;
  for (const auto& d : dead_letters()) EXPECT_LT(json::serialize(d).size(), 300'000u);
  // The rejected start still tells its id why, in an event of ordinary size.
  const auto rejected = status_events("huge-name");
  ASSERT_FALSE(rejected.empty());
  EXPECT_EQ(rejected[0].at("type"), "command_rejected");
  EXPECT_LT(json::serialize(rejected[0]).size(), 2'000u);
}

TEST_F(Hardening, JobOutputOverTheLimitFailsTheStepAsTooLarge) {
  start_stack({{101, sim_job("work", 200, {{"blob", std::string(700'000, 'x')}})}});
  config(R"(  one:
    steps:
      - name: work
        run_job: {job_id: 101}
        poll_every: 30s
        retry: {max_attempts: 3, backoff: 100ms}
)");
  start_daemon();
  start_workflow("big-output", "one");
  auto done = wait_terminal("big-output");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kFailed);
  ASSERT_TRUE(done->steps[0].error);
  EXPECT_EQ(done->steps[0].error->code, "too_large");
  EXPECT_EQ(done->steps[0].attempt, 1);  // the same job would produce the same output
  ASSERT_TRUE(eventually([&] {
    auto types = event_types("big-output");
    return !types.empty() && types.back() == "workflow_failed";
  }));
}

TEST_F(Hardening, ARecordTheBrokerRefusesIsReplacedByADeadLetterAndTheOutboxMovesOn) {
  start_stack({{101, sim_job("work", 200)}});
  config(kOneStep);
  // Something already in the outbox that no broker takes (2 MB), ahead of
  // everything else: it must not hold up what follows it.
  Status migrated = store().migrate();
  ASSERT_TRUE(migrated) << migrated.error().message;
  ASSERT_TRUE(store().transact([&](StoreTx& tx) {
    tx.add_outbox(config_->kafka.topics.status, "stuck", std::string(2'000'000, 'z'));
  }).ok());
  start_daemon();
  for (int i = 0; i < 3; ++i) start_workflow("next-" + std::to_string(i), "one");
  expect_succeeded_and_published("next-", 3);
  std::optional<json::object> replacement;
  ASSERT_TRUE(eventually([&] {
    for (const auto& d : dead_letters()) {
      if (d.at("reason") == "publish_refused") replacement = d;
    }
    return replacement.has_value();
  }));
  EXPECT_EQ(replacement->at("key"), "stuck");
  EXPECT_EQ(replacement->at("source").at("topic").as_string(), config_->kafka.topics.status);
  EXPECT_EQ(replacement->at("payload_bytes").as_int64(), 2'000'000);
  EXPECT_EQ(replacement->at("payload_truncated"), true);
  EXPECT_TRUE(eventually([&] { return sql("SELECT count(*) FROM outbox")[0][0].as<int>() == 0; }));
}

TEST_F(Hardening, AWorkflowThatCannotBeLoadedIsFailedInsteadOfLooping) {
  start_stack({{101, sim_job("work", 60'000)}});
  config(kOneStep);
  start_daemon();
  start_workflow("broken", "one");
  ASSERT_TRUE(eventually([&] {
    auto w = workflow("broken");
    return w && w->steps[0].status == StepStatus::kWaiting;
  }));
  // Stored by some other version, or damaged: the definition no longer reads.
  sql("UPDATE workflows SET definition = '{\"steps\": 7}', definition_hash = NULL"
      " WHERE id = 'broken'");
  ASSERT_TRUE(eventually([&] {
    auto types = event_types("broken");
    return !types.empty() && types.back() == "workflow_failed";
  }));
  const auto events = status_events("broken");
  EXPECT_EQ(events.back().at("error").at("code"), "unloadable");
  EXPECT_EQ(sql("SELECT status FROM workflows WHERE id = 'broken'")[0][0].as<std::string>(),
            "failed");
  EXPECT_EQ(sql("SELECT count(*) FROM effects WHERE workflow_id = 'broken'")[0][0].as<int>(), 0);
  // Later input for it is dead-lettered alone; other workflows go on.
  send_command(json::object{{"type", "cancel"}, {"id", "broken"}});
  start_workflow("fine-0", "one");
  ASSERT_TRUE(eventually([&] { return dead_letter_reasons_by_key()["broken"] == "unloadable"; }));
  EXPECT_TRUE(eventually([&] {  // started and waiting on its 60 s job
    auto w = workflow("fine-0");
    return w && w->steps[0].status == StepStatus::kWaiting;
  }));
}

// A worker whose lease ran out (a slow call) and the worker that claimed the
// effect after it both finish: only the lease holder records.
TEST_F(Hardening, AWorkerWhoseLeaseRanOutDoesNotRecordItsResult) {
  start_stack({{101, sim_job("work", 60'000)}});
  config(kOneStep);
  ASSERT_TRUE(store().migrate().ok());
  RuntimeContext context(config_, StepRegistry::builtin());
  ASSERT_TRUE(store().transact([&](StoreTx& tx) {
    WorkflowTransaction wt(tx, context, now_ms());
    wt.apply("leased", StartCommand{"leased", "one", {}, config_->workflows.at("one")});
    wt.finish();
  }).ok());
  auto first = store().claim_due_effects("slow#1", 10, now_ms(), Duration(50));
  ASSERT_TRUE(first.ok() && first->effects.size() == 1);
  std::this_thread::sleep_for(100ms);
  auto second = store().claim_due_effects("fast#1", 10, now_ms(), Duration(30'000));
  ASSERT_TRUE(second.ok() && second->effects.size() == 1);

  auto api = make_databricks_api(config_->databricks);
  ASSERT_TRUE(api);
  EffectRunner runner(context, StepServices{api->get(), nullptr}, "test");
  runner.run_one(store(), first->effects[0]);
  auto after_slow = workflow("leased");
  EXPECT_EQ(after_slow->steps[0].status, StepStatus::kRunning);  // nothing recorded
  EXPECT_EQ(after_slow->seq, 2);
  runner.run_one(store(), second->effects[0]);
  auto after_fast = workflow("leased");
  EXPECT_EQ(after_fast->steps[0].status, StepStatus::kWaiting);
  EXPECT_EQ(after_fast->seq, 3);  // one step_waiting, not two
  // Both called run-now, with the attempt's token: one run.
  EXPECT_EQ(stack_->simulator().stats().run_now_calls, 2);
  EXPECT_EQ(stack_->simulator().stats().runs_created, 1);
  EXPECT_EQ(sql("SELECT count(*) FROM effects WHERE kind = 'execute'")[0][0].as<int>(), 0);
}

TEST_F(Hardening, PermanentErrorsFailTheStepWithoutUsingItsRetries) {
  start_stack({{101, sim_job("work", 200)}});
  config(R"(  by_input:
    steps:
      - name: work
        run_job: {job_id: "{{ input.job }}"}
        poll_every: 30s
        retry: {max_attempts: 3, backoff: 100ms}
)");
  start_daemon();
  start_workflow("not-a-number", "by_input", {{"job", "12abc"}});
  start_workflow("too-big", "by_input", {{"job", "18446744073709551616"}});
  start_workflow("no-input", "by_input");
  start_workflow("no-such-job", "by_input", {{"job", 999}});
  start_workflow("good", "by_input", {{"job", 101}});
  const std::map<std::string, std::string> expected = {{"not-a-number", "invalid_step"},
                                                       {"too-big", "invalid_step"},
                                                       {"no-input", "template"},
                                                       {"no-such-job", "INVALID_PARAMETER_VALUE"}};
  for (const auto& [id, code] : expected) {
    auto done = wait_terminal(id);
    ASSERT_TRUE(done) << id;
    EXPECT_EQ(done->status, WorkflowStatus::kFailed) << id;
    ASSERT_TRUE(done->steps[0].error) << id;
    EXPECT_EQ(done->steps[0].error->code, code) << id;
    EXPECT_EQ(done->steps[0].attempt, 1) << id;
  }
  auto good = wait_terminal("good");
  ASSERT_TRUE(good);
  EXPECT_EQ(good->status, WorkflowStatus::kSucceeded);
  EXPECT_EQ(stack_->simulator().stats().runs_created, 1);
}

TEST_F(Hardening, AFatalKafkaErrorStopsTheDaemonWithAnError) {
  start_stack({});
  config(kOneStep);
  for (const bool producer_side : {true, false}) {
    std::atomic<KafkaConsumer*> consumer{nullptr};
    std::atomic<KafkaProducer*> producer{nullptr};
    DaemonOptions options;
    options.on_kafka_clients = [&](KafkaConsumer& c, KafkaProducer& p) {
      consumer = &c;
      producer = &p;
    };
    auto& daemon = start_daemon(producer_side ? "fatal-p" : "fatal-c", options);
    ASSERT_TRUE(consumer && producer);
    if (producer_side) {
      producer.load()->inject_fatal_error_for_testing();
    } else {
      consumer.load()->inject_fatal_error_for_testing();
    }
    ASSERT_TRUE(eventually([&] { return daemon.exited(); }, 60s));
    ASSERT_FALSE(daemon.status().ok());
    EXPECT_EQ(daemon.status().error().code, "kafka_fatal");
    daemons_.clear();
  }
}

// A genuine token (the job holds it) on an event naming somebody else's run:
// refused as run_mismatch, not applied (a FAILED event used to fail the
// step with the run id dropped); the step ends by polling its own run.
TEST_F(Hardening, ACompletionNamingAnotherRunIsRefusedRunMismatch) {
  start_stack({{101, sim_job("work", 3000, {{"rows", 3}}, "SUCCESS", /*emit_event=*/false)}});
  config(kOneStep);
  start_daemon();
  start_workflow("mine", "one");
  std::optional<int64_t> run_id;
  ASSERT_TRUE(eventually([&] {
    auto w = workflow("mine");
    if (w && w->steps[0].status == StepStatus::kWaiting) run_id = w->steps[0].run_id;
    return run_id.has_value();
  }));
  const std::string token = TokenMinter(config_->callbacks.secret).callback_token("mine", "work", 1);
  send(config_->kafka.topics.events, "mine",
       json::serialize(json::object{{"type", "job_completed"}, {"workflow_id", "mine"},
                                    {"step", "work"}, {"token", token}, {"state", "FAILED"},
                                    {"run_id", *run_id + 1000}, {"message", "not my run"}}));
  ASSERT_TRUE(eventually([&] { return dead_letter_reasons_by_key()["mine"] == "run_mismatch"; }))
      << "no run_mismatch dead letter";
  auto done = wait_terminal("mine");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  EXPECT_EQ(done->steps[0].run_id, run_id);
  EXPECT_EQ(done->steps[0].attempt, 1);
}

}  // namespace
}  // namespace brickwork::testing
