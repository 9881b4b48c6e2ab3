// Configuration errors go to stderr and to the daemon's log: none may repeat a
// value that could be a secret, whatever the mistake in the file.
#include <gtest/gtest.h>

#include "config/config.hpp"

namespace brickwork {
namespace {

const char* kCallbacks = "callbacks:\n  secret: \"0123456789abcdef-secret\"\n";  // lines 1-2

std::string error_of(const std::string& yaml, const LoadOptions& options = {}) {
  auto c = load_config_from_string(yaml, "secrets.yaml", options);
  return c ? "ok" : c.error().message;
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(ConfigSecrets, AnInlinePostgresUrlIsNotEchoed) {
  // The URL belongs under postgres.url; given as postgres's own value it is a
  // scalar where a mapping belongs.
  const std::string e =
      error_of(std::string(kCallbacks) + "postgres: \"postgresql://u:pg-secret-pw@h/db\"\n");
  EXPECT_TRUE(has(e, "secrets.yaml:3:11: postgres: expected a mapping")) << e;
  EXPECT_TRUE(has(e, "url")) << e;
  EXPECT_FALSE(has(e, "pg-secret-pw")) << e;
  EXPECT_FALSE(has(e, "postgresql://u:")) << e;
}

TEST(ConfigSecrets, NoScalarInTheWrongPlaceIsEchoed) {
  const std::string callbacks = error_of("callbacks: \"a-callback-secret-value\"\n");
  EXPECT_TRUE(has(callbacks, "callbacks: expected a mapping, got a single value")) << callbacks;
  EXPECT_FALSE(has(callbacks, "a-callback-secret-value")) << callbacks;

  const std::string props =
      error_of(std::string(kCallbacks) + "kafka:\n  properties: \"sasl.password=kafka-pw\"\n");
  EXPECT_TRUE(has(props, "kafka.properties: expected a mapping")) << props;
  EXPECT_FALSE(has(props, "kafka-pw")) << props;

  const std::string dbx = error_of(std::string(kCallbacks) + "databricks: dapi-token-value\n");
  EXPECT_FALSE(has(dbx, "dapi-token-value")) << dbx;

  const std::string step = error_of(std::string(kCallbacks) +
                                    "workflows:\n  w:\n    steps:\n      - name: a\n"
                                    "        run_job: \"inline-secret-value\"\n");
  EXPECT_TRUE(has(step, "expected a mapping")) << step;
  EXPECT_FALSE(has(step, "inline-secret-value")) << step;
}

TEST(ConfigSecrets, AMalformedVariableReferenceIsNotEchoed) {
  const std::string e = error_of(std::string(kCallbacks) +
                                 "databricks:\n  token: \"dapi${not a name}rest-of-token\"\n");
  EXPECT_TRUE(has(e, "databricks.token")) << e;
  EXPECT_TRUE(has(e, "not a variable reference")) << e;
  EXPECT_FALSE(has(e, "not a name")) << e;
  EXPECT_FALSE(has(e, "rest-of-token")) << e;
}

TEST(ConfigSecrets, ThePostgresUrlValidatorRejectsWithAPosition) {
  LoadOptions options;
  std::string seen;
  options.validate_postgres_url = [&](const std::string& url) -> std::optional<std::string> {
    seen = url;
    if (url.find('%') != std::string::npos) return std::string("not a connection string");
    return std::nullopt;
  };
  const std::string bad = error_of(
      std::string(kCallbacks) + "postgres:\n  url: \"postgresql://u:p%zz@h/db\"\n", options);
  EXPECT_EQ(bad, "secrets.yaml:4:8: postgres.url: not a connection string");
  EXPECT_EQ(seen, "postgresql://u:p%zz@h/db");
  EXPECT_EQ(
      error_of(std::string(kCallbacks) + "postgres:\n  url: \"postgresql://h/db\"\n", options),
      "ok");
}

}  // namespace
}  // namespace brickwork
