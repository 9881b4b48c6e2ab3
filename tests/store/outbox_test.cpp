#include <gtest/gtest.h>

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
Result<std::vector<OutboxMessage>> nothing_refused() { return std::vector<OutboxMessage>{}; }

TEST_F(StoreTest, DrainsInIdOrderAndDeletes) {
  add_messages(*store_, 5);
  std::vector<OutboxMessage> seen;
  auto drained = store_->drain_outbox(3, [&](const std::vector<OutboxMessage>& rows) {
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

  drained = store_->drain_outbox(10, [&](const std::vector<OutboxMessage>& rows) {
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
  drained = store_->drain_outbox(10, [&](const std::vector<OutboxMessage>&) {
    called = true;
    return nothing_refused();
  });
  ASSERT_TRUE(drained.ok());
  EXPECT_EQ(*drained, 0);
  EXPECT_FALSE(called);  // nothing to publish
}

TEST_F(StoreTest, FailedPublishKeepsTheMessages) {
  add_messages(*store_, 3);
  auto drained = store_->drain_outbox(10, [&](const std::vector<OutboxMessage>&) -> Result<std::vector<OutboxMessage>> {
    return Error{ErrorKind::kTransient, "kafka_down", "broker unavailable"};
  });
  ASSERT_FALSE(drained.ok());
  EXPECT_EQ(drained.error().code, "kafka_down");
  EXPECT_EQ(drained.error().kind, ErrorKind::kTransient);
  EXPECT_EQ(count("outbox"), 3);

  std::vector<std::string> payloads;
  drained = store_->drain_outbox(10, [&](const std::vector<OutboxMessage>& rows) {
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
  auto drained = store_->drain_outbox(10, [&](const std::vector<OutboxMessage>& rows) {
    return Result<std::vector<OutboxMessage>>(std::vector<OutboxMessage>{
        OutboxMessage{0, "brickwork.dlq", rows[1].key, "instead of " + rows[1].payload}});
  });
  ASSERT_TRUE(drained.ok()) << drained.error().message;
  EXPECT_EQ(*drained, 3);
  std::vector<std::string> payloads;
  drained = store_->drain_outbox(10, [&](const std::vector<OutboxMessage>& rows) {
    for (const auto& r : rows) payloads.push_back(r.topic + ":" + r.payload);
    return nothing_refused();
  });
  ASSERT_TRUE(drained.ok());
  EXPECT_EQ(payloads, (std::vector<std::string>{"brickwork.dlq:instead of m1"}));
  EXPECT_EQ(count("outbox"), 0);
}

TEST_F(StoreTest, ThrowingPublishRollsBack) {
  add_messages(*store_, 2);
  auto drained = store_->drain_outbox(
      10, [&](const std::vector<OutboxMessage>&) -> Result<std::vector<OutboxMessage>> { throw std::runtime_error("oops"); });
  ASSERT_FALSE(drained.ok());
  EXPECT_EQ(drained.error().kind, ErrorKind::kInternal);
  EXPECT_EQ(count("outbox"), 2);
}

TEST_F(StoreTest, OnlyOneDrainerAtATime) {
  add_messages(*store_, 4);
  auto other = Store::open(pg_->url());
  std::optional<Result<int32_t>> inner;
  bool inner_called = false;
  auto drained = store_->drain_outbox(10, [&](const std::vector<OutboxMessage>& rows) {
    // While this drainer holds the lock, a second one (another connection) gets nothing.
    inner = other->drain_outbox(10, [&](const std::vector<OutboxMessage>&) {
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
      other->drain_outbox(10, [&](const std::vector<OutboxMessage>&) { return nothing_refused(); });
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
        auto n = store->drain_outbox(7, [&](const std::vector<OutboxMessage>& rows) {
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
