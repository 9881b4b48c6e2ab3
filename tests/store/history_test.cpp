// Kept signals, a workflow's history and list's filters, against Postgres.
#include <gtest/gtest.h>

#include "tests/store/store_fixture.hpp"

namespace brickwork::testing {
namespace {

const TimePoint kHistoryT0 = from_epoch_ms(1'795'000'000'000);

// A running workflow of one gate step waiting for "approved".
WorkflowState gated_workflow(const std::string& id, TimePoint created,
                             const std::string& name = "gated") {
  WorkflowState s;
  s.id = id;
  s.workflow = name;
  s.definition.name = name;
  StepDefinition gate;
  gate.name = "approve";
  gate.type = "wait_for_signal";
  gate.plan.kind = StepPlan::Kind::kAwaitSignal;
  gate.plan.signal = "approved";
  s.definition.steps = {gate};
  s.created_at = created;
  s.updated_at = created;
  s.seq = 1;
  StepState step;
  step.name = "approve";
  s.steps = {step};
  return s;
}

class HistoryStoreTest : public StoreTest {
 protected:
  std::optional<WorkflowState> load(const std::string& id) {
    std::optional<WorkflowState> loaded;
    Status s = store_->transact([&](StoreTx& tx) {
      auto got = tx.load_workflow_for_update(id);
      ASSERT_TRUE(got.ok()) << got.error().message;
      loaded = *got;
    });
    EXPECT_TRUE(s.ok()) << s.error().message;
    return loaded;
  }

  // Saves `after` over `before` as a transition does: only what changed.
  void save_change(const WorkflowState& before, const WorkflowState& after) {
    const WorkflowRows rows = WorkflowRows::of(before);
    Status s = store_->transact([&](StoreTx& tx) {
      ASSERT_TRUE(tx.load_workflow_for_update(before.id).ok());
      tx.save_workflow(after, &rows);
    });
    ASSERT_TRUE(s.ok()) << s.error().message;
  }
};

TEST_F(HistoryStoreTest, KeptSignalsLoadBackInOrderAndGoWhenTaken) {
  WorkflowState state = gated_workflow("w1", kHistoryT0);
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) { tx.create_workflow(state); }).ok());
  EXPECT_TRUE(load("w1")->kept_signals.empty());
  EXPECT_TRUE(sql("SELECT signals FROM workflows WHERE id = 'w1'")[0][0].is_null());

  WorkflowState kept = state;
  kept.seq = 2;
  kept.kept_signals = {KeptSignal{"approved", json::object{{"by", "ana"}}, kHistoryT0 + Duration(5)},
                       KeptSignal{"approved", json::value(7), kHistoryT0 + Duration(6)},
                       KeptSignal{"other", nullptr, kHistoryT0 + Duration(7)}};
  save_change(state, kept);
  auto loaded = load("w1");
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->kept_signals, kept.kept_signals);
  EXPECT_EQ(loaded->seq, 2);

  WorkflowState taken = kept;
  taken.seq = 3;
  taken.kept_signals.clear();
  save_change(kept, taken);
  EXPECT_TRUE(load("w1")->kept_signals.empty());
  EXPECT_TRUE(sql("SELECT signals FROM workflows WHERE id = 'w1'")[0][0].is_null());
}

// A start and a signal in one batch: the new workflow's row has the signal.
TEST_F(HistoryStoreTest, ACreatedWorkflowKeepsItsSignals) {
  WorkflowState state = gated_workflow("w2", kHistoryT0);
  state.kept_signals = {KeptSignal{"approved", json::object{}, kHistoryT0}};
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) { tx.create_workflow(state); }).ok());
  EXPECT_EQ(load("w2")->kept_signals, state.kept_signals);
}

TEST_F(HistoryStoreTest, HistoryHasEndedAttemptsTheLiveOneAndTheNotes) {
  WorkflowState state = gated_workflow("w3", kHistoryT0);
  state.steps[0].status = StepStatus::kWaiting;
  state.steps[0].attempt = 2;
  state.steps[0].started_at = kHistoryT0 + Duration(3000);
  state.steps[0].run_id = 77;
  HistoryChanges changes;
  changes.attempts.push_back(AttemptRecord{"approve", 1, "failed", 12, "https://db/run/12",
                                           kHistoryT0 + Duration(1000), kHistoryT0 + Duration(2000),
                                           StepError{"FAILED", "boom"}, std::nullopt});
  changes.notes.push_back(HistoryNote{kHistoryT0 + Duration(500), "signal_kept", "", "approved", ""});
  changes.notes.push_back(HistoryNote{kHistoryT0 + Duration(2500), "retry", "", "", ""});
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    tx.create_workflow(state);
    tx.record_history("w3", changes);
  }).ok());

  auto history = store_->get_history("w3");
  ASSERT_TRUE(history.ok()) << history.error().message;
  ASSERT_TRUE(history->has_value());
  const WorkflowHistory& h = **history;
  EXPECT_EQ(h.workflow.id, "w3");
  EXPECT_EQ(h.workflow.workflow, "gated");
  ASSERT_EQ(h.attempts.size(), 2u);
  EXPECT_EQ(h.attempts[0], changes.attempts[0]);
  // The attempt still going comes from the step itself.
  EXPECT_EQ(h.attempts[1], (AttemptRecord{"approve", 2, "waiting", 77, "",
                                          kHistoryT0 + Duration(3000), std::nullopt, std::nullopt,
                                          std::nullopt}));
  EXPECT_EQ(h.notes, changes.notes);

  auto none = store_->get_history("nope");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  // The purge deletes it with its workflow (retention_test).
}

TEST_F(HistoryStoreTest, ListFiltersByDefinitionAndTimeAndPagesAfterAnId) {
  ASSERT_TRUE(store_->transact([&](StoreTx& tx) {
    for (int i = 0; i < 6; ++i) {
      tx.create_workflow(gated_workflow("w" + std::to_string(i), kHistoryT0 + Duration(i * 1000),
                                        i % 2 == 0 ? "even" : "odd"));
    }
  }).ok());
  const auto ids = [&](const WorkflowQuery& q) {
    std::vector<std::string> out;
    auto listed = store_->list_workflows(q);
    EXPECT_TRUE(listed.ok()) << listed.error().message;
    if (listed) {
      for (const auto& s : *listed) out.push_back(s.id);
    }
    return out;
  };
  using Ids = std::vector<std::string>;
  WorkflowQuery even;
  even.workflow = "even";
  EXPECT_EQ(ids(even), (Ids{"w4", "w2", "w0"}));
  WorkflowQuery window;
  window.since = kHistoryT0 + Duration(1000);
  window.until = kHistoryT0 + Duration(4000);
  EXPECT_EQ(ids(window), (Ids{"w3", "w2", "w1"}));

  // Pages of two, each after the last id of the one before.
  WorkflowQuery page;
  page.limit = 2;
  EXPECT_EQ(ids(page), (Ids{"w5", "w4"}));
  page.after = "w4";
  EXPECT_EQ(ids(page), (Ids{"w3", "w2"}));
  page.after = "w2";
  EXPECT_EQ(ids(page), (Ids{"w1", "w0"}));
  page.after = "w0";
  EXPECT_EQ(ids(page), Ids{});
  // Filters and the cursor together.
  even.after = "w4";
  EXPECT_EQ(ids(even), (Ids{"w2", "w0"}));

  WorkflowQuery unknown;
  unknown.after = "gone";
  auto refused = store_->list_workflows(unknown);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "unknown_cursor");
}

}  // namespace
}  // namespace brickwork::testing
