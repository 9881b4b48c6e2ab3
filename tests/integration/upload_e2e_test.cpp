// The upload step against the simulator's Files API: text content, the
// overwrite rule, and a 64 MB file streamed from disk by a daemon process
// whose peak memory is measured.
#include "tests/integration/harness.hpp"

namespace brickwork::testing {
namespace {

// Peak resident memory of a process, in KiB (VmHWM).
int64_t peak_rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

class Upload : public EndToEndTest {
 protected:
  // The configuration's files section, allowing one directory.
  static std::string allowing(const std::filesystem::path& dir) {
    return "files:\n  allowed_dirs: [\"" + dir.string() + "\"]\n";
  }
};

TEST_F(Upload, ContentGoesToTheVolumePathAndOverwriteFalseRefusesASecondPut) {
  start_stack({});
  config(R"(  report:
    steps:
      - name: put
        upload:
          path: "/Volumes/main/raw/landing/{{ input.client }}/report.json"
          content: {client: "{{ input.client }}", rows: 3}
)");
  start_daemon();
  start_workflow("up-1", "report", {{"client", "acme corp"}});
  auto done = wait_terminal("up-1");
  ASSERT_TRUE(done);
  ASSERT_EQ(done->status, WorkflowStatus::kSucceeded);
  const std::string path = "/Volumes/main/raw/landing/acme corp/report.json";
  EXPECT_EQ(done->steps[0].output->at("path"), json::value(path));
  const auto files = stack_->simulator().stats().files;
  ASSERT_EQ(files.count(path), 1u) << "the path arrives decoded as sent";
  EXPECT_EQ(json::parse(files.at(path).second), json::parse(R"({"client": "acme corp", "rows": 3})"));
  EXPECT_EQ(done->steps[0].output->at("bytes"), files.at(path).first);

  start_workflow("up-2", "report", {{"client", "acme corp"}});
  auto again = wait_terminal("up-2");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, WorkflowStatus::kFailed);
  ASSERT_TRUE(again->steps[0].error);
  EXPECT_EQ(again->steps[0].error->code, "already_exists");
}

TEST_F(Upload, ASixtyFourMegabyteFileIsStreamedInBoundedMemory) {
  start_stack({});
  config(R"(  big:
    steps:
      - name: warm
        upload: {path: /Volumes/main/raw/landing/small.bin, from_file: "{{ input.small }}", overwrite: true}
      - name: put
        upload: {path: /Volumes/main/raw/landing/big.bin, from_file: "{{ input.file }}", overwrite: true}
)" + allowing(dir_));
  const std::string small = (dir_ / "small.bin").string();
  const std::string file = (dir_ / "big.bin").string();
  {
    std::ofstream(small) << "hello";
    std::ofstream out(file, std::ios::binary);
    std::string block(1 << 20, '\0');
    for (int i = 0; i < 64; ++i) {
      for (size_t k = 0; k < block.size(); ++k) block[k] = static_cast<char>((k * 31 + i) & 0xff);
      out.write(block.data(), static_cast<std::streamsize>(block.size()));
    }
  }
  auto& child = start_child_daemon("uploader");
  // Warm up: one small upload first, so the baseline includes connections and buffers.
  start_workflow("warm-1", "big", {{"small", small}, {"file", small}});
  auto warm = wait_terminal("warm-1", 120s);
  ASSERT_TRUE(warm);
  ASSERT_EQ(warm->status, WorkflowStatus::kSucceeded);
  const int64_t before = peak_rss_kib(child.pid());
  ASSERT_GT(before, 0);
  start_workflow("big-1", "big", {{"small", small}, {"file", file}});
  auto done = wait_terminal("big-1", 120s);
  ASSERT_TRUE(done);
  ASSERT_EQ(done->status, WorkflowStatus::kSucceeded) << (done->steps[1].error ? done->steps[1].error->message : "");
  const int64_t after = peak_rss_kib(child.pid());
  EXPECT_EQ(done->steps[1].output->at("bytes"), 64 << 20);
  EXPECT_EQ(stack_->simulator().stats().files.at("/Volumes/main/raw/landing/big.bin").first, 64 << 20);
  // The file never sits whole in the daemon's memory. (ThreadSanitizer's own
  // bookkeeping grows with every byte a program touches, so under it the
  // number says nothing about the daemon and is only printed.)
#if !defined(__SANITIZE_THREAD__)
  EXPECT_LT(after - before, 16 * 1024) << "peak RSS grew from " << before << " KiB to " << after
                                       << " KiB for a 64 MiB upload";
#endif
  std::cout << "daemon peak RSS " << before << " KiB before, " << after
            << " KiB after a 64 MiB upload\n";
}

TEST_F(Upload, ARenderedPathMustResolveUnderAnAllowedDirectory) {
  start_stack({});
  const auto allowed = dir_ / "exports";
  std::filesystem::create_directories(allowed);
  std::ofstream(allowed / "acme.csv") << "a,b\n1,2\n";
  std::ofstream(dir_ / "secret.txt") << "not for upload";
  std::filesystem::create_symlink(dir_ / "secret.txt", allowed / "link.csv");
  config(R"(  put:
    steps:
      - name: put
        upload: {path: "/Volumes/main/raw/landing/{{ workflow.id }}", from_file: "{{ input.file }}"}
)" + allowing(allowed));
  start_daemon();
  const std::pair<const char*, std::string> cases[] = {
      {"allowed", (allowed / "acme.csv").string()},
      {"symlink", (allowed / "link.csv").string()},      // a link out of the directory
      {"dotdot", (allowed / ".." / "secret.txt").string()},  // ".." out of the directory
  };
  for (const auto& [id, file] : cases) start_workflow(id, "put", {{"file", file}});
  auto ok = wait_terminal("allowed");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, WorkflowStatus::kSucceeded);
  EXPECT_EQ(stack_->simulator().stats().files.at("/Volumes/main/raw/landing/allowed").second,
            "a,b\n1,2\n");
  for (const char* id : {"symlink", "dotdot"}) {
    auto refused = wait_terminal(id);
    ASSERT_TRUE(refused) << id;
    EXPECT_EQ(refused->status, WorkflowStatus::kFailed) << id;
    ASSERT_TRUE(refused->steps[0].error) << id;
    EXPECT_EQ(refused->steps[0].error->code, "file_not_allowed") << id;
    EXPECT_NE(refused->steps[0].error->message.find(std::filesystem::canonical(dir_ / "secret.txt").string()),
              std::string::npos)
        << refused->steps[0].error->message;
    EXPECT_EQ(refused->steps[0].attempt, 1) << id << ": a refused path is not retried";
    EXPECT_EQ(stack_->simulator().stats().files.count(std::string("/Volumes/main/raw/landing/") + id),
              0u);
  }
}

TEST_F(Upload, WithoutAllowedDirsOnlyALiteralPathIsRead) {
  start_stack({});
  const auto file = dir_ / "fixed.csv";
  std::ofstream(file) << "x\n";
  // Checked when loaded: a templated path with no allowed_dirs is refused.
  LoadOptions load;
  load.steps = &StepRegistry::builtin();
  auto templated = load_config_from_string(
      stack_->config_yaml("  put:\n    steps:\n      - name: put\n        upload: "
                          "{path: /Volumes/main/raw/t, from_file: \"{{ input.file }}\"}\n",
                          "e2e"),
      "e2e.yaml", load);
  ASSERT_FALSE(templated);
  EXPECT_NE(templated.error().message.find("e2e.yaml:"), std::string::npos) << templated.error().message;
  EXPECT_NE(templated.error().message.find("files.allowed_dirs"), std::string::npos) << templated.error().message;

  config("  put:\n    steps:\n      - name: put\n        upload: {path: /Volumes/main/raw/fixed, "
         "from_file: \"" + file.string() + "\"}\n");
  start_daemon();
  start_workflow("literal", "put");
  auto done = wait_terminal("literal");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  EXPECT_EQ(stack_->simulator().stats().files.at("/Volumes/main/raw/fixed").second, "x\n");
}

}  // namespace
}  // namespace brickwork::testing
