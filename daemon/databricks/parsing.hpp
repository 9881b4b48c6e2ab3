#pragma once
// Small helpers shared by the client, its credential lookup and the
// response parsers.
#include <boost/json.hpp>

#include <cctype>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/core/json_limits.hpp"
#include "daemon/core/result.hpp"
#include "daemon/core/storable_text.hpp"

namespace brickwork::databricks_parsing {

using brickwork::as_int64;

inline std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// Percent-encodes a query-string value: RFC 3986 unreserved characters stay,
// every other byte becomes %XX (so '+', '&', '=', '/' and spaces in a job
// name or a page token reach the server as they were).
inline std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                            c == '~';
    if (unreserved) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0x0F];
    }
  }
  return out;
}

// The next_page_token of a paged response: "" when absent, null or empty
// (the last page); an error when it is there but not a string.
inline Result<std::string> next_page_token(const boost::json::value& body, std::string_view what) {
  const boost::json::object* o = body.if_object();
  const boost::json::value* t = o != nullptr ? o->if_contains("next_page_token") : nullptr;
  if (t == nullptr || t->is_null()) return std::string();
  if (!t->is_string()) {
    return Error{ErrorKind::kInvalidInput, "bad_response",
                 std::string(what) + ": next_page_token is not a string"};
  }
  return std::string(t->get_string());
}

// Error texts and state messages from Databricks are cut at
// kMaxErrorTextBytes (storable_text.hpp); error codes shorter still.
inline constexpr size_t kMaxErrorCodeBytes = 256;

// Paged calls stop here even if the server keeps answering with new tokens
// (a job has at most a few thousand tasks; a name matches a handful of jobs).
inline constexpr int kMaxPages = 1000;

}  // namespace brickwork::databricks_parsing
