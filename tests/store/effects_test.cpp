#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "daemon/store/claim_query.hpp"
#include "daemon/store/pg_effect_queue.hpp"
#include "tests/store/store_fixture.hpp"

namespace brickwork::testing {
namespace {

const TimePoint kT0 = from_epoch_ms(1'795'000'000'000);
const Duration kLease{30'000};

Status add(Store& store, const Effect& effect, TimePoint due, const std::string& workflow = "w1") {
  return store.transact([&](StoreTx& tx) { tx.add_effect(workflow, effect, due); });
}

std::set<int64_t> ids(const std::vector<StoredEffect>& effects) {
  std::set<int64_t> out;
  for (const auto& e : effects) out.insert(e.id);
  return out;
}

TEST_F(StoreTest, EveryEffectKindRoundTrips) {
  const TimePoint poll_due = kT0 + Duration(60'000);
  const TimePoint timer_due = kT0 + Duration(1);
  ASSERT_TRUE(add(*store_, ExecuteStep{"a", 1, "0a1b2c3d"}, kT0).ok());
  ASSERT_TRUE(add(*store_, PollStep{"b", 2, poll_due}, kT0 + Duration(1)).ok());
  ASSERT_TRUE(
      add(*store_, CancelStep{"c", 3, 1234, json::parse(R"({"sid": "x"})")}, kT0 + Duration(2))
          .ok());
  ASSERT_TRUE(add(*store_, CancelStep{"d", 4, std::nullopt, nullptr}, kT0 + Duration(3)).ok());
  ASSERT_TRUE(
      add(*store_, StartTimer{"e", 5, TimerKind::kRetryBackoff, timer_due}, kT0 + Duration(4))
          .ok());

  auto claimed = store_->claim_due_effects("me", 10, kT0 + Duration(10), kLease);
  ASSERT_TRUE(claimed.ok()) << claimed.error().message;
  ASSERT_EQ(claimed->effects.size(), 5u);
  for (const auto& e : claimed->effects) {
    EXPECT_EQ(e.workflow_id, "w1");
    EXPECT_EQ(e.tries, 0);
  }
  // Oldest due first.
  const auto& execute = std::get<ExecuteStep>(claimed->effects[0].effect);
  EXPECT_EQ(execute.step, "a");
  EXPECT_EQ(execute.attempt, 1);
  EXPECT_EQ(execute.key_id, "0a1b2c3d");  // the secret its idempotency token keeps
  const auto& poll = std::get<PollStep>(claimed->effects[1].effect);
  EXPECT_EQ(poll.step, "b");
  EXPECT_EQ(poll.attempt, 2);
  EXPECT_EQ(poll.due, poll_due);
  const auto& cancel = std::get<CancelStep>(claimed->effects[2].effect);
  EXPECT_EQ(cancel.step, "c");
  EXPECT_EQ(cancel.run_id, 1234);
  EXPECT_EQ(cancel.handle, json::parse(R"({"sid": "x"})"));
  const auto& cancel2 = std::get<CancelStep>(claimed->effects[3].effect);
  EXPECT_FALSE(cancel2.run_id.has_value());
  EXPECT_TRUE(cancel2.handle.is_null());
  const auto& timer = std::get<StartTimer>(claimed->effects[4].effect);
  EXPECT_EQ(timer.step, "e");
  EXPECT_EQ(timer.attempt, 5);
  EXPECT_EQ(timer.kind, TimerKind::kRetryBackoff);
  EXPECT_EQ(timer.due, timer_due);
}

TEST_F(StoreTest, ClaimsOnlyDueEffectsAndHonoursTheLease) {
  ASSERT_TRUE(add(*store_, ExecuteStep{"a", 1}, kT0).ok());
  ASSERT_TRUE(add(*store_, ExecuteStep{"b", 1}, kT0 + Duration(1000)).ok());

  auto first = store_->claim_due_effects("one", 10, kT0, kLease);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->effects.size(), 1u);  // "b" is not due yet
  EXPECT_EQ(std::get<ExecuteStep>(first->effects[0].effect).step, "a");
  EXPECT_EQ(sql("SELECT lease_owner FROM effects WHERE step = 'a'")[0][0].as<std::string>(), "one");

  // Leased: not claimed again while the lease holds, even at its last millisecond.
  auto during = store_->claim_due_effects("two", 10, kT0 + kLease, kLease);
  ASSERT_TRUE(during.ok());
  ASSERT_EQ(during->effects.size(), 1u);
  EXPECT_EQ(std::get<ExecuteStep>(during->effects[0].effect).step, "b");

  auto after = store_->claim_due_effects("two", 10, kT0 + kLease + Duration(1), kLease);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->effects.size(), 1u);
  EXPECT_EQ(after->effects[0].id, first->effects[0].id);
  EXPECT_EQ(after->effects[0].tries, 1);  // claimed once before
}

TEST_F(StoreTest, RescheduleClearsTheLease) {
  ASSERT_TRUE(add(*store_, ExecuteStep{"a", 1}, kT0).ok());
  auto claimed = store_->claim_due_effects("one", 10, kT0, kLease);
  ASSERT_TRUE(claimed.ok() && claimed->effects.size() == 1);
  const int64_t id = claimed->effects[0].id;

  ASSERT_TRUE(store_->reschedule_effect(id, "one", kT0 + Duration(5000)).ok());
  EXPECT_TRUE(sql("SELECT lease_owner FROM effects")[0][0].is_null());
  EXPECT_EQ(sql("SELECT (extract(epoch FROM due_at) * 1000)::bigint FROM effects")[0][0]
                .as<int64_t>(),
            to_epoch_ms(kT0 + Duration(5000)));

  auto early = store_->claim_due_effects("two", 10, kT0 + Duration(4999), kLease);
  ASSERT_TRUE(early.ok());
  EXPECT_TRUE(early->effects.empty());
  auto due = store_->claim_due_effects("two", 10, kT0 + Duration(5000), kLease);
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->effects.size(), 1u);
  EXPECT_EQ(due->effects[0].tries, 1);
}

TEST_F(StoreTest, DeletedEffectIsGone) {
  ASSERT_TRUE(add(*store_, ExecuteStep{"a", 1}, kT0).ok());
  auto claimed = store_->claim_due_effects("one", 10, kT0, kLease);
  ASSERT_TRUE(claimed.ok() && claimed->effects.size() == 1);
  bool deleted = false;
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    deleted = tx.delete_effects({{claimed->effects[0].id, "one"}}, kT0).size() == 1;
  }).ok());
  EXPECT_TRUE(deleted);
  EXPECT_EQ(count("effects"), 0);
  // Rescheduling an effect that is gone is harmless.
  EXPECT_TRUE(store_->reschedule_effect(claimed->effects[0].id, "one", kT0).ok());
}

// A worker whose lease ran out (its call took longer than the lease) must not
// record: another worker has claimed the effect and will record it.
TEST_F(StoreTest, OnlyTheClaimHoldingTheLeaseMayDeleteOrReschedule) {
  ASSERT_TRUE(add(*store_, ExecuteStep{"a", 1}, kT0).ok());
  auto first = store_->claim_due_effects("one", 10, kT0, kLease);
  ASSERT_TRUE(first.ok() && first->effects.size() == 1);
  EXPECT_EQ(first->effects[0].lease_owner, "one");
  const int64_t id = first->effects[0].id;
  auto second = store_->claim_due_effects("two", 10, kT0 + kLease + Duration(1), kLease);
  ASSERT_TRUE(second.ok() && second->effects.size() == 1);

  bool deleted = true;
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    deleted = tx.delete_effects({{id, "one"}}, kT0 + kLease + Duration(2)).size() == 1;
  }).ok());
  EXPECT_FALSE(deleted);
  ASSERT_TRUE(store_->reschedule_effect(id, "one", kT0).ok());
  EXPECT_EQ(sql("SELECT lease_owner FROM effects")[0][0].as<std::string>(), "two");

  // Its own lease, once run out, is not held either, even unclaimed by others.
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    deleted = tx.delete_effects({{id, "two"}}, kT0 + 3 * kLease).size() == 1;
  }).ok());
  EXPECT_FALSE(deleted);
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    deleted = tx.delete_effects({{id, "two"}}, kT0 + kLease + Duration(5)).size() == 1;
  }).ok());
  EXPECT_TRUE(deleted);
  EXPECT_EQ(count("effects"), 0);
}

TEST_F(StoreTest, RenewingALeaseKeepsOthersFromClaimingIt) {
  ASSERT_TRUE(add(*store_, ExecuteStep{"a", 1}, kT0).ok());
  auto first = store_->claim_due_effects("one", 10, kT0, kLease);
  ASSERT_TRUE(first.ok() && first->effects.size() == 1);
  const int64_t id = first->effects[0].id;
  // Renewed just before it ran out: a claim after the original lease finds nothing.
  ASSERT_TRUE(store_->renew_leases({{id, "one"}}, kT0 + kLease - Duration(1), kLease).ok());
  auto later = store_->claim_due_effects("two", 10, kT0 + kLease + Duration(1), kLease);
  ASSERT_TRUE(later.ok());
  EXPECT_TRUE(later->effects.empty());
  // Another owner's renewal, or one after the lease ran out, changes nothing.
  ASSERT_TRUE(store_->renew_leases({{id, "two"}}, kT0 + 2 * kLease - Duration(2), 10 * kLease).ok());
  ASSERT_TRUE(store_->renew_leases({{id, "one"}}, kT0 + 3 * kLease, 10 * kLease).ok());
  auto after = store_->claim_due_effects("two", 10, kT0 + 2 * kLease, kLease);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->effects.size(), 1u);
}

TEST_F(StoreTest, ClaimSkipsRowsLockedByAnotherTransaction) {
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(add(*store_, ExecuteStep{"s" + std::to_string(i), 1}, kT0 + Duration(i)).ok());
  pqxx::connection c(pg_->url());
  pqxx::work held(c);
  held.exec("SELECT id FROM effects WHERE step IN ('s0', 's1') FOR UPDATE");

  auto claimed = store_->claim_due_effects("one", 10, kT0 + Duration(10), kLease);
  ASSERT_TRUE(claimed.ok()) << claimed.error().message;
  ASSERT_EQ(claimed->effects.size(), 2u);  // did not wait for the locked rows
  EXPECT_EQ(std::get<ExecuteStep>(claimed->effects[0].effect).step, "s2");
  EXPECT_EQ(std::get<ExecuteStep>(claimed->effects[1].effect).step, "s3");
}

TEST_F(StoreTest, ConcurrentClaimersGetDisjointSets) {
  constexpr int kEffects = 200;
  ASSERT_TRUE(store_
                  ->transact([&](StoreTx& tx) {
                    for (int i = 0; i < kEffects; ++i)
                      tx.add_effect("w", ExecuteStep{"s" + std::to_string(i), 1}, kT0);
                  })
                  .ok());

  std::vector<std::vector<StoredEffect>> got(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t) {
    threads.emplace_back([&, t] {
      auto store = Store::open(pg_->url());
      for (;;) {
        auto claimed = store->claim_due_effects("owner" + std::to_string(t), 7, kT0, kLease);
        ASSERT_TRUE(claimed.ok()) << claimed.error().message;
        if (claimed->effects.empty()) break;
        got[t].insert(got[t].end(), claimed->effects.begin(), claimed->effects.end());
      }
    });
  }
  for (auto& t : threads) t.join();

  std::set<int64_t> all;
  size_t total = 0;
  for (const auto& g : got) {
    total += g.size();
    const auto s = ids(g);
    all.insert(s.begin(), s.end());
  }
  EXPECT_EQ(total, static_cast<size_t>(kEffects));  // no effect claimed twice
  EXPECT_EQ(all.size(), static_cast<size_t>(kEffects));
  EXPECT_EQ(sql("SELECT count(*) FROM effects WHERE tries = 1")[0][0].as<int64_t>(), kEffects);
}

// Many claims recorded in one statement: only those still holding their lease.
TEST_F(StoreTest, DeleteEffectsRemovesOnlyThoseStillLeasedToTheirClaim) {
  ASSERT_TRUE(add(*store_, ExecuteStep{"a", 1}, kT0).ok());
  ASSERT_TRUE(add(*store_, ExecuteStep{"b", 1}, kT0).ok());
  ASSERT_TRUE(add(*store_, ExecuteStep{"c", 1}, kT0).ok());
  auto claimed = store_->claim_due_effects("mine", 10, kT0, kLease);
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->effects.size(), 3u);
  std::vector<HeldLease> held = {{claimed->effects[0].id, "mine"},
                                 {claimed->effects[1].id, "someone \"else\""},
                                 {claimed->effects[2].id, "mine"}};
  std::set<int64_t> deleted;
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    deleted = tx.delete_effects(held, kT0 + Duration(1));
  }).ok());
  EXPECT_EQ(deleted, (std::set<int64_t>{claimed->effects[0].id, claimed->effects[2].id}));
  // After the lease, nothing.
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    deleted = tx.delete_effects({{claimed->effects[1].id, "mine"}}, kT0 + kLease + Duration(1));
  }).ok());
  EXPECT_TRUE(deleted.empty());
}

// An effect written leased (handed to its daemon's workers) comes back with
// its id from the transaction that wrote it, and no claim takes it while the
// lease holds; released, the next claim does.
TEST_F(StoreTest, ALeasedEffectIsWrittenForItsOwnerAndClaimedOnlyWhenReleased) {
  std::vector<StoredEffect> leased;
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    tx.add_effect("w1", ExecuteStep{"plain", 1}, kT0);
    tx.add_leased_effect("w1", ExecuteStep{"a", 1}, kT0, EffectLease{"me#1", kT0 + kLease});
    tx.add_leased_effect("w2", CancelStep{"b", 2, 77, json::object{{"k", "v"}}}, kT0,
                         EffectLease{"me#1", kT0 + kLease});
    leased = tx.take_leased_effects();
  }).ok());
  ASSERT_EQ(leased.size(), 2u);
  EXPECT_EQ(leased[0].workflow_id, "w1");
  EXPECT_EQ(std::get<ExecuteStep>(leased[0].effect).step, "a");
  EXPECT_EQ(leased[1].workflow_id, "w2");
  EXPECT_EQ(std::get<CancelStep>(leased[1].effect).run_id, 77);
  for (const auto& e : leased) {
    EXPECT_EQ(e.lease_owner, "me#1");
    EXPECT_EQ(e.tries, 0);  // like a first claim
  }
  // A claim finds only the unleased one.
  auto claimed = store_->claim_due_effects("other", 10, kT0 + Duration(1), kLease);
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->effects.size(), 1u);
  EXPECT_EQ(std::get<ExecuteStep>(claimed->effects[0].effect).step, "plain");
  // Only the lease holder records it.
  std::set<int64_t> deleted;
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    deleted = tx.delete_effects({{leased[0].id, "other"}, {leased[0].id, "me#1"}}, kT0 + Duration(2));
  }).ok());
  EXPECT_EQ(deleted, (std::set<int64_t>{leased[0].id}));
  // Given back (another owner's release changes nothing): claimable at once.
  ASSERT_TRUE(store_->release_leases({{leased[1].id, "someone else"}}).ok());
  auto still = store_->claim_due_effects("other", 10, kT0 + Duration(3), kLease);
  ASSERT_TRUE(still.ok());
  EXPECT_TRUE(still->effects.empty());
  ASSERT_TRUE(store_->release_leases({{leased[1].id, "me#1"}}).ok());
  auto released = store_->claim_due_effects("other", 10, kT0 + Duration(4), kLease);
  ASSERT_TRUE(released.ok());
  ASSERT_EQ(released->effects.size(), 1u);
  EXPECT_EQ(released->effects.front().id, leased[1].id);
  EXPECT_EQ(released->effects.front().tries, 1);  // it was held once before
}

// Leased effects written by a flush before a read are still returned.
TEST_F(StoreTest, LeasedEffectsWrittenBeforeAReadAreStillReturned) {
  std::vector<StoredEffect> leased;
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    tx.add_leased_effect("w1", ExecuteStep{"a", 1}, kT0, EffectLease{"me#2", kT0 + kLease});
    (void)tx.load_workflow_for_update("w1");  // flushes the queued writes
    tx.add_leased_effect("w1", ExecuteStep{"b", 1}, kT0, EffectLease{"me#2", kT0 + kLease});
    leased = tx.take_leased_effects();
  }).ok());
  ASSERT_EQ(leased.size(), 2u);
  EXPECT_EQ(count("effects"), 2);
  std::set<int64_t> in_table;
  for (const auto& row : sql("SELECT id FROM effects WHERE lease_owner = 'me#2'")) {
    in_table.insert(row[0].as<int64_t>());
  }
  EXPECT_EQ(in_table, ids(leased));
}

// Ids of leased effects come from blocks drawn ahead; a new connection may
// reach a server whose sequence never saw a block drawn on the one before
// (restored, failed over to), so it draws anew.
TEST_F(StoreTest, AStoreThatReconnectsDrawsEffectIdsAnew) {
  const auto lease = [&](const std::string& step) -> int64_t {
    std::vector<StoredEffect> leased;
    const Status s = store_->transact([&](StoreTx& tx) {
      tx.add_leased_effect("w1", ExecuteStep{step, 1}, kT0, EffectLease{"me#3", kT0 + kLease});
      leased = tx.take_leased_effects();
    });
    return s.ok() && leased.size() == 1 ? leased[0].id : -1;
  };
  const int64_t first = lease("a");
  ASSERT_GT(first, 0);
  sql("SELECT setval(pg_get_serial_sequence('effects', 'id'), 1000000)");
  EXPECT_EQ(lease("b"), first + 1);  // the same connection: from the block drawn
  sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
      " AND datname = current_database() AND backend_type = 'client backend'");
  int64_t after = -1;
  for (int i = 0; i < 3 && after < 0; ++i) after = lease("c");  // the first may find it lost
  EXPECT_EQ(after, 1000001);
  std::set<int64_t> in_table;
  for (const auto& row : sql("SELECT id FROM effects WHERE lease_owner = 'me#3'")) {
    in_table.insert(row[0].as<int64_t>());
  }
  EXPECT_EQ(in_table, (std::set<int64_t>{first, first + 1, 1000001}));
}

// The claim as EXPLAIN (ANALYZE, BUFFERS) shows it, run at kT0 (it leases
// what it claims).
std::string claim_plan(const std::function<pqxx::result(const std::string&)>& sql) {
  std::string claim = store_detail::kClaimDueEffects;
  const std::map<std::string, std::string> values = {
      {"$1", "'me'"}, {"$2", std::to_string(to_epoch_ms(kT0))},
      {"$3", std::to_string(to_epoch_ms(kT0 + kLease))}, {"$4", "8"}};
  for (const auto& [param, value] : values) {
    for (size_t at = claim.find(param); at != std::string::npos; at = claim.find(param)) {
      claim.replace(at, param.size(), value);
    }
  }
  std::string plan;
  for (const auto& row : sql("EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) " + claim)) {
    plan += row[0].as<std::string>() + "\n";
  }
  return plan;
}

// Shared buffers the whole plan touched (its first "Buffers:" line).
int64_t buffers_of(const std::string& plan) {
  const size_t at = plan.find("Buffers: shared hit=");
  if (at == std::string::npos) return 0;
  int64_t total = std::stoll(plan.substr(at + 20));
  const size_t line_end = plan.find('\n', at);
  const size_t read = plan.find("read=", at);
  if (read != std::string::npos && read < line_end) total += std::stoll(plan.substr(read + 5));
  return total;
}

// The claim reads only what is due: with 100k effects waiting in the future,
// its plan walks the index of unleased effects and touches a handful of rows.
TEST_F(StoreTest, TheClaimReadsOnlyDueEffectsWith100kWaiting) {
  sql("INSERT INTO effects (workflow_id, kind, step, attempt, payload, due_at)"
      " SELECT 'w' || g, 'poll', 's', 1, '{}', now() + interval '1 hour'"
      " FROM generate_series(1, 100000) g");
  ASSERT_TRUE(add(*store_, ExecuteStep{"due", 1}, kT0).ok());
  sql("ANALYZE effects");
  const std::string plan = claim_plan([&](const std::string& s) { return sql(s); });
  EXPECT_NE(plan.find("effects_unleased_due_idx"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("Seq Scan on effects"), std::string::npos) << plan;
  EXPECT_EQ(count("effects WHERE lease_owner = 'me'"), 1);
}

// Effects handed over at once are written leased and deleted leased: the
// claim walks neither those in flight nor those deleted since the last
// vacuum (an open snapshot keeps them from being pruned here).
TEST_F(StoreTest, TheClaimWalksNeitherHandedOverNorDeletedEffects) {
  const std::string due = "to_timestamp(" + std::to_string(to_epoch_ms(kT0) - 1000) + " / 1000.0)";
  const std::string lease =
      "to_timestamp(" + std::to_string(to_epoch_ms(kT0 + kLease)) + " / 1000.0)";
  pqxx::connection reader_connection(pg_->url());
  pqxx::work reader(reader_connection, "reader");
  reader.exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ");
  reader.exec("SELECT count(*) FROM workflows");  // holds its snapshot until the end
  for (const char* workflow : {"in-flight", "done"}) {
    sql(std::string("INSERT INTO effects (workflow_id, kind, step, attempt, payload, due_at,"
                    " lease_owner, lease_until, tries) SELECT '") +
        workflow + "' || g, 'execute', 's', 1, '{}', " + due + ", 'handoff#1', " + lease +
        ", 1 FROM generate_series(1, 5000) g");
  }
  sql("DELETE FROM effects WHERE workflow_id LIKE 'done%'");
  ASSERT_TRUE(add(*store_, ExecuteStep{"due", 1}, kT0).ok());
  sql("ANALYZE effects");
  const std::string plan = claim_plan([&](const std::string& s) { return sql(s); });
  EXPECT_EQ(count("effects WHERE lease_owner = 'me'"), 1) << plan;
  EXPECT_LT(buffers_of(plan), 50) << plan;
  reader.commit();
}


// Dropping the polls of 500 steps that ended looks each step up by its
// workflow, whatever the statistics say: with 20k polls written after the
// last ANALYZE, the statement as a join walked the whole workflow index
// once and compared every poll with every step (4 s in the bench).
TEST_F(StoreTest, DroppingPollsOfEndedStepsLooksUpEachStepWithStaleStatistics) {
  sql("ANALYZE effects");  // while it is empty: the statistics say so from now on
  sql("INSERT INTO effects (workflow_id, kind, step, attempt, payload, due_at)"
      " SELECT 'w' || g, 'poll', 's', 1, '{}', now() + interval '1 hour'"
      " FROM generate_series(1, 20000) g");
  std::string ids = "ARRAY[";
  for (int i = 1; i <= 500; ++i) ids += (i > 1 ? ",'w" : "'w") + std::to_string(i * 40) + "'";
  ids += "]";
  std::string drop = store_detail::kDropUnheldPolls;
  const std::map<std::string, std::string> values = {
      {"$1", ids}, {"$2", "array_fill('s'::text, ARRAY[500])"}, {"$3", "array_fill(1, ARRAY[500])"}};
  for (const auto& [param, value] : values) {
    for (size_t at = drop.find(param); at != std::string::npos; at = drop.find(param)) {
      drop.replace(at, param.size(), value);
    }
  }
  pqxx::connection c(pg_->url());
  pqxx::work tx(c);
  // The store's own session settings (pg_store.cpp).
  tx.exec(store_detail::kStoreSessionSettings);
  std::string plan;
  for (const auto& row : tx.exec("EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) " + drop)) {
    plan += row[0].as<std::string>() + "\n";
  }
  const pqxx::row left = tx.exec1("SELECT count(*) FROM effects");
  tx.abort();
  EXPECT_EQ(left[0].as<int64_t>(), 19500) << plan;
  EXPECT_EQ(plan.find("Join Filter"), std::string::npos) << plan;
  EXPECT_NE(plan.find("Index Cond: (workflow_id = v.workflow_id)"), std::string::npos) << plan;
  EXPECT_LT(buffers_of(plan), 10000) << plan;
}

// A recorder deletes the effects whose results it records by key, whatever
// the statistics say: with 20k effects leased after the last ANALYZE saw
// none leased, the statement as a join walked the whole index of leased
// effects by id for each held lease (0.2 s for 87 in the bench).
TEST_F(StoreTest, DeletingHeldEffectsLooksUpEachByItsKeyWithStaleStatistics) {
  sql("INSERT INTO effects (workflow_id, kind, step, attempt, payload, due_at)"
      " SELECT 'w' || g, 'execute', 's', 1, '{}', now() FROM generate_series(1, 20000) g");
  sql("ANALYZE effects");  // while none is leased: the statistics say so from now on
  sql("UPDATE effects SET lease_owner = 'me', lease_until = now() + interval '1 hour', tries = 1");
  const int64_t first = sql("SELECT min(id) FROM effects")[0][0].as<int64_t>();
  std::string ids = "ARRAY[";
  std::string owners = "ARRAY[";
  // In no particular order, and one whose lease is someone else's.
  for (int i = 100; i >= 1; --i) {
    ids += (i < 100 ? "," : "") + std::to_string(first + i * 150);
    owners += std::string(i < 100 ? "," : "") + (i == 50 ? "'other'" : "'me'");
  }
  ids += "]::bigint[]";
  owners += "]::text[]";
  pqxx::connection c(pg_->url());
  pqxx::work tx(c);
  // The store's own session settings (pg_store.cpp).
  tx.exec(store_detail::kStoreSessionSettings);
  tx.exec("PREPARE delete_held(bigint[], text[], bigint) AS " +
          store_detail::effect_queue_statements().at("delete_effects"));
  std::string plan;
  for (const auto& row :
       tx.exec("EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) EXECUTE delete_held(" + ids + ", " +
               owners + ", " + std::to_string(to_epoch_ms(kT0)) + ")")) {
    plan += row[0].as<std::string>() + "\n";
  }
  const pqxx::row left = tx.exec1("SELECT count(*) FROM effects");
  tx.abort();
  EXPECT_EQ(left[0].as<int64_t>(), 20000 - 99) << plan;
  EXPECT_EQ(plan.find("effects_lease_idx"), std::string::npos) << plan;
  EXPECT_LT(buffers_of(plan), 2000) << plan;
}

// The lease keeper renews every effect in hand while result recorders delete
// theirs: each statement locks many effect rows, and in whatever order its
// caller lists them two such statements could wait for each other (40P01,
// seen with 20k workflows). They lock in id order, so they never do.
TEST_F(StoreTest, WritersOfManyHeldEffectsLockThemInOneOrderAndNeverDeadlock) {
  constexpr int kEffects = 2000;
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    for (int i = 0; i < kEffects; ++i) {
      tx.add_effect("w" + std::to_string(i % 200),
                    StartTimer{"s", i, TimerKind::kRetryBackoff, kT0}, kT0);
    }
  }).ok());
  auto claimed = store_->claim_due_effects("me", kEffects, kT0, kLease);
  ASSERT_TRUE(claimed.ok()) << claimed.error().message;
  ASSERT_EQ(claimed->effects.size(), static_cast<size_t>(kEffects));
  std::vector<HeldLease> held;
  for (const auto& e : claimed->effects) held.push_back({e.id, "me"});

  std::mutex mutex;
  std::vector<std::string> failures;
  const auto writer = [&](unsigned seed, bool deletes) {
    auto store = Store::open(pg_->url());
    std::mt19937 rng(seed);
    for (int round = 0; round < 12; ++round) {
      std::vector<HeldLease> order = held;
      std::shuffle(order.begin(), order.end(), rng);
      Status s = ok_status();
      if (deletes) {
        order.resize(order.size() / 20);  // a recorder's batch, in its own order
        s = store->transact([&](StoreTx& tx) { tx.delete_effects(order, kT0); });
      } else {
        s = store->renew_leases(order, kT0, kLease);
      }
      if (!s) {
        std::lock_guard lock(mutex);
        failures.push_back(s.error().code + ": " + s.error().message);
      }
    }
  };
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < 4; ++i) threads.emplace_back(writer, i + 1, i % 2 == 1);
  for (auto& t : threads) t.join();
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed, the first: " << failures.front();
  // Giving back locks the same way.
  std::shuffle(held.begin(), held.end(), std::mt19937(7));
  EXPECT_TRUE(store_->release_leases(held).ok());
}

}  // namespace
}  // namespace brickwork::testing
