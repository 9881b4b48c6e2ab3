// Configuration errors go to stderr and to the daemon's log: none may repeat a
// value that could be a secret, whatever the mistake in the file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "config/config.hpp"
#include "tests/config/with_steps.hpp"

namespace brickwork {
namespace {

const char* kCallbacks = "callbacks:\n  secret: \"0123456789abcdef-0123456789abcdef-secret\"\n";  // lines 1-2

std::string load_error(const std::string& yaml, const LoadOptions& options = with_steps()) {
  auto c = load_config_from_string(yaml, "secrets.yaml", options);
  return c ? "ok" : c.error().message;
}

bool mentions(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(ConfigSecrets, AnInlinePostgresUrlIsNotEchoed) {
  // The URL belongs under postgres.url; given as postgres's own value it is a
  // scalar where a mapping belongs.
  const std::string e =
      load_error(std::string(kCallbacks) + "postgres: \"postgresql://u:pg-secret-pw@h/db\"\n");
  EXPECT_TRUE(mentions(e, "secrets.yaml:3:11: postgres: expected a mapping")) << e;
  EXPECT_TRUE(mentions(e, "url")) << e;
  EXPECT_FALSE(mentions(e, "pg-secret-pw")) << e;
  EXPECT_FALSE(mentions(e, "postgresql://u:")) << e;
}

TEST(ConfigSecrets, NoScalarInTheWrongPlaceIsEchoed) {
  const std::string callbacks = load_error("callbacks: \"a-callback-secret-value\"\n");
  EXPECT_TRUE(mentions(callbacks, "callbacks: expected a mapping, got a single value"))
      << callbacks;
  EXPECT_FALSE(mentions(callbacks, "a-callback-secret-value")) << callbacks;

  const std::string props =
      load_error(std::string(kCallbacks) + "kafka:\n  properties: \"sasl.password=kafka-pw\"\n");
  EXPECT_TRUE(mentions(props, "kafka.properties: expected a mapping")) << props;
  EXPECT_FALSE(mentions(props, "kafka-pw")) << props;

  const std::string dbx = load_error(std::string(kCallbacks) + "databricks: dapi-token-value\n");
  EXPECT_FALSE(mentions(dbx, "dapi-token-value")) << dbx;

  const std::string step = load_error(std::string(kCallbacks) +
                                      "workflows:\n  w:\n    steps:\n      - name: a\n"
                                      "        run_job: \"inline-secret-value\"\n");
  EXPECT_TRUE(mentions(step, "expected a mapping")) << step;
  EXPECT_FALSE(mentions(step, "inline-secret-value")) << step;
}

TEST(ConfigSecrets, AMalformedVariableReferenceIsNotEchoed) {
  const std::string e = load_error(std::string(kCallbacks) +
                                   "databricks:\n  token: \"dapi${not a name}rest-of-token\"\n");
  EXPECT_TRUE(mentions(e, "databricks.token")) << e;
  EXPECT_TRUE(mentions(e, "not a variable reference")) << e;
  EXPECT_FALSE(mentions(e, "not a name")) << e;
  EXPECT_FALSE(mentions(e, "rest-of-token")) << e;
}

TEST(ConfigSecrets, ThePostgresUrlValidatorRejectsWithAPosition) {
  LoadOptions options = with_steps();
  std::string seen;
  options.validate_postgres_url = [&](const std::string& url) -> std::optional<std::string> {
    seen = url;
    if (url.find('%') != std::string::npos) return std::string("not a connection string");
    return std::nullopt;
  };
  const std::string bad = load_error(
      std::string(kCallbacks) + "postgres:\n  url: \"postgresql://u:p%zz@h/db\"\n", options);
  EXPECT_EQ(bad, "secrets.yaml:4:8: postgres.url: not a connection string");
  EXPECT_EQ(seen, "postgresql://u:p%zz@h/db");
  EXPECT_EQ(
      load_error(std::string(kCallbacks) + "postgres:\n  url: \"postgresql://h/db\"\n", options),
      "ok");
}

}  // namespace
}  // namespace brickwork

namespace brickwork {
namespace {

// Contract 7: secrets may come from files, e.g. systemd credentials.
TEST(SecretFiles, FileAndCredentialReferencesReadTheFileWithoutItsNewline) {
  const auto dir = std::filesystem::temp_directory_path() / ("bw-creds-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "callback") << "from-a-credential-0123456789-0123456789\n";
  std::ofstream(dir / "plain") << "from-a-file";
  ASSERT_EQ(setenv("CREDENTIALS_DIRECTORY", dir.c_str(), 1), 0);
  auto file = substitute_env("${file:" + (dir / "plain").string() + "}");
  ASSERT_TRUE(file) << file.error().message;
  EXPECT_EQ(*file, "from-a-file");
  auto credential = substitute_env("x-${credential:callback}-y");
  ASSERT_TRUE(credential) << credential.error().message;
  EXPECT_EQ(*credential, "x-from-a-credential-0123456789-0123456789-y");
  auto config = load_config_from_string(
      "callbacks:\n  secret: \"${credential:callback}\"\n", "creds.yaml", with_steps());
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->callbacks.secret, "from-a-credential-0123456789-0123456789");

  auto missing = substitute_env("${credential:nope}");
  ASSERT_FALSE(missing);
  EXPECT_TRUE(text_has(missing.error().message, "nope")) << missing.error().message;
  EXPECT_FALSE(substitute_env("${credential:../plain}"));
  EXPECT_FALSE(substitute_env("${file:}"));
  unsetenv("CREDENTIALS_DIRECTORY");
  auto unset = substitute_env("${credential:callback}");
  ASSERT_FALSE(unset);
  EXPECT_TRUE(text_has(unset.error().message, "LoadCredential")) << unset.error().message;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace brickwork
