#include "daemon/core/loopback.hpp"

#include <gtest/gtest.h>

namespace brickwork {
namespace {

TEST(Loopback, NamesAndAddressesOfThisMachine) {
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_TRUE(is_loopback_host("LocalHost"));
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("127.1.2.3"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_TRUE(is_loopback_host("[::1]"));
}

TEST(Loopback, AnythingElseIsNot) {
  EXPECT_FALSE(is_loopback_host(""));
  EXPECT_FALSE(is_loopback_host("10.0.0.1"));
  EXPECT_FALSE(is_loopback_host("128.0.0.1"));
  EXPECT_FALSE(is_loopback_host("127.example.com"));  // a name, not an address
  EXPECT_FALSE(is_loopback_host("localhost.example.com"));
  EXPECT_FALSE(is_loopback_host("[::2]"));
  EXPECT_FALSE(is_loopback_host("adb-123.azuredatabricks.net"));
}

}  // namespace
}  // namespace brickwork
