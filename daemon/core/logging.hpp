#pragma once
#include <string_view>

namespace brickwork {
// Sets up the default logger on stderr: `format` "json" (one object per line:
// ts, level, msg) or "text"; `level` trace|debug|info|warn|error|critical|off.
void setup_logging(std::string_view format, std::string_view level);
}  // namespace brickwork
