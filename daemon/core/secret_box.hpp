#pragma once
// Authenticated encryption of secrets brickwork must keep at rest (sensitive
// step outputs, contract 6.3; outbox records made from them). AES-256-GCM with
// a random nonce, keyed from callbacks.secret, so that a copy of the database
// alone does not reveal them. Values sealed under a secret now listed in
// callbacks.previous_secrets still open; new ones use the current secret.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace brickwork {

class SecretBox {
 public:
  // Each key is HMAC-SHA256(secret, a fixed label): a different key from the
  // callback tokens' although both come from one configured secret.
  explicit SecretBox(std::string_view secret,
                     const std::vector<std::string>& previous_secrets = {});

  // "bwenc2:<key id>:" + base64(nonce | ciphertext | tag), under the current
  // secret, named by its key id (key_id_of). `context` (e.g. the workflow id
  // and step name) is authenticated but not stored: a sealed value copied to
  // another row does not open there.
  std::string seal(std::string_view plaintext, std::string_view context) const;
  // Nothing when `sealed` is not ours, was altered, or was sealed under a key
  // or context not at hand. A value sealed before key ids ("bwenc1:" +
  // base64) is tried with every key.
  std::optional<std::string> open(std::string_view sealed, std::string_view context) const;

  static bool is_sealed(std::string_view text) {
    return text.starts_with(kPrefix) || text.starts_with(kUnnamedPrefix);
  }
  static constexpr std::string_view kPrefix = "bwenc2:";
  static constexpr std::string_view kUnnamedPrefix = "bwenc1:";  // sealed before key ids

 private:
  struct Key {
    std::string id;
    unsigned char bytes[32];
  };
  std::vector<Key> keys_;  // the current secret's first
};

}  // namespace brickwork
