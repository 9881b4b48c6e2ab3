#include "daemon/core/logging.hpp"

#include <gtest/gtest.h>
#include <spdlog/formatter.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

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

}  // namespace
}  // namespace brickwork
