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

namespace {

// `width` decimal digits at `at`, within [min, max].
std::optional<int> fixed_digits(std::string_view text, size_t at, size_t width, int min, int max) {
  if (at + width > text.size()) return std::nullopt;
  int value = 0;
  for (size_t i = at; i < at + width; ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    value = value * 10 + (text[i] - '0');
  }
  if (value < min || value > max) return std::nullopt;
  return value;
}

}  // namespace

// RFC 3339 (section 5.6): date-time with any number of fractional digits
// (kept to the millisecond) and any offset, Z or z or +HH:MM / -HH:MM; T and
// Z in either case.
std::optional<TimePoint> parse_iso8601(std::string_view text) {
  auto year = fixed_digits(text, 0, 4, 0, 9999);
  auto month = fixed_digits(text, 5, 2, 1, 12);
  auto day = fixed_digits(text, 8, 2, 1, 31);
  auto hour = fixed_digits(text, 11, 2, 0, 23);
  auto minute = fixed_digits(text, 14, 2, 0, 59);
  auto second = fixed_digits(text, 17, 2, 0, 60);  // 60: a leap second
  if (!year || !month || !day || !hour || !minute || !second || text[4] != '-' ||
      text[7] != '-' || (text[10] != 'T' && text[10] != 't') || text[13] != ':' ||
      text[16] != ':') {
    return std::nullopt;
  }
  std::string_view rest = text.substr(19);
  int millis = 0;
  if (!rest.empty() && rest.front() == '.') {
    rest.remove_prefix(1);
    int digits = 0;
    while (!rest.empty() && rest.front() >= '0' && rest.front() <= '9') {
      if (digits < 3) millis = millis * 10 + (rest.front() - '0');
      ++digits;
      rest.remove_prefix(1);
    }
    if (digits == 0) return std::nullopt;
    for (; digits < 3; ++digits) millis *= 10;
  }
  int64_t offset_minutes = 0;
  if (rest == "Z" || rest == "z") {
    offset_minutes = 0;
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    auto offset_hours = fixed_digits(rest, 1, 2, 0, 23);
    auto offset_mins = fixed_digits(rest, 4, 2, 0, 59);
    if (!offset_hours || !offset_mins) return std::nullopt;
    offset_minutes = (*offset_hours * 60 + *offset_mins) * (rest[0] == '-' ? -1 : 1);
  } else {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = *year - 1900;
  tm.tm_mon = *month - 1;
  tm.tm_mday = *day;
  tm.tm_hour = *hour;
  tm.tm_min = *minute;
  tm.tm_sec = *second;
  const std::time_t secs = timegm(&tm);
  // The local time at that offset is offset_minutes ahead of UTC.
  return from_epoch_ms((static_cast<int64_t>(secs) - offset_minutes * 60) * 1000 + millis);
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
