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
const WriteBuffer::RowKind kReturning{
    "R", "INSERT INTO wb (k, v) SELECT * FROM unnest($1::text[], $2::text[]) RETURNING k", "wb",
    false, true};

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

TEST_F(WriteBufferTest, RowsOfAReturningKindComeBackAfterEveryOtherWrite) {
  WriteBuffer writes(*tx_);
  writes.add_row(kReturning, "", {"r1", "x"});
  writes.add_row(kInsert, "", {"i1", "y"});
  writes.add("INSERT INTO wb (k, v) VALUES ($1, $2)", {"single", "z"});
  const std::vector<pqxx::result> returned = writes.take_returned();
  ASSERT_EQ(returned.size(), 1u);
  ASSERT_EQ(returned[0].size(), 1u);
  EXPECT_EQ(returned[0][0][0].as<std::string>(), "r1");
  EXPECT_EQ(table().size(), 3u);
  EXPECT_TRUE(writes.take_returned().empty());  // taken once
}

TEST(WriteBufferStatements, ParametersAreRenumberedAfterThoseOfTheKindsBefore) {
  EXPECT_EQ(WriteBuffer::renumbered("f($1, $2::int[], $10) || '$'", 3),
            "f($4, $5::int[], $13) || '$'");
  EXPECT_EQ(WriteBuffer::renumbered("$1", 0), "$1");
}

}  // namespace
}  // namespace brickwork::testing
