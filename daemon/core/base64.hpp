#pragma once
// Base64 (RFC 4648) for the places brickwork encodes bytes as text: HTTP Basic
// credentials, dead-letter payloads that are not UTF-8, and callback tokens.
#include <string>
#include <string_view>

namespace brickwork {

// Standard alphabet with '=' padding.
std::string base64(std::string_view bytes);
// URL-safe alphabet ('-', '_'), no padding: fits in URLs and job parameters.
std::string base64url(std::string_view bytes);

}  // namespace brickwork
