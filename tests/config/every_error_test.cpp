// `brickwork check` shows every error of a file at once (issue 21): each
// section, workflow and step is read on after an error in another.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/config.hpp"
#include "tests/config/with_steps.hpp"

namespace brickwork {
namespace {

std::vector<std::string> error_lines(const std::string& yaml, LoadOptions options = with_steps()) {
  auto c = load_config_from_string(yaml, "test.yaml", options);
  std::vector<std::string> lines;
  if (c) return lines;
  std::stringstream in(c.error().message);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

constexpr const char* kManyMistakes = R"(kafka: {brokers: ""}
callbacks: {secret: "short"}
daemon: {lease: soon, log_format: xml}
workflows:
  first:
    steps:
      - name: a
        sleep: {}
      - name: b
        run_job: {job_id: nope}
  second:
    steps:
      - name: c
        emit: {topic: t}
)";

TEST(EveryError, EachSectionWorkflowAndStepIsReportedInFileOrder) {
  const auto lines = error_lines(kManyMistakes);
  ASSERT_EQ(lines.size(), 6u) << ::testing::PrintToString(lines);
  EXPECT_NE(lines[0].find("test.yaml:1:"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("kafka.brokers"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("callbacks.secret"), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find("daemon.lease"), std::string::npos) << lines[2];
  EXPECT_NE(lines[3].find("exactly one of for"), std::string::npos) << lines[3];
  EXPECT_NE(lines[4].find("job_id"), std::string::npos) << lines[4];
  EXPECT_NE(lines[5].find("emit.value"), std::string::npos) << lines[5];
}

TEST(EveryError, AreCappedWithANoteOfHowManyMore) {
  std::string yaml = "callbacks: {secret: \"0123456789abcdef-0123456789abcdef-secret\"}\nworkflows:\n";
  for (int i = 0; i < 60; ++i) {
    yaml += "  w" + std::to_string(i) + ":\n    steps:\n      - name: a\n        sleep: {}\n";
  }
  LoadOptions options = with_steps();
  options.max_errors = 50;
  const auto lines = error_lines(yaml, options);
  ASSERT_EQ(lines.size(), 51u);
  EXPECT_NE(lines[50].find("10 more error(s)"), std::string::npos) << lines[50];
}

TEST(EveryError, OneErrorIsTheMessageItWasBefore) {
  const auto lines = error_lines("callbacks: {secret: \"short\"}\n");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("test.yaml:1:21: callbacks.secret: must be at least 32 characters"),
            std::string::npos)
      << lines[0];
}

// Read on after errors, but a workflows: that is no mapping is still one.
TEST(EveryError, AWorkflowsSectionThatIsNoMappingIsStillAnError) {
  const auto lines = error_lines(
      "callbacks: {secret: \"0123456789abcdef-0123456789abcdef-secret\"}\nworkflows: [1]\n");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("workflows"), std::string::npos) << lines[0];
}

TEST(EveryError, AWorkflowsFileIsCheckedAlone) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("brickwork-workflows-" + std::to_string(getpid()) + ".yaml");
  std::ofstream(path) << "workflows:\n  w:\n    steps:\n      - name: a\n        sleep: {for: 1s}\n";
  auto loaded = load_workflows_file(path.string(), with_steps());
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded->size(), 1u);
  EXPECT_EQ(loaded->at("w").steps.size(), 1u);
  std::ofstream(path) << "callbacks: {}\nworkflows:\n  w:\n    steps:\n      - name: a\n        sleep: {}\n";
  auto refused = load_workflows_file(path.string(), with_steps());
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("callbacks"), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("exactly one of for"), std::string::npos)
      << refused.error().message;
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace brickwork
