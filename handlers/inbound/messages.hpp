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

// Fields that are repeated in status events or dead letters are capped where
// they are parsed, so whatever arrives, what brickwork publishes stays far
// below Kafka's message.max.bytes (1,000,000 by default) and the outbox never
// holds a record the broker must refuse.
inline constexpr size_t kMaxNameBytes = 200;          // workflow, step, signal name
inline constexpr size_t kMaxReasonBytes = 4 * 1024;   // cancel reason
inline constexpr size_t kMaxMessageTextBytes = 8 * 1024;  // completion message (longer is cut)
inline constexpr size_t kMaxOutputBytes = kMaxStepOutputBytes;  // a step's output, serialized
inline constexpr size_t kMaxSignalValueBytes = kMaxOutputBytes;
// A dead letter's own text fields.
inline constexpr size_t kMaxDeadLetterMessageBytes = 4 * 1024;
inline constexpr size_t kMaxDeadLetterKeyBytes = 1024;

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
  json::object output;  // default {}; empty when over kMaxOutputBytes
  std::string message;  // cut at kMaxMessageTextBytes (a job's traceback is still news); U+0000 -> U+FFFD
  // The serialized size of `output` when it was over kMaxOutputBytes: the
  // event still ends the step (its token is checked first), as failed with
  // code too_large.
  std::optional<size_t> oversized_output_bytes;
  // `output` held U+0000, which jsonb refuses: the event still ends the step
  // (after its token is checked), as failed with code invalid_output.
  bool output_holds_nul = false;
};

// On failure the Error's `code` is the dead-letter reason: too_large,
// invalid_json, not_object, missing_field, invalid_field, unknown_type,
// invalid_text (U+0000 anywhere in a command, or in a completion's step or
// token: Postgres cannot store it).
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

// The Kafka key of a dead letter: the input's key, cut at
// kMaxDeadLetterKeyBytes (the record then says "key_truncated").
std::string dead_letter_key(const std::optional<std::string>& key);

// The same record with any `source` object, keeping at most
// `max_payload_bytes` of the payload (e.g. for an outbox row the broker refused).
std::string dead_letter_record(const std::string& reason, const std::string& message,
                               json::object source, const std::optional<std::string>& key,
                               std::string_view payload, TimePoint at, size_t max_payload_bytes);

// Strict UTF-8: no overlongs, no surrogates, nothing above U+10FFFF.
bool is_valid_utf8(std::string_view bytes);

// At most `max` bytes of `text`, never ending inside a UTF-8 character; a cut
// text ends with "...".
std::string truncate_text(std::string_view text, size_t max);

}  // namespace brickwork
