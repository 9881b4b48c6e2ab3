// The write buffer alone, on a table of its own: rows queued in one
// transaction reach Postgres as few statements as keep their order.
#include "daemon/store/write_buffer.hpp"

#include <gtest/gtest.h>

#include "tests/store/store_fixture.hpp"

namespace brickwork::testing {
namespace {

using store_detail::WriteBuffer;

const WriteBuffer::RowKind kInsert{
    "I", "INSERT INTO wb (k, v) SELECT * FROM unnest($1::text[], $2::text[])", "wb", false};
const WriteBuffer::RowKind kUpsert{
    "U",
    "INSERT INTO wb (k, v) SELECT * FROM unnest($1::text[], $2::text[])"
    " ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
    "wb", true};
const WriteBuffer::RowKind kUpdate{
    "P", "UPDATE wb SET v = x.v FROM unnest($1::text[], $2::text[]) AS x(k, v) WHERE wb.k = x.k",
    "wb", true};

class WriteBufferTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    connection_ = std::make_unique<pqxx::connection>(pg_->url());
    tx_ = std::make_unique<pqxx::work>(*connection_);
    tx_->exec("CREATE TEMP TABLE wb (k text PRIMARY KEY, v text)");
  }

  std::map<std::string, std::optional<std::string>> table() {
    std::map<std::string, std::optional<std::string>> rows;
    for (const pqxx::row row : tx_->exec("SELECT k, v FROM wb")) {
      rows[row[0].as<std::string>()] =
          row[1].is_null() ? std::nullopt : std::optional<std::string>(row[1].as<std::string>());
    }
    return rows;
  }

  std::unique_ptr<pqxx::connection> connection_;
  std::unique_ptr<pqxx::work> tx_;
};

TEST_F(WriteBufferTest, ValuesArriveAsTheyWereWhateverTheyHold) {
  WriteBuffer writes(*tx_);
  const std::string awkward = "a \"quoted\", {braced} \\ back\\slashed héllo NULL";
  writes.add_row(kInsert, "", {"1", awkward});
  writes.add_row(kInsert, "", {"2", store_detail::NullableText()});
  writes.add_row(kInsert, "", {"3", ""});
  writes.flush();
  const auto rows = table();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows.at("1"), awkward);
  EXPECT_EQ(rows.at("2"), std::nullopt);
  EXPECT_EQ(rows.at("3"), "");
}

// One statement must not upsert a row twice ("cannot affect row a second time").
TEST_F(WriteBufferTest, ARowWhoseKeyIsQueuedAlreadyGoesInAStatementAfterIt) {
  WriteBuffer writes(*tx_);
  writes.add_row(kUpsert, "a", {"a", "first"});
  writes.add_row(kUpsert, "b", {"b", "only"});
  writes.add_row(kUpsert, "a", {"a", "second"});
  writes.flush();
  const auto rows = table();
  EXPECT_EQ(rows.at("a"), "second");
  EXPECT_EQ(rows.at("b"), "only");
}

// Parts of one statement see one snapshot: an UPDATE sharing a statement with
// the INSERT before it would find nothing to update.
TEST_F(WriteBufferTest, AKindThatReadsItsTableSeesWhatWasQueuedBeforeIt) {
  WriteBuffer writes(*tx_);
  writes.add_row(kInsert, "a", {"a", "inserted"});
  writes.add_row(kUpdate, "a", {"a", "updated"});
  writes.flush();
  EXPECT_EQ(table().at("a"), "updated");
}

// What is queued at the end goes with the commit: the same statements in
// the same order as flush() sends them.
TEST_F(WriteBufferTest, WhatIsQueuedAtTheEndGoesWithTheCommitAsFlushSendsIt) {
  sql("CREATE TABLE IF NOT EXISTS wb_commit (k text PRIMARY KEY, v text)");
  sql("TRUNCATE wb_commit");
  const WriteBuffer::RowKind insert{
      "I", "INSERT INTO wb_commit (k, v) SELECT * FROM unnest($1::text[], $2::text[])", "wb_commit",
      false};
  const WriteBuffer::RowKind update{
      "P",
      "UPDATE wb_commit SET v = x.v FROM unnest($1::text[], $2::text[]) AS x(k, v)"
      " WHERE wb_commit.k = x.k",
      "wb_commit", true};
  pqxx::connection c(pg_->url());
  {
    store_detail::DeferredBeginWork work(c);
    WriteBuffer writes([&work]() -> pqxx::transaction_base& { return work.begun(); });
    writes.add("INSERT INTO wb_commit (k, v) VALUES ($1, $2)", {"single", "s"});
    writes.add_row(insert, "a", {"a", "inserted"});
    writes.add_row(update, "a", {"a", "updated"});
    const std::vector<store_detail::PendingWrite> pending = writes.take_for_commit();
    ASSERT_EQ(pending.size(), 3u);
    EXPECT_EQ(pending[0].name, "");  // a single statement goes unnamed, as exec_params sends it
    EXPECT_EQ(pending[1].name, "write_I");
    EXPECT_EQ(pending[2].name, "write_P");
    EXPECT_TRUE(writes.take_for_commit().empty());  // taken once
    EXPECT_EQ(count("wb_commit"), 0);               // nothing sent yet
    work.commit_with(pending);
  }
  EXPECT_EQ(count("wb_commit"), 2);
  EXPECT_EQ(sql("SELECT v FROM wb_commit WHERE k = 'a'")[0][0].as<std::string>(), "updated");
  sql("DROP TABLE wb_commit");
}

TEST(WriteBufferStatements, ParametersAreRenumberedAfterThoseOfTheKindsBefore) {
  EXPECT_EQ(WriteBuffer::renumbered("f($1, $2::int[], $10) || '$'", 3),
            "f($4, $5::int[], $13) || '$'");
  EXPECT_EQ(WriteBuffer::renumbered("$1", 0), "$1");
}

}  // namespace
}  // namespace brickwork::testing
