#include "daemon/core/trace_context.hpp"

namespace brickwork {
namespace {

bool is_lower_hex(std::string_view text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool all_zeros(std::string_view text) { return text.find_first_not_of('0') == std::string_view::npos; }

}  // namespace

std::optional<std::string> valid_traceparent(std::string_view value) {
  // 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>
  constexpr size_t kLength = 55;
  if (value.size() != kLength || value[2] != '-' || value[35] != '-' || value[52] != '-') {
    return std::nullopt;
  }
  const std::string_view version = value.substr(0, 2);
  const std::string_view trace_id = value.substr(3, 32);
  const std::string_view parent_id = value.substr(36, 16);
  const std::string_view flags = value.substr(53, 2);
  if (!is_lower_hex(version) || !is_lower_hex(trace_id) || !is_lower_hex(parent_id) ||
      !is_lower_hex(flags) || version == "ff" || all_zeros(trace_id) || all_zeros(parent_id)) {
    return std::nullopt;
  }
  return std::string(value);
}

}  // namespace brickwork
