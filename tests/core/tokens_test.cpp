#include "daemon/core/tokens.hpp"

#include <gtest/gtest.h>

namespace brickwork {
namespace {

TEST(TokenMinter, CallbackTokenIsStableAndBoundToAttempt) {
  TokenMinter minter("a-secret-of-enough-length");
  const auto token = minter.callback_token("order-1", "transform", 1);
  EXPECT_EQ(token, minter.callback_token("order-1", "transform", 1));
  EXPECT_EQ(token.size(), 2u + 43u);
  EXPECT_EQ(minter.verify_callback_token(token, "order-1", "transform"), 1);
  EXPECT_EQ(minter.verify_callback_token(minter.callback_token("order-1", "transform", 12),
                                         "order-1", "transform"),
            12);
  EXPECT_FALSE(minter.verify_callback_token(token, "order-1", "extract"));
  EXPECT_FALSE(minter.verify_callback_token(token, "order-2", "transform"));
  EXPECT_FALSE(minter.verify_callback_token("", "order-1", "transform"));
}

TEST(TokenMinter, TheAttemptInClearIsCoveredByTheMac) {
  TokenMinter minter("a-secret-of-enough-length");
  const auto token = minter.callback_token("order-1", "transform", 1);
  const std::string mac = token.substr(token.find('.'));
  EXPECT_FALSE(minter.verify_callback_token("2" + mac, "order-1", "transform"));
  EXPECT_FALSE(minter.verify_callback_token("01" + mac, "order-1", "transform"));
  EXPECT_FALSE(minter.verify_callback_token("0" + mac, "order-1", "transform"));
  EXPECT_FALSE(minter.verify_callback_token("99999999999" + mac, "order-1", "transform"));
  EXPECT_FALSE(minter.verify_callback_token(mac, "order-1", "transform"));
  EXPECT_FALSE(minter.verify_callback_token(token.substr(2), "order-1", "transform"));
}

TEST(TokenMinter, DifferentSecretsDisagree) {
  TokenMinter a("secret-number-one-xxxx");
  TokenMinter b("secret-number-two-xxxx");
  EXPECT_NE(a.callback_token("w", "s", 1), b.callback_token("w", "s", 1));
  EXPECT_FALSE(b.verify_callback_token(a.callback_token("w", "s", 1), "w", "s"));
}

TEST(TokenMinter, FieldBoundariesCannotBeShifted) {
  TokenMinter minter("a-secret-of-enough-length");
  EXPECT_NE(minter.callback_token("ab", "c", 1), minter.callback_token("a", "bc", 1));
  EXPECT_NE(minter.idempotency_token("w", "s", 1), minter.idempotency_token("w", "s", 11));
}

TEST(TokenMinter, IdempotencyTokenFitsDatabricksLimit) {
  TokenMinter minter("a-secret-of-enough-length");
  const auto token = minter.idempotency_token(std::string(200, 'x'), std::string(100, 'y'), 7);
  EXPECT_LE(token.size(), 64u);
  EXPECT_EQ(token.rfind("bw1-", 0), 0u);
  EXPECT_EQ(token, minter.idempotency_token(std::string(200, 'x'), std::string(100, 'y'), 7));
  EXPECT_NE(token, minter.idempotency_token(std::string(200, 'x'), std::string(100, 'y'), 8));
}

}  // namespace
}  // namespace brickwork
