// The intake's offsets with a real Postgres: a member that knows a
// partition's offset from its own last commit applies the next batch without
// reading it, and when another member has moved it meanwhile (a rebalance),
// that batch fails on the offset, is applied again with the offset read under
// its lock, and what the other member applied is skipped, not applied twice.
#include "daemon/runtime/input_processor.hpp"

#include <gtest/gtest.h>

#include "config/config.hpp"
#include "handlers/steps/step_type.hpp"
#include "tests/store/store_fixture.hpp"

namespace brickwork::testing {
namespace {

constexpr const char* kCommands = "brickwork.commands";

class InputProcessorTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (HasFatalFailure()) return;
    LoadOptions load;
    load.steps = &StepRegistry::builtin();
    auto loaded = load_config_from_string(
        "kafka: {brokers: \"127.0.0.1:1\"}\n"
        "postgres: {url: \"" + pg_->url() + "\"}\n"
        "callbacks: {secret: \"a-callback-secret-of-at-least-32-characters\"}\n"
        "workflows:\n"
        "  nap: {steps: [{name: s, sleep: {for: 1h}}]}\n",
        "test.yaml", load);
    ASSERT_TRUE(loaded) << loaded.error().message;
    context_ = std::make_unique<RuntimeContext>(std::make_shared<const Config>(std::move(*loaded)),
                                                StepRegistry::builtin());
  }

  // The command at `offset` of partition 0: a cancel of wf-0 at offset 3,
  // which a second application would refuse (not_running), else a start.
  static KafkaMessage command(int64_t offset) {
    if (offset == 3) {
      return KafkaMessage{kCommands, 0, offset, "wf-0",
                          R"({"type": "cancel", "id": "wf-0", "reason": "enough"})"};
    }
    const std::string id = "wf-" + std::to_string(offset);
    return KafkaMessage{kCommands, 0, offset, id,
                        R"({"type": "start", "id": ")" + id + R"(", "workflow": "nap"})"};
  }
  static std::vector<KafkaMessage> commands(int64_t from, int64_t to) {
    std::vector<KafkaMessage> batch;
    for (int64_t offset = from; offset <= to; ++offset) batch.push_back(command(offset));
    return batch;
  }
  int64_t stored_offset() {
    return sql("SELECT next_offset FROM input_offsets WHERE partition = 0")[0][0].as<int64_t>();
  }
  int64_t refusals() { return count("outbox WHERE payload LIKE '%command_rejected%'"); }

  std::unique_ptr<RuntimeContext> context_;
};

TEST_F(InputProcessorTest, AMemberWhoseOffsetWasMovedSkipsWhatTheOtherAppliedOnce) {
  InputProcessor first(*context_);
  InputProcessor second(*context_);  // the partition's owner after a rebalance

  auto report = first.apply_batch(*store_, commands(0, 1), now_ms());
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->applied, 2);
  EXPECT_EQ(stored_offset(), 2);

  // The first member again, knowing the offset: applied, the offset advanced.
  report = first.apply_batch(*store_, commands(2, 2), now_ms());
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->applied, 1);
  EXPECT_EQ(stored_offset(), 3);

  // The partition moves: the second member reads the offset and skips 0-2.
  report = second.apply_batch(*store_, commands(0, 4), now_ms());
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->skipped, 3);
  EXPECT_EQ(report->applied, 2);
  EXPECT_EQ(stored_offset(), 5);

  EXPECT_EQ(count("workflows WHERE status = 'canceled'"), 1);

  // The first member, still thinking the offset is 3, gets 3-5: 3 (the
  // cancel) and 4 are skipped on the second try, and only 5 is applied.
  report = first.apply_batch(*store_, commands(3, 5), now_ms());
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->skipped, 2);
  EXPECT_EQ(report->applied, 1);
  EXPECT_EQ(stored_offset(), 6);
  EXPECT_EQ(count("workflows"), 5);  // 0, 1, 2, 4 and 5
  EXPECT_EQ(refusals(), 0) << "the cancel was applied twice";
}

// Without the retry, the first try's failure is a serialization failure that
// leaves nothing behind: the conditional update is what catches the move.
TEST_F(InputProcessorTest, AnOffsetMovedUnderAKnownValueFailsTheWriteAsASerializationFailure) {
  ASSERT_TRUE(store_->transact([](StoreTx& tx) { tx.set_input_offset(kCommands, 0, 7); }).ok());
  Status moved = store_->transact([](StoreTx& tx) { tx.advance_input_offset(kCommands, 0, 5, 9); });
  ASSERT_FALSE(moved.ok());
  EXPECT_EQ(moved.error().code, "40001") << moved.error().message;
  EXPECT_TRUE(moved.error().transient());
  EXPECT_EQ(stored_offset(), 7);
  Status advanced =
      store_->transact([](StoreTx& tx) { tx.advance_input_offset(kCommands, 0, 7, 9); });
  ASSERT_TRUE(advanced.ok()) << advanced.error().message;
  EXPECT_EQ(stored_offset(), 9);
}

}  // namespace
}  // namespace brickwork::testing
