#pragma once
// Strict UTF-8 decoding, one place for every reader of outside bytes (dead
// letters, escaping for logs and terminals).
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace brickwork {

// The code point of the valid UTF-8 sequence at s[i] and its length; length
// 0 when the bytes there are not valid UTF-8 (overlong, surrogate, above
// U+10FFFF, truncated).
struct Decoded {
  uint32_t code_point = 0;
  size_t length = 0;
};
Decoded decode_utf8(std::string_view s, size_t i);

}  // namespace brickwork
