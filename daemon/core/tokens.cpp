#include "daemon/core/tokens.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "daemon/core/base64.hpp"
#include "daemon/core/key_id.hpp"

namespace brickwork {

TokenMinter::TokenMinter(std::string secret, std::vector<std::string> previous_secrets) {
  keys_.push_back({key_id_of(secret), std::move(secret)});
  for (auto& previous : previous_secrets) {
    keys_.push_back({key_id_of(previous), std::move(previous)});
  }
}

bool TokenMinter::has_key(std::string_view key_id) const {
  for (const Key& key : keys_) {
    if (key.id == key_id) return true;
  }
  return false;
}

const TokenMinter::Key& TokenMinter::key_named(std::string_view key_id) const {
  for (const Key& key : keys_) {
    if (key.id == key_id) return key;
  }
  return keys_.front();
}

std::string TokenMinter::mac(const Key& key, std::string_view purpose, std::string_view workflow_id,
                             std::string_view step, int32_t attempt) {
  // Length-prefixed fields: no two (id, step) pairs can produce the same message.
  std::string message;
  for (std::string_view part : {purpose, workflow_id, step}) {
    message += std::to_string(part.size());
    message += ':';
    message += part;
  }
  message += std::to_string(attempt);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  HMAC(EVP_sha256(), key.secret.data(), static_cast<int>(key.secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &digest_len);
  return std::string(reinterpret_cast<const char*>(digest), digest_len);
}

std::string TokenMinter::callback_token(const Key& key, std::string_view workflow_id,
                                        std::string_view step, int32_t attempt) {
  return std::to_string(attempt) + "." +
         base64url(mac(key, "callback", workflow_id, step, attempt));
}

std::string TokenMinter::callback_token(std::string_view workflow_id, std::string_view step,
                                        int32_t attempt) const {
  return callback_token(keys_.front(), workflow_id, step, attempt);
}

std::optional<int32_t> TokenMinter::verify_callback_token(std::string_view token,
                                                          std::string_view workflow_id,
                                                          std::string_view step) const {
  const size_t dot = token.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot > 9) return std::nullopt;
  int32_t attempt = 0;
  for (char c : token.substr(0, dot)) {
    if (c < '0' || c > '9') return std::nullopt;
    attempt = attempt * 10 + (c - '0');
  }
  // Canonical digits only ("01." is not "1."), attempts start at 1.
  if (attempt < 1 || token[0] == '0') return std::nullopt;
  for (const Key& key : keys_) {
    const std::string expected = callback_token(key, workflow_id, step, attempt);
    if (token.size() == expected.size() &&
        CRYPTO_memcmp(token.data(), expected.data(), expected.size()) == 0) {
      return attempt;
    }
  }
  return std::nullopt;
}

std::string TokenMinter::idempotency_token(std::string_view workflow_id, std::string_view step,
                                           int32_t attempt, std::string_view key_id) const {
  const std::string raw = mac(key_named(key_id), "idempotency", workflow_id, step, attempt);
  return "bw1-" + hex_of(std::string_view(raw).substr(0, 20));
}

}  // namespace brickwork
