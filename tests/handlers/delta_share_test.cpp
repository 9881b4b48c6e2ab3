// The delta_share step's pure halves: what its action may say, what it asks
// of a share that already holds some tables, and which activation link it
// reports. The calls themselves run against the simulator in
// tests/integration/delta_share_e2e_test.cpp.
#include <gtest/gtest.h>

#include "handlers/steps/delta_share.hpp"
#include "handlers/steps/step_type.hpp"

namespace brickwork {
namespace {

// The message compile() gives for an action (nullopt: accepted).
std::optional<std::string> delta_share_compile(const char* action_json, StepPlan* plan = nullptr) {
  StepDefinition step;
  step.name = "provision";
  step.type = "delta_share";
  step.action = json::parse(action_json).as_object();
  auto message = StepRegistry::builtin().compile(step);
  if (plan != nullptr) *plan = step.plan;
  return message;
}

TEST(DeltaShareCompile, TheContractsExampleIsAcceptedAndItsOutputIsSensitive) {
  StepPlan plan;
  EXPECT_EQ(delta_share_compile(R"({"share": "{{ input.client_id }}_usage",
      "tables": [{"name": "main.platform.usage", "partition": {"client_space_uid": "{{ input.client_id }}"}}],
      "recipient": "{{ input.client_id }}", "rotate_token": true, "existing_token_expire_in": "1h"})",
                                &plan),
            std::nullopt);
  EXPECT_TRUE(plan.sensitive_output);
  EXPECT_EQ(delta_share_compile(R"({"action": "revoke", "share": "s", "recipient": "r",
      "delete_share": true})", &plan),
            std::nullopt);
  EXPECT_TRUE(plan.sensitive_output);
}

TEST(DeltaShareCompile, RefusesWhatCannotWork) {
  auto refused = [](const char* action, const char* words) {
    auto m = delta_share_compile(action);
    ASSERT_TRUE(m) << action;
    EXPECT_NE(m->find(words), std::string::npos) << *m;
  };
  refused(R"({"share": "s", "recipient": "r", "tabels": []})", "tabels is not a field");
  refused(R"({"recipient": "r"})", "delta_share.share is required");
  refused(R"({"share": "s"})", "delta_share.recipient is required");
  refused(R"({"action": "delete", "share": "s", "recipient": "r"})", "provision");
  // revoke takes only share, recipient and delete_share.
  refused(R"({"action": "revoke", "share": "s", "recipient": "r", "tables": []})",
          "tables is not a field");
  refused(R"({"share": "s", "recipient": "r", "delete_share": true})", "delete_share is not a field");
  refused(R"({"share": "s", "recipient": "r", "tables": [{"name": "usage"}]})",
          "<catalog>.<schema>.<table>");
  refused(R"({"share": "s", "recipient": "r", "tables": [{"name": "a.b.c", "filter": {}}]})",
          "filter is not a field");
  refused(R"({"share": "s", "recipient": "r", "tables": [{"name": "a.b.c", "partition": {"x": [1]}}]})",
          "one value");
  refused(R"({"share": "s", "recipient": "r", "sharing_identifier": "aws:x:y", "rotate_token": true})",
          "has no token");
  refused(R"({"share": "s", "recipient": "r", "existing_token_expire_in": "1h"})",
          "needs rotate_token");
  refused(R"({"share": "s", "recipient": "r", "rotate_token": true, "existing_token_expire_in": "soon"})",
          "duration");
  refused(R"({"share": "s", "recipient": "r", "rotate_token": "yes"})", "true or false");
}

TEST(DeltaShareRequest, PartitionsBecomeTheApisEqualFilters) {
  auto r = delta_share_request(json::parse(R"({"share": "acme_usage", "recipient": "acme",
      "tables": [{"name": "main.platform.usage", "partition": {"client_space_uid": "acme", "year": 2026}},
                 {"name": "main.platform.events"}],
      "rotate_token": true, "existing_token_expire_in": "1h"})").as_object());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->revoke);
  ASSERT_EQ(r->tables.size(), 2u);
  EXPECT_EQ(json::value(r->tables[0].partitions), json::parse(R"([{"values": [
      {"name": "client_space_uid", "op": "EQUAL", "value": "acme"},
      {"name": "year", "op": "EQUAL", "value": "2026"}]}])"));
  EXPECT_TRUE(r->tables[1].partitions.empty());
  EXPECT_EQ(r->existing_token_expire_in_seconds, 3600);
  // A template that rendered to something else fails without retries.
  auto bad = delta_share_request(json::parse(R"({"share": "", "recipient": "acme"})").as_object());
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, "invalid_step");
}

TEST(DeltaShareUpdates, AddsTheMissingUpdatesOtherFiltersAndLeavesTheRest) {
  auto r = delta_share_request(json::parse(R"({"share": "s", "recipient": "r", "tables": [
      {"name": "main.platform.usage", "partition": {"client_space_uid": "acme"}},
      {"name": "main.platform.events", "partition": {"client_space_uid": "acme"}},
      {"name": "main.platform.costs", "partition": {"client_space_uid": "acme"}}]})").as_object());
  ASSERT_TRUE(r);
  // usage: as asked (listed in another order of fields, upper-case name);
  // events: another client's filter; costs: missing; other: not asked, kept.
  const json::value objects = json::parse(R"([
      {"name": "MAIN.platform.usage", "data_object_type": "TABLE", "status": "ACTIVE",
       "partitions": [{"values": [{"value": "acme", "op": "EQUAL", "name": "client_space_uid"}]}]},
      {"name": "main.platform.events", "data_object_type": "TABLE",
       "partitions": [{"values": [{"name": "client_space_uid", "op": "EQUAL", "value": "other"}]}]},
      {"name": "main.platform.other", "data_object_type": "TABLE"}])");
  EXPECT_EQ(json::value(delta_share_updates(r->tables, objects)), json::parse(R"([
      {"action": "UPDATE", "data_object": {"name": "main.platform.events", "data_object_type": "TABLE",
        "partitions": [{"values": [{"name": "client_space_uid", "op": "EQUAL", "value": "acme"}]}]}},
      {"action": "ADD", "data_object": {"name": "main.platform.costs", "data_object_type": "TABLE",
        "partitions": [{"values": [{"name": "client_space_uid", "op": "EQUAL", "value": "acme"}]}]}}])"));
  // Nothing to change once the share holds what is asked.
  const json::value converged = json::parse(R"([
      {"name": "main.platform.usage", "partitions": [{"values": [{"name": "client_space_uid", "op": "EQUAL", "value": "acme"}]}]},
      {"name": "main.platform.events", "partitions": [{"values": [{"name": "client_space_uid", "op": "EQUAL", "value": "acme"}]}]},
      {"name": "main.platform.costs", "partitions": [{"values": [{"name": "client_space_uid", "op": "EQUAL", "value": "acme"}]}]}])");
  EXPECT_TRUE(delta_share_updates(r->tables, converged).empty());
  EXPECT_EQ(delta_share_updates(r->tables, json::value()).size(), 3u);  // no objects listed
}

TEST(DeltaShareActivationUrl, TheNewestUnusedLinkOrNull) {
  EXPECT_EQ(delta_share_activation_url(json::parse(R"({"tokens": [
      {"created_at": 1, "activation_url": "https://w/delta_sharing/retrieve_config.html?old"},
      {"created_at": 2, "activation_url": "https://w/delta_sharing/retrieve_config.html?new"}]})")),
            json::value("https://w/delta_sharing/retrieve_config.html?new"));
  // Retrieved already: the API returns the link empty.
  EXPECT_TRUE(delta_share_activation_url(json::parse(R"({"tokens": [{"created_at": 1, "activation_url": ""}]})"))
                  .is_null());
  EXPECT_TRUE(delta_share_activation_url(json::parse(R"({"authentication_type": "DATABRICKS"})")).is_null());
}

}  // namespace
}  // namespace brickwork
