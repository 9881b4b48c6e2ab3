// Sealing alone, without a database: what the store writes for a sensitive
// output or outbox record, and what it gives back when reading it.
#include "daemon/store/sealing.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include "daemon/store/pg_errors.hpp"

namespace brickwork::store_detail {
namespace {

WorkflowState with_steps(const std::string& id) {
  WorkflowState state;
  state.id = id;
  StepDefinition secret;
  secret.name = "secret";
  secret.plan.sensitive_output = true;
  StepDefinition plain;
  plain.name = "plain";
  state.definition.steps = {secret, plain};
  StepState secret_state;
  secret_state.name = "secret";
  StepState plain_state;
  plain_state.name = "plain";
  state.steps = {secret_state, plain_state};
  return state;
}

const json::object kOutput{{"token", "s3cr3t"}, {"n", 1}};

TEST(Sealing, ASensitiveOutputIsStoredSealedAndOpensInItsOwnRowOnly) {
  const SecretBox box("callback-secret");
  const WorkflowState state = with_steps("wf-1");
  const json::object stored = stored_output(state, state.steps[0], kOutput, &box);
  ASSERT_EQ(stored.size(), 1u);
  ASSERT_TRUE(stored.contains("$sealed"));
  EXPECT_EQ(json::serialize(stored).find("s3cr3t"), std::string::npos);

  EXPECT_EQ(output_from_column(state, "secret", stored, &box), kOutput);
  // Bound to workflow and step: copied to another workflow it does not open.
  EXPECT_THROW(output_from_column(with_steps("wf-2"), "secret", stored, &box), CorruptRow);
  // Nor under another secret.
  const SecretBox other("other-secret");
  EXPECT_THROW(output_from_column(state, "secret", stored, &other), CorruptRow);
}

TEST(Sealing, AnOutputNotMarkedSensitiveIsStoredAsItIs) {
  const SecretBox box("callback-secret");
  const WorkflowState state = with_steps("wf-1");
  EXPECT_EQ(stored_output(state, state.steps[1], kOutput, &box), kOutput);
  EXPECT_EQ(stored_output(state, state.steps[1], kOutput, nullptr), kOutput);
  EXPECT_EQ(output_from_column(state, "plain", kOutput, &box), kOutput);
}

TEST(Sealing, WithoutAKeyNothingSensitiveIsWrittenAndWhatIsReadStaysSealed) {
  const SecretBox box("callback-secret");
  const WorkflowState state = with_steps("wf-1");
  EXPECT_THROW(stored_output(state, state.steps[0], kOutput, nullptr), std::logic_error);
  const json::object stored = stored_output(state, state.steps[0], kOutput, &box);
  EXPECT_EQ(output_from_column(state, "secret", stored, nullptr), stored);
}

TEST(Sealing, ASealedOutputOpensUnderAPreviousSecret) {
  const WorkflowState state = with_steps("wf-1");
  const SecretBox old("old-secret");
  const json::object stored = stored_output(state, state.steps[0], kOutput, &old);
  const SecretBox rotated("new-secret", {"old-secret"});
  EXPECT_EQ(output_from_column(state, "secret", stored, &rotated), kOutput);
}

TEST(Sealing, ASensitiveOutboxRecordIsSealedToItsTopicAndKey) {
  const SecretBox box("callback-secret");
  const std::string stored = stored_outbox_payload("t", "k", "payload", true, &box);
  EXPECT_TRUE(SecretBox::is_sealed(stored));
  EXPECT_EQ(opened_outbox_payload("t", "k", stored, &box), "payload");
  EXPECT_EQ(opened_outbox_payload("t", "other", stored, &box), std::nullopt);
  EXPECT_EQ(opened_outbox_payload("t", "k", stored, nullptr), std::nullopt);
  EXPECT_EQ(stored_outbox_payload("t", "k", "payload", false, nullptr), "payload");
  EXPECT_THROW(stored_outbox_payload("t", "k", "payload", true, nullptr), std::logic_error);
}

}  // namespace
}  // namespace brickwork::store_detail
