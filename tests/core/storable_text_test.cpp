#include "daemon/core/storable_text.hpp"

#include <gtest/gtest.h>

namespace brickwork {
namespace {

namespace json = boost::json;

TEST(StorableText, NulAndBadBytesBecomeTheReplacementCharacter) {
  EXPECT_EQ(storable_text(std::string("a\0b", 3)), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(storable_text("a\xff" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(storable_text("\xed\xa0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate
  EXPECT_EQ(storable_text("caf\xc3\xa9"), "caf\xc3\xa9");
}

TEST(StorableText, CutAtACharacterBoundaryEndingWithAnEllipsis) {
  EXPECT_EQ(storable_text("abcdef", 6), "abcdef");
  EXPECT_EQ(storable_text("abcdefg", 6), "abc...");
  // "é" is two bytes: never cut in half.
  EXPECT_EQ(storable_text("ab\xc3\xa9\xc3\xa9xyz", 6), "ab...");
  EXPECT_EQ(storable_text("ab\xc3\xa9\xc3\xa9xyz", 7), "ab\xc3\xa9...");
  const std::string long_text(100'000, 'x');
  EXPECT_EQ(storable_text(long_text, kMaxErrorTextBytes).size(), kMaxErrorTextBytes);
}

TEST(StorableText, NulInJsonIsFoundAndReplacedInStringsAndKeys) {
  json::value v = json::parse(R"({"a":[1,{"b":"x\u0000y"}],"k\u0000":"v","ok":"\ufffd"})");
  EXPECT_TRUE(holds_nul(v));
  replace_nul(v);
  EXPECT_FALSE(holds_nul(v));
  EXPECT_EQ(v.at("a").at(1).at("b"), "x\xEF\xBF\xBDy");
  EXPECT_EQ(v.at("k\xEF\xBF\xBD"), "v");
  EXPECT_EQ(v.at("ok"), "\xEF\xBF\xBD");
  EXPECT_FALSE(holds_nul(json::parse(R"({"a":"\u0001"})")));
}

}  // namespace
}  // namespace brickwork
