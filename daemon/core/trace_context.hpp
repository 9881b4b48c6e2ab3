#pragma once
// W3C Trace Context (https://www.w3.org/TR/trace-context/): the one header
// brickwork carries from a command to what its workflow produces.
#include <optional>
#include <string>
#include <string_view>

namespace brickwork {

inline constexpr std::string_view kTraceparentHeader = "traceparent";

// `value` when it is a well-formed traceparent (version-traceid-parentid-flags
// in lowercase hex, neither id all zeros, version not ff); nothing otherwise:
// an invalid value is dropped, never refused.
std::optional<std::string> valid_traceparent(std::string_view value);

}  // namespace brickwork
