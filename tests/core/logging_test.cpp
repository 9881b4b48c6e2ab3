#include "daemon/core/logging.hpp"

#include <gtest/gtest.h>
#include <spdlog/formatter.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <sstream>

namespace brickwork {
namespace {

// What a logger with the daemon's formatter writes for one message.
std::string logged(std::string_view format, const std::string& message) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(out);
  spdlog::logger logger("test", sink);
  logger.set_formatter(make_log_formatter(format));
  logger.warn("dead letter: {}", message);
  return out.str();
}

const std::string kHostile = "bad\n2026-11-22T10:00:00.000Z info  forged\x1b[2J\x1b[31m\xc2\x9b\r";

TEST(Logging, TextLinesEscapeControlCharacters) {
  const std::string line = logged("text", kHostile);
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;  // one line, ended once
  EXPECT_EQ(line.find('\x1b'), std::string::npos) << line;
  EXPECT_EQ(line.find('\r'), std::string::npos) << line;
  EXPECT_EQ(line.find("\xc2\x9b"), std::string::npos) << line;
  EXPECT_NE(line.find("warning dead letter: bad\\n2026-11-22T10:00:00.000Z info  "
                      "forged\\x1b[2J\\x1b[31m\\xc2\\x9b\\r"),
            std::string::npos)
      << line;
  EXPECT_EQ(line.find('Z'), 23u) << line;  // the timestamp still leads: 2026-...T..:..:..sssZ
}

TEST(Logging, JsonLinesCarryTheMessageIntact) {
  const std::string line = logged("json", kHostile);
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
  EXPECT_EQ(line.find('\x1b'), std::string::npos) << line;
  const boost::json::value v = boost::json::parse(line);
  EXPECT_EQ(v.at("msg").as_string(), "dead letter: " + kHostile);
  EXPECT_EQ(v.at("level").as_string(), "warning");
}

// A line about one workflow carries its id, step and run id as fields of
// their own (contract 10), and only while the scope that says so is open.
TEST(Logging, JsonLinesCarryTheWorkflowOfTheirScope) {
  std::string inner;
  std::string outer;
  {
    LogScope workflow(LogScope::workflow("order-4711", "transform"));
    {
      LogScope run(std::vector<LogScope::Field>{{"run_id", "1234"}});
      inner = logged("json", "x");
    }
    outer = logged("json", "y");
  }
  const std::string after = logged("json", "z");
  const boost::json::object a = boost::json::parse(inner).as_object();
  EXPECT_EQ(a.at("workflow_id").as_string(), "order-4711");
  EXPECT_EQ(a.at("step").as_string(), "transform");
  EXPECT_EQ(a.at("run_id").as_int64(), 1234);  // a number, as in status events
  const boost::json::object b = boost::json::parse(outer).as_object();
  EXPECT_EQ(b.at("workflow_id").as_string(), "order-4711");
  EXPECT_FALSE(b.contains("run_id"));
  const boost::json::object c = boost::json::parse(after).as_object();
  EXPECT_FALSE(c.contains("workflow_id"));
  EXPECT_FALSE(c.contains("step"));
}

TEST(Logging, TextLinesCarryTheFieldsEscaped) {
  LogScope workflow(LogScope::workflow("order\n1", "load", 7));
  const std::string line = logged("text", "x");
  EXPECT_NE(line.find("dead letter: x workflow_id=order\\n1 step=load run_id=7"), std::string::npos)
      << line;
}

TEST(Logging, LibraryMessagesGoThroughTheLoggerWithTheirSource) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(out);
  auto logger = std::make_shared<spdlog::logger>("library-test", sink);
  logger->set_formatter(make_log_formatter("json"));
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(logger);
  log_library_message(library_level_from_syslog(3), "librdkafka", "FAIL",
                      "127.0.0.1:9/1: Connect to ipv4#127.0.0.1:9 failed\n");
  spdlog::set_default_logger(previous);
  const boost::json::object line = boost::json::parse(out.str()).as_object();
  EXPECT_EQ(line.at("level").as_string(), "error");
  EXPECT_EQ(line.at("source").as_string(), "librdkafka");
  EXPECT_EQ(line.at("facility").as_string(), "FAIL");
  EXPECT_EQ(line.at("msg").as_string(), "127.0.0.1:9/1: Connect to ipv4#127.0.0.1:9 failed");
}

}  // namespace
}  // namespace brickwork
