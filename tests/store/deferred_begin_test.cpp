// DeferredBeginWork: a transaction whose BEGIN goes with its first statements.
#include "daemon/store/deferred_begin.hpp"

#include <gtest/gtest.h>

#include "tests/store/store_fixture.hpp"

namespace brickwork::testing {
namespace {

using store_detail::DeferredBeginWork;

class DeferredBeginTest : public StoreTest {
 protected:
  // Whether this connection is in a transaction block now, read on it.
  static bool in_transaction(pqxx::connection& c) {
    pqxx::nontransaction read(c);
    return read.exec(
                   "SELECT count(*) FROM pg_stat_activity WHERE pid = pg_backend_pid()"
                   " AND backend_xid IS NOT NULL")[0][0]
               .as<int64_t>() > 0;
  }
};

TEST_F(DeferredBeginTest, StatementsSentTogetherAreOneTransactionUntilItCommits) {
  sql("CREATE TABLE IF NOT EXISTS deferred_t (n int)");
  sql("TRUNCATE deferred_t");
  pqxx::connection c(pg_->url());
  {
    DeferredBeginWork work(c);
    const auto results = work.exec_together(
        {"INSERT INTO deferred_t VALUES (1)", "SELECT count(*) FROM deferred_t"});
    ASSERT_EQ(results.size(), 2u);
    EXPECT_EQ(results[1][0][0].as<int64_t>(), 1);  // the second sees the first
    EXPECT_EQ(count("deferred_t"), 0);             // not committed yet
    work.begun().exec("INSERT INTO deferred_t VALUES (2)");
    work.commit();
  }
  EXPECT_EQ(count("deferred_t"), 2);
  {
    DeferredBeginWork work(c);
    work.exec_together({"INSERT INTO deferred_t VALUES (3)"});
  }  // not committed: rolled back
  EXPECT_EQ(count("deferred_t"), 2);
  {
    DeferredBeginWork work(c);
    work.begun().exec("INSERT INTO deferred_t VALUES (4)");
  }
  EXPECT_EQ(count("deferred_t"), 2);
  sql("DROP TABLE deferred_t");
}

// A failed statement among those sent together throws its own error, with
// its SQLSTATE; what ran before it is rolled back, and the connection serves
// the next transaction.
TEST_F(DeferredBeginTest, AFailedStatementSentTogetherThrowsItsErrorAndRollsBack) {
  sql("CREATE TABLE IF NOT EXISTS deferred_t (n int)");
  sql("TRUNCATE deferred_t");
  pqxx::connection c(pg_->url());
  {
    DeferredBeginWork work(c);
    try {
      work.exec_together({"INSERT INTO deferred_t VALUES (1)", "SELECT 1 / 0", "SELECT 2"});
      ADD_FAILURE() << "a division by zero went unnoticed";
    } catch (const pqxx::sql_error& e) {
      EXPECT_EQ(e.sqlstate(), "22012");
    }
  }
  EXPECT_EQ(count("deferred_t"), 0);
  EXPECT_FALSE(in_transaction(c));
  {
    DeferredBeginWork work(c);
    const auto results = work.exec_together({"SELECT 41 + 1"});
    EXPECT_EQ(results.at(0)[0][0].as<int>(), 42);
    work.commit();
  }
  sql("DROP TABLE deferred_t");
}

TEST_F(DeferredBeginTest, NothingSentIsNothingToCommit) {
  pqxx::connection c(pg_->url());
  {
    DeferredBeginWork work(c);
    work.commit();
  }
  DeferredBeginWork next(c);  // the connection is free for the next one
  EXPECT_EQ(next.exec_together({"SELECT 1"}).at(0)[0][0].as<int>(), 1);
  next.commit();
}

// A statement prepared by name runs with its arguments as literals, whether
// or not the server has it yet (libpqxx prepares on first use).
TEST_F(DeferredBeginTest, AStatementPreparedByNameRunsWithLiteralArguments) {
  pqxx::connection c(pg_->url());
  c.prepare("deferred_sum", "SELECT $1::int + cardinality($2::text[])");
  DeferredBeginWork work(c);
  const std::string call = work.execute("deferred_sum", {"40", work.quote("{\"a'b\",c}")});
  EXPECT_EQ(call, "EXECUTE deferred_sum(40, '{\"a''b\",c}')");
  const auto results = work.exec_together({call, call});
  EXPECT_EQ(results.at(0)[0][0].as<int>(), 42);
  EXPECT_EQ(results.at(1)[0][0].as<int>(), 42);
  work.commit();
}

}  // namespace
}  // namespace brickwork::testing
