#include "daemon/core/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <algorithm>
#include <charconv>

#include "daemon/core/escape.hpp"
#include "daemon/core/time.hpp"

namespace brickwork {
namespace {

// The open scopes of this thread, outermost first. Formatting happens on the
// thread that logs (the logger is synchronous), so the formatter sees them.
thread_local std::vector<std::vector<LogScope::Field>> t_scopes;

std::vector<LogScope::Field> current_fields() {
  std::vector<LogScope::Field> merged;
  for (const auto& frame : t_scopes) {
    for (const auto& field : frame) {
      auto it = std::find_if(merged.begin(), merged.end(),
                             [&](const LogScope::Field& f) { return f.first == field.first; });
      if (it != merged.end()) {
        it->second = field.second;
      } else {
        merged.push_back(field);
      }
    }
  }
  return merged;
}

// A run id is a number in status events; the same in logs.
boost::json::value field_value(const std::string& key, const std::string& value) {
  if (key == "run_id") {
    int64_t number = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
    if (ec == std::errc() && end == value.data() + value.size()) return number;
  }
  return boost::json::string(value);
}

// One JSON object per line, the message properly escaped (spdlog's pattern
// formatter cannot escape, so a quote in a message would break the line).
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    boost::json::object line;
    line["ts"] = format_iso8601(std::chrono::time_point_cast<std::chrono::milliseconds>(msg.time));
    line["level"] = std::string(spdlog::level::to_string_view(msg.level).data(),
                                spdlog::level::to_string_view(msg.level).size());
    line["msg"] = std::string(msg.payload.data(), msg.payload.size());
    for (const auto& [key, value] : current_fields()) {
      if (key == "ts" || key == "level" || key == "msg" || key == "thread") continue;
      line[key] = field_value(key, value);
    }
    line["thread"] = msg.thread_id;
    const std::string text = boost::json::serialize(line) + "\n";
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

// The message, control characters escaped (`%v` would write it raw), then
// the scope's fields as key=value.
class EscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm& /*time*/,
              spdlog::memory_buf_t& dest) override {
    std::string text =
        escape_control_characters(std::string_view(msg.payload.data(), msg.payload.size()));
    for (const auto& [key, value] : current_fields()) {
      text += " " + key + "=" + escape_control_characters(value);
    }
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<EscapedMessage>();
  }
};

}  // namespace

LogScope::LogScope(std::vector<Field> fields) : depth_(t_scopes.size()) {
  t_scopes.push_back(std::move(fields));
}

LogScope::~LogScope() {
  // Scopes are blocks: the innermost one ends first.
  t_scopes.resize(depth_);
}

std::vector<LogScope::Field> LogScope::workflow(std::string_view workflow_id,
                                                std::string_view step,
                                                std::optional<int64_t> run_id) {
  std::vector<Field> fields{{"workflow_id", std::string(workflow_id)}};
  if (!step.empty()) fields.emplace_back("step", std::string(step));
  if (run_id) fields.emplace_back("run_id", std::to_string(*run_id));
  return fields;
}

void LogScope::set(std::string key, std::string value) {
  auto& frame = t_scopes.at(depth_);
  for (auto& field : frame) {
    if (field.first == key) {
      field.second = std::move(value);
      return;
    }
  }
  frame.emplace_back(std::move(key), std::move(value));
}

LibraryLevel library_level_from_syslog(int syslog_level) {
  if (syslog_level <= 2) return LibraryLevel::kCritical;  // emerg, alert, crit
  if (syslog_level == 3) return LibraryLevel::kError;
  if (syslog_level == 4) return LibraryLevel::kWarn;
  if (syslog_level <= 6) return LibraryLevel::kInfo;  // notice, info
  return LibraryLevel::kDebug;
}

void log_library_message(LibraryLevel level, std::string_view source, std::string_view facility,
                         std::string_view message) {
  while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) {
    message.remove_suffix(1);
  }
  static constexpr spdlog::level::level_enum kLevels[] = {
      spdlog::level::critical, spdlog::level::err, spdlog::level::warn, spdlog::level::info,
      spdlog::level::debug};
  std::vector<LogScope::Field> fields{{"source", std::string(source)}};
  if (!facility.empty()) fields.emplace_back("facility", std::string(facility));
  LogScope scope(std::move(fields));
  spdlog::log(kLevels[static_cast<int>(level)], "{}", message);
}

std::unique_ptr<spdlog::formatter> make_log_formatter(std::string_view format) {
  if (format == "json") return std::make_unique<JsonFormatter>();
  auto text = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  text->add_flag<EscapedMessage>('*').set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ %*");
  return text;
}

void setup_logging(std::string_view format, std::string_view level) {
  spdlog::drop("brickwork");
  auto logger = spdlog::stderr_logger_mt("brickwork");
  logger->set_formatter(make_log_formatter(format));
  logger->set_level(spdlog::level::from_str(std::string(level)));
  spdlog::set_default_logger(logger);
}

}  // namespace brickwork
