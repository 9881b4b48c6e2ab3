#include <gtest/gtest.h>

#include <filesystem>

#include "tests/store/store_fixture.hpp"

// libpqxx 6.4 leaks one PGresult (~2 KiB) per lost connection: after PQexec on
// a dead connection, connection_base::make_result() throws ("Could not obtain
// client encoding") before it owns the result. Not ours to fix; keep
// LeakSanitizer quiet about it in sanitizer builds.
extern "C" const char* __lsan_default_suppressions();  // NOLINT
extern "C" const char* __lsan_default_suppressions() { return "leak:libpqxx-6.4.so\n"; }

namespace brickwork::testing {
namespace {

Status write_one(Store& store, int64_t offset) {
  return store.transact([&](StoreTx& tx) { tx.set_input_offset("t", 0, offset); });
}

TEST_F(StoreTest, LostConnectionIsTransientAndTheNextCallReconnects) {
  ASSERT_TRUE(write_one(*store_, 1).ok());  // connected

  ASSERT_TRUE(pg_->stop().ok());
  Status down = write_one(*store_, 2);
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().kind, ErrorKind::kTransient)
      << down.error().code << ": " << down.error().message;
  Status still_down = store_->ping();
  ASSERT_FALSE(still_down.ok());
  EXPECT_EQ(still_down.error().kind, ErrorKind::kTransient);
  auto claim = store_->claim_due_effects("me", 1, now_ms(), Duration(1000));
  ASSERT_FALSE(claim.ok());
  EXPECT_TRUE(claim.error().transient());

  {
    const Status restarted = pg_->start_again();
    ASSERT_TRUE(restarted.ok()) << restarted.error().message;
  }
  Status up = write_one(*store_, 3);
  ASSERT_TRUE(up.ok()) << up.error().message;
  EXPECT_EQ(sql("SELECT next_offset FROM input_offsets")[0][0].as<int64_t>(), 3);
}

TEST_F(StoreTest, ServerCrashIsTransientAndRecoveryKeepsCommittedData) {
  ASSERT_TRUE(write_one(*store_, 10).ok());
  // The server commits asynchronously (synchronous_commit=off): a crash may
  // lose the last acknowledged commits, so force the WAL out first.
  sql("SET LOCAL synchronous_commit = on; UPDATE input_offsets SET updated_at = now()");
  ASSERT_TRUE(pg_->kill_hard().ok());
  auto got = store_->get_workflow("x");
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(got.error().transient()) << got.error().code << ": " << got.error().message;

  {
    const Status restarted = pg_->start_again();
    ASSERT_TRUE(restarted.ok()) << restarted.error().message;
  }
  ASSERT_TRUE(store_->ping().ok());
  int64_t offset = 0;
  ASSERT_TRUE(
      store_->transact([&](StoreTx& tx) { offset = tx.input_offset_for_update("t", 0); }).ok());
  EXPECT_EQ(offset, 10);
}

TEST(TempPostgresTest, StartsOnAFreshPortAndCleansUp) {
  std::string dir;
  {
    auto pg = TempPostgres::start();
    ASSERT_TRUE(pg.ok()) << pg.error().message;
    dir = (*pg)->directory();
    EXPECT_NE((*pg)->port(), shared_postgres().port());
    EXPECT_EQ((*pg)->url(),
              "postgresql://brickwork@127.0.0.1:" + std::to_string((*pg)->port()) + "/brickwork");
    EXPECT_TRUE(Store::open((*pg)->url())->ping().ok());
  }
  EXPECT_FALSE(std::filesystem::exists(dir));
}

}  // namespace
}  // namespace brickwork::testing
