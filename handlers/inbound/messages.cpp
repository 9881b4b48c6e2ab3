#include "handlers/inbound/messages.hpp"

#include "daemon/core/base64.hpp"
#include "daemon/core/json_limits.hpp"
#include "daemon/core/storable_text.hpp"
#include "daemon/core/utf8.hpp"

namespace brickwork {
namespace {

// The length of the valid UTF-8 sequence at s[i], or 0 when there is none.
size_t utf8_sequence(const unsigned char* s, size_t n, size_t i) {
  return decode_utf8(std::string_view(reinterpret_cast<const char*>(s), n), i).length;
}

// At most `max` bytes of valid UTF-8 `text`, never ending inside a character.
std::string_view utf8_prefix(std::string_view text, size_t max) {
  if (text.size() <= max) return text;
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut);
}

Error reject(const char* reason, std::string message) {
  return Error{ErrorKind::kInvalidInput, reason, std::move(message)};
}

// Parses an object with bounded depth; the error names the byte offset.
Result<json::object> parse_object(std::string_view payload, size_t max_bytes) {
  if (payload.size() > max_bytes) {
    return reject("too_large", "message is " + std::to_string(payload.size()) +
                                   " bytes; the limit is " + std::to_string(max_bytes));
  }
  json::stream_parser parser({}, json_parse_options());
  boost::system::error_code ec;
  const size_t consumed = parser.write_some(payload.data(), payload.size(), ec);
  if (!ec) parser.finish(ec);
  if (!ec && consumed != payload.size()) ec = json::error::extra_data;
  if (ec) {
    return reject("invalid_json", ec.message() + " at byte " + std::to_string(consumed));
  }
  json::value v = parser.release();
  if (!v.is_object()) return reject("not_object", "a message must be a JSON object");
  return std::move(v.as_object());
}

Error too_long(std::string_view field, size_t size, size_t limit) {
  return reject("too_large", "'" + std::string(field) + "' is " + std::to_string(size) +
                                 " bytes; the limit is " + std::to_string(limit));
}

// Required or optional string fields, with the reasons the contract names.
// `max_bytes` bounds what may later be echoed in a status event or dead letter.
Result<std::string> required_string(const json::object& o, std::string_view field,
                                    size_t max_bytes) {
  const json::value* v = o.if_contains(field);
  if (v == nullptr || v->is_null()) {
    return reject("missing_field", "'" + std::string(field) + "' is required");
  }
  if (!v->is_string()) {
    return reject("invalid_field", "'" + std::string(field) + "' must be a string");
  }
  if (v->as_string().size() > max_bytes) return too_long(field, v->as_string().size(), max_bytes);
  return std::string(v->as_string());
}

Result<std::string> optional_string(const json::object& o, std::string_view field,
                                    size_t max_bytes) {
  const json::value* v = o.if_contains(field);
  if (v == nullptr || v->is_null()) return std::string();
  if (!v->is_string()) {
    return reject("invalid_field", "'" + std::string(field) + "' must be a string");
  }
  if (v->as_string().size() > max_bytes) return too_long(field, v->as_string().size(), max_bytes);
  return std::string(v->as_string());
}

constexpr const char* kNulRefused =
    "the message holds U+0000 (\\u0000), which Postgres cannot store";

// Long enough for any message; the type is checked before anything else.
constexpr size_t kMaxTypeBytes = 64;
// A brickwork_token is 43 characters; anything much longer is not one.
constexpr size_t kMaxTokenBytes = 256;

Result<std::string> required_id(const json::object& o, std::string_view field) {
  auto id = required_string(o, field, SIZE_MAX);
  if (!id) return id;
  if (!is_valid_workflow_id(*id)) {
    return reject("invalid_field", "'" + std::string(field) +
                                       "' must be 1-200 characters of [A-Za-z0-9._:-]");
  }
  return id;
}

}  // namespace

bool is_valid_workflow_id(std::string_view id) {
  if (id.empty() || id.size() > 200) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<ParsedCommand> parse_command(std::string_view payload, size_t max_bytes) {
  auto parsed = parse_object(payload, max_bytes);
  if (!parsed) return parsed.error();
  json::object& o = *parsed;  // its input and value are moved out, not copied
  auto type = required_string(o, "type", SIZE_MAX);
  if (!type) return type.error();
  ParsedCommand command;
  command.type = *type;
  if (command.type != "start" && command.type != "cancel" && command.type != "retry" &&
      command.type != "signal") {
    return reject("unknown_type", "unknown command type '" + std::string(utf8_prefix(command.type, 100)) +
                                      "' (start, cancel, retry, signal)");
  }
  auto id = required_id(o, "id");
  if (!id) return id.error();
  command.id = *id;
  // Nothing Postgres would refuse gets near a transaction: anywhere in a command.
  if (holds_nul(o)) return reject("invalid_text", kNulRefused);
  if (command.type == "start") {
    auto workflow = required_string(o, "workflow", kMaxNameBytes);
    if (!workflow) return workflow.error();
    if (workflow->empty()) return reject("invalid_field", "'workflow' must not be empty");
    command.workflow = *workflow;
    if (json::value* input = o.if_contains("input"); input != nullptr && !input->is_null()) {
      if (!input->is_object()) return reject("invalid_field", "'input' must be a JSON object");
      const size_t size = serialized_size(*input);
      if (size > kMaxInputBytes) {
        return reject("too_large", "'input' is " + std::to_string(size) + " bytes; the limit is " +
                                       std::to_string(kMaxInputBytes));
      }
      command.input = std::move(input->as_object());
    }
  } else if (command.type == "cancel") {
    auto reason = optional_string(o, "reason", kMaxReasonBytes);
    if (!reason) return reason.error();
    command.reason = *reason;
  } else if (command.type == "signal") {
    auto name = required_string(o, "name", kMaxNameBytes);
    if (!name) return name.error();
    if (name->empty()) return reject("invalid_field", "'name' must not be empty");
    command.name = *name;
    if (json::value* value = o.if_contains("value")) {
      // The value becomes the step's output, which status events repeat.
      const size_t size = serialized_size(*value);
      if (size > kMaxSignalValueBytes) return too_long("value", size, kMaxSignalValueBytes);
      command.value = std::move(*value);
    }
  }
  return command;
}

Result<ParsedCompletion> parse_completion(std::string_view payload, size_t max_bytes) {
  auto parsed = parse_object(payload, max_bytes);
  if (!parsed) return parsed.error();
  json::object& o = *parsed;  // its output is moved out, not copied
  auto type = required_string(o, "type", SIZE_MAX);
  if (!type) return type.error();
  if (*type != "job_completed") {
    return reject("unknown_type", "unknown event type '" + std::string(utf8_prefix(*type, 100)) +
                                      "' (job_completed)");
  }
  ParsedCompletion event;
  auto workflow_id = required_id(o, "workflow_id");
  if (!workflow_id) return workflow_id.error();
  event.workflow_id = *workflow_id;
  auto step = required_string(o, "step", kMaxNameBytes);
  if (!step) return step.error();
  event.step = *step;
  auto token = required_string(o, "token", kMaxTokenBytes);
  if (!token) return token.error();
  event.token = *token;
  if (event.step.find('\0') != std::string::npos || event.token.find('\0') != std::string::npos) {
    return reject("invalid_text", kNulRefused);
  }
  auto state = required_string(o, "state", kMaxTypeBytes);
  if (!state) return state.error();
  auto result = run_result_from_string(*state);
  if (!result) {
    return reject("invalid_field", "'state' must be SUCCESS, FAILED, CANCELED or TIMEDOUT");
  }
  event.state = *result;
  if (const json::value* run_id = o.if_contains("run_id"); run_id != nullptr && !run_id->is_null()) {
    event.run_id = as_int64(*run_id);
    if (!event.run_id) return reject("invalid_field", "'run_id' must be an integer");
  }
  if (json::value* output = o.if_contains("output"); output != nullptr && !output->is_null()) {
    if (!output->is_object()) return reject("invalid_field", "'output' must be a JSON object");
    const size_t size = serialized_size(*output);
    if (size > kMaxOutputBytes) {
      event.oversized_output_bytes = size;
    } else if (holds_nul(*output)) {
      event.output_holds_nul = true;
    } else {
      event.output = std::move(output->as_object());
    }
  }
  auto message = optional_string(o, "message", SIZE_MAX);
  if (!message) return message.error();
  event.message = storable_text(*message, kMaxMessageTextBytes);
  return event;
}

std::optional<std::string> extract_id(std::string_view payload) {
  auto parsed = parse_object(payload, kMaxMessageBytes);
  if (!parsed) return std::nullopt;
  const json::value* id = parsed->if_contains("id");
  if (id == nullptr || !id->is_string() || !is_valid_workflow_id(id->as_string())) {
    return std::nullopt;
  }
  return std::string(id->as_string());
}

bool is_valid_utf8(std::string_view bytes) {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  for (size_t i = 0; i < bytes.size();) {
    const size_t len = utf8_sequence(s, bytes.size(), i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

std::string truncate_text(std::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  constexpr std::string_view kEllipsis = "...";
  if (max < kEllipsis.size()) return std::string(utf8_prefix(text, max));
  std::string out(utf8_prefix(text, max - kEllipsis.size()));
  out += kEllipsis;
  return out;
}

std::string dead_letter_key(const std::optional<std::string>& key) {
  if (!key) return {};
  // Postgres keeps the key as text: NUL and bad bytes become U+FFFD (the
  // record itself keeps the original in key_base64).
  if (is_valid_utf8(*key) && key->find('\0') == std::string::npos) {
    return std::string(utf8_prefix(*key, kMaxDeadLetterKeyBytes));
  }
  return std::string(utf8_prefix(storable_text(*key), kMaxDeadLetterKeyBytes));
}

std::string dead_letter_json(const std::string& reason, const std::string& message,
                             const std::string& topic, int32_t partition, int64_t offset,
                             const std::optional<std::string>& key, std::string_view payload,
                             TimePoint at) {
  return dead_letter_record(
      reason, message,
      json::object{{"topic", topic}, {"partition", partition}, {"offset", offset}}, key, payload,
      at, kMaxDeadLetterPayloadBytes);
}

std::string dead_letter_record(const std::string& reason, const std::string& message,
                               json::object source, const std::optional<std::string>& key,
                               std::string_view payload, TimePoint at, size_t max_payload_bytes) {
  json::object record;
  record["reason"] = storable_text(reason, kMaxNameBytes);
  record["message"] = storable_text(message, kMaxDeadLetterMessageBytes);
  record["source"] = std::move(source);
  if (key) {
    const bool key_is_text = is_valid_utf8(*key);
    const std::string_view kept = key_is_text ? utf8_prefix(*key, kMaxDeadLetterKeyBytes)
                                              : std::string_view(*key).substr(0, kMaxDeadLetterKeyBytes);
    if (kept.size() < key->size()) {
      record["key_truncated"] = true;
      record["key_bytes"] = key->size();
    }
    if (key_is_text) {
      record["key"] = kept;
    } else {
      record["key_base64"] = base64(kept);
    }
  } else {
    record["key"] = nullptr;
  }
  // A dead letter must itself fit in a Kafka message, whatever arrived.
  // The payload is scanned once; text cut at a character boundary stays text.
  const bool payload_is_text = is_valid_utf8(payload);
  std::string_view kept = payload;
  bool kept_is_text = payload_is_text;
  if (kept.size() > max_payload_bytes) {
    kept = payload_is_text ? utf8_prefix(payload, max_payload_bytes)
                           : payload.substr(0, max_payload_bytes);
    if (!payload_is_text) kept_is_text = is_valid_utf8(kept);  // the bad bytes may be past the cut
    record["payload_truncated"] = true;
    record["payload_bytes"] = payload.size();
  }
  if (kept_is_text) {
    record["payload"] = json::string(kept);
  } else {
    record["payload_base64"] = base64(kept);
  }
  record["at"] = format_iso8601(at);
  return json::serialize(record);
}

}  // namespace brickwork
