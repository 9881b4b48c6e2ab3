#include "daemon/core/storable_text.hpp"

#include <algorithm>

#include "daemon/core/utf8.hpp"

namespace brickwork {
namespace json = boost::json;

namespace {

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

std::string without_nul(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    if (c == '\0') {
      out += kReplacementCharacter;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

// The parsers bound nesting (kMaxJsonDepth), so recursion here is bounded too.
bool holds_nul(const json::value& value) {
  switch (value.kind()) {
    case json::kind::string:
      return has_nul(value.get_string());
    case json::kind::array:
      for (const auto& item : value.get_array()) {
        if (holds_nul(item)) return true;
      }
      return false;
    case json::kind::object:
      return holds_nul(value.get_object());
    default:
      return false;
  }
}

bool holds_nul(const json::object& object) {
  for (const auto& [key, item] : object) {
    if (has_nul(key) || holds_nul(item)) return true;
  }
  return false;
}

void replace_nul(json::value& value) {
  switch (value.kind()) {
    case json::kind::string:
      if (has_nul(value.get_string())) value = without_nul(value.get_string());
      return;
    case json::kind::array:
      for (auto& item : value.get_array()) replace_nul(item);
      return;
    case json::kind::object: {
      json::object& o = value.get_object();
      bool nul_in_key = false;
      for (auto& [key, item] : o) {
        nul_in_key = nul_in_key || has_nul(key);
        replace_nul(item);
      }
      if (!nul_in_key) return;
      // Keys cannot change in place: rebuild the object (rare).
      json::object repaired(o.storage());
      for (auto& [key, item] : o) repaired[without_nul(key)] = std::move(item);
      o = std::move(repaired);
      return;
    }
    default:
      return;
  }
}

std::string storable_text(std::string_view text, size_t max_bytes) {
  constexpr std::string_view kEllipsis = "...";
  std::string out;
  out.reserve(std::min(text.size(), max_bytes));
  // Room for the ellipsis is kept only when the text turns out too long.
  const size_t budget = max_bytes < kEllipsis.size() ? max_bytes : max_bytes - kEllipsis.size();
  size_t kept_within_budget = 0;  // out.size() at the last character within `budget`
  for (size_t i = 0; i < text.size();) {
    const Decoded d = decode_utf8(text, i);
    const bool bad = d.length == 0 || d.code_point == 0;
    const std::string_view piece = bad ? kReplacementCharacter : text.substr(i, d.length);
    if (out.size() + piece.size() > max_bytes) {
      out.resize(kept_within_budget);
      if (max_bytes >= kEllipsis.size()) out += kEllipsis;
      return out;
    }
    out += piece;
    if (out.size() <= budget) kept_within_budget = out.size();
    i += bad ? 1 : d.length;
  }
  return out;
}

}  // namespace brickwork
