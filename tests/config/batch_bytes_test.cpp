// daemon.batch_max_bytes: sizes with units, a default, and a clear error.
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "tests/config/with_steps.hpp"

namespace brickwork {
namespace {

Result<Config> with_daemon(const std::string& daemon) {
  return load_config_from_string(
      "callbacks:\n  secret: \"0123456789abcdef0123456789abcdef-secret\"\ndaemon: " + daemon + "\n",
      "bytes.yaml", with_steps());
}

TEST(BatchMaxBytes, DefaultsTo4MiBAndTakesUnits) {
  auto c = with_daemon("{}");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->daemon.batch_max_bytes, 4 * 1024 * 1024);
  const std::pair<const char*, int64_t> sizes[] = {
      {"4MiB", 4 << 20}, {"512KiB", 512 << 10}, {"1GiB", int64_t{1} << 30}, {"100000", 100000}};
  for (const auto& [text, bytes] : sizes) {
    auto sized = with_daemon(std::string("{batch_max_bytes: ") + text + "}");
    ASSERT_TRUE(sized) << text << ": " << sized.error().message;
    EXPECT_EQ(sized->daemon.batch_max_bytes, bytes) << text;
  }
}

TEST(BatchMaxBytes, WrongSizesAreRefusedWithTheKeyAndWhatIsExpected) {
  for (const char* text : {"16MB", "-1", "1KiB", "2GiB", "lots", "16 MiB", "99999999999999GiB"}) {
    auto c = with_daemon(std::string("{batch_max_bytes: \"") + text + "\"}");
    ASSERT_FALSE(c) << text;
    EXPECT_NE(c.error().message.find("daemon.batch_max_bytes: expected a size from 65536 to "
                                     "1073741824 bytes"),
              std::string::npos)
        << c.error().message;
  }
}

}  // namespace
}  // namespace brickwork
