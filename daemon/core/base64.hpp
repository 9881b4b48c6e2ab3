#pragma once
// Base64 (RFC 4648) for the places brickwork encodes bytes as text: HTTP Basic
// credentials, dead-letter payloads that are not UTF-8, and callback tokens;
// and the decoding of JWTs' parts.
#include <optional>
#include <string>
#include <string_view>

namespace brickwork {

// Standard alphabet with '=' padding.
std::string base64(std::string_view bytes);
// URL-safe alphabet ('-', '_'), no padding: fits in URLs and job parameters.
std::string base64url(std::string_view bytes);
// Either alphabet, padding optional (JWTs are base64url without it, but
// issuers differ); nullopt for any other character.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace brickwork
