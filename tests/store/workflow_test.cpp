#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "daemon/core/json_limits.hpp"
#include "daemon/store/claim_query.hpp"
#include "daemon/store/workflow_rows.hpp"
#include "tests/store/store_fixture.hpp"

namespace brickwork::testing {
namespace {

WorkflowDefinition sample_definition() {
  WorkflowDefinition def;
  def.name = "daily_ingest";
  StepDefinition transform;
  transform.name = "transform";
  transform.type = "run_job";
  transform.action =
      json::parse(R"({"job_id": 123, "parameters": {"url": "{{ input.url }}"}})").as_object();
  transform.completion = CompletionMode::kPoll;
  transform.poll_every = Duration(1500);
  transform.timeout = Duration(7'200'000);
  transform.retry = RetryPolicy{3, Duration(30'001)};
  transform.source_location = "flows.yaml:4:7";
  StepDefinition notify;
  notify.name = "notify";
  notify.type = "emit";
  notify.action =
      json::parse(R"({"topic": "notifications", "value": {"n": 1.5, "ok": true}})").as_object();
  notify.depends_on = {"transform"};
  notify.event_grace = Duration(4'500);
  notify.plan.completion_event = true;
  StepDefinition undo;
  undo.name = "undo";
  undo.type = "wait_for_signal";
  undo.plan = StepPlan{StepPlan::Kind::kAwaitSignal, "undo_done", "timeout", /*sensitive_output=*/true};
  def.steps = {transform, notify};
  def.on_failure = {undo};
  return def;
}

WorkflowState sample_state(const std::string& id, TimePoint created) {
  WorkflowState s;
  s.id = id;
  s.workflow = "daily_ingest";
  s.definition = sample_definition();
  s.input =
      json::parse(
          R"({"url": "s3://bucket/x", "nested": {"a": [1, 2, {"b": null}]}, "big": 9007199254740993})")
          .as_object();
  s.status = WorkflowStatus::kRunning;
  s.seq = 7;
  s.created_at = created;
  s.updated_at = created + Duration(123);
  StepState transform;
  transform.name = "transform";
  transform.status = StepStatus::kWaiting;
  transform.attempt = 2;
  transform.attempts_before_retry = 1;
  transform.run_id = 4'000'000'000'123;
  transform.run_page_url = "https://example/#job/1/run/1234";
  transform.handle = json::parse(R"({"statement_id": "abc", "n": 3})");
  transform.error = StepError{"TIMEDOUT", "previous attempt timed out"};
  transform.started_at = created + Duration(1);
  StepState notify;
  notify.name = "notify";
  notify.status = StepStatus::kSucceeded;
  notify.attempt = 1;
  notify.output = json::parse(R"({"rows": 42, "unicode": "héllo ✓"})").as_object();
  notify.started_at = created + Duration(2);
  notify.finished_at = created + Duration(999);
  s.steps = {transform, notify};
  return s;
}

void expect_same_definition(const WorkflowDefinition& a, const WorkflowDefinition& b) {
  EXPECT_EQ(json::serialize(to_json(a)), json::serialize(to_json(b)));
  ASSERT_EQ(a.steps.size(), b.steps.size());
  for (size_t i = 0; i < a.steps.size(); ++i) {
    const StepDefinition& x = a.steps[i];
    const StepDefinition& y = b.steps[i];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.type, y.type);
    EXPECT_EQ(x.action, y.action);
    EXPECT_EQ(x.depends_on, y.depends_on);
    EXPECT_EQ(x.completion, y.completion);
    EXPECT_EQ(x.poll_every, y.poll_every);
    EXPECT_EQ(x.event_grace, y.event_grace);
    EXPECT_EQ(x.timeout, y.timeout);
    EXPECT_EQ(x.retry.max_attempts, y.retry.max_attempts);
    EXPECT_EQ(x.retry.backoff, y.retry.backoff);
    EXPECT_EQ(x.source_location, y.source_location);
    EXPECT_EQ(x.plan, y.plan);
  }
  ASSERT_EQ(a.on_failure.size(), b.on_failure.size());
  for (size_t i = 0; i < a.on_failure.size(); ++i) {
    EXPECT_EQ(a.on_failure[i].name, b.on_failure[i].name);
    EXPECT_EQ(a.on_failure[i].plan, b.on_failure[i].plan);
  }
}

void expect_same_state(const WorkflowState& a, const WorkflowState& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.workflow, b.workflow);
  expect_same_definition(a.definition, b.definition);
  EXPECT_EQ(a.input, b.input);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.updated_at, b.updated_at);
  ASSERT_EQ(a.steps.size(), b.steps.size());
  for (size_t i = 0; i < a.steps.size(); ++i) {
    const StepState& x = a.steps[i];
    const StepState& y = b.steps[i];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.status, y.status);
    EXPECT_EQ(x.attempt, y.attempt);
    EXPECT_EQ(x.attempts_before_retry, y.attempts_before_retry);
    EXPECT_EQ(x.run_id, y.run_id);
    EXPECT_EQ(x.run_page_url, y.run_page_url);
    EXPECT_EQ(x.handle, y.handle);
    EXPECT_EQ(x.output, y.output);
    EXPECT_EQ(x.error, y.error);
    EXPECT_EQ(x.started_at, y.started_at);
    EXPECT_EQ(x.finished_at, y.finished_at);
  }
}

TEST(DefinitionJson, RoundTripsEveryField) {
  const WorkflowDefinition def = sample_definition();
  auto back = workflow_definition_from_json(json::parse(json::serialize(to_json(def))));
  ASSERT_TRUE(back.ok()) << back.error().message;
  expect_same_definition(def, *back);
  EXPECT_FALSE(back->steps[1].timeout.has_value());
}

// Definitions stored before plans and on_failure existed still load.
TEST(DefinitionJson, OlderDefinitionsWithoutPlansLoad) {
  auto old = workflow_definition_from_json(json::parse(
      R"({"name": "w", "steps": [{"name": "a", "type": "run_job", "action": {"job_id": 1}}]})"));
  ASSERT_TRUE(old.ok()) << old.error().message;
  EXPECT_EQ(old->steps[0].plan, StepPlan{});
  EXPECT_TRUE(old->on_failure.empty());
}

TEST(DefinitionJson, RejectsIllTypedFields) {
  EXPECT_FALSE(workflow_definition_from_json(json::parse("[]")).ok());
  EXPECT_FALSE(workflow_definition_from_json(json::parse(R"({"steps": []})")).ok());
  auto bad = workflow_definition_from_json(json::parse(
      R"({"name": "w", "steps": [{"name": "a", "type": "sql", "poll_every_ms": "1s"}]})"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalidInput);
  EXPECT_NE(bad.error().message.find("steps[0].poll_every_ms"), std::string::npos);
}

TEST_F(StoreTest, SavedWorkflowLoadsBackExactly) {
  const WorkflowState state = sample_state("order-4711", from_epoch_ms(1'795'000'000'123));
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) { tx.save_workflow(state); }).ok());

  std::optional<WorkflowState> loaded;
  Status s = store_->transact([&](StoreTx& tx) {
    auto got = tx.load_workflow_for_update("order-4711");
    ASSERT_TRUE(got.ok());
    loaded = *got;
  });
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_TRUE(loaded.has_value());
  expect_same_state(state, *loaded);

  auto got = store_->get_workflow("order-4711");
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_TRUE(got->has_value());
  expect_same_state(state, **got);
}

// A workflow created in a transaction (many per statement) loads back the
// same as one saved whole; creating an id that exists fails rather than
// overwriting it.
TEST_F(StoreTest, ACreatedWorkflowLoadsBackExactlyAndIsNeverOverwritten) {
  const WorkflowState first = sample_state("order-1", from_epoch_ms(1'795'000'000'123));
  const WorkflowState second = sample_state("order-2", from_epoch_ms(1'795'000'000'456));
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    tx.create_workflow(first);
    tx.create_workflow(second);
  }).ok());
  for (const WorkflowState* state : {&first, &second}) {
    auto got = store_->get_workflow(state->id);
    ASSERT_TRUE(got.ok()) << got.error().message;
    ASSERT_TRUE(got->has_value());
    expect_same_state(*state, **got);
  }
  WorkflowState again = sample_state("order-1", from_epoch_ms(1'795'000'999'000));
  again.input = json::object{{"other", true}};
  Status s = store_->transact([&](StoreTx& tx) { tx.create_workflow(again); });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "23505");
  auto kept = store_->get_workflow("order-1");
  ASSERT_TRUE(kept.ok() && kept->has_value());
  expect_same_state(first, **kept);
}

TEST_F(StoreTest, SaveUpdatesStateAndSteps) {
  WorkflowState state = sample_state("w1", from_epoch_ms(1'795'000'000'000));
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) { tx.save_workflow(state); }).ok());
  state.status = WorkflowStatus::kFailed;
  state.seq = 9;
  state.updated_at += Duration(5000);
  state.steps[0].status = StepStatus::kFailed;
  state.steps[0].run_id.reset();
  state.steps[0].handle = nullptr;
  state.steps[0].error = StepError{"FAILED", "boom"};
  state.steps[0].finished_at = state.updated_at;
  state.steps[1].output.reset();
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) { tx.save_workflow(state); }).ok());
  auto got = store_->get_workflow("w1");
  ASSERT_TRUE(got.ok() && got->has_value());
  expect_same_state(state, **got);

  // A step no longer in the state is removed.
  state.steps.pop_back();
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) { tx.save_workflow(state); }).ok());
  EXPECT_EQ(count("steps"), 1);
}

TEST_F(StoreTest, UnknownWorkflowIsEmpty) {
  auto got = store_->get_workflow("nope");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
  std::optional<WorkflowState> loaded = sample_state("x", {});
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    auto got = tx.load_workflow_for_update("nope");
    ASSERT_TRUE(got.ok());
    loaded = *got;
  }).ok());
  EXPECT_FALSE(loaded.has_value());
}

// Inbound JSON may nest kMaxJsonDepth deep; what the store keeps of it must
// load back (it used Boost's default of 32 and never loaded again).
TEST_F(StoreTest, InputNestedAsDeepAsInboundAllowsLoadsBack) {
  WorkflowState state = sample_state("deep", from_epoch_ms(1'795'000'000'000));
  json::value nested = json::object{};
  for (size_t i = 0; i < kMaxJsonDepth - 2; ++i) nested = json::object{{"a", nested}};
  state.input = json::object{{"n", nested}};
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) { tx.save_workflow(state); }).ok());
  auto got = store_->get_workflow("deep");
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->input, state.input);
}

// A row that cannot be decoded is an Error the caller can act on, and the
// transaction can still end the workflow.
TEST_F(StoreTest, UnloadableWorkflowCanBeFailedWithoutLoadingIt) {
  const WorkflowState state = sample_state("broken", from_epoch_ms(1'795'000'000'000));
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    tx.save_workflow(state);
    tx.add_effect("broken", ExecuteStep{state.steps[0].name, 1}, from_epoch_ms(0));
  }).ok());
  // An old-style row with its definition inline, and a broken one.
  sql("UPDATE workflows SET definition = '{\"steps\": 7}', definition_hash = NULL"
      " WHERE id = 'broken'");
  std::optional<StoreTx::ForcedFailure> failed;
  Status s = store_->transact([&](StoreTx& tx) {
    auto got = tx.load_workflow_for_update("broken");
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.error().code, "unloadable");
    failed = tx.fail_unloadable_workflow("broken", from_epoch_ms(1'795'000'001'000));
  });
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(failed->seq, state.seq + 1);
  EXPECT_EQ(sql("SELECT status FROM workflows WHERE id = 'broken'")[0][0].as<std::string>(),
            "failed");
  EXPECT_EQ(count("effects"), 0);
  // Not running any more: a second call changes nothing.
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    EXPECT_FALSE(tx.fail_unloadable_workflow("broken", from_epoch_ms(1'795'000'002'000)));
  }).ok());
}

TEST_F(StoreTest, ListsNewestFirstWithStateFilterAndLimit) {
  const TimePoint t0 = from_epoch_ms(1'795'000'000'000);
  ASSERT_TRUE(store_
                  ->transact([&](StoreTx& tx) {
                    for (int i = 0; i < 5; ++i) {
                      WorkflowState s =
                          sample_state("w" + std::to_string(i), t0 + Duration(i * 1000));
                      if (i % 2 == 1) s.status = WorkflowStatus::kSucceeded;
                      tx.save_workflow(s);
                    }
                  })
                  .ok());

  // A query of the state alone (nullopt: any) and a limit (0: none).
  const auto listed = [&](std::optional<WorkflowStatus> state, int32_t limit) {
    WorkflowQuery query;
    query.state = state;
    query.limit = limit;
    return store_->list_workflows(query);
  };
  auto all = listed(std::nullopt, 100);
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all->size(), 5u);
  EXPECT_EQ((*all)[0].id, "w4");
  EXPECT_EQ((*all)[4].id, "w0");
  EXPECT_EQ((*all)[0].created_at, t0 + Duration(4000));
  EXPECT_EQ((*all)[0].updated_at, t0 + Duration(4123));
  EXPECT_EQ((*all)[0].workflow, "daily_ingest");

  auto limited = listed(std::nullopt, 2);
  ASSERT_TRUE(limited.ok());
  ASSERT_EQ(limited->size(), 2u);
  EXPECT_EQ((*limited)[1].id, "w3");

  auto succeeded = listed(WorkflowStatus::kSucceeded, 10);
  ASSERT_TRUE(succeeded.ok());
  ASSERT_EQ(succeeded->size(), 2u);
  EXPECT_EQ((*succeeded)[0].id, "w3");
  EXPECT_EQ((*succeeded)[0].status, WorkflowStatus::kSucceeded);
  EXPECT_EQ((*succeeded)[1].id, "w1");

  auto unlimited = listed(WorkflowStatus::kRunning, 0);
  ASSERT_TRUE(unlimited.ok());
  EXPECT_EQ(unlimited->size(), 3u);
}

TEST_F(StoreTest, ExceptionInBodyRollsBackAndBecomesInternalError) {
  Status s = store_->transact([&](StoreTx& tx) {
    tx.save_workflow(sample_state("w1", from_epoch_ms(1'795'000'000'000)));
    tx.add_outbox("t", "w1", "{}");
    throw std::runtime_error("changed my mind");
  });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().kind, ErrorKind::kInternal);
  EXPECT_NE(s.error().message.find("changed my mind"), std::string::npos);
  EXPECT_EQ(count("workflows"), 0);
  EXPECT_EQ(count("outbox"), 0);
  // The connection is still good.
  EXPECT_TRUE(store_->ping().ok());
}

TEST_F(StoreTest, SqlErrorCarriesItsSqlState) {
  Status s = store_->transact([&](StoreTx& tx) {
    tx.add_outbox("t", "k", "a");
    // The same id twice in one statement batch: a unique violation.
    tx.save_workflow(sample_state("w1", from_epoch_ms(1'795'000'000'000)));
    WorkflowState dup = sample_state("w1", from_epoch_ms(1'795'000'000'000));
    dup.steps.push_back(dup.steps[0]);  // duplicate step name
    tx.save_workflow(dup);
  });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().kind, ErrorKind::kInternal);
  EXPECT_EQ(s.error().code, "21000");  // ON CONFLICT cannot affect a row twice
  EXPECT_EQ(count("outbox"), 0);
  EXPECT_TRUE(store_->ping().ok());
}

// The intake reads the steps of a few hundred workflows at once. With
// statistics that guess thousands of rows, Postgres planned that read as a
// parallel scan, whose workers cost more to start than the read; the store's
// connections never start any. (Parallel plans are made cheap here so that
// the same read without the store's settings is one: the test's control.)
TEST_F(StoreTest, TheStepsOfManyWorkflowsAreReadWithoutParallelWorkers) {
  sql("INSERT INTO workflows (id, workflow, status, seq, created_at, updated_at)"
      " SELECT 'w' || g, 'wf', 'running', 1, now(), now() FROM generate_series(1, 20000) g");
  sql("INSERT INTO steps (workflow_id, name, position, status)"
      " SELECT 'w' || g, 's' || k, k, 'pending'"
      " FROM generate_series(1, 20000) g, generate_series(1, 3) k");
  sql("ANALYZE steps");
  std::string ids = "ARRAY[";
  for (int i = 1; i <= 300; ++i) ids += (i > 1 ? ",'w" : "'w") + std::to_string(i * 60) + "'";
  ids += "]::text[]";
  pqxx::connection c(pg_->url());
  pqxx::nontransaction session(c);
  session.exec(
      "SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;"
      " SET min_parallel_table_scan_size = 0; SET min_parallel_index_scan_size = 0");
  session.exec("PREPARE steps_of(text[]) AS " +
               store_detail::workflow_read_statements().at("select_steps_of"));
  const auto plan = [&] {
    std::string text;
    for (const auto& row : session.exec("EXPLAIN (ANALYZE) EXECUTE steps_of(" + ids + ")")) {
      text += row[0].as<std::string>() + "\n";
    }
    return text;
  };
  const std::string without = plan();
  ASSERT_NE(without.find("Gather"), std::string::npos) << "the control: " << without;
  session.exec(store_detail::kStoreSessionSettings);
  const std::string with = plan();
  EXPECT_EQ(with.find("Gather"), std::string::npos) << with;
  EXPECT_NE(with.find("rows=900 "), std::string::npos) << with;
}

}  // namespace
}  // namespace brickwork::testing

namespace brickwork::testing {
namespace {

// A transition writes only what it changed: untouched step rows keep their
// row version (xmin), and one definition is stored once for many workflows.
TEST_F(StoreTest, ATransitionWritesOnlyTheRowsItChanged) {
  for (const char* id : {"a", "b", "c"}) {
    ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
      tx.save_workflow(sample_state(id, from_epoch_ms(1'795'000'000'000)));
    }).ok());
  }
  EXPECT_EQ(count("definitions"), 1);
  EXPECT_EQ(sql("SELECT count(*) FROM workflows WHERE definition IS NULL")[0][0].as<int64_t>(), 3);
  auto xmin = [&](const std::string& step) {
    return sql("SELECT xmin::text FROM steps WHERE workflow_id = 'a' AND name = '" + step + "'")[0][0]
        .as<std::string>();
  };
  const std::string notify_before = xmin("notify");
  const std::string transform_before = xmin("transform");
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    auto loaded = tx.load_workflow_for_update("a");
    ASSERT_TRUE(loaded.ok() && loaded->has_value());
    WorkflowState next = **loaded;
    const WorkflowRows rows = WorkflowRows::of(next);
    next.steps[0].status = StepStatus::kSucceeded;
    next.steps[0].output = json::object{{"done", true}};
    next.seq += 1;
    tx.save_workflow(next, &rows);
  }).ok());
  EXPECT_EQ(xmin("notify"), notify_before);
  EXPECT_NE(xmin("transform"), transform_before);
  auto back = store_->get_workflow("a");
  ASSERT_TRUE(back.ok() && back->has_value());
  EXPECT_EQ((*back)->seq, 8);
  EXPECT_EQ((*back)->steps[0].status, StepStatus::kSucceeded);
  EXPECT_EQ((*back)->steps[0].output, (json::object{{"done", true}}));
  EXPECT_EQ((*back)->steps[1].output, sample_state("a", {}).steps[1].output);
  expect_same_definition((*back)->definition, sample_definition());
}

// A step that stops waiting takes its queued safety poll with it.
TEST_F(StoreTest, AStepThatStopsWaitingDropsItsQueuedPoll) {
  const WorkflowState state = sample_state("p", from_epoch_ms(1'795'000'000'000));
  ASSERT_EQ(state.steps[0].status, StepStatus::kWaiting);
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    tx.save_workflow(state);
    tx.add_effect("p", PollStep{"transform", state.steps[0].attempt, from_epoch_ms(0)},
                  from_epoch_ms(1'795'000'060'000));
    tx.add_effect("p", StartTimer{"transform", state.steps[0].attempt, TimerKind::kTimeout,
                                  from_epoch_ms(0)},
                  from_epoch_ms(1'795'000'060'000));
  }).ok());
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    auto loaded = tx.load_workflow_for_update("p");
    ASSERT_TRUE(loaded.ok() && loaded->has_value());
    WorkflowState next = **loaded;
    const WorkflowRows rows = WorkflowRows::of(next);
    next.steps[0].status = StepStatus::kSucceeded;
    tx.save_workflow(next, &rows);
  }).ok());
  EXPECT_EQ(sql("SELECT kind FROM effects WHERE workflow_id = 'p'")[0][0].as<std::string>(), "timer");
  EXPECT_EQ(count("effects"), 1);
}

// Dropping the poll reads the effects of its workflow alone, however the
// table grew since the store's connection planned its statements (here
// from empty, with no ANALYZE since): no sequential scan of effects, whose
// dead rows a scan would walk too.
TEST_F(StoreTest, DroppingAPollReadsOnlyItsWorkflowsEffects) {
  const WorkflowState state = sample_state("p", from_epoch_ms(1'795'000'000'000));
  const auto stop_waiting = [&](const std::string& id) {
    ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
      auto loaded = tx.load_workflow_for_update(id);
      ASSERT_TRUE(loaded.ok() && loaded->has_value());
      WorkflowState next = **loaded;
      const WorkflowRows rows = WorkflowRows::of(next);
      next.steps[0].status = StepStatus::kSucceeded;
      tx.save_workflow(next, &rows);
    }).ok());
  };
  for (const char* id : {"first", "second"}) {
    WorkflowState s = state;
    s.id = id;
    ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
      tx.save_workflow(s);
      tx.add_effect(id, PollStep{"transform", s.steps[0].attempt, from_epoch_ms(0)},
                    from_epoch_ms(1'795'000'060'000));
    }).ok());
  }
  stop_waiting("first");  // planned with effects nearly empty
  sql("INSERT INTO effects (workflow_id, kind, step, attempt, payload, due_at)"
      " SELECT 'w' || g, 'poll', 's', 1, '{}', now() + interval '1 hour'"
      " FROM generate_series(1, 20000) g");
  const auto rows_scanned = [&] {  // once the store's backend flushed its statistics
    int64_t last = -1;
    for (int i = 0; i < 100; ++i) {
      const int64_t now =
          sql("SELECT coalesce(seq_tup_read, 0) FROM pg_stat_user_tables WHERE relname = 'effects'")
              [0][0].as<int64_t>();
      if (now == last) return now;
      last = now;
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    }
    return last;
  };
  const int64_t before = rows_scanned();
  stop_waiting("second");
  EXPECT_EQ(count("effects WHERE workflow_id IN ('first', 'second')"), 0);
  EXPECT_LT(rows_scanned() - before, 1000);
}

// Several workflows in one go: each id answers for itself.
TEST_F(StoreTest, LoadsSeveralWorkflowsAtOnceEachIdForItself) {
  for (const char* id : {"x1", "x2", "broken"}) {
    ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
      tx.save_workflow(sample_state(id, from_epoch_ms(1'795'000'000'000)));
    }).ok());
  }
  sql("UPDATE workflows SET definition = '{\"steps\": 7}', definition_hash = NULL"
      " WHERE id = 'broken'");
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    auto loaded = tx.load_workflows_for_update({"x2", "missing", "x1", "broken", "x2"});
    ASSERT_EQ(loaded.size(), 4u);
    ASSERT_TRUE(loaded.at("x1").ok() && loaded.at("x1")->has_value());
    expect_same_state(**loaded.at("x1"), sample_state("x1", from_epoch_ms(1'795'000'000'000)));
    ASSERT_TRUE(loaded.at("x2").ok() && loaded.at("x2")->has_value());
    ASSERT_TRUE(loaded.at("missing").ok());
    EXPECT_FALSE(loaded.at("missing")->has_value());
    ASSERT_FALSE(loaded.at("broken").ok());
    EXPECT_EQ(loaded.at("broken").error().code, "unloadable");
  }).ok());
}

// A transaction's first load goes in one round trip with its BEGIN, the ids
// as quoted literals: an id that quoting must escape loads like any other.
TEST_F(StoreTest, AWorkflowIdThatMustBeEscapedLoadsLikeAnyOther) {
  const std::string id = "o'brien\\\"{x,y}\" ; --";
  const WorkflowState state = sample_state(id, from_epoch_ms(1'795'000'000'000));
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) { tx.save_workflow(state); }).ok());
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    auto loaded = tx.load_workflows_for_update({id, "plain"});
    ASSERT_TRUE(loaded.at(id).ok() && loaded.at(id)->has_value());
    expect_same_state(**loaded.at(id), state);
    ASSERT_TRUE(loaded.at("plain").ok());
    EXPECT_FALSE(loaded.at("plain")->has_value());
  }).ok());
  EXPECT_EQ(count("workflows"), 1);
}

// The workflows' locks and the read of their steps travel together, yet the
// steps are read after the locks are held: a transaction that changed the
// steps under the lock and committed while the load waited for it is seen.
// (One statement for both would read the steps as they were before it.)
TEST_F(StoreTest, ALoadThatWaitedForAWorkflowsLockSeesItsStepsAsCommitted) {
  const WorkflowState state = sample_state("x1", from_epoch_ms(1'795'000'000'000));
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) { tx.save_workflow(state); }).ok());
  pqxx::connection holder_connection(pg_->url());
  pqxx::work holder(holder_connection);
  holder.exec("SELECT 1 FROM workflows WHERE id = 'x1' FOR UPDATE");
  holder.exec("UPDATE steps SET run_id = 77 WHERE workflow_id = 'x1' AND name = 'transform'");
  std::optional<int64_t> run_id_seen;
  std::thread loader([&] {
    ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
      auto loaded = tx.load_workflows_for_update({"x1"});
      ASSERT_TRUE(loaded.at("x1").ok() && loaded.at("x1")->has_value());
      run_id_seen = (*loaded.at("x1"))->steps.at(0).run_id;
    }).ok());
  });
  // The load waits on the lock until the holder commits.
  const auto waiting = [&] {
    return sql("SELECT count(*) FROM pg_locks WHERE NOT granted")[0][0].as<int64_t>() > 0;
  };
  for (int i = 0; i < 200 && !waiting(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(waiting());
  holder.commit();
  loader.join();
  EXPECT_EQ(run_id_seen, std::optional<int64_t>(77));
}

// A transaction rolled back by an error in its body leaves nothing, whether
// its BEGIN went alone (before writes) or with its first read.
TEST_F(StoreTest, AFailedTransactionLeavesNothingWhetherItsBeginWentAloneOrWithARead) {
  const WorkflowState state = sample_state("x1", from_epoch_ms(1'795'000'000'000));
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) { tx.save_workflow(state); }).ok());
  for (const bool read_first : {false, true}) {
    const Status status = store_->transact([&](StoreTx& tx) {
      if (read_first) (void)tx.load_workflows_for_update({"x1"});
      tx.save_workflow(sample_state(read_first ? "y1" : "y2", from_epoch_ms(1'795'000'000'000)));
      tx.add_outbox("status", "k", "v");
      (void)tx.load_workflows_for_update({"x1"});  // sends the writes before it
      throw std::runtime_error("the body failed");
    });
    EXPECT_FALSE(status.ok());
  }
  EXPECT_EQ(count("workflows"), 1);
  EXPECT_EQ(count("outbox"), 0);
}

// The recorder's load: the workflows and their steps as load_workflows_for_update
// gives them, and in the same statement as the steps, the held effects whose
// leases hold are deleted; one whose lease ran out, or that another owner
// holds, is not. A workflow without steps still gets its deletions.
TEST_F(StoreTest, LoadingWhileDeletingHeldEffectsDeletesOnlyThoseWhoseLeasesHold) {
  const TimePoint t0 = from_epoch_ms(1'795'000'000'000);
  const Duration lease{30'000};
  for (const char* id : {"x1", "x2"}) {
    ASSERT_TRUE(store_->transact([&](StoreTx& tx) { tx.save_workflow(sample_state(id, t0)); }).ok());
  }
  WorkflowState bare = sample_state("bare", t0);
  bare.steps.clear();
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) { tx.save_workflow(bare); }).ok());
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    for (const char* id : {"x1", "x2", "x2", "bare"}) tx.add_effect(id, ExecuteStep{"a", 1}, t0);
  }).ok());
  auto mine = store_->claim_due_effects("me", 3, t0, lease);
  ASSERT_TRUE(mine.ok() && mine->effects.size() == 3u);
  auto theirs = store_->claim_due_effects("them", 1, t0, lease);
  ASSERT_TRUE(theirs.ok() && theirs->effects.size() == 1u);
  std::vector<HeldLease> held;
  for (const auto& e : mine->effects) held.push_back({e.id, "me"});
  held.push_back({theirs->effects[0].id, "me"});  // not mine
  held.push_back({999'999, "me"});          // gone

  std::set<int64_t> deleted;
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    auto loaded = tx.load_workflows_deleting_effects({"x2", "x1", "missing"}, held,
                                                     t0 + Duration(1), deleted);
    ASSERT_EQ(loaded.size(), 3u);
    ASSERT_TRUE(loaded.at("x1").ok() && loaded.at("x1")->has_value());
    expect_same_state(**loaded.at("x1"), sample_state("x1", t0));
    ASSERT_TRUE(loaded.at("x2").ok() && loaded.at("x2")->has_value());
    expect_same_state(**loaded.at("x2"), sample_state("x2", t0));
    EXPECT_FALSE(loaded.at("missing")->has_value());
  }).ok());
  EXPECT_EQ(deleted, (std::set<int64_t>{mine->effects[0].id, mine->effects[1].id,
                                         mine->effects[2].id}));
  EXPECT_EQ(count("effects"), 1);

  // A workflow without a step, and a lease that ran out: nothing deleted.
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) { tx.add_effect("bare", ExecuteStep{"b", 1}, t0); }).ok());
  auto late = store_->claim_due_effects("me", 10, t0, lease);
  ASSERT_TRUE(late.ok() && late->effects.size() == 1u);
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    auto loaded = tx.load_workflows_deleting_effects({"bare"}, {{late->effects[0].id, "me"}},
                                                     t0 + 2 * lease, deleted);
    ASSERT_TRUE(loaded.at("bare").ok() && loaded.at("bare")->has_value());
    EXPECT_TRUE((*loaded.at("bare"))->steps.empty());
  }).ok());
  EXPECT_TRUE(deleted.empty());
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    auto loaded = tx.load_workflows_deleting_effects({"bare"}, {{late->effects[0].id, "me"}},
                                                     t0 + Duration(2), deleted);
    EXPECT_TRUE((*loaded.at("bare"))->steps.empty());
  }).ok());
  EXPECT_EQ(deleted, std::set<int64_t>{late->effects[0].id});
  EXPECT_EQ(count("effects"), 1);  // theirs
}

// A claim reads the workflows of the effects it took, in its own round trip:
// each once, with its steps, however many of its effects it took; a workflow
// no longer stored is there as absent. Not the workflows of effects it left:
// one not due, one another claim holds with the very same lease end.
TEST_F(StoreTest, AClaimReadsTheWorkflowsOfTheEffectsItTookAndNoOthers) {
  const TimePoint t0 = from_epoch_ms(1'795'000'000'000);
  const Duration lease{30'000};
  WorkflowState bare = sample_state("bare", t0);
  bare.steps.clear();
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    tx.save_workflow(sample_state("x1", t0));
    tx.save_workflow(sample_state("x2", t0));
    tx.save_workflow(sample_state("later", t0));
    tx.save_workflow(bare);
    tx.add_effect("x2", ExecuteStep{"a", 1}, t0 - Duration(1));  // the first claim's
    tx.add_effect("x1", ExecuteStep{"a", 1}, t0);
    tx.add_effect("x1", PollStep{"b", 1, t0}, t0);
    tx.add_effect("bare", ExecuteStep{"a", 1}, t0);
    tx.add_effect("gone", ExecuteStep{"a", 1}, t0);
    tx.add_effect("later", ExecuteStep{"a", 1}, t0 + Duration(1));
  }).ok());

  auto theirs = store_->claim_due_effects("them", 1, t0, lease);
  ASSERT_TRUE(theirs.ok()) << theirs.error().message;
  ASSERT_EQ(theirs->effects.size(), 1u);
  ASSERT_EQ(theirs->workflows.size(), 1u);
  ASSERT_TRUE(theirs->workflows.at("x2").ok() && theirs->workflows.at("x2")->has_value());
  expect_same_state(**theirs->workflows.at("x2"), sample_state("x2", t0));

  auto mine = store_->claim_due_effects("me", 10, t0, lease);
  ASSERT_TRUE(mine.ok()) << mine.error().message;
  ASSERT_EQ(mine->effects.size(), 4u);
  std::set<std::string> read;
  for (const auto& [id, workflow] : mine->workflows) read.insert(id);
  EXPECT_EQ(read, (std::set<std::string>{"x1", "bare", "gone"}));
  ASSERT_TRUE(mine->workflows.at("x1").ok() && mine->workflows.at("x1")->has_value());
  expect_same_state(**mine->workflows.at("x1"), sample_state("x1", t0));
  ASSERT_TRUE(mine->workflows.at("bare").ok() && mine->workflows.at("bare")->has_value());
  EXPECT_TRUE((*mine->workflows.at("bare"))->steps.empty());
  ASSERT_TRUE(mine->workflows.at("gone").ok());
  EXPECT_FALSE(mine->workflows.at("gone")->has_value());
}

// What the throwaway server has logged since `offset` bytes into its log.
std::string server_log_since(const TempPostgres& pg, std::streamoff offset) {
  std::ifstream log(pg.log_path(), std::ios::binary);
  log.seekg(offset);
  std::ostringstream text;
  text << log.rdbuf();
  return text.str();
}

std::streamoff server_log_size(const TempPostgres& pg) {
  std::ifstream log(pg.log_path(), std::ios::binary | std::ios::ate);
  return log.tellg();
}

// Values travel as statement parameters, never in the SQL text: a write that
// fails on the server (its statement logged by log_min_error_statement)
// leaves no input, output or outbox payload in the server's log.
TEST_F(StoreTest, AFailedWriteLeavesNoValueInTheServerLog) {
  ASSERT_EQ(sql("SHOW log_min_error_statement")[0][0].as<std::string>(), "error");
  ASSERT_EQ(sql("SHOW log_statement")[0][0].as<std::string>(), "none");
  const std::string marker = "SECRET-MARKER-42";
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    tx.create_workflow(sample_state("order-1", from_epoch_ms(1'795'000'000'000)));
  }).ok());
  const std::streamoff before = server_log_size(*pg_);

  Status s = store_->transact([&](StoreTx& tx) {
    auto loaded = tx.load_workflow_for_update("order-1");
    ASSERT_TRUE(loaded.ok() && loaded->has_value());
    WorkflowState next = **loaded;
    const WorkflowRows rows = WorkflowRows::of(next);
    next.steps[0].status = StepStatus::kSucceeded;
    next.steps[0].output = json::object{{"token", marker}};
    next.seq += 1;
    tx.save_workflow(next, &rows);
    tx.add_outbox("status", "order-1", "{\"note\": \"" + marker + "\"}");
    tx.add_effect("order-1", ExecuteStep{marker, 1}, from_epoch_ms(1'795'000'000'000));
    // An id that exists: the batch fails with a unique violation.
    WorkflowState again = sample_state("order-1", from_epoch_ms(1'795'000'000'000));
    again.input = json::object{{"password", marker}};
    tx.create_workflow(again);
  });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "23505");

  const std::string log = server_log_since(*pg_, before);
  // The failure and its statement are logged (the server writes its log
  // before it answers)...
  EXPECT_NE(log.find("duplicate key value violates unique constraint"), std::string::npos) << log;
  EXPECT_NE(log.find("STATEMENT:"), std::string::npos) << log;
  // ...without any value of the transaction.
  EXPECT_EQ(log.find(marker), std::string::npos) << log;
}

// Writes queued together go as few statements as keep their order where it
// matters: an update sees a row created earlier in the same flush, and a
// dropped poll sees a poll queued before it.
TEST_F(StoreTest, WritesQueuedTogetherSeeTheWritesBeforeThem) {
  const WorkflowState created = sample_state("q", from_epoch_ms(1'795'000'000'000));
  ASSERT_EQ(created.steps[0].status, StepStatus::kWaiting);
  WorkflowState next = created;
  next.status = WorkflowStatus::kSucceeded;
  next.seq += 1;
  next.steps[0].status = StepStatus::kSucceeded;
  next.steps[0].output = json::object{{"rows", 3}};
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    tx.add_effect("q", PollStep{"transform", created.steps[0].attempt, from_epoch_ms(0)},
                  from_epoch_ms(1'795'000'060'000));
    tx.create_workflow(created);
    const WorkflowRows rows = WorkflowRows::of(created);
    tx.save_workflow(next, &rows);  // no read between: the same flush
  }).ok());
  auto got = store_->get_workflow("q");
  ASSERT_TRUE(got.ok() && got->has_value());
  expect_same_state(next, **got);
  EXPECT_EQ(count("effects"), 0);
}

}  // namespace
}  // namespace brickwork::testing
