#include <gtest/gtest.h>

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

TEST(Migrate, UnreachableServerIsTransient) {
  auto store = Store::open("postgresql://brickwork@127.0.0.1:1/brickwork");
  Status s = store->migrate();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().kind, ErrorKind::kTransient);
}

}  // namespace
}  // namespace brickwork::testing
