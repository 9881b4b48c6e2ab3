// SIGHUP's reload against a live stack: new workflow definitions apply, and a
// reloaded file that also renames a topic changes nothing about what the
// running daemon consumes or how it routes what it consumes.
#include "tests/integration/harness.hpp"

namespace brickwork::testing {
namespace {

class ReloadEndToEnd : public EndToEndTest {
 protected:
  // The stack's configuration with `workflows_yaml`, loaded as SIGHUP would
  // load the edited file; `edit` changes the YAML text first.
  ConfigPtr fresh_config(const std::string& workflows_yaml,
                         const std::function<void(std::string&)>& edit) {
    std::string yaml = stack_->config_yaml(workflows_yaml, "e2e");
    edit(yaml);
    LoadOptions load;
    load.steps = &StepRegistry::builtin();
    auto loaded = load_config_from_string(yaml, "reloaded.yaml", load);
    EXPECT_TRUE(loaded) << loaded.error().message;
    return loaded ? std::make_shared<const Config>(std::move(*loaded)) : nullptr;
  }
};

TEST_F(ReloadEndToEnd, RenamedCommandsTopicKeepsInputsOfTheRunningTopicApplied) {
  start_stack(
      {{101, sim_job("extract", 200, {{"rows", 1}})}, {102, sim_job("load", 200, {{"rows", 2}})}});
  config("  before:\n    steps:\n      - name: extract\n        run_job: {job_id: 101}\n");
  InProcessDaemon& d = start_daemon();

  const std::string running_topic = config_->kafka.topics.commands;
  ConfigPtr fresh =
      fresh_config("  after:\n    steps:\n      - name: load\n        run_job: {job_id: 102}\n",
                   [&](std::string& yaml) {
                     const std::string from = "commands: \"" + running_topic + "\"";
                     const size_t at = yaml.find(from);
                     ASSERT_NE(at, std::string::npos) << yaml;
                     yaml.replace(at, from.size(), "commands: \"renamed.commands\"");
                   });
  ASSERT_TRUE(fresh);
  ASSERT_EQ(fresh->kafka.topics.commands, "renamed.commands");
  d.daemon().reload(fresh);

  // The new definition is in use, the topic is not.
  const ConfigPtr now = d.daemon().context().config();
  EXPECT_EQ(now->workflows.count("after"), 1u);
  EXPECT_EQ(now->workflows.count("before"), 0u);
  EXPECT_EQ(now->kafka.topics.commands, running_topic);

  // The daemon still consumes the running topic and must treat what arrives
  // there as commands, not dead-letter it as a topic it does not read.
  start_workflow("after-1", "after");
  auto done = wait_terminal("after-1");
  ASSERT_TRUE(done) << "the start command on " << running_topic << " was not applied";
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  EXPECT_EQ(done->definition.steps.at(0).name, "load");
  EXPECT_TRUE(dead_letters().empty());
}

}  // namespace
}  // namespace brickwork::testing
