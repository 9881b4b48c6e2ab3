#include "daemon/core/escape.hpp"

#include <cstdint>

#include "daemon/core/utf8.hpp"

namespace brickwork {
namespace {

bool is_hidden_control(uint32_t cp) {
  return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
         (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

const char* named_escape(char c) {
  switch (c) {
    case '\\':
      return "\\\\";
    case '\n':
      return "\\n";
    case '\r':
      return "\\r";
    case '\t':
      return "\\t";
    default:
      return nullptr;
  }
}

void append_bytes_escaped(std::string& out, std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char ch : bytes) {
    const auto b = static_cast<unsigned char>(ch);
    out += "\\x";
    out += kHex[b >> 4];
    out += kHex[b & 0x0F];
  }
}

}  // namespace

std::string escape_control_characters(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (const char* named = named_escape(text[i])) {
      out += named;
      ++i;
      continue;
    }
    const Decoded d = decode_utf8(text, i);
    if (d.length == 0) {
      append_bytes_escaped(out, text.substr(i, 1));
      ++i;
    } else if (is_hidden_control(d.code_point)) {
      append_bytes_escaped(out, text.substr(i, d.length));
      i += d.length;
    } else {
      out.append(text.substr(i, d.length));
      i += d.length;
    }
  }
  return out;
}

}  // namespace brickwork
