#include "daemon/core/key_id.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace brickwork {

std::string key_id_of(std::string_view secret) {
  constexpr std::string_view kLabel = "brickwork key id v1";
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(kLabel.data()), kLabel.size(), digest, &length);
  return hex_of(std::string_view(reinterpret_cast<const char*>(digest), 4));
}

std::string hex_of(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    out += kHex[byte >> 4];
    out += kHex[byte & 15];
  }
  return out;
}

}  // namespace brickwork
