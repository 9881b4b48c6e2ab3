#include "daemon/core/time.hpp"

#include <gtest/gtest.h>

namespace brickwork {
namespace {

int64_t epoch_ms_of(std::string_view text) {
  auto t = parse_iso8601(text);
  EXPECT_TRUE(t.has_value()) << text;
  return t ? to_epoch_ms(*t) : -1;
}

// sleep.until documents RFC 3339: every offset names the same instant.
TEST(Rfc3339, AnyOffsetNamesTheSameInstant) {
  const int64_t utc = epoch_ms_of("2026-12-01T08:00:00Z");
  EXPECT_EQ(utc, 1796112000000);
  EXPECT_EQ(epoch_ms_of("2026-12-01T08:00:00z"), utc);
  EXPECT_EQ(epoch_ms_of("2026-12-01t08:00:00Z"), utc);
  EXPECT_EQ(epoch_ms_of("2026-12-01T08:00:00+00:00"), utc);
  EXPECT_EQ(epoch_ms_of("2026-12-01T08:00:00-00:00"), utc);
  EXPECT_EQ(epoch_ms_of("2026-12-01T10:00:00+02:00"), utc);
  EXPECT_EQ(epoch_ms_of("2026-12-01T02:30:00-05:30"), utc);
  EXPECT_EQ(epoch_ms_of("2026-12-02T07:59:00+23:59"), utc);
}

TEST(Rfc3339, FractionalSecondsOfAnyLengthKeepMilliseconds) {
  const int64_t utc = epoch_ms_of("2026-12-01T08:00:00Z");
  EXPECT_EQ(epoch_ms_of("2026-12-01T08:00:00.1Z"), utc + 100);
  EXPECT_EQ(epoch_ms_of("2026-12-01T08:00:00.120Z"), utc + 120);
  EXPECT_EQ(epoch_ms_of("2026-12-01T10:00:00.123456789+02:00"), utc + 123);
  EXPECT_EQ(epoch_ms_of(format_iso8601(from_epoch_ms(utc + 7))), utc + 7);
}

TEST(Rfc3339, RefusesWhatIsNotADateTimeWithAnOffset) {
  for (std::string_view bad :
       {"", "2026-12-01", "2026-12-01T08:00:00", "2026-12-01 08:00:00Z", "2026-12-01T08:00Z",
        "2026-12-01T08:00:00.Z", "2026-12-01T08:00:00+2:00", "2026-12-01T08:00:00+0200",
        "2026-12-01T08:00:00+24:00", "2026-13-01T08:00:00Z", "2026-12-01T25:00:00Z",
        "2026-12-01T08:00:00Zjunk", " 2026-12-01T08:00:00Z", "+026-12-01T08:00:00Z",
        "tomorrow"}) {
    EXPECT_FALSE(parse_iso8601(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace brickwork
