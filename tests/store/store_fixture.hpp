#pragma once
// One throwaway Postgres server per test program (started on first use, removed
// at exit); each test gets a migrated, emptied `brickwork` database.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <pqxx/pqxx>
#include <string>

#include "daemon/store/store.hpp"
#include "devstack/temp_postgres.hpp"

namespace brickwork::testing {

inline TempPostgres& shared_postgres() {
  static std::unique_ptr<TempPostgres> server = [] {
    auto started = TempPostgres::start();
    if (!started) {
      std::fprintf(stderr, "cannot start a throwaway Postgres: %s\n",
                   started.error().message.c_str());
      std::abort();
    }
    return std::move(*started);
  }();
  return *server;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = &shared_postgres();
    Status running = pg_->start_again();  // a failed outage test may have left it stopped
    ASSERT_TRUE(running.ok()) << running.error().message;
    store_ = Store::open(pg_->url());
    Status migrated = store_->migrate();
    ASSERT_TRUE(migrated.ok()) << migrated.error().message;
    // CASCADE: with every table that refers to a workflow (history, ...).
    sql("TRUNCATE workflows, steps, effects, outbox, input_offsets RESTART IDENTITY CASCADE");
  }

  // Runs SQL outside the store (set-up and inspection).
  pqxx::result sql(const std::string& statement) {
    pqxx::connection c(pg_->url());
    pqxx::work w(c);
    pqxx::result r = w.exec(statement);
    w.commit();
    return r;
  }

  int64_t count(const std::string& table) {
    return sql("SELECT count(*) FROM " + table)[0][0].as<int64_t>();
  }

  TempPostgres* pg_ = nullptr;
  std::unique_ptr<Store> store_;
};

}  // namespace brickwork::testing
