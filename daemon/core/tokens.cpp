#include "daemon/core/tokens.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "daemon/core/base64.hpp"

namespace brickwork {

std::string TokenMinter::mac(std::string_view purpose, std::string_view workflow_id,
                             std::string_view step, int32_t attempt) const {
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
  HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &digest_len);
  return std::string(reinterpret_cast<const char*>(digest), digest_len);
}

std::string TokenMinter::callback_token(std::string_view workflow_id, std::string_view step,
                                        int32_t attempt) const {
  return std::to_string(attempt) + "." + base64url(mac("callback", workflow_id, step, attempt));
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
  const std::string expected = callback_token(workflow_id, step, attempt);
  if (token.size() != expected.size() ||
      CRYPTO_memcmp(token.data(), expected.data(), expected.size()) != 0) {
    return std::nullopt;
  }
  return attempt;
}

std::string TokenMinter::idempotency_token(std::string_view workflow_id, std::string_view step,
                                           int32_t attempt) const {
  const std::string raw = mac("idempotency", workflow_id, step, attempt);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "bw1-";
  for (size_t i = 0; i < 20; ++i) {
    const auto byte = static_cast<unsigned char>(raw[i]);
    out += kHex[byte >> 4];
    out += kHex[byte & 15];
  }
  return out;
}

}  // namespace brickwork
