// Sensitive outputs (contract 6.3): a later step's template may read one, and
// nothing else does. A test-only step type hands out a secret; the test then
// looks for it in every channel brickwork writes to.
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <pqxx/pqxx>
#include <sstream>

#include "config/templates.hpp"
#include "daemon/core/key_id.hpp"
#include "daemon/runtime/status_view.hpp"
#include "tests/integration/harness.hpp"

namespace brickwork::testing {
namespace {

constexpr std::string_view kSecretMark = "TOPSECRET-activation-7f3a";

class SecretStep final : public StepType {
 public:
  std::string_view action_key() const override { return "mint_secret"; }
  Result<BoundActionPtr> compile(StepDefinition& step) const override {
    step.plan.sensitive_output = true;
    return bind_nothing();
  }
  Result<StepOutcome> execute(const StepContext& context, StepServices&) const override {
    StepOutcome outcome;
    outcome.output = json::object{
        {"recipient", context.workflow.id},
        {"activation_url", "https://sim.example/delta_sharing/retrieve_config.html?" +
                               std::string(kSecretMark) + "-" + context.workflow.id}};
    return outcome;
  }
};

class Sensitive : public EndToEndTest {
 protected:
  // The built-in step types and `mint_secret`, which hands out a secret.
  void use_secret_step() {
    static StepRegistry registry = [] {
      StepRegistry r = StepRegistry::with_builtin_types();
      r.add(std::make_unique<SecretStep>());
      return r;
    }();
    steps_ = &registry;
  }

  std::vector<std::string> sql_texts(const std::string& statement) {
    pqxx::connection c(config_->postgres.url);
    pqxx::work tx(c);
    std::vector<std::string> out;
    for (const pqxx::row row : tx.exec(statement)) out.push_back(row[0].c_str());
    return out;
  }
};

bool mentions_secret(const std::string& text) { return text.find(kSecretMark) != std::string::npos; }

TEST_F(Sensitive, ASecretOutputReachesTheNextStepAndNoOtherChannel) {
  use_secret_step();
  // Every log line of the daemon, in memory.
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  spdlog::default_logger()->sinks().push_back(sink);
  const auto level = spdlog::default_logger()->level();
  spdlog::default_logger()->set_level(spdlog::level::debug);

  start_stack({});
  ASSERT_TRUE(stack_->kafka().create_topic("client.credentials", 1));
  config(R"(  onboard:
    steps:
      - name: provision
        mint_secret: {}
      - name: deliver
        emit:
          topic: client.credentials
          key: "{{ input.client }}"
          value: {url: "{{ steps.provision.output.activation_url }}"}
      - name: gate
        wait_for_signal: {}
)");
  start_daemon();
  start_workflow("client-1", "onboard", {{"client", "acme"}});
  ASSERT_TRUE(eventually([&] { return step_is("client-1", "gate", StepStatus::kWaiting); }));

  // Readable to brickwork itself, through the key.
  auto waiting = workflow("client-1");
  ASSERT_TRUE(waiting);
  const std::string secret_url = std::string(waiting->find_step("provision")->output->at(
                                                 "activation_url").as_string());
  EXPECT_TRUE(mentions_secret(secret_url));
  // At rest it is sealed, in every table.
  for (const char* table : {"workflows", "steps", "effects", "outbox"}) {
    for (const std::string& row : sql_texts(std::string("SELECT t::text FROM ") + table + " t")) {
      EXPECT_FALSE(mentions_secret(row)) << table << ": " << row;
    }
  }
  const auto stored = sql_texts(
      "SELECT output::text FROM steps WHERE workflow_id = 'client-1' AND name = 'provision'");
  ASSERT_EQ(stored.size(), 1u);
  // Named by the key that sealed it (a rotation keeps the old key to open it).
  EXPECT_NE(stored[0].find("bwenc2:" + key_id_of(config_->callbacks.secret) + ":"),
            std::string::npos)
      << stored[0];

  // A signal nothing waits for: a dead letter about this workflow.
  signal("client-1", "nobody-waits", nullptr);
  signal("client-1", "gate", nullptr);
  auto done = wait_terminal("client-1");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);

  // The step that asked for it got it.
  const std::vector<KafkaMessage> delivered = wait_for_messages("client.credentials");
  ASSERT_EQ(delivered.size(), 1u);
  EXPECT_EQ(delivered[0].payload, json::serialize(json::object{{"url", secret_url}}));

  // Status events say there was an output, not what it was.
  bool saw_redacted = false;
  ASSERT_TRUE(eventually([&] { return status_events("client-1").size() >= 8; }));
  for (const auto& event : status_events("client-1")) {
    EXPECT_FALSE(mentions_secret(json::serialize(event))) << json::serialize(event);
    if (event.at("type") == "step_succeeded" && event.at("step") == "provision") {
      EXPECT_EQ(event.at("output"), "<redacted>");
      saw_redacted = true;
    }
  }
  EXPECT_TRUE(saw_redacted);
  ASSERT_TRUE(eventually([&] { return !dead_letters().empty(); }));
  for (const auto& dead : dead_letters()) EXPECT_FALSE(mentions_secret(json::serialize(dead)));
  // `brickwork status`, with the daemon's key and without one (as the CLI opens it).
  auto final_state = workflow("client-1");
  ASSERT_TRUE(final_state);
  const std::string shown = json::serialize(status_json(*final_state)) + status_table(*final_state);
  EXPECT_FALSE(mentions_secret(shown)) << shown;
  EXPECT_NE(shown.find("<redacted>"), std::string::npos);
  auto cli_view = Store::open(config_->postgres.url)->get_workflow("client-1");
  ASSERT_TRUE(cli_view && *cli_view);
  EXPECT_EQ(status_json(**cli_view).at("steps").as_array()[0].at("output"), "<redacted>");
  // And the log.
  for (auto& daemon : daemons_) daemon->stop();
  spdlog::default_logger()->set_level(level);
  auto& sinks = spdlog::default_logger()->sinks();
  sinks.erase(std::remove(sinks.begin(), sinks.end(), sink), sinks.end());
  EXPECT_FALSE(mentions_secret(log.str()));
  EXPECT_NE(log.str().find("client-1"), std::string::npos);  // the log was captured
}

TEST_F(Sensitive, AnOutputSealedUnderAnotherSecretFailsItsWorkflowClearly) {
  use_secret_step();
  start_stack({});
  config(R"(  onboard:
    steps:
      - name: provision
        mint_secret: {}
      - name: gate
        wait_for_signal: {}
)");
  start_daemon();
  start_workflow("client-2", "onboard", {});
  ASSERT_TRUE(eventually([&] { return step_is("client-2", "gate", StepStatus::kWaiting); }));
  // The secret is sealed with a key from callbacks.secret: another key cannot open it.
  auto other = Store::open(config_->postgres.url, nullptr,
                           std::make_shared<const SecretBox>("another-secret-another-secret!!"));
  auto read = other->get_workflow("client-2");
  ASSERT_FALSE(read);
  EXPECT_NE(read.error().message.find("callbacks.secret"), std::string::npos)
      << read.error().message;
}

// After a rotation (the old secret in callbacks.previous_secrets) a sealed
// output made before it still reaches a later step. Its row is not written
// again, so it keeps naming the old key: only the old secret opens it.
TEST_F(Sensitive, AnOutputSealedBeforeARotationStillReachesALaterStep) {
  use_secret_step();
  start_stack({});
  ASSERT_TRUE(stack_->kafka().create_topic("client.credentials", 1));
  config(R"(  onboard:
    steps:
      - name: provision
        mint_secret: {}
      - name: gate
        wait_for_signal: {}
      - name: deliver
        emit:
          topic: client.credentials
          key: "{{ input.client }}"
          value: {url: "{{ steps.provision.output.activation_url }}"}
)");
  const std::string old_key = key_id_of(config_->callbacks.secret);
  start_daemon("before");
  start_workflow("client-3", "onboard", {{"client", "acme"}});
  ASSERT_TRUE(eventually([&] { return step_is("client-3", "gate", StepStatus::kWaiting); }));
  daemons_.clear();
  const std::string sealed = sql_texts(
      "SELECT output::text FROM steps WHERE workflow_id = 'client-3' AND name = 'provision'")[0];
  EXPECT_NE(sealed.find("bwenc2:" + old_key + ":"), std::string::npos) << sealed;

  rotate_callback_secret("the-rotated-callback-secret-0123456789abcdef");
  start_daemon("after");
  signal("client-3", "gate", nullptr);
  auto done = wait_terminal("client-3");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  const std::vector<KafkaMessage> delivered = wait_for_messages("client.credentials");
  ASSERT_EQ(delivered.size(), 1u);
  EXPECT_TRUE(mentions_secret(delivered[0].payload)) << delivered[0].payload;
  EXPECT_EQ(sql_texts("SELECT output::text FROM steps WHERE workflow_id = 'client-3' AND "
                      "name = 'provision'")[0],
            sealed);
  auto without_old = Store::open(config_->postgres.url, nullptr,
                                 std::make_shared<const SecretBox>(config_->callbacks.secret));
  EXPECT_FALSE(without_old->get_workflow("client-3"));
  auto with_old = store().get_workflow("client-3");
  ASSERT_TRUE(with_old) << with_old.error().message;
}

}  // namespace
}  // namespace brickwork::testing
