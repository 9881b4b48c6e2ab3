#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spdlog {
class formatter;
}

namespace brickwork {
// Sets up the default logger on stderr: `format` "json" (one object per line:
// ts, level, msg) or "text"; `level` trace|debug|info|warn|error|critical|off.
void setup_logging(std::string_view format, std::string_view level);

// The formatter setup_logging gives the logger. Either way one message is one
// line: JSON escapes the message as a JSON string; text escapes control
// characters with escape_control_characters (daemon/core/escape.hpp), since
// messages carry text from outside (error messages, workflow ids) that could
// otherwise forge log lines or drive the reader's terminal. The fields of
// every LogScope open on the logging thread are added: JSON as fields of
// their own, text as ` key=value` after the message.
std::unique_ptr<spdlog::formatter> make_log_formatter(std::string_view format);

// What the log lines written on this thread while it lives concern:
// `workflow_id`, `step`, `run_id` (contract 10), or a library's own fields
// (`source`, ...). Scopes nest; an inner one adds or overrides fields, and
// its destruction restores the outer ones. Not copyable, not movable: it
// belongs to the block that opened it.
class LogScope {
 public:
  using Field = std::pair<std::string, std::string>;
  explicit LogScope(std::vector<Field> fields);
  // workflow_id, and step / run_id when given.
  static std::vector<Field> workflow(std::string_view workflow_id, std::string_view step = {},
                                     std::optional<int64_t> run_id = std::nullopt);
  ~LogScope();
  LogScope(const LogScope&) = delete;
  LogScope& operator=(const LogScope&) = delete;
  // Adds or replaces one field of this scope (e.g. run_id once known).
  void set(std::string key, std::string value);

 private:
  size_t depth_;
};

// The severity of a library's message, by syslog level (librdkafka's log_cb).
enum class LibraryLevel { kCritical, kError, kWarn, kInfo, kDebug };
LibraryLevel library_level_from_syslog(int syslog_level);

// A message of librdkafka or libpq, through the default logger with
// `source` (e.g. "librdkafka", "libpq") and `facility` as fields, trailing
// newlines dropped, so no library writes its own lines to stderr.
void log_library_message(LibraryLevel level, std::string_view source, std::string_view facility,
                         std::string_view message);
}  // namespace brickwork
