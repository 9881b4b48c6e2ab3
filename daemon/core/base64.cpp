#include "daemon/core/base64.hpp"

#include <cstdint>

namespace brickwork {
namespace {

std::string encode(std::string_view bytes, const char (&alphabet)[65], bool pad) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  for (size_t i = 0; i < n; i += 3) {
    const size_t left = n - i;  // 1, 2, or 3 and more
    uint32_t v = uint32_t{s[i]} << 16;
    if (left > 1) v |= uint32_t{s[i + 1]} << 8;
    if (left > 2) v |= s[i + 2];
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    if (left > 1) {
      out += alphabet[(v >> 6) & 63];
    } else if (pad) {
      out += '=';
    }
    if (left > 2) {
      out += alphabet[v & 63];
    } else if (pad) {
      out += '=';
    }
  }
  return out;
}

}  // namespace

std::string base64(std::string_view bytes) {
  return encode(bytes, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", true);
}

std::string base64url(std::string_view bytes) {
  return encode(bytes, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", false);
}

}  // namespace brickwork
