#pragma once
// Authenticated encryption of secrets brickwork must keep at rest (sensitive
// step outputs, contract 6.3; outbox records made from them). AES-256-GCM with
// a random nonce, keyed from callbacks.secret, so that a copy of the database
// alone does not reveal them.
#include <optional>
#include <string>
#include <string_view>

namespace brickwork {

class SecretBox {
 public:
  // The key is HMAC-SHA256(secret, a fixed label): a different key from the
  // callback tokens' although both come from one configured secret.
  explicit SecretBox(std::string_view secret);

  // "bwenc1:" + base64(nonce | ciphertext | tag). `context` (e.g. the
  // workflow id and step name) is authenticated but not stored: a sealed
  // value copied to another row does not open there.
  std::string seal(std::string_view plaintext, std::string_view context) const;
  // Nothing when `sealed` is not ours, was altered, or was sealed under
  // another key or context.
  std::optional<std::string> open(std::string_view sealed, std::string_view context) const;

  static bool is_sealed(std::string_view text) { return text.starts_with(kPrefix); }
  static constexpr std::string_view kPrefix = "bwenc1:";

 private:
  unsigned char key_[32];
};

}  // namespace brickwork
