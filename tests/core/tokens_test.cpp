#include "daemon/core/tokens.hpp"

#include <gtest/gtest.h>

namespace brickwork {
namespace {

TEST(TokenMinter, CallbackTokenIsStableAndBoundToAttempt) {
  TokenMinter minter("a-secret-of-enough-length");
  const auto token = minter.callback_token("order-1", "transform", 1);
  EXPECT_EQ(token, minter.callback_token("order-1", "transform", 1));
  EXPECT_EQ(token.size(), 43u);
  EXPECT_TRUE(minter.verify_callback_token(token, "order-1", "transform", 1));
  EXPECT_FALSE(minter.verify_callback_token(token, "order-1", "transform", 2));
  EXPECT_FALSE(minter.verify_callback_token(token, "order-1", "extract", 1));
  EXPECT_FALSE(minter.verify_callback_token(token, "order-2", "transform", 1));
  EXPECT_FALSE(minter.verify_callback_token("", "order-1", "transform", 1));
}

TEST(TokenMinter, DifferentSecretsDisagree) {
  TokenMinter a("secret-number-one-xxxx");
  TokenMinter b("secret-number-two-xxxx");
  EXPECT_NE(a.callback_token("w", "s", 1), b.callback_token("w", "s", 1));
  EXPECT_FALSE(b.verify_callback_token(a.callback_token("w", "s", 1), "w", "s", 1));
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
