#include "daemon/runtime/status_view.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace brickwork {
namespace {

WorkflowState failed_workflow(const std::string& message) {
  WorkflowState w;
  w.id = "order-1";
  w.workflow = "daily";
  w.status = WorkflowStatus::kFailed;
  StepState extract;
  extract.name = "extract";
  extract.status = StepStatus::kFailed;
  extract.attempt = 2;
  extract.run_id = 77;
  extract.error = StepError{"run_failed", message};
  StepState load;
  load.name = "load";
  load.status = StepStatus::kSkipped;
  w.steps = {extract, load};
  return w;
}

TEST(StatusView, AnErrorMessageCannotBreakTheTableOrDriveTheTerminal) {
  const std::string table = status_table(
      failed_workflow("boom\nload      succeeded  1  -\x1b[2J\x1b[32m all good\r\xc2\x9b"
                      "0m"));
  EXPECT_EQ(table.find('\x1b'), std::string::npos) << table;
  EXPECT_EQ(table.find('\r'), std::string::npos) << table;
  EXPECT_EQ(table.find("\xc2\x9b"), std::string::npos) << table;
  // A header line, a blank line, the column names and one line per step.
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 5) << table;
  EXPECT_NE(table.find("run_failed: boom\\nload      succeeded  1  -\\x1b[2J\\x1b[32m all "
                       "good\\r\\xc2\\x9b0m"),
            std::string::npos)
      << table;
}

TEST(StatusView, ColumnsAlignOnTheEscapedText) {
  const std::string table = status_table(failed_workflow("a\tb"));
  // The state column starts at the same offset on every step row.
  const size_t row1 = table.find("extract");
  const size_t row2 = table.find("load");
  ASSERT_NE(row1, std::string::npos);
  ASSERT_NE(row2, std::string::npos);
  EXPECT_EQ(table.find("failed", row1) - row1, table.find("skipped", row2) - row2) << table;
  EXPECT_NE(table.find("run_failed: a\\tb"), std::string::npos) << table;
}

TEST(StatusView, ListEscapesEveryCell) {
  WorkflowSummary s;
  s.id = "id\x1b[31m";
  s.workflow = "w\nforged-row";
  const std::string table = list_table({s});
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 2) << table;
  EXPECT_NE(table.find("id\\x1b[31m"), std::string::npos) << table;
  EXPECT_NE(table.find("w\\nforged-row"), std::string::npos) << table;
}

// Signals kept for a step not waiting yet show by name and time, never by value.
TEST(StatusView, KeptSignalsShowByNameAndTime) {
  WorkflowState w = failed_workflow("boom");
  EXPECT_FALSE(status_json(w).contains("kept_signals"));
  w.kept_signals = {KeptSignal{"approved", json::object{{"by", "ana"}}, from_epoch_ms(0)}};
  const json::object j = status_json(w);
  ASSERT_TRUE(j.contains("kept_signals"));
  EXPECT_EQ(j.at("kept_signals"),
            (json::array{json::object{{"name", "approved"}, {"at", "1970-01-01T00:00:00.000Z"}}}));
  const std::string table = status_table(w);
  EXPECT_NE(table.find("kept signals (no step has taken them yet): approved "
                       "(1970-01-01T00:00:00.000Z)"),
            std::string::npos)
      << table;
  EXPECT_EQ(table.find("ana"), std::string::npos) << table;
}

}  // namespace
}  // namespace brickwork
