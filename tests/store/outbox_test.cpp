#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <thread>

#include "tests/store/store_fixture.hpp"

namespace brickwork::testing {
namespace {

void add_messages(Store& store, int n, int from = 0) {
  ASSERT_TRUE(store
                  .transact([&](StoreTx& tx) {
                    for (int i = from; i < from + n; ++i) {
                      tx.add_outbox("brickwork.status", "w" + std::to_string(i % 3),
                                    "m" + std::to_string(i));
                    }
                  })
                  .ok());
}

// What a publish callback returns when the broker took every record.
Result<OutboxRound> nothing_refused() { return OutboxRound{}; }

// drain_outbox without streams to skip, for callbacks that ignore the transaction.
template <typename Publish>
Result<int32_t> drain(Store& store, int32_t limit, Publish publish) {
  return store.drain_outbox(limit, {}, [&](const std::vector<OutboxMessage>& rows, OutboxTx&) {
    return publish(rows);
  });
}

TEST_F(StoreTest, DrainsInIdOrderAndDeletes) {
  add_messages(*store_, 5);
  std::vector<OutboxMessage> seen;
  auto drained = drain(*store_, 3, [&](const std::vector<OutboxMessage>& rows) {
    seen.insert(seen.end(), rows.begin(), rows.end());
    return nothing_refused();
  });
  ASSERT_TRUE(drained.ok()) << drained.error().message;
  EXPECT_EQ(*drained, 3);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].payload, "m0");
  EXPECT_EQ(seen[0].topic, "brickwork.status");
  EXPECT_EQ(seen[0].key, "w0");
  EXPECT_EQ(seen[2].payload, "m2");
  EXPECT_LT(seen[0].id, seen[1].id);
  EXPECT_EQ(count("outbox"), 2);

  drained = drain(*store_, 10, [&](const std::vector<OutboxMessage>& rows) {
    seen.insert(seen.end(), rows.begin(), rows.end());
    return nothing_refused();
  });
  ASSERT_TRUE(drained.ok());
  EXPECT_EQ(*drained, 2);
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(seen[3].payload, "m3");
  EXPECT_EQ(seen[4].payload, "m4");
  EXPECT_EQ(count("outbox"), 0);

  bool called = false;
  drained = drain(*store_, 10, [&](const std::vector<OutboxMessage>&) {
    called = true;
    return nothing_refused();
  });
  ASSERT_TRUE(drained.ok());
  EXPECT_EQ(*drained, 0);
  EXPECT_FALSE(called);  // nothing to publish
}

// Rows carry emitted records of up to 1 MiB: a round stops once the
// payloads before a row reach 4 MiB, so a burst of large records is not read
// (and held four times over) a thousand at a time, and the next round goes
// on from there without skipping any.
TEST_F(StoreTest, ARoundOfLargeRecordsStopsAtItsBytesAndTheNextGoesOn) {
  const std::string mib(1 << 20, 'x');
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    for (int i = 0; i < 10; ++i) tx.add_outbox("clients.events", "k", std::to_string(i) + mib);
  }).ok());
  add_messages(*store_, 3, 10);  // small ones after them
  std::vector<size_t> rounds;
  std::vector<std::string> order;
  for (int i = 0; i < 10 && count("outbox") > 0; ++i) {
    auto drained = drain(*store_, 1000, [&](const std::vector<OutboxMessage>& rows) {
      rounds.push_back(rows.size());
      for (const auto& row : rows) order.push_back(row.payload.substr(0, 2));
      return nothing_refused();
    });
    ASSERT_TRUE(drained.ok()) << drained.error().message;
  }
  // 4 x 1 MiB and a bit, then a fifth's bytes before it are over 4 MiB.
  EXPECT_EQ(rounds, (std::vector<size_t>{4, 4, 5}));
  EXPECT_EQ(order, (std::vector<std::string>{"0x", "1x", "2x", "3x", "4x", "5x", "6x", "7x",
                                             "8x", "9x", "m1", "m1", "m1"}));
  EXPECT_EQ(count("outbox"), 0);

  // One row over the bound goes alone.
  const std::string five_mib(5 << 20, 'y');
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    tx.add_outbox("clients.events", "k", five_mib);
    tx.add_outbox("clients.events", "k", "after");
  }).ok());
  rounds.clear();
  for (int i = 0; i < 3 && count("outbox") > 0; ++i) {
    auto drained = drain(*store_, 1000, [&](const std::vector<OutboxMessage>& rows) {
      rounds.push_back(rows.size());
      return nothing_refused();
    });
    ASSERT_TRUE(drained.ok()) << drained.error().message;
  }
  EXPECT_EQ(rounds, (std::vector<size_t>{1, 1}));
}

TEST_F(StoreTest, FailedPublishKeepsTheMessages) {
  add_messages(*store_, 3);
  auto drained = drain(*store_, 10, [&](const std::vector<OutboxMessage>&) -> Result<OutboxRound> {
    return Error{ErrorKind::kTransient, "kafka_down", "broker unavailable"};
  });
  ASSERT_FALSE(drained.ok());
  EXPECT_EQ(drained.error().code, "kafka_down");
  EXPECT_EQ(drained.error().kind, ErrorKind::kTransient);
  EXPECT_EQ(count("outbox"), 3);

  std::vector<std::string> payloads;
  drained = drain(*store_, 10, [&](const std::vector<OutboxMessage>& rows) {
    for (const auto& r : rows) payloads.push_back(r.payload);
    return nothing_refused();
  });
  ASSERT_TRUE(drained.ok());
  EXPECT_EQ(payloads, (std::vector<std::string>{"m0", "m1", "m2"}));
}

// A record the broker refuses for good is deleted with the batch and its
// replacement queued behind everything, so the outbox moves on.
TEST_F(StoreTest, RefusedRowIsReplacedAndTheOutboxMovesOn) {
  add_messages(*store_, 3);
  auto drained = drain(*store_, 10, [&](const std::vector<OutboxMessage>& rows) {
    OutboxRound round;
    round.replacements.push_back(
        OutboxMessage{0, "brickwork.dlq", rows[1].key, "instead of " + rows[1].payload, false,
                      "", ""});
    return Result<OutboxRound>(std::move(round));
  });
  ASSERT_TRUE(drained.ok()) << drained.error().message;
  EXPECT_EQ(*drained, 3);
  std::vector<std::string> payloads;
  drained = drain(*store_, 10, [&](const std::vector<OutboxMessage>& rows) {
    for (const auto& r : rows) payloads.push_back(r.topic + ":" + r.payload);
    return nothing_refused();
  });
  ASSERT_TRUE(drained.ok());
  EXPECT_EQ(payloads, (std::vector<std::string>{"brickwork.dlq:instead of m1"}));
  EXPECT_EQ(count("outbox"), 0);
}

// Issue 16: a round where the broker acknowledged some records and not
// others deletes the acknowledged ones, so a later round never publishes
// them again; the others stay, in order.
TEST_F(StoreTest, RowsTheBrokerAcknowledgedAreDeletedWhenOthersOfTheRoundAreNot) {
  add_messages(*store_, 5);
  auto drained = drain(*store_, 10, [&](const std::vector<OutboxMessage>& rows) {
    OutboxRound round;
    round.unpublished = {rows[1].id, rows[3].id};  // m1 and m3 not confirmed
    return Result<OutboxRound>(std::move(round));
  });
  ASSERT_TRUE(drained.ok()) << drained.error().message;
  EXPECT_EQ(*drained, 3);
  std::vector<std::string> again;
  drained = drain(*store_, 10, [&](const std::vector<OutboxMessage>& rows) {
    for (const auto& r : rows) again.push_back(r.payload);
    return nothing_refused();
  });
  ASSERT_TRUE(drained.ok());
  EXPECT_EQ(again, (std::vector<std::string>{"m1", "m3"}));
  EXPECT_EQ(count("outbox"), 0);
}

// Streams set aside are not read at all: their rows stay in order behind
// the first, and the others are published past them.
TEST_F(StoreTest, SkippedStreamsStayInOrderWhileOthersArePublished) {
  add_messages(*store_, 6);  // keys w0 w1 w2 w0 w1 w2
  std::vector<std::string> seen;
  auto drained = store_->drain_outbox(
      10, {OutboxStream{"brickwork.status", "w1"}, OutboxStream{"other.topic", "w2"}},
      [&](const std::vector<OutboxMessage>& rows, OutboxTx&) {
        for (const auto& r : rows) seen.push_back(r.payload);
        return nothing_refused();
      });
  ASSERT_TRUE(drained.ok()) << drained.error().message;
  EXPECT_EQ(seen, (std::vector<std::string>{"m0", "m2", "m3", "m5"}));
  seen.clear();
  drained = drain(*store_, 10, [&](const std::vector<OutboxMessage>& rows) {
    for (const auto& r : rows) seen.push_back(r.payload);
    return nothing_refused();
  });
  ASSERT_TRUE(drained.ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"m1", "m4"}));
}

// An emitted row names its workflow and step; the drain's transaction takes
// that workflow's next seq for an event about it.
TEST_F(StoreTest, EmittedRowsNameTheirWorkflowAndTheDrainTakesItsNextSeq) {
  sql("INSERT INTO workflows (id, workflow, status, seq, created_at, updated_at)"
      " VALUES ('wf-1', 'emitter', 'succeeded', 4, now(), now())");
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    tx.add_outbox("clients.acme", "acme", "{}", false, "wf-1", "announce");
    tx.add_outbox("brickwork.status", "wf-1", "{}");
  }).ok());
  std::vector<OutboxMessage> seen;
  std::optional<WorkflowSequence> next, missing;
  auto drained = store_->drain_outbox(
      10, {}, [&](const std::vector<OutboxMessage>& rows, OutboxTx& tx) {
        seen = rows;
        next = tx.take_next_seq("wf-1");
        missing = tx.take_next_seq("no-such-workflow");
        return nothing_refused();
      });
  ASSERT_TRUE(drained.ok()) << drained.error().message;
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].workflow_id, "wf-1");
  EXPECT_EQ(seen[0].step, "announce");
  EXPECT_EQ(seen[1].workflow_id, "");
  EXPECT_EQ(seen[1].step, "");
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->seq, 5);
  EXPECT_EQ(next->workflow, "emitter");
  EXPECT_EQ(next->status, WorkflowStatus::kSucceeded);
  EXPECT_FALSE(missing.has_value());
  EXPECT_EQ(sql("SELECT seq FROM workflows WHERE id = 'wf-1'")[0][0].as<int64_t>(), 5);
}

TEST_F(StoreTest, ThrowingPublishRollsBack) {
  add_messages(*store_, 2);
  auto drained = drain(
      *store_, 10, [&](const std::vector<OutboxMessage>&) -> Result<OutboxRound> {
        throw std::runtime_error("oops");
      });
  ASSERT_FALSE(drained.ok());
  EXPECT_EQ(drained.error().kind, ErrorKind::kInternal);
  EXPECT_EQ(count("outbox"), 2);
}

TEST_F(StoreTest, OnlyOneDrainerAtATime) {
  add_messages(*store_, 4);
  auto other = Store::open(pg_->url());
  std::optional<Result<int32_t>> inner;
  bool inner_called = false;
  auto drained = drain(*store_, 10, [&](const std::vector<OutboxMessage>& rows) {
    // While this drainer holds the lock, a second one (another connection) gets nothing.
    inner = drain(*other, 10, [&](const std::vector<OutboxMessage>&) {
      inner_called = true;
      return nothing_refused();
    });
    EXPECT_EQ(rows.size(), 4u);
    return nothing_refused();
  });
  ASSERT_TRUE(drained.ok());
  EXPECT_EQ(*drained, 4);
  ASSERT_TRUE(inner.has_value());
  ASSERT_TRUE(inner->ok()) << inner->error().message;
  EXPECT_EQ(inner->value(), 0);
  EXPECT_FALSE(inner_called);

  // The lock is released with the transaction.
  add_messages(*store_, 1, 10);
  auto again =
      drain(*other, 10, [&](const std::vector<OutboxMessage>&) { return nothing_refused(); });
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 1);
}

TEST_F(StoreTest, ConcurrentDrainersPublishEachMessageOnceInOrder) {
  constexpr int kMessages = 300;
  add_messages(*store_, kMessages);
  std::mutex mu;
  std::vector<int64_t> published;
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      auto store = Store::open(pg_->url());
      for (int idle = 0; idle < 200;) {
        auto n = drain(*store, 7, [&](const std::vector<OutboxMessage>& rows) {
          std::lock_guard lock(mu);
          for (const auto& r : rows) published.push_back(r.id);
          return nothing_refused();
        });
        ASSERT_TRUE(n.ok()) << n.error().message;
        {
          std::lock_guard lock(mu);
          if (published.size() == static_cast<size_t>(kMessages)) return;
        }
        if (*n == 0) {
          ++idle;
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(published.size(), static_cast<size_t>(kMessages));
  EXPECT_TRUE(std::is_sorted(published.begin(), published.end()));
  EXPECT_EQ(std::adjacent_find(published.begin(), published.end()), published.end());
}

TEST_F(StoreTest, InputOffsets) {
  int64_t first = 0;
  ASSERT_TRUE(store_
                  ->transact([&](StoreTx& tx) {
                    first = tx.input_offset_for_update("brickwork.commands", 3);
                  })
                  .ok());
  EXPECT_EQ(first, -1);

  ASSERT_TRUE(store_
                  ->transact([&](StoreTx& tx) {
                    EXPECT_EQ(tx.input_offset_for_update("brickwork.commands", 3), -1);
                    tx.set_input_offset("brickwork.commands", 3, 1183);
                    tx.set_input_offset("brickwork.events", 0, 5);  // without reading first
                  })
                  .ok());

  ASSERT_TRUE(store_
                  ->transact([&](StoreTx& tx) {
                    EXPECT_EQ(tx.input_offset_for_update("brickwork.commands", 3), 1183);
                    EXPECT_EQ(tx.input_offset_for_update("brickwork.commands", 2), -1);
                    EXPECT_EQ(tx.input_offset_for_update("brickwork.events", 0), 5);
                  })
                  .ok());

  // A rolled-back update leaves the offset as it was.
  EXPECT_FALSE(store_
                   ->transact([&](StoreTx& tx) {
                     tx.set_input_offset("brickwork.commands", 3, 2000);
                     throw std::runtime_error("abort");
                   })
                   .ok());
  ASSERT_TRUE(store_
                  ->transact([&](StoreTx& tx) {
                    EXPECT_EQ(tx.input_offset_for_update("brickwork.commands", 3), 1183);
                  })
                  .ok());
}

TEST_F(StoreTest, InputOffsetLockMakesASecondConsumerWait) {
  auto other = Store::open(pg_->url());
  std::promise<void> locked;
  std::future<int64_t> seen_by_other;
  ASSERT_TRUE(store_
                  ->transact([&](StoreTx& tx) {
                    EXPECT_EQ(tx.input_offset_for_update("t", 0), -1);
                    seen_by_other = std::async(std::launch::async, [&] {
                      int64_t seen = -2;
                      locked.set_value();
                      Status s = other->transact(
                          [&](StoreTx& tx2) { seen = tx2.input_offset_for_update("t", 0); });
                      EXPECT_TRUE(s.ok());
                      return seen;
                    });
                    locked.get_future().wait();
                    std::this_thread::sleep_for(std::chrono::milliseconds(200));
                    tx.set_input_offset("t", 0, 42);
                  })
                  .ok());
  EXPECT_EQ(seen_by_other.get(), 42);  // it waited for the commit, then read the new offset
}

TEST_F(StoreTest, DeadlockIsTransient) {
  auto other = Store::open(pg_->url());
  ASSERT_TRUE(store_
                  ->transact([&](StoreTx& tx) {
                    tx.set_input_offset("t", 0, 1);
                    tx.set_input_offset("t", 1, 1);
                  })
                  .ok());
  std::promise<void> a_locked, b_locked;
  std::shared_future<void> a_ready = a_locked.get_future().share();
  std::shared_future<void> b_ready = b_locked.get_future().share();
  auto run = [&](Store& store, int32_t first, int32_t second, std::promise<void>& mine,
                 std::shared_future<void> theirs) {
    return store.transact([&, first, second](StoreTx& tx) {
      tx.input_offset_for_update("t", first);
      mine.set_value();
      theirs.wait();
      tx.input_offset_for_update("t", second);
    });
  };
  auto a = std::async(std::launch::async, [&] { return run(*store_, 0, 1, a_locked, b_ready); });
  auto b = std::async(std::launch::async, [&] { return run(*other, 1, 0, b_locked, a_ready); });
  Status ra = a.get();
  Status rb = b.get();
  ASSERT_NE(ra.ok(), rb.ok());  // exactly one is chosen as the victim
  const Error& e = ra.ok() ? rb.error() : ra.error();
  EXPECT_EQ(e.kind, ErrorKind::kTransient);
  EXPECT_EQ(e.code, "40P01");
}

}  // namespace
}  // namespace brickwork::testing

namespace brickwork::testing {
namespace {

// Publishes everything, collecting the payloads.
Result<int32_t> drain_into(Store& store, std::vector<std::string>& payloads) {
  return drain(store, 1000, [&](const std::vector<OutboxMessage>& rows) {
    for (const auto& r : rows) payloads.push_back(r.payload);
    return nothing_refused();
  });
}

// The drain reads from a cursor past the rows it deleted. A row whose
// transaction took its id before later rows committed, and commits after
// they were drained, is still published: the cursor passes it only once
// every transaction in progress at the read that saw the later rows ended.
TEST_F(StoreTest, ARowCommittedAfterLaterRowsWereDrainedIsStillPublished) {
  pqxx::connection slow_connection(pg_->url());
  pqxx::work slow(slow_connection);
  slow.exec("INSERT INTO outbox (topic, key, payload) VALUES ('brickwork.status', 'w', 'late')");
  std::vector<std::string> payloads;
  for (int round = 0; round < 5; ++round) {
    add_messages(*store_, 3, round * 3);
    ASSERT_TRUE(drain_into(*store_, payloads).ok());
    ASSERT_TRUE(drain_into(*store_, payloads).ok());
  }
  EXPECT_EQ(payloads.size(), 15u);
  slow.commit();
  add_messages(*store_, 1, 100);
  ASSERT_TRUE(drain_into(*store_, payloads).ok());
  EXPECT_NE(std::find(payloads.begin(), payloads.end(), "late"), payloads.end());
  EXPECT_EQ(payloads.back(), "m100");
  EXPECT_EQ(count("outbox"), 0);
}

// The same when the late row's transaction took its id after the one that
// committed the later row took its own: no snapshot lists it as running
// (its id is at or above the snapshots' xmax), yet it holds a smaller row id.
TEST_F(StoreTest, ARowOfATransactionNoSnapshotListedIsStillPublished) {
  pqxx::connection earlier_connection(pg_->url());
  pqxx::connection later_connection(pg_->url());
  pqxx::work earlier(earlier_connection);
  earlier.exec("SELECT pg_current_xact_id()");  // the smaller transaction id
  pqxx::work later(later_connection);
  later.exec("INSERT INTO outbox (topic, key, payload) VALUES ('brickwork.status', 'w', 'late')");
  earlier.exec("INSERT INTO outbox (topic, key, payload) VALUES ('brickwork.status', 'v', 'first')");
  earlier.commit();
  std::vector<std::string> payloads;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(drain_into(*store_, payloads).ok());
  ASSERT_EQ(payloads, std::vector<std::string>{"first"});
  later.commit();
  ASSERT_TRUE(drain_into(*store_, payloads).ok());
  EXPECT_EQ(payloads, (std::vector<std::string>{"first", "late"}));
  EXPECT_EQ(count("outbox"), 0);
}

}  // namespace
}  // namespace brickwork::testing
