#pragma once
// Time as the engine sees it: a point given by the shell, never read inside.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace brickwork {

using Clock = std::chrono::system_clock;
using TimePoint = std::chrono::time_point<Clock, std::chrono::milliseconds>;
using Duration = std::chrono::milliseconds;

inline TimePoint now_ms() {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(Clock::now());
}

// "2026-11-22T10:15:03.120Z"
std::string format_iso8601(TimePoint t);
std::optional<TimePoint> parse_iso8601(std::string_view text);

// "250ms", "30s", "5m", "2h", "1d", or a bare number of seconds. Empty on error.
std::optional<Duration> parse_duration(std::string_view text);
std::string format_duration(Duration d);

inline int64_t to_epoch_ms(TimePoint t) { return t.time_since_epoch().count(); }
inline TimePoint from_epoch_ms(int64_t ms) { return TimePoint(Duration(ms)); }

}  // namespace brickwork
