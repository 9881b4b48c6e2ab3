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

namespace brickwork {
namespace {

const std::string kOldSecret = "the-secret-before-the-rotation-0123456789";
const std::string kNewSecret = "the-secret-after-the-rotation-0123456789";

// A rotation: callbacks.secret becomes kNewSecret, kOldSecret moves to previous_secrets.
TEST(TokenRotation, ATokenMadeWithAPreviousSecretIsStillAccepted) {
  const std::string before = TokenMinter(kOldSecret).callback_token("order-1", "transform", 3);
  const TokenMinter rotated(kNewSecret, {kOldSecret});
  EXPECT_EQ(rotated.verify_callback_token(before, "order-1", "transform"), 3);
  EXPECT_FALSE(rotated.verify_callback_token(before, "order-1", "extract"));
  // New tokens use the new secret, which a daemon without it refuses.
  const std::string after = rotated.callback_token("order-1", "transform", 3);
  EXPECT_NE(after, before);
  EXPECT_EQ(TokenMinter(kNewSecret).verify_callback_token(after, "order-1", "transform"), 3);
  EXPECT_FALSE(TokenMinter(kOldSecret).verify_callback_token(after, "order-1", "transform"));
  // Once the old secret is dropped, its tokens are refused.
  EXPECT_FALSE(TokenMinter(kNewSecret).verify_callback_token(before, "order-1", "transform"));
}

TEST(TokenRotation, AnAttemptKeepsTheIdempotencyTokenOfTheKeyItStartedWith) {
  const TokenMinter before(kOldSecret);
  const std::string started_with = before.key_id();
  const std::string token = before.idempotency_token("order-1", "transform", 1, started_with);
  EXPECT_EQ(token, before.idempotency_token("order-1", "transform", 1));

  const TokenMinter rotated(kNewSecret, {kOldSecret});
  EXPECT_NE(rotated.key_id(), started_with);
  EXPECT_TRUE(rotated.has_key(started_with));
  EXPECT_EQ(rotated.idempotency_token("order-1", "transform", 1, started_with), token);
  // Attempts started after the rotation use the new secret.
  EXPECT_NE(rotated.idempotency_token("order-1", "transform", 1, rotated.key_id()), token);
  EXPECT_EQ(rotated.idempotency_token("order-1", "transform", 1),
            rotated.idempotency_token("order-1", "transform", 1, rotated.key_id()));
  // A key no longer configured falls back to the current secret.
  EXPECT_FALSE(TokenMinter(kNewSecret).has_key(started_with));
  EXPECT_EQ(TokenMinter(kNewSecret).idempotency_token("order-1", "transform", 1, started_with),
            rotated.idempotency_token("order-1", "transform", 1));
}

TEST(TokenRotation, KeyIdsAreShortStableAndDistinct) {
  EXPECT_EQ(TokenMinter(kOldSecret).key_id(), TokenMinter(kOldSecret, {kNewSecret}).key_id());
  EXPECT_NE(TokenMinter(kOldSecret).key_id(), TokenMinter(kNewSecret).key_id());
  EXPECT_EQ(TokenMinter(kOldSecret).key_id().size(), 8u);
  const std::string id = TokenMinter(kOldSecret).key_id();
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
}

}  // namespace
}  // namespace brickwork
