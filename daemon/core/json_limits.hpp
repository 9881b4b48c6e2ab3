#pragma once
// One JSON nesting limit for every parser in brickwork: what inbound
// messages may carry must also be readable when it comes back from Postgres
// (a start whose input nested deeper than the store could read was stored
// and then never loaded again).
#include <boost/json.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>
#include <system_error>
#include <charconv>

namespace brickwork {

inline constexpr std::size_t kMaxJsonDepth = 64;

inline boost::json::parse_options json_parse_options() {
  boost::json::parse_options options;
  options.max_depth = kMaxJsonDepth;
  return options;
}

// Parses `text` with the common depth limit; `ec` is set on any error.
inline boost::json::value parse_json(std::string_view text, boost::system::error_code& ec) {
  return boost::json::parse(text, ec, {}, json_parse_options());
}

// The size of json::serialize(v), counted in small pieces: a limit on a
// large value is checked without a second copy of it in memory.
inline std::size_t serialized_size(const boost::json::value& v) {
  boost::json::serializer serializer;
  serializer.reset(&v);
  char buffer[4096];
  std::size_t size = 0;
  while (!serializer.done()) size += serializer.read(buffer, sizeof buffer).size();
  return size;
}

// A JSON integer that fits int64 (Databricks ids, epoch milliseconds); a
// uint64 above INT64_MAX is not one.
inline std::optional<int64_t> as_int64(const boost::json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return static_cast<int64_t>(v.get_uint64());
  }
  return std::nullopt;
}

// Decimal digits (an optional leading '-') that fit int64, and nothing else:
// "12abc", " 12", "" and "1e3" are not integers.
inline std::optional<int64_t> int64_from_text(std::string_view text) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty()) return std::nullopt;
  return value;
}

// A JSON integer, or a string holding one (a rendered template).
inline std::optional<int64_t> int64_from_json(const boost::json::value& v) {
  if (v.is_string()) return int64_from_text(std::string_view(v.get_string()));
  return as_int64(v);
}

}  // namespace brickwork
