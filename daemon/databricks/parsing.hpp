#pragma once
// Small helpers shared by the client, its credential lookup and the runs/get
// parser.
#include <boost/json.hpp>

#include <cctype>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/core/json_limits.hpp"

namespace brickwork::databricks_parsing {

using brickwork::as_int64;

inline std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

}  // namespace brickwork::databricks_parsing
