#pragma once
// A short public name for a callbacks secret, stored next to what it keyed
// (a sealed value, an attempt's run call), so that after a rotation the
// right one is found among callbacks.secret and callbacks.previous_secrets.
#include <string>
#include <string_view>

namespace brickwork {

// 8 hex characters of HMAC-SHA256(secret, a fixed label): the same secret
// always has the same id, and the id tells nothing usable about the secret.
std::string key_id_of(std::string_view secret);

// Lower-case hex of `bytes`.
std::string hex_of(std::string_view bytes);

}  // namespace brickwork
