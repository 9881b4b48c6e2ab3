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

// The last writes travel with COMMIT: their values as parameters, a named
// statement prepared on first use, BEGIN with them if nothing was sent; the
// rows they return come back.
TEST_F(DeferredBeginTest, WritesSentWithTheCommitAreCommitted) {
  sql("CREATE TABLE IF NOT EXISTS deferred_w (k text PRIMARY KEY, v text)");
  sql("TRUNCATE deferred_w");
  pqxx::connection c(pg_->url());
  using store_detail::PendingWrite;
  const std::string insert = "INSERT INTO deferred_w VALUES ($1, $2)";
  {
    DeferredBeginWork work(c);
    work.exec_together({"SELECT 1"});
    work.commit_with({PendingWrite{"deferred_insert", insert, {"a", "it's \\ \"quoted\""}},
                      PendingWrite{"", insert, {"b", {}}}});
  }
  EXPECT_FALSE(in_transaction(c));
  {
    DeferredBeginWork work(c);  // nothing sent before: BEGIN goes with them
    const auto rows = work.commit_with(
        {PendingWrite{"deferred_insert", insert, {"c", "3"}},
         PendingWrite{"", "SELECT k, NULL::text FROM deferred_w WHERE k = $1", {"c"}}});
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_TRUE(rows[0].empty());  // an INSERT returns no rows
    ASSERT_EQ(rows[1].size(), 1u);
    EXPECT_EQ(rows[1][0], (std::vector<std::optional<std::string>>{"c", std::nullopt}));
  }
  EXPECT_EQ(count("deferred_w"), 3);
  EXPECT_EQ(sql("SELECT v FROM deferred_w WHERE k = 'a'")[0][0].as<std::string>(),
            "it's \\ \"quoted\"");
  EXPECT_TRUE(sql("SELECT v FROM deferred_w WHERE k = 'b'")[0][0].is_null());
  DeferredBeginWork next(c);  // the connection left pipeline mode
  EXPECT_EQ(next.exec_together({"SELECT count(*) FROM deferred_w"}).at(0)[0][0].as<int>(), 3);
  next.commit();
  sql("DROP TABLE deferred_w");
}

// A write that fails throws what exec would have thrown, by SQLSTATE (the
// callers retry a 40001 and recognise a foreign key violation); nothing of
// the transaction is committed and the connection serves the next one.
TEST_F(DeferredBeginTest, AWriteSentWithTheCommitThatFailsCommitsNothing) {
  sql("CREATE TABLE IF NOT EXISTS deferred_w (k text PRIMARY KEY, v text)");
  sql("TRUNCATE deferred_w");
  sql("INSERT INTO deferred_w VALUES ('taken', 'x')");
  sql("CREATE OR REPLACE FUNCTION deferred_conflict() RETURNS int LANGUAGE plpgsql AS"
      " $$BEGIN RAISE EXCEPTION 'moved' USING ERRCODE = '40001'; END$$");
  pqxx::connection c(pg_->url());
  using store_detail::PendingWrite;
  const std::string insert = "INSERT INTO deferred_w VALUES ($1, $2)";
  {
    DeferredBeginWork work(c);
    work.exec_together({"INSERT INTO deferred_w VALUES ('first', 'y')"});
    try {
      work.commit_with({PendingWrite{"", insert, {"second", "z"}},
                        PendingWrite{"deferred_insert2", insert, {"taken", "again"}},
                        PendingWrite{"", insert, {"third", "w"}}});
      ADD_FAILURE() << "a duplicate key went unnoticed";
    } catch (const pqxx::unique_violation& e) {
      EXPECT_EQ(e.sqlstate(), "23505");
      EXPECT_EQ(e.query(), insert);
    }
  }
  EXPECT_FALSE(in_transaction(c));
  EXPECT_EQ(count("deferred_w"), 1);
  {
    DeferredBeginWork work(c);
    work.exec_together({"SELECT 1"});
    EXPECT_THROW(work.commit_with({PendingWrite{"", "SELECT deferred_conflict()", {}}}),
                 pqxx::serialization_failure);
  }
  {
    DeferredBeginWork work(c);
    work.commit_with({PendingWrite{"", insert, {"after", "v"}}});
  }
  EXPECT_EQ(count("deferred_w"), 2);
  sql("DROP FUNCTION deferred_conflict()");
  sql("DROP TABLE deferred_w");
}

// A connection lost before COMMIT answered: the outcome is unknown, as for
// a commit sent alone.
TEST_F(DeferredBeginTest, AConnectionLostWithTheCommitIsInDoubt) {
  sql("CREATE TABLE IF NOT EXISTS deferred_w (k text PRIMARY KEY, v text)");
  pqxx::connection c(pg_->url());
  DeferredBeginWork work(c);
  const int pid = work.exec_together({"SELECT pg_backend_pid()"}).at(0)[0][0].as<int>();
  sql("SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
  EXPECT_THROW(work.commit_with({store_detail::PendingWrite{
                   "", "INSERT INTO deferred_w VALUES ($1, $2)", {"lost", "v"}}}),
               pqxx::in_doubt_error);
  sql("DROP TABLE deferred_w");
}

}  // namespace
}  // namespace brickwork::testing
