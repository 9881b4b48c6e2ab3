// Retention's purge (daemon/store/retention): what it deletes, what it
// leaves, and in what batches.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <pqxx/pqxx>
#include <thread>

#include "daemon/store/claim_query.hpp"
#include "daemon/store/retention.hpp"
#include "tests/store/store_fixture.hpp"

namespace brickwork::testing {
namespace {

constexpr int64_t kDayMs = 86'400'000;
const TimePoint kNow = from_epoch_ms(1'800'000'000'000);

TimePoint days_ago(int64_t days) { return kNow - Duration(days * kDayMs); }

WorkflowDefinition definition_named(const std::string& name) {
  WorkflowDefinition def;
  def.name = name;
  StepDefinition nap;
  nap.name = "nap";
  nap.type = "sleep";
  nap.action = json::object{{"for", "1s"}};
  def.steps = {nap};
  return def;
}

// A workflow of definition `workflow` that started at `created` and last
// changed (ended, when finished) at `updated`.
WorkflowState workflow(const std::string& id, WorkflowStatus status, TimePoint created,
                       TimePoint updated, const std::string& workflow = "nightly") {
  WorkflowState s;
  s.id = id;
  s.workflow = workflow;
  s.definition = definition_named(workflow);
  s.status = status;
  s.seq = 3;
  s.created_at = created;
  s.updated_at = updated;
  StepState nap;
  nap.name = "nap";
  nap.status = status == WorkflowStatus::kRunning ? StepStatus::kRunning : StepStatus::kSucceeded;
  nap.attempt = 1;
  s.steps = {nap};
  return s;
}

class RetentionTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    sql("DELETE FROM definitions");
    purger_ = WorkflowPurger::open(pg_->url());
  }

  void create(const std::vector<WorkflowState>& states) {
    Status s = store_->transact([&](StoreTx& tx) {
      for (const WorkflowState& state : states) tx.create_workflow(state);
    });
    ASSERT_TRUE(s.ok()) << s.error().message;
  }

  bool exists(const std::string& id) {
    return sql("SELECT count(*) FROM workflows WHERE id = '" + id + "'")[0][0].as<int64_t>() == 1;
  }
  int64_t steps_of(const std::string& id) {
    return sql("SELECT count(*) FROM steps WHERE workflow_id = '" + id + "'")[0][0].as<int64_t>();
  }

  std::unique_ptr<WorkflowPurger> purger_;
};

TEST_F(RetentionTest, PurgesFinishedWorkflowsThatEndedBeforeTheCutoffWithTheirSteps) {
  create({workflow("old-ok", WorkflowStatus::kSucceeded, days_ago(10), days_ago(10)),
          workflow("new-ok", WorkflowStatus::kSucceeded, days_ago(1), days_ago(1)),
          // Started long ago, ended an hour ago: not old enough.
          workflow("long-ok", WorkflowStatus::kSucceeded, days_ago(10), kNow - Duration(3'600'000)),
          workflow("old-failed", WorkflowStatus::kFailed, days_ago(10), days_ago(10)),
          workflow("old-running", WorkflowStatus::kRunning, days_ago(10), days_ago(10))});
  const PurgeCutoff cutoff{WorkflowStatus::kSucceeded, days_ago(7)};

  auto counted = purger_->count(cutoff);
  ASSERT_TRUE(counted.ok()) << counted.error().message;
  EXPECT_EQ(*counted, 1);
  EXPECT_TRUE(exists("old-ok")) << "a count deletes nothing";

  auto batch = purger_->purge_batch(cutoff, 100);
  ASSERT_TRUE(batch.ok()) << batch.error().message;
  EXPECT_EQ(batch->workflows, 1);
  EXPECT_FALSE(exists("old-ok"));
  EXPECT_EQ(steps_of("old-ok"), 0);
  for (const char* kept : {"new-ok", "long-ok", "old-failed", "old-running"}) {
    EXPECT_TRUE(exists(kept)) << kept;
    EXPECT_EQ(steps_of(kept), 1) << kept;
  }
}

TEST_F(RetentionTest, BatchesAreBoundedAndSkipRowsAnotherTransactionHolds) {
  std::vector<WorkflowState> states;
  for (int i = 0; i < 7; ++i) {
    states.push_back(workflow("c" + std::to_string(i), WorkflowStatus::kCanceled,
                              days_ago(40) + Duration(i), days_ago(40) + Duration(i)));
  }
  create(states);
  const PurgeCutoff cutoff{WorkflowStatus::kCanceled, days_ago(30)};

  // Another transaction (a late command for it) holds one row.
  pqxx::connection other(pg_->url());
  pqxx::work holding(other);
  holding.exec("SELECT 1 FROM workflows WHERE id = 'c0' FOR UPDATE");

  auto first = purger_->purge_batch(cutoff, 2);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->workflows, 2);
  EXPECT_EQ(count("workflows"), 5);

  std::vector<int64_t> batches;
  auto totals = purge_finished(*purger_, {cutoff}, 2, nullptr,
                               [&](WorkflowStatus state, const PurgeBatch& batch) {
                                 EXPECT_EQ(state, WorkflowStatus::kCanceled);
                                 batches.push_back(batch.workflows);
                               });
  ASSERT_TRUE(totals.ok()) << totals.error().message;
  EXPECT_EQ(totals->workflows.at(WorkflowStatus::kCanceled), 4);
  // Sizes follow how long each batch took (a slow one halves the next):
  // none over the bound, and they add up.
  int64_t deleted = 0;
  for (int64_t n : batches) {
    EXPECT_LE(n, 2);
    deleted += n;
  }
  EXPECT_EQ(deleted, 4);
  ASSERT_FALSE(batches.empty());
  EXPECT_EQ(batches.front(), 2);
  EXPECT_TRUE(exists("c0")) << "the held row is skipped, not waited for";
  holding.abort();
  auto later = purge_finished(*purger_, {cutoff}, 2);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(count("workflows"), 0);
}

// A batch is one message, BEGIN to COMMIT, so its hold is the server's time
// alone. Here a delete that takes 60 ms on the server is what it reports; a
// batch that failed halfway rolled back, and the purger's next batch works on
// the same connection.
TEST_F(RetentionTest, ABatchReportsTheServersHoldAndAFailedOneLeavesNoOpenTransaction) {
  create({workflow("slow", WorkflowStatus::kSucceeded, days_ago(40), days_ago(40)),
          workflow("refused", WorkflowStatus::kFailed, days_ago(40), days_ago(40))});
  sql("CREATE FUNCTION test_purge_trigger() RETURNS trigger LANGUAGE plpgsql AS $$"
      " BEGIN IF OLD.id = 'refused' THEN RAISE EXCEPTION 'refused by a test';"
      " END IF; PERFORM pg_sleep(0.06); RETURN OLD; END $$");
  sql("CREATE TRIGGER test_purge BEFORE DELETE ON workflows FOR EACH ROW"
      " EXECUTE FUNCTION test_purge_trigger()");

  auto slow = purger_->purge_batch(PurgeCutoff{WorkflowStatus::kSucceeded, days_ago(30)}, 10);
  ASSERT_TRUE(slow.ok()) << slow.error().message;
  EXPECT_EQ(slow->workflows, 1);
  EXPECT_GE(slow->held, Duration(60));
  EXPECT_LT(slow->held, Duration(5'000));

  auto refused = purger_->purge_batch(PurgeCutoff{WorkflowStatus::kFailed, days_ago(30)}, 10);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("refused by a test"), std::string::npos)
      << refused.error().message;
  EXPECT_TRUE(exists("refused"));
  EXPECT_EQ(steps_of("refused"), 1) << "its steps' delete was rolled back with it";
  EXPECT_EQ(sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")[0][0].as<int64_t>(), 0)
      << "the failed batch gave the purgers' turn back";

  sql("DROP TRIGGER test_purge ON workflows");
  auto again = purger_->purge_batch(PurgeCutoff{WorkflowStatus::kFailed, days_ago(30)}, 10);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->workflows, 1);
  EXPECT_FALSE(exists("refused"));
}

// A batch locks its workflows only to choose them and at its end, not while
// their child rows are deleted. A workflow that changed in between (here a
// trigger changes it as its steps are deleted, as a `retry` committing then
// would) rolls the batch back whole, child rows too; a round ends after three
// such batches in a row, without an error.
TEST_F(RetentionTest, AWorkflowThatChangesDuringItsBatchRollsTheBatchBackWhole) {
  create({workflow("old", WorkflowStatus::kFailed, days_ago(40), days_ago(40)),
          workflow("older", WorkflowStatus::kFailed, days_ago(41), days_ago(41))});
  sql("CREATE FUNCTION test_touch_workflow() RETURNS trigger LANGUAGE plpgsql AS $$"
      " BEGIN IF OLD.workflow_id = 'old' THEN"
      " UPDATE workflows SET updated_at = updated_at + interval '10 years'"
      " WHERE id = OLD.workflow_id; END IF;"
      " RETURN OLD; END $$");
  sql("CREATE TRIGGER test_touch BEFORE DELETE ON steps FOR EACH ROW"
      " EXECUTE FUNCTION test_touch_workflow()");
  const PurgeCutoff cutoff{WorkflowStatus::kFailed, days_ago(30)};

  auto raced = purger_->purge_batch(cutoff, 10);
  ASSERT_TRUE(raced.ok()) << raced.error().message;
  EXPECT_TRUE(raced->raced);
  EXPECT_EQ(raced->workflows, 0);
  for (const char* id : {"old", "older"}) {
    EXPECT_TRUE(exists(id)) << id;
    EXPECT_EQ(steps_of(id), 1) << id << ": its steps' delete was rolled back with the batch";
  }
  EXPECT_EQ(sql("SELECT count(*) FROM workflows WHERE updated_at > now() + interval '1 year'")[0][0]
                .as<int64_t>(),
            0)
      << "the change made inside the batch was rolled back too";

  std::vector<bool> races;
  auto round =
      purge_finished(*purger_, {cutoff}, 10, nullptr,
                     [&](WorkflowStatus, const PurgeBatch& b) { races.push_back(b.raced); });
  ASSERT_TRUE(round.ok()) << round.error().message;
  EXPECT_EQ(races, (std::vector<bool>{true, true, true}));
  EXPECT_EQ(round->total_workflows(), 0);

  sql("DROP TRIGGER test_touch ON steps");
  auto clean = purger_->purge_batch(cutoff, 10);
  ASSERT_TRUE(clean.ok()) << clean.error().message;
  EXPECT_FALSE(clean->raced);
  EXPECT_EQ(clean->workflows, 2);
  EXPECT_EQ(count("workflows"), 0);
  EXPECT_EQ(count("steps"), 0);
}

// What a purge holds locked is its choice and its final delete: while it
// deletes the child rows (here slowed to 500 ms by a trigger), a command can
// lock the workflow at once, and the batch reports as held only its locked
// stretches, and as taken the whole.
TEST_F(RetentionTest, WhileABatchDeletesChildRowsItsWorkflowsAreNotLocked) {
  create({workflow("slow", WorkflowStatus::kSucceeded, days_ago(40), days_ago(40))});
  sql("CREATE FUNCTION test_slow_steps() RETURNS trigger LANGUAGE plpgsql AS $$"
      " BEGIN PERFORM pg_sleep(0.5); RETURN OLD; END $$");
  sql("CREATE TRIGGER test_slow BEFORE DELETE ON steps FOR EACH ROW"
      " EXECUTE FUNCTION test_slow_steps()");

  std::atomic<bool> locked{false};
  std::string refused;
  std::thread command([&] {
    pqxx::connection c(pg_->url());
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    try {
      pqxx::work tx(c);
      tx.exec("SELECT 1 FROM workflows WHERE id = 'slow' FOR UPDATE NOWAIT");
      tx.commit();
      locked = true;
    } catch (const std::exception& e) {
      refused = e.what();
    }
  });
  auto batch = purger_->purge_batch(PurgeCutoff{WorkflowStatus::kSucceeded, days_ago(30)}, 10);
  command.join();
  sql("DROP TRIGGER test_slow ON steps");  // the fixture's tables outlive the test
  ASSERT_TRUE(batch.ok()) << batch.error().message;
  EXPECT_TRUE(locked) << "the command waited for, or was refused, the lock: " << refused;
  EXPECT_EQ(batch->workflows, 1) << "the command was done before the final delete";
  EXPECT_GE(batch->took, Duration(500));
  EXPECT_LT(batch->held, Duration(400));
  EXPECT_FALSE(exists("slow"));
}

// Purgers of several daemons take turns, batch by batch (a session lock), so
// they never choose the same workflows: here a batch waits while another
// session holds the turn, then runs.
TEST_F(RetentionTest, PurgersTakeTurnsBatchByBatch) {
  create({workflow("old", WorkflowStatus::kSucceeded, days_ago(40), days_ago(40))});
  pqxx::connection other(pg_->url());
  pqxx::nontransaction holder(other);
  holder.exec("SELECT pg_advisory_lock(7093848273231114855)");  // "brikpurg"
  std::atomic<bool> done{false};
  Result<PurgeBatch> batch = Error{ErrorKind::kInternal, "test", "not run"};
  std::thread purge([&] {
    batch = purger_->purge_batch(PurgeCutoff{WorkflowStatus::kSucceeded, days_ago(30)}, 10);
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(done) << "the batch ran while another purger had the turn";
  EXPECT_TRUE(exists("old"));
  holder.exec("SELECT pg_advisory_unlock(7093848273231114855)");
  purge.join();
  ASSERT_TRUE(batch.ok()) << batch.error().message;
  EXPECT_EQ(batch->workflows, 1);
  EXPECT_LT(batch->held, Duration(300)) << "waiting for the turn is not holding rows";
  EXPECT_LT(batch->took, Duration(300)) << "nor taking time of its own";
  EXPECT_EQ(sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")[0][0].as<int64_t>(), 0)
      << "the batch gave its turn back";
}

// A stale timer goes with its workflow; a cancel of its run not yet sent
// keeps it until the cancel is done.
TEST_F(RetentionTest, AWorkflowWaitsForItsQueuedCancelButNotForAStaleTimer) {
  create({workflow("canceled", WorkflowStatus::kCanceled, days_ago(40), days_ago(40)),
          workflow("timed", WorkflowStatus::kSucceeded, days_ago(40), days_ago(40))});
  Status queued = store_->transact([](StoreTx& tx) {
    tx.add_effect("canceled", CancelStep{"nap", 1, 77, nullptr}, days_ago(40));
    tx.add_effect("timed", StartTimer{"nap", 1, TimerKind::kTimeout, days_ago(1)}, days_ago(1));
  });
  ASSERT_TRUE(queued.ok()) << queued.error().message;
  EXPECT_EQ(purger_->purge_batch(PurgeCutoff{WorkflowStatus::kCanceled, days_ago(30)}, 10)->workflows, 0);
  EXPECT_TRUE(exists("canceled"));
  EXPECT_EQ(purger_->purge_batch(PurgeCutoff{WorkflowStatus::kSucceeded, days_ago(30)}, 10)->workflows, 1);
  EXPECT_EQ(sql("SELECT count(*) FROM effects WHERE workflow_id = 'timed'")[0][0].as<int64_t>(), 0);
  sql("DELETE FROM effects");
  EXPECT_EQ(purger_->purge_batch(PurgeCutoff{WorkflowStatus::kCanceled, days_ago(30)}, 10)->workflows, 1);
}

// No foreign key deletes a workflow's other rows (migration 8): the purge
// must name every table that holds them, and a table added later too.
TEST_F(RetentionTest, APurgeLeavesNoRowOfTheWorkflowInAnyTableThatNamesIt) {
  create({workflow("old", WorkflowStatus::kFailed, days_ago(40), days_ago(40)),
          workflow("young", WorkflowStatus::kFailed, days_ago(1), days_ago(1))});
  HistoryChanges changes;
  changes.attempts.push_back(AttemptRecord{"nap", 1, "failed", 12, "", days_ago(41), days_ago(40),
                                           StepError{"FAILED", "boom"}, std::nullopt});
  changes.notes.push_back(HistoryNote{days_ago(40), "retry", "", "", ""});
  Status written = store_->transact([&](StoreTx& tx) {
    for (const char* id : {"old", "young"}) {
      tx.record_history(id, changes);
      tx.add_effect(id, StartTimer{"nap", 1, TimerKind::kTimeout, days_ago(1)}, days_ago(1));
    }
  });
  ASSERT_TRUE(written.ok()) << written.error().message;
  // The outbox's rows are status events still to be published: kept.
  const pqxx::result tables = sql(
      "SELECT table_name FROM information_schema.columns WHERE column_name = 'workflow_id'"
      " AND table_schema = current_schema() AND table_name <> 'outbox' ORDER BY 1");
  std::vector<std::string> names;
  for (const auto& row : tables) names.push_back(row[0].as<std::string>());
  ASSERT_EQ(names, (std::vector<std::string>{"effects", "step_attempts", "steps",
                                             "workflow_history"}))
      << "a new table of a workflow's rows: add it to the purge (retention.cpp) and here";
  const auto rows_of = [&](const std::string& table, const std::string& id) {
    return sql("SELECT count(*) FROM " + table + " WHERE workflow_id = '" + id + "'")[0][0]
        .as<int64_t>();
  };
  for (const std::string& table : names) ASSERT_GT(rows_of(table, "old"), 0) << table;

  auto batch = purger_->purge_batch(PurgeCutoff{WorkflowStatus::kFailed, days_ago(30)}, 10);
  ASSERT_TRUE(batch.ok()) << batch.error().message;
  EXPECT_EQ(batch->workflows, 1);
  EXPECT_FALSE(exists("old"));
  for (const std::string& table : names) {
    EXPECT_EQ(rows_of(table, "old"), 0) << table;
    EXPECT_GT(rows_of(table, "young"), 0) << table;
  }
}

// effects is a queue: its statistics may count a few rows in pages that
// held thousands. A batch still looks its workflows' effects up by index
// (the plain join scanned the table whole, twice per batch, in the 1M purge
// of the bench) and fires no trigger per deleted row.
TEST_F(RetentionTest, ABatchLooksUpEffectsByWorkflowAndFiresNoTriggerPerRow) {
  sql("INSERT INTO definitions (hash, definition) VALUES ('d', '{}')");
  sql("INSERT INTO workflows (id, workflow, definition_hash, input, status, seq, created_at,"
      " updated_at) SELECT 'old-' || g, 'nightly', 'd', '{}', 'succeeded', 3,"
      " now() - interval '40 days', now() - interval '40 days' FROM generate_series(1, 300) g");
  sql("INSERT INTO steps (workflow_id, name, position, status, attempt)"
      " SELECT 'old-' || g, 'nap', 0, 'succeeded', 1 FROM generate_series(1, 300) g");
  sql("INSERT INTO effects (workflow_id, kind, step, attempt, payload, due_at)"
      " SELECT 'live-' || g, 'poll', 's', 1, '{}', now() FROM generate_series(1, 20000) g");
  sql("DELETE FROM effects WHERE id % 100 <> 0");  // and no vacuum since
  sql("ANALYZE effects; ANALYZE workflows; ANALYZE steps");
  const auto plan_of = [&](const std::string& statement) {
    pqxx::connection c(pg_->url());
    pqxx::work tx(c);
    tx.exec(store_detail::kStoreSessionSettings);
    // Retention sends its statements with their values, each planned for
    // them, as EXECUTE with a custom plan is.
    tx.exec("SET LOCAL plan_cache_mode = force_custom_plan");
    // As the batch's choice leaves them: the 300 old workflows.
    tx.exec("SELECT set_config('brickwork.purge_ids', array_agg(id)::text, true) FROM workflows");
    tx.exec("PREPARE purge_batch(text, bigint, int) AS " + statement);
    std::string plan;
    for (const auto& row : tx.exec(
             "EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) EXECUTE purge_batch('succeeded', " +
             std::to_string(to_epoch_ms(now_ms() - Duration(30 * kDayMs))) + ", 200)")) {
      plan += row[0].as<std::string>() + "\n";
    }
    tx.abort();
    return plan;
  };
  // Each scan of effects has an index condition (a bitmap heap scan, its
  // recheck): a look-up, not a walk.
  const auto walks_effects = [](const std::string& plan) {
    size_t at = 0;
    while ((at = plan.find(" on effects", at)) != std::string::npos) {
      const size_t line = plan.rfind('\n', at) + 1;
      const size_t end = plan.find('\n', at);
      at = end;
      if (plan.substr(line, end - line).find("Scan") == std::string::npos) continue;
      size_t next = end + 1;
      while (plan.compare(plan.find_first_not_of(' ', next), 8, "Buffers:") == 0) {
        next = plan.find('\n', next) + 1;
      }
      const size_t text = plan.find_first_not_of(' ', next);
      if (plan.compare(text, 11, "Index Cond:") != 0 && plan.compare(text, 13, "Recheck Cond:") != 0) {
        return true;
      }
    }
    return false;
  };
  const std::string children = plan_of(store_detail::purge_children_statement());
  EXPECT_FALSE(walks_effects(children)) << children;
  EXPECT_EQ(children.find("Trigger"), std::string::npos) << children;
  EXPECT_NE(children.find("Delete on steps"), std::string::npos) << children;
  const std::string plan = plan_of(store_detail::purge_final_statement());
  EXPECT_FALSE(walks_effects(plan)) << plan;
  EXPECT_EQ(plan.find("Trigger"), std::string::npos) << plan;
  const size_t deleted = plan.find("Delete on workflows");
  ASSERT_NE(deleted, std::string::npos) << plan;
  EXPECT_NE(plan.substr(deleted, plan.find('\n', deleted) - deleted).find("rows=200 loops=1"),
            std::string::npos)
      << plan;
  // The control: the statement before, with a plain anti-join and join.
  const std::string before = plan_of(
      "WITH doomed AS (SELECT id FROM workflows w WHERE status = $1"
      " AND created_at < to_timestamp($2::bigint / 1000.0)"
      " AND updated_at < to_timestamp($2::bigint / 1000.0)"
      " AND NOT EXISTS (SELECT 1 FROM effects e WHERE e.workflow_id = w.id AND e.kind = 'cancel')"
      " ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED),"
      " child0 AS (DELETE FROM steps WHERE workflow_id IN (SELECT id FROM doomed)),"
      " child1 AS (DELETE FROM effects WHERE workflow_id IN (SELECT id FROM doomed)),"
      " gone AS (DELETE FROM workflows WHERE id IN (SELECT id FROM doomed) RETURNING 1)"
      " SELECT count(*) FROM gone");
  EXPECT_TRUE(walks_effects(before)) << before;
}

TEST_F(RetentionTest, DeletesTheDefinitionsNoWorkflowUsesAnyMore) {
  create({workflow("gone", WorkflowStatus::kSucceeded, days_ago(10), days_ago(10), "retired"),
          workflow("kept", WorkflowStatus::kSucceeded, days_ago(1), days_ago(1), "current"),
          workflow("also-gone", WorkflowStatus::kSucceeded, days_ago(10), days_ago(10), "current")});
  ASSERT_EQ(count("definitions"), 2);
  auto totals =
      purge_finished(*purger_, {PurgeCutoff{WorkflowStatus::kSucceeded, days_ago(7)}}, 10);
  ASSERT_TRUE(totals.ok()) << totals.error().message;
  EXPECT_EQ(totals->total_workflows(), 2);
  EXPECT_EQ(totals->definitions, 1);
  const pqxx::result left = sql(
      "SELECT count(*) FROM definitions d JOIN workflows w ON w.definition_hash = d.hash"
      " WHERE w.id = 'kept'");
  EXPECT_EQ(left[0][0].as<int64_t>(), 1);
  EXPECT_EQ(count("definitions"), 1);
}

// A store that wrote a definition remembers it is stored; once retention
// deleted it, the next workflow of that definition stores it again instead
// of failing for good (which would dead-letter the start).
TEST_F(RetentionTest, AStartAfterItsDefinitionWasPurgedStoresItAgain) {
  create({workflow("first", WorkflowStatus::kSucceeded, days_ago(10), days_ago(10))});
  ASSERT_TRUE(
      purge_finished(*purger_, {PurgeCutoff{WorkflowStatus::kSucceeded, days_ago(7)}}, 10).ok());
  ASSERT_EQ(count("definitions"), 0);

  const WorkflowState again = workflow("first", WorkflowStatus::kRunning, kNow, kNow);
  Status s = store_->transact([&](StoreTx& tx) { tx.create_workflow(again); });
  if (!s) {
    EXPECT_TRUE(s.error().transient()) << s.error().message;
    s = store_->transact([&](StoreTx& tx) { tx.create_workflow(again); });
  }
  ASSERT_TRUE(s.ok()) << s.error().message;
  auto loaded = store_->get_workflow("first");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->status, WorkflowStatus::kRunning) << "the purged id began a new workflow";
  EXPECT_EQ(count("definitions"), 1);
}

// Batches that each took `took` (holding rows a quarter of it), `full` of
// them full, then a short one.
class ScriptedPurger final : public WorkflowPurger {
 public:
  ScriptedPurger(int full, Duration took) : full_(full), took_(took) {}
  Result<int64_t> count(const PurgeCutoff&) override { return int64_t{0}; }
  Result<PurgeBatch> purge_batch(const PurgeCutoff&, int32_t limit) override {
    ++batches;
    PurgeBatch batch;
    batch.workflows = batches <= full_ ? limit : 0;
    batch.held = took_ / 4;
    batch.took = took_;
    return batch;
  }
  Result<int64_t> purge_unused_definitions(int32_t) override { return int64_t{0}; }
  int batches = 0;

 private:
  int full_;
  Duration took_;
};

// A purge is background work: after each full batch it pauses three times
// as long as the batch took (not only its locked part), and a stop ends the
// pause at once.
TEST(RetentionPace, EachBatchIsFollowedByAPauseThreeTimesAsLongAndAStopEndsIt) {
  ScriptedPurger purger(4, Duration(60));
  const auto started = std::chrono::steady_clock::now();
  auto totals = purge_finished(purger, {PurgeCutoff{WorkflowStatus::kSucceeded, kNow}}, 10);
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(purger.batches, 5);
  EXPECT_GE(took, std::chrono::milliseconds(4 * 3 * 60))
      << "a pause of 180 ms after each of the 4 full batches";

  ScriptedPurger slow(1000, Duration(800));
  std::atomic<bool> stop{false};
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    stop = true;
  });
  const auto stopped_at = std::chrono::steady_clock::now();
  auto stopped = purge_finished(slow, {PurgeCutoff{WorkflowStatus::kSucceeded, kNow}}, 10, &stop);
  stopper.join();
  ASSERT_TRUE(stopped.ok());
  EXPECT_EQ(slow.batches, 1);
  EXPECT_LT(std::chrono::steady_clock::now() - stopped_at, std::chrono::milliseconds(500))
      << "the stop ended the 800 ms pause";
}

}  // namespace
}  // namespace brickwork::testing
