#pragma once
#include <memory>
#include <string_view>

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
// otherwise forge log lines or drive the reader's terminal.
std::unique_ptr<spdlog::formatter> make_log_formatter(std::string_view format);
}  // namespace brickwork
