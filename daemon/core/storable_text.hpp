#pragma once
// Text from outside as Postgres can store it. jsonb refuses U+0000 and
// Postgres text refuses NUL and invalid UTF-8: one such character in a value
// fails the whole transaction that writes it. Inbound messages are refused
// for it where they are parsed; answers from Databricks are repaired with
// U+FFFD where they are parsed.
#include <boost/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace brickwork {

// Error texts from outside (Databricks messages, a step's error) are cut
// here: a stack trace can be megabytes, and step_failed repeats the text.
inline constexpr size_t kMaxErrorTextBytes = 8 * 1024;

inline constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD

// True when any string or key anywhere in `value` holds U+0000.
bool holds_nul(const boost::json::value& value);
bool holds_nul(const boost::json::object& object);

// Replaces U+0000 in every string and key of `value` with U+FFFD, in place.
void replace_nul(boost::json::value& value);

// `text` with U+0000 and every invalid UTF-8 byte replaced by U+FFFD, cut
// at a character boundary to at most `max_bytes` (a cut text ends "...").
std::string storable_text(std::string_view text, size_t max_bytes = SIZE_MAX);

}  // namespace brickwork
