#include "daemon/runtime/effect_handoff.hpp"

#include <gtest/gtest.h>

#include <set>

namespace brickwork::testing {
namespace {

HandedEffect handed(int64_t id, std::shared_ptr<const WorkflowState> state) {
  return HandedEffect{StoredEffect{id, "w" + std::to_string(id), ExecuteStep{"a", 1}, 0,
                                   "me/handoff#" + std::to_string(id)},
                      std::move(state)};
}

TEST(EffectHandoff, HandsOverInOrderWithinItsRoomAndKeepsOnlySomeStates) {
  EffectHandoff handoff("me", 4, 2);
  auto state = std::make_shared<const WorkflowState>();
  EXPECT_TRUE(handoff.has_room(4));
  EXPECT_FALSE(handoff.has_room(5));
  handoff.push({handed(1, state), handed(2, state), handed(3, state)});
  EXPECT_EQ(handoff.size(), 3u);
  EXPECT_TRUE(handoff.has_room(1));
  EXPECT_FALSE(handoff.has_room(2));

  // Every waiting effect's lease is renewed with those in hand.
  std::set<int64_t> leased;
  for (const HeldLease& lease : handoff.leases()) {
    EXPECT_EQ(lease.owner, "me/handoff#" + std::to_string(lease.effect_id));
    leased.insert(lease.effect_id);
  }
  EXPECT_EQ(leased, (std::set<int64_t>{1, 2, 3}));

  auto first = handoff.take(2);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].stored.id, 1);
  EXPECT_EQ(first[1].stored.id, 2);
  EXPECT_NE(first[0].state, nullptr);
  EXPECT_NE(first[1].state, nullptr);
  // The third came beyond the two states kept: its worker reads its workflow.
  auto rest = handoff.take(10);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].state, nullptr);
  EXPECT_EQ(handoff.size(), 0u);

  // Taken effects free their states' room again.
  handoff.push({handed(4, state)});
  EXPECT_NE(handoff.take(1).at(0).state, nullptr);
}

std::shared_ptr<const WorkflowState> state_at(int64_t seq) {
  auto state = std::make_shared<WorkflowState>();
  state->seq = seq;
  return state;
}

// A later commit of the workflow replaces the state its waiting effects are
// performed with (a cancel meanwhile is seen); an older one does not.
TEST(EffectHandoff, AWaitingEffectIsPerformedWithItsWorkflowsNewestState) {
  EffectHandoff handoff("me", 8, 8);
  handoff.push({HandedEffect{StoredEffect{1, "w", ExecuteStep{"a", 1}, 0, "o"}, state_at(2)}});
  handoff.push({HandedEffect{StoredEffect{2, "w", ExecuteStep{"b", 1}, 0, "o"}, state_at(2)}});
  EXPECT_TRUE(handoff.waits_for("w"));
  EXPECT_FALSE(handoff.waits_for("other"));
  handoff.refresh("w", state_at(5));
  handoff.refresh("w", state_at(3));      // older: ignored
  handoff.refresh("other", state_at(9));  // nothing waits for it
  auto first = handoff.take(1);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].state->seq, 5);
  EXPECT_TRUE(handoff.waits_for("w"));  // the second still waits
  auto second = handoff.take(1);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].state->seq, 5);
  EXPECT_FALSE(handoff.waits_for("w"));
}

TEST(EffectHandoff, OwnersAreUniquePerTransactionAndAClaimRequestIsTakenOnce) {
  EffectHandoff handoff("host:1:ab", 8, 8);
  const std::string a = handoff.next_owner();
  const std::string b = handoff.next_owner();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.rfind("host:1:ab/", 0), 0u);
  EXPECT_FALSE(handoff.take_claim_request());
  handoff.request_claim();
  EXPECT_TRUE(handoff.take_claim_request());
  EXPECT_FALSE(handoff.take_claim_request());
}

}  // namespace
}  // namespace brickwork::testing
