#pragma once
// Parsing the bytes of inbound Kafka messages (contract sections 2 and 3)
// into typed values, or into a dead-letter reason. These take bytes from
// outside: they never throw, never crash and bound their recursion.
#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/core/result.hpp"
#include "daemon/core/time.hpp"
#include "daemon/engine/engine.hpp"

namespace brickwork {

namespace json = boost::json;

inline constexpr size_t kMaxInputBytes = 1024 * 1024;                  // `input`, serialized
inline constexpr size_t kMaxMessageBytes = kMaxInputBytes + 64 * 1024;  // a whole message
// Dead letters keep at most this much of the original bytes (then
// "payload_truncated": true and "payload_bytes": the original size).
inline constexpr size_t kMaxDeadLetterPayloadBytes = 256 * 1024;

// One command from the commands topic. Fields not used by `type` are empty.
struct ParsedCommand {
  std::string type;      // start | cancel | retry | signal
  std::string id;
  std::string workflow;  // start
  json::object input;    // start (default {})
  std::string reason;    // cancel (optional)
  std::string name;      // signal
  json::value value;     // signal (default null)
};

// A job_completed event from the events topic (token not yet verified).
struct ParsedCompletion {
  std::string workflow_id;
  std::string step;
  std::string token;
  RunResult state = RunResult::kSuccess;
  std::optional<int64_t> run_id;
  json::object output;  // default {}
  std::string message;
};

// On failure the Error's `code` is the dead-letter reason: too_large,
// invalid_json, not_object, missing_field, invalid_field, unknown_type.
Result<ParsedCommand> parse_command(std::string_view payload, size_t max_bytes = kMaxMessageBytes);
Result<ParsedCompletion> parse_completion(std::string_view payload,
                                          size_t max_bytes = kMaxMessageBytes);

// The `id` of a command that could not be parsed, when the bytes are a JSON
// object whose `id` is a valid workflow id: contract section 4 publishes
// command_rejected for it.
std::optional<std::string> extract_id(std::string_view payload);

// `[A-Za-z0-9._:-]{1,200}`
bool is_valid_workflow_id(std::string_view id);

// A dead-letter record (contract section 5): `payload` when the bytes are
// UTF-8, `payload_base64` instead when they are not.
std::string dead_letter_json(const std::string& reason, const std::string& message,
                             const std::string& topic, int32_t partition, int64_t offset,
                             const std::optional<std::string>& key, std::string_view payload,
                             TimePoint at);

// Strict UTF-8: no overlongs, no surrogates, nothing above U+10FFFF.
bool is_valid_utf8(std::string_view bytes);

}  // namespace brickwork
