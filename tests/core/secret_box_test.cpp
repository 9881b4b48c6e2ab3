#include "daemon/core/secret_box.hpp"

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
