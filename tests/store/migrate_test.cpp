#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "daemon/store/migrations.hpp"
#include "tests/store/store_fixture.hpp"

namespace brickwork::testing {
namespace {

// Each test migrates a database of its own, created empty.
std::string fresh_database(TempPostgres& pg, const std::string& name) {
  pqxx::connection c(pg.url());
  pqxx::nontransaction w(c);
  w.exec("DROP DATABASE IF EXISTS " + w.quote_name(name));
  w.exec("CREATE DATABASE " + w.quote_name(name));
  return pg.url(name);
}

int64_t scalar(const std::string& url, const std::string& sql) {
  pqxx::connection c(url);
  pqxx::work w(c);
  return w.exec(sql)[0][0].as<int64_t>();
}

const int64_t kLatest = store_detail::migrations().back().version;

TEST(Migrate, CreatesTheSchemaAndIsANoOpTheSecondTime) {
  const std::string url = fresh_database(shared_postgres(), "migrate_twice");
  auto store = Store::open(url);
  Status first = store->migrate();
  ASSERT_TRUE(first.ok()) << first.error().message;
  Status second = store->migrate();
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(scalar(url, "SELECT count(*) FROM schema_migrations"),
            static_cast<int64_t>(store_detail::migrations().size()));
  EXPECT_EQ(scalar(url, "SELECT max(version) FROM schema_migrations"), kLatest);
  EXPECT_EQ(
      scalar(url,
             "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
             " AND table_name IN ('workflows', 'steps', 'effects', 'outbox', 'input_offsets')"),
      5);
  EXPECT_TRUE(store->ping().ok());
  // Room for heap-only updates (migration 11), as a table owner may set it.
  EXPECT_EQ(scalar(url,
                   "SELECT count(*) FROM pg_class WHERE (relname = 'steps' AND"
                   " reloptions @> ARRAY['fillfactor=80']) OR (relname = 'workflows' AND"
                   " reloptions @> ARRAY['fillfactor=85'])"),
            2);
}

TEST(Migrate, ConcurrentMigratorsAreSerialised) {
  const std::string url = fresh_database(shared_postgres(), "migrate_concurrently");
  std::vector<Status> results(4, ok_status());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = Store::open(url)->migrate(); });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) EXPECT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(scalar(url, "SELECT count(*) FROM schema_migrations"),
            static_cast<int64_t>(store_detail::migrations().size()));
}

// A restart finds every migration applied and goes on without waiting for
// the migration lock; a database missing one still waits for it, as a
// daemon must while another migrates.
TEST(Migrate, OnlyADatabaseMissingAMigrationWaitsForTheMigrationLock) {
  const std::string url = fresh_database(shared_postgres(), "migrate_lock_held");
  ASSERT_TRUE(Store::open(url)->migrate().ok());
  pqxx::connection holder(url);
  pqxx::nontransaction hold(holder);
  hold.exec_params("SELECT pg_advisory_lock($1)", store_detail::kMigrateLockKey);

  auto migrated = std::async(std::launch::async, [&] { return Store::open(url)->migrate(); });
  const bool done_at_once = migrated.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  if (!done_at_once) hold.exec_params("SELECT pg_advisory_unlock($1)", store_detail::kMigrateLockKey);
  ASSERT_TRUE(done_at_once) << "a migrated database waited for the migration lock";
  Status first = migrated.get();
  EXPECT_TRUE(first.ok()) << first.error().message;

  hold.exec_params("DELETE FROM schema_migrations WHERE version = $1", kLatest);
  auto missing = std::async(std::launch::async, [&] { return Store::open(url)->migrate(); });
  EXPECT_EQ(missing.wait_for(std::chrono::milliseconds(500)), std::future_status::timeout)
      << "a database missing a migration did not wait for the migration lock";
  // What another migrator would have done while holding the lock.
  hold.exec_params("INSERT INTO schema_migrations (version) VALUES ($1)", kLatest);
  hold.exec_params("SELECT pg_advisory_unlock($1)", store_detail::kMigrateLockKey);
  Status second = missing.get();
  EXPECT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(scalar(url, "SELECT count(*) FROM schema_migrations"),
            static_cast<int64_t>(store_detail::migrations().size()));
}

TEST(Migrate, UnreachableServerIsTransient) {
  auto store = Store::open("postgresql://brickwork@127.0.0.1:1/brickwork");
  Status s = store->migrate();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().kind, ErrorKind::kTransient);
}

}  // namespace
}  // namespace brickwork::testing
