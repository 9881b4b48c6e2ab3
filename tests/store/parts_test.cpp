// The store's parts each on a session of its own, without the rest of the
// store: what the effect runner and the outbox publisher see through their
// interfaces, with rows written and read by SQL.
#include <gtest/gtest.h>

#include "daemon/store/pg_effect_queue.hpp"
#include "daemon/store/pg_outbox_drain.hpp"
#include "daemon/store/pg_session.hpp"
#include "daemon/store/sealing.hpp"
#include "daemon/store/workflow_rows.hpp"
#include "tests/store/store_fixture.hpp"

namespace brickwork::testing {
namespace {

using store_detail::PgSession;

const TimePoint kPartsT0 = from_epoch_ms(1'795'000'000'000);
const Duration kPartsLease{30'000};

class StorePartsTest : public StoreTest {
 protected:
  void add_effect(const std::string& workflow, const std::string& step) {
    sql("INSERT INTO effects (workflow_id, kind, step, attempt, due_at) VALUES ('" + workflow +
        "', 'execute', '" + step + "', 1, to_timestamp(" +
        std::to_string(to_epoch_ms(kPartsT0) / 1000) + "))");
  }
  void add_outbox(const std::string& key, const std::string& payload) {
    pqxx::connection c(pg_->url());
    pqxx::work w(c);
    w.exec_params("INSERT INTO outbox (topic, key, payload) VALUES ('status', $1, $2)", key,
                  payload);
    w.commit();
  }
};

TEST_F(StorePartsTest, TheEffectQueueLeasesAndGivesBackAlone) {
  PgSession session(pg_->url(), nullptr, [](pqxx::connection& c) {
    for (const auto* statements : {&store_detail::effect_queue_statements(),
                                   &store_detail::workflow_read_statements()}) {
      for (const auto& [name, statement] : *statements) c.prepare(name, statement);
    }
  });
  store_detail::DefinitionCache definitions;
  store_detail::PgEffectQueue queue(session, nullptr, definitions);
  EffectQueue& effects = queue;
  add_effect("w1", "a");
  add_effect("w2", "b");

  auto mine = effects.claim_due_effects("one", 1, kPartsT0, kPartsLease);
  ASSERT_TRUE(mine.ok()) << mine.error().message;
  ASSERT_EQ(mine->effects.size(), 1u);
  EXPECT_EQ(mine->effects[0].workflow_id, "w1");
  EXPECT_EQ(std::get<ExecuteStep>(mine->effects[0].effect).step, "a");
  EXPECT_EQ(mine->effects[0].lease_owner, "one");

  // Held: another claim takes only the other one, until it is given back.
  auto theirs = effects.claim_due_effects("two", 10, kPartsT0, kPartsLease);
  ASSERT_TRUE(theirs.ok());
  ASSERT_EQ(theirs->effects.size(), 1u);
  EXPECT_EQ(theirs->effects[0].workflow_id, "w2");
  ASSERT_TRUE(effects.release_leases({{mine->effects[0].id, "one"}}).ok());
  auto again = effects.claim_due_effects("two", 10, kPartsT0, kPartsLease);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->effects.size(), 1u);
  EXPECT_EQ(again->effects[0].id, mine->effects[0].id);
  EXPECT_EQ(again->effects[0].tries, 1);
}

// A sensitive record is stored sealed to its topic and key; the drain opens
// it, and drops one sealed under a key no longer configured (nothing could
// ever publish it) while publishing the rest.
TEST_F(StorePartsTest, TheOutboxDrainOpensSealedRecordsAlone) {
  const SecretBox current("current-secret");
  const SecretBox forgotten("forgotten-secret");
  add_outbox("k1", store_detail::stored_outbox_payload("status", "k1", "secret", true, &current));
  add_outbox("k2", store_detail::stored_outbox_payload("status", "k2", "lost", true, &forgotten));
  add_outbox("k3", "plain");
  EXPECT_EQ(sql("SELECT count(*) FROM outbox WHERE payload LIKE '%secret%'")[0][0].as<int64_t>(),
            0);

  store_detail::PgOutboxDrain* part = nullptr;
  PgSession session(pg_->url(), nullptr, [&](pqxx::connection& c) {
    for (const auto& [name, statement] : store_detail::outbox_drain_statements()) {
      c.prepare(name, statement);
    }
    if (part != nullptr) part->restart();
  });
  store_detail::PgOutboxDrain drain(session, &current);
  part = &drain;
  OutboxDrain& outbox = drain;

  std::vector<OutboxMessage> published;
  auto removed = outbox.drain_outbox(
      10, {}, [&](const std::vector<OutboxMessage>& rows, OutboxTx&) -> Result<OutboxRound> {
        published = rows;
        return OutboxRound{};
      });
  ASSERT_TRUE(removed.ok()) << removed.error().message;
  EXPECT_EQ(*removed, 3);  // the one that cannot open is deleted too
  ASSERT_EQ(published.size(), 2u);
  EXPECT_EQ(published[0].key, "k1");
  EXPECT_EQ(published[0].payload, "secret");
  EXPECT_TRUE(published[0].sensitive);
  EXPECT_EQ(published[1].key, "k3");
  EXPECT_EQ(published[1].payload, "plain");
  EXPECT_FALSE(published[1].sensitive);
  EXPECT_EQ(count("outbox"), 0);
}

}  // namespace
}  // namespace brickwork::testing
