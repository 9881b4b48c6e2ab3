#include "daemon/core/time.hpp"

#include <charconv>
#include <cstdio>
#include <ctime>

namespace brickwork {

std::string format_iso8601(TimePoint t) {
  const int64_t ms = to_epoch_ms(t);
  const std::time_t secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  const int millis = static_cast<int>(ms - static_cast<int64_t>(secs) * 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf;
}

std::optional<TimePoint> parse_iso8601(std::string_view text) {
  std::tm tm{};
  int millis = 0;
  std::string s(text);
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
    return std::nullopt;
  }
  std::string_view rest = text.substr(static_cast<size_t>(consumed));
  if (!rest.empty() && rest.front() == '.') {
    rest.remove_prefix(1);
    int digits = 0;
    while (!rest.empty() && rest.front() >= '0' && rest.front() <= '9') {
      if (digits < 3) millis = millis * 10 + (rest.front() - '0');
      ++digits;
      rest.remove_prefix(1);
    }
    for (; digits < 3; ++digits) millis *= 10;
  }
  if (rest != "Z" && rest != "+00:00" && !rest.empty()) return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const std::time_t secs = timegm(&tm);
  return from_epoch_ms(static_cast<int64_t>(secs) * 1000 + millis);
}

std::optional<Duration> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int64_t total = 0;
  bool any = false;
  while (!text.empty()) {
    int64_t n = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || n < 0) return std::nullopt;
    text.remove_prefix(static_cast<size_t>(ptr - text.data()));
    int64_t unit_ms = 1000;  // a bare number means seconds
    if (text.rfind("ms", 0) == 0) { unit_ms = 1; text.remove_prefix(2); }
    else if (!text.empty() && text.front() == 's') { unit_ms = 1000; text.remove_prefix(1); }
    else if (!text.empty() && text.front() == 'm') { unit_ms = 60'000; text.remove_prefix(1); }
    else if (!text.empty() && text.front() == 'h') { unit_ms = 3'600'000; text.remove_prefix(1); }
    else if (!text.empty() && text.front() == 'd') { unit_ms = 86'400'000; text.remove_prefix(1); }
    else if (!text.empty()) return std::nullopt;
    else if (any) return std::nullopt;  // "1m30" is ambiguous
    if (n > (int64_t{1} << 50) / unit_ms) return std::nullopt;
    total += n * unit_ms;
    any = true;
  }
  return Duration(total);
}

std::string format_duration(Duration d) {
  const int64_t ms = d.count();
  if (ms % 3'600'000 == 0 && ms != 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0 && ms != 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace brickwork
