#include "daemon/core/secret_box.hpp"

#include "daemon/core/key_id.hpp"

#include <gtest/gtest.h>

namespace brickwork {
namespace {

TEST(SecretBox, OpensWhatItSealedAndHidesThePlaintext) {
  const SecretBox box("a-long-callback-secret-of-32-bytes!!");
  const std::string secret = R"({"activation_url":"https://ws/delta_sharing/retrieve_config.html?abc"})";
  const std::string sealed = box.seal(secret, "wf-1/provision");
  EXPECT_TRUE(SecretBox::is_sealed(sealed));
  EXPECT_EQ(sealed.find("retrieve_config"), std::string::npos);
  EXPECT_EQ(box.open(sealed, "wf-1/provision"), secret);
  // A fresh nonce each time: equal secrets do not look equal at rest.
  EXPECT_NE(box.seal(secret, "wf-1/provision"), sealed);
  EXPECT_EQ(box.open(box.seal("", "c"), "c"), "");
}

TEST(SecretBox, RefusesAnotherKeyAnotherContextOrATamperedValue) {
  const SecretBox box("secret-one-secret-one-secret-one");
  const std::string sealed = box.seal("value", "wf-1/step");
  EXPECT_EQ(SecretBox("secret-two-secret-two-secret-two").open(sealed, "wf-1/step"), std::nullopt);
  EXPECT_EQ(box.open(sealed, "wf-2/step"), std::nullopt);
  std::string tampered = sealed;
  tampered[tampered.size() - 6] = tampered[tampered.size() - 6] == 'A' ? 'B' : 'A';
  EXPECT_EQ(box.open(tampered, "wf-1/step"), std::nullopt);
  EXPECT_EQ(box.open("bwenc1:***", "wf-1/step"), std::nullopt);
  EXPECT_EQ(box.open("plain text", "wf-1/step"), std::nullopt);
}

}  // namespace
}  // namespace brickwork

namespace brickwork {
namespace {

const std::string kSecretBefore = "the-secret-before-the-rotation-0123456789";
const std::string kSecretAfter = "the-secret-after-the-rotation-0123456789";

TEST(SecretBoxRotation, AValueSealedWithTheOldSecretOpensAfterRotation) {
  const std::string sealed = SecretBox(kSecretBefore).seal("the link", "wf-1/provision");
  EXPECT_EQ(SecretBox(kSecretAfter).open(sealed, "wf-1/provision"), std::nullopt);
  EXPECT_EQ(SecretBox(kSecretAfter, {kSecretBefore}).open(sealed, "wf-1/provision"), "the link");
  EXPECT_EQ(SecretBox(kSecretAfter, {kSecretBefore}).open(sealed, "wf-2/provision"), std::nullopt);
}

TEST(SecretBoxRotation, NewSealsNameAndUseTheCurrentKey) {
  const SecretBox rotated(kSecretAfter, {kSecretBefore});
  const std::string sealed = rotated.seal("the link", "wf-1/provision");
  EXPECT_EQ(sealed.rfind("bwenc2:" + key_id_of(kSecretAfter) + ":", 0), 0u) << sealed;
  EXPECT_EQ(SecretBox(kSecretAfter).open(sealed, "wf-1/provision"), "the link");
  EXPECT_EQ(SecretBox(kSecretBefore).open(sealed, "wf-1/provision"), std::nullopt);
  // The named key is the one tried: another id does not open it.
  std::string renamed = sealed;
  renamed.replace(7, 8, key_id_of(kSecretBefore));
  EXPECT_EQ(rotated.open(renamed, "wf-1/provision"), std::nullopt);
}

// Sealed before key ids: "bwenc1:" + base64, no key named; every key is tried.
TEST(SecretBoxRotation, ValuesSealedBeforeKeyIdsStillOpen) {
  // Made by the previous version's SecretBox(kSecretBefore).seal("the link", "wf-1/provision").
  const std::string unnamed = "bwenc1:bh+g+hG1stEhIW118MfjFjr3MX+oquZ3rLsvyNxbHr0I9SZW";
  EXPECT_TRUE(SecretBox::is_sealed(unnamed));
  EXPECT_EQ(SecretBox(kSecretBefore).open(unnamed, "wf-1/provision"), "the link");
  EXPECT_EQ(SecretBox(kSecretAfter, {kSecretBefore}).open(unnamed, "wf-1/provision"), "the link");
  EXPECT_EQ(SecretBox(kSecretAfter).open(unnamed, "wf-1/provision"), std::nullopt);
}

}  // namespace
}  // namespace brickwork
