#include "daemon/store/drain_cursor.hpp"

#include <gtest/gtest.h>

namespace brickwork::store_detail {
namespace {

using Read = DrainCursor::Read;

TEST(DrainCursor, MovesPastARoundOnlyOnceEveryTransactionOpenAtItsReadEnded) {
  DrainCursor cursor;
  // Read ids 1-3 while transactions 100-109 may still commit smaller ones.
  cursor.advance(Read{100, 110, 3}, {1, 2, 3}, false, false);
  EXPECT_EQ(cursor.after(), 0);
  cursor.advance(Read{105, 112, 3}, {}, false, false);  // some still open
  EXPECT_EQ(cursor.after(), 0);
  cursor.advance(Read{110, 112, 3}, {}, false, false);  // all ended
  EXPECT_EQ(cursor.after(), 3);
}

TEST(DrainCursor, AFullReadCoversOnlyUpToItsLastRow) {
  DrainCursor cursor;
  cursor.advance(Read{100, 110, 50}, {1, 2, 3, 40}, false, false);
  // The next read stopped at its limit at id 20: 21-40 were not read then.
  cursor.advance(Read{120, 121, 50}, {10, 20}, true, false);
  EXPECT_EQ(cursor.after(), 20);
  cursor.advance(Read{130, 131, 50}, {}, false, false);
  EXPECT_EQ(cursor.after(), 40);
}

TEST(DrainCursor, StaysWhileRowsStayBehind) {
  DrainCursor cursor;
  cursor.advance(Read{100, 110, 3}, {1, 2, 3}, false, false);
  cursor.advance(Read{120, 121, 5}, {4, 5}, false, true);  // 4 not confirmed
  EXPECT_EQ(cursor.after(), 0);
  cursor.advance(Read{130, 131, 5}, {}, false, true);
  EXPECT_EQ(cursor.after(), 0);
}

TEST(DrainCursor, StartsOverWhenTheSequenceWasReset) {
  DrainCursor cursor;
  cursor.advance(Read{100, 110, 3}, {1, 2, 3}, false, false);
  cursor.advance(Read{120, 121, 3}, {}, false, false);
  ASSERT_EQ(cursor.after(), 3);
  cursor.advance(Read{130, 131, 1}, {}, false, false);
  EXPECT_EQ(cursor.after(), 0);
}

}  // namespace
}  // namespace brickwork::store_detail
