#include "daemon/core/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "daemon/core/escape.hpp"
#include "daemon/core/time.hpp"

namespace brickwork {
namespace {

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
    line["thread"] = msg.thread_id;
    const std::string text = boost::json::serialize(line) + "\n";
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

// The message, control characters escaped: `%v` would write it raw.
class EscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm& /*time*/,
              spdlog::memory_buf_t& dest) override {
    const std::string text =
        escape_control_characters(std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<EscapedMessage>();
  }
};

}  // namespace

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
