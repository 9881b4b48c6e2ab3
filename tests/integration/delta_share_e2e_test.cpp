// The delta_share step against the simulator's Unity Catalog: the shipped
// onboarding and offboarding examples, convergence from half-done states, a
// repeated onboarding, a recipient of the wrong kind, token rotation, and
// the activation link carried to the client's topic by a later emit.
#include "daemon/databricks/api.hpp"
#include "tests/integration/harness.hpp"

namespace brickwork::testing {
namespace {

using namespace std::chrono_literals;

const char* const kLinkPath = "/delta_sharing/retrieve_config.html?";

class DeltaShare : public EndToEndTest {
 protected:
  // config/examples/workflows.d/delta_sharing.yaml as shipped, plus `extra`.
  void shipped_workflows(const std::string& extra = "") {
    std::ifstream in(std::string(BRICKWORK_SOURCE_DIR) +
                     "/config/examples/workflows.d/delta_sharing.yaml");
    std::string text((std::istreambuf_iterator<char>(in)), {});
    const size_t body = text.find("workflows:\n");
    ASSERT_NE(body, std::string::npos);
    config(text.substr(body + std::string("workflows:\n").size()) + extra);
  }

  SimulatedSharing sharing() { return stack_->simulator().sharing(); }

  std::optional<WorkflowState> run(const std::string& id, const std::string& workflow,
                                   const std::string& client) {
    start_workflow(id, workflow, {{"client_id", client}});
    return wait_terminal(id);
  }

  static std::string error_of(const std::optional<WorkflowState>& w) {
    for (const auto& s : w->steps) {
      if (s.error) return s.name + ": " + s.error->code + " " + s.error->message;
    }
    return "";
  }

  // The messages on the client's topic.
  std::vector<json::object> links_sent(const std::string& client, size_t expected) {
    std::vector<json::object> sent;
    eventually([&] {
      sent = topic_objects("clients." + client + ".sharing", client);
      return sent.size() >= expected;
    });
    return sent;
  }
};

const json::value kAcmePartitions = json::parse(
    R"([{"values": [{"name": "client_space_uid", "op": "EQUAL", "value": "acme"}]}])");

TEST_F(DeltaShare, OnboardingFromNothingThenAgainConvergesToTheSameState) {
  start_stack({});
  ASSERT_TRUE(stack_->kafka().create_topic("clients.acme.sharing", 1));
  shipped_workflows();
  start_daemon();
  auto first = run("onb-1", "share_onboarding", "acme");
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, WorkflowStatus::kSucceeded) << error_of(first);
  const json::object& output = *first->steps[0].output;
  EXPECT_EQ(output.at("share"), "acme_usage");
  EXPECT_EQ(output.at("recipient"), "acme");
  const std::string link(output.at("activation_url").as_string());
  EXPECT_EQ(link.rfind(stack_->simulator().base_url() + kLinkPath, 0), 0u) << link;

  const SimulatedSharing state = sharing();
  ASSERT_EQ(state.shares.count("acme_usage"), 1u);
  const SimulatedShare& share = state.shares.at("acme_usage");
  ASSERT_EQ(share.objects.size(), 1u);
  EXPECT_EQ(share.objects[0].name, "main.platform.usage");
  EXPECT_EQ(json::value(share.objects[0].partitions), kAcmePartitions);
  EXPECT_EQ(share.grants.at("acme"), std::set<std::string>{"SELECT"});
  ASSERT_EQ(state.recipients.count("acme"), 1u);
  EXPECT_EQ(state.recipients.at("acme").authentication_type, "TOKEN");

  // The link reached the client's topic through the emit's template.
  auto sent = links_sent("acme", 1);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0], (json::object{{"share", "acme_usage"}, {"activation_url", link}}));

  // A second workflow for the same client: the same state, the same (still
  // unused) link, and no write at all.
  auto second = run("onb-2", "share_onboarding", "acme");
  ASSERT_TRUE(second);
  ASSERT_EQ(second->status, WorkflowStatus::kSucceeded) << error_of(second);
  EXPECT_EQ(second->steps[0].output->at("activation_url"), json::value(link));
  EXPECT_EQ(second->steps[0].attempt, 1);
  const SimulatedSharing again = sharing();
  EXPECT_EQ(again.writes, state.writes);
  EXPECT_EQ(again.writes.at("shares.create"), 1);
  EXPECT_EQ(again.writes.at("shares.update"), 1);
  EXPECT_EQ(again.writes.at("recipients.create"), 1);
  EXPECT_EQ(again.writes.at("permissions.update"), 1);
  EXPECT_EQ(again.shares.at("acme_usage").objects.size(), 1u);
  EXPECT_EQ(links_sent("acme", 2).size(), 2u);
}

TEST_F(DeltaShare, HalfDoneStatesAreCompletedNotRecreated) {
  start_stack({});
  ASSERT_TRUE(stack_->kafka().create_topic("clients.acme.sharing", 1));
  ASSERT_TRUE(stack_->kafka().create_topic("clients.beta.sharing", 1));
  // acme: the share exists without its table, the recipient without its grant.
  // beta: the table is shared with another client's filter.
  stack_->simulator().edit_sharing([](SimulatedSharing& s) {
    s.shares["acme_usage"].name = "acme_usage";
    SimulatedRecipient acme;
    acme.name = "acme";
    acme.tokens.push_back({"tok-1", "http://sim/delta_sharing/retrieve_config.html?abc", 1, {}});
    s.recipients["acme"] = acme;
    SimulatedShare beta;
    beta.name = "beta_usage";
    beta.objects.push_back({"main.platform.usage", "TABLE", kAcmePartitions.as_array()});
    s.shares["beta_usage"] = beta;
  });
  shipped_workflows();
  start_daemon();
  auto acme = run("half-1", "share_onboarding", "acme");
  ASSERT_TRUE(acme);
  ASSERT_EQ(acme->status, WorkflowStatus::kSucceeded) << error_of(acme);
  EXPECT_EQ(acme->steps[0].output->at("activation_url"),
            "http://sim/delta_sharing/retrieve_config.html?abc");
  auto beta = run("half-2", "share_onboarding", "beta");
  ASSERT_TRUE(beta);
  ASSERT_EQ(beta->status, WorkflowStatus::kSucceeded) << error_of(beta);

  const SimulatedSharing state = sharing();
  EXPECT_EQ(json::value(state.shares.at("acme_usage").objects.at(0).partitions), kAcmePartitions);
  EXPECT_EQ(state.shares.at("acme_usage").grants.at("acme"), std::set<std::string>{"SELECT"});
  // beta's table now carries beta's filter (UPDATE), not a second copy.
  ASSERT_EQ(state.shares.at("beta_usage").objects.size(), 1u);
  EXPECT_EQ(json::value(state.shares.at("beta_usage").objects[0].partitions),
            json::parse(R"([{"values": [{"name": "client_space_uid", "op": "EQUAL", "value": "beta"}]}])"));
  EXPECT_EQ(state.writes.count("shares.create"), 0u);      // neither share was created again
  EXPECT_EQ(state.writes.at("recipients.create"), 1);      // beta's only
  EXPECT_EQ(state.writes.at("shares.update"), 2);          // acme ADD, beta UPDATE
  EXPECT_EQ(state.writes.at("permissions.update"), 2);
}

TEST_F(DeltaShare, FaultsOnEveryCallStillConvergeWithoutDuplicates) {
  SimulatorFaults faults;
  faults.error_rate = 0.3;
  faults.statuses = {503};
  faults.retry_after = Duration(0);
  faults.seed = 7;
  start_stack({}, faults);
  ASSERT_TRUE(stack_->kafka().create_topic("clients.acme.sharing", 1));
  shipped_workflows();
  start_daemon();
  auto done = run("faulty-1", "share_onboarding", "acme");
  ASSERT_TRUE(done);
  ASSERT_EQ(done->status, WorkflowStatus::kSucceeded) << error_of(done);
  EXPECT_GT(stack_->simulator().stats().faults_injected, 0);
  const SimulatedSharing state = sharing();
  EXPECT_EQ(state.writes.at("shares.create"), 1);
  EXPECT_EQ(state.writes.at("recipients.create"), 1);
  EXPECT_EQ(state.shares.at("acme_usage").objects.size(), 1u);
  EXPECT_EQ(state.recipients.at("acme").tokens.size(), 1u);
}

TEST_F(DeltaShare, RevocationRemovesTheGrantAndTheRecipientAndIsSafeToRepeat) {
  start_stack({});
  ASSERT_TRUE(stack_->kafka().create_topic("clients.acme.sharing", 1));
  shipped_workflows(R"(  keep_share:
    steps:
      - name: revoke
        delta_share: {action: revoke, share: "{{ input.client_id }}_usage", recipient: "{{ input.client_id }}"}
)");
  start_daemon();
  auto onboarded = run("rev-0", "share_onboarding", "acme");
  ASSERT_TRUE(onboarded);
  ASSERT_EQ(onboarded->status, WorkflowStatus::kSucceeded) << error_of(onboarded);

  // Without delete_share the share stays, without the grant.
  auto kept = run("rev-1", "keep_share", "acme");
  ASSERT_TRUE(kept);
  ASSERT_EQ(kept->status, WorkflowStatus::kSucceeded) << error_of(kept);
  EXPECT_TRUE(kept->steps[0].output->at("activation_url").is_null());
  SimulatedSharing state = sharing();
  EXPECT_EQ(state.recipients.count("acme"), 0u);
  ASSERT_EQ(state.shares.count("acme_usage"), 1u);
  EXPECT_TRUE(state.shares.at("acme_usage").grants.empty());

  // The shipped offboarding deletes the share too, and a second run finds
  // nothing left to do.
  for (const char* id : {"rev-2", "rev-3"}) {
    auto revoked = run(id, "share_offboarding", "acme");
    ASSERT_TRUE(revoked);
    ASSERT_EQ(revoked->status, WorkflowStatus::kSucceeded) << id << " " << error_of(revoked);
  }
  state = sharing();
  EXPECT_EQ(state.shares.count("acme_usage"), 0u);
  EXPECT_EQ(state.writes.at("recipients.delete"), 1);
  EXPECT_EQ(state.writes.at("shares.delete"), 1);
  EXPECT_EQ(state.writes.at("permissions.update"), 2);  // the grant, then its removal
}

TEST_F(DeltaShare, AUsedLinkIsNullUntilRotateTokenIssuesANewOne) {
  start_stack({});
  ASSERT_TRUE(stack_->kafka().create_topic("clients.acme.sharing", 1));
  // A recipient made long ago, its link never used.
  const std::string old_link = stack_->simulator().base_url() + kLinkPath + "0123abcd";
  stack_->simulator().edit_sharing([&](SimulatedSharing& s) {  // under its lock: no calls to it
    SimulatedRecipient acme;
    acme.name = "acme";
    acme.tokens.push_back({"tok-1", old_link, 1000, {}});
    s.recipients["acme"] = acme;
  });
  shipped_workflows(R"(  rotate:
    steps:
      - name: provision
        delta_share:
          share: "{{ input.client_id }}_usage"
          recipient: "{{ input.client_id }}"
          rotate_token: true
          existing_token_expire_in: 1h
)");
  start_daemon();
  auto first = run("rot-0", "share_onboarding", "acme");
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, WorkflowStatus::kSucceeded) << error_of(first);
  // The client follows the link it was sent: the credential comes once.
  const auto sent = links_sent("acme", 1);
  ASSERT_EQ(sent.size(), 1u);
  const std::string link(sent[0].at("activation_url").as_string());
  EXPECT_EQ(link, old_link);
  DatabricksConfig db;
  db.host = stack_->simulator().base_url();
  auto api = make_databricks_api(db);
  ASSERT_TRUE(api) << api.error().message;
  const std::string code = link.substr(link.find('?') + 1);
  auto profile = (*api)->call("GET", "/api/2.1/unity-catalog/public/data_sharing_activation/" + code,
                              nullptr, true);
  ASSERT_TRUE(profile) << profile.error().message;
  EXPECT_EQ(profile->at("shareCredentialsVersion"), 1);
  EXPECT_FALSE((*api)->call("GET", "/api/2.1/unity-catalog/public/data_sharing_activation/" + code,
                            nullptr, true));

  // Onboarding again: the link was used, so there is none to give.
  auto used = run("rot-1", "share_onboarding", "acme");
  ASSERT_TRUE(used);
  ASSERT_EQ(used->status, WorkflowStatus::kSucceeded) << error_of(used);
  EXPECT_TRUE(used->steps[0].output->at("activation_url").is_null());
  EXPECT_TRUE(links_sent("acme", 2).at(1).at("activation_url").is_null());

  // rotate_token: a new link; the old token keeps an hour of grace.
  auto rotated = run("rot-2", "rotate", "acme");
  ASSERT_TRUE(rotated);
  ASSERT_EQ(rotated->status, WorkflowStatus::kSucceeded) << error_of(rotated);
  const json::value fresh = rotated->steps[0].output->at("activation_url");
  ASSERT_TRUE(fresh.is_string());
  EXPECT_NE(fresh.as_string(), link);
  SimulatedSharing state = sharing();
  EXPECT_EQ(state.writes.at("recipients.rotate_token"), 1);
  ASSERT_EQ(state.recipients.at("acme").tokens.size(), 2u);
  EXPECT_TRUE(state.recipients.at("acme").tokens[0].expiration_time.has_value());
}

TEST_F(DeltaShare, ClientsWhoseNamesDifferOnlyInCaseNeverShareASecurable) {
  start_stack({});
  ASSERT_TRUE(stack_->kafka().create_topic("clients.acme.sharing", 1));
  ASSERT_TRUE(stack_->kafka().create_topic("clients.ACME.sharing", 1));
  shipped_workflows();
  start_daemon();
  auto acme = run("case-1", "share_onboarding", "acme");
  ASSERT_TRUE(acme);
  ASSERT_EQ(acme->status, WorkflowStatus::kSucceeded) << error_of(acme);
  const json::value link = acme->steps[0].output->at("activation_url");
  const SimulatedSharing before = sharing();

  // Unity Catalog finds acme's share and recipient under "ACME_usage" and
  // "ACME": the second client fails clearly instead of taking them over.
  auto upper = run("case-2", "share_onboarding", "ACME");
  ASSERT_TRUE(upper);
  EXPECT_EQ(upper->status, WorkflowStatus::kFailed);
  ASSERT_TRUE(upper->steps[0].error);
  EXPECT_EQ(upper->steps[0].error->code, "name_collision") << error_of(upper);
  EXPECT_NE(upper->steps[0].error->message.find("'acme'"), std::string::npos) << error_of(upper);
  EXPECT_EQ(upper->steps[0].attempt, 1);
  EXPECT_NE(upper->steps[1].status, StepStatus::kSucceeded);

  const SimulatedSharing after = sharing();
  EXPECT_EQ(after.writes, before.writes) << "nothing written for ACME";
  EXPECT_EQ(json::value(after.shares.at("acme_usage").objects.at(0).partitions), kAcmePartitions);
  auto sent = links_sent("acme", 1);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].at("activation_url"), link);
  EXPECT_TRUE(topic_objects("clients.ACME.sharing", "ACME").empty()) << "acme's link stays acme's";

  // Nor may ACME's offboarding revoke acme.
  auto revoke = run("case-3", "share_offboarding", "ACME");
  ASSERT_TRUE(revoke);
  EXPECT_EQ(revoke->status, WorkflowStatus::kFailed);
  ASSERT_TRUE(revoke->steps[0].error);
  EXPECT_EQ(revoke->steps[0].error->code, "name_collision");
  EXPECT_EQ(sharing().recipients.count("acme"), 1u);
  EXPECT_EQ(sharing().writes, before.writes);
}

TEST_F(DeltaShare, ARecipientOfAnotherKindFailsTheStepWithoutRetries) {
  start_stack({});
  stack_->simulator().edit_sharing([](SimulatedSharing& s) {
    SimulatedRecipient acme;
    acme.name = "acme";
    acme.authentication_type = "DATABRICKS";
    acme.data_recipient_global_metastore_id = "aws:us-west-2:0000";
    s.recipients["acme"] = acme;
  });
  shipped_workflows(R"(  d2d:
    steps:
      - name: provision
        delta_share:
          share: "{{ input.client_id }}_usage"
          recipient: "{{ input.client_id }}"
          sharing_identifier: "aws:us-west-2:1111"
)");
  start_daemon();
  for (const auto& [id, workflow] : std::vector<std::pair<std::string, std::string>>{
           {"kind-1", "share_onboarding"}, {"kind-2", "d2d"}}) {
    auto done = run(id, workflow, "acme");
    ASSERT_TRUE(done);
    EXPECT_EQ(done->status, WorkflowStatus::kFailed) << id;
    ASSERT_TRUE(done->steps[0].error) << id;
    EXPECT_EQ(done->steps[0].error->code, "recipient_mismatch") << id;
    EXPECT_EQ(done->steps[0].attempt, 1) << id;
  }
  // Nothing was written: no share half-made for a recipient that cannot have it.
  EXPECT_TRUE(sharing().shares.empty());
  EXPECT_TRUE(sharing().writes.empty());
}

}  // namespace
}  // namespace brickwork::testing
