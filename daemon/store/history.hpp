#pragma once
// What a workflow's history keeps (`brickwork history`): every attempt of
// every step, and the entries of its timeline that are not attempts (signals
// kept and delivered, cancel and retry commands).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "daemon/core/time.hpp"
#include "daemon/engine/workflow_state.hpp"

namespace brickwork {

struct AttemptRecord {
  std::string step;
  int32_t attempt = 0;
  // running or waiting while it goes on; then succeeded, failed or canceled
  // (an attempt the retry policy follows with another is failed).
  std::string state;
  std::optional<int64_t> run_id;
  std::string run_page_url;
  std::optional<TimePoint> started_at;
  std::optional<TimePoint> ended_at;
  std::optional<StepError> error;
  std::optional<int64_t> output_bytes;  // succeeded: the output's serialized size
  bool operator==(const AttemptRecord&) const = default;
};

struct HistoryNote {
  TimePoint at{};
  // signal_kept, signal_delivered, cancel, retry
  std::string kind;
  std::string step;    // signal_delivered: the step that took it
  std::string signal;  // signal_kept, signal_delivered: its name
  std::string detail;  // cancel: the reason
  bool operator==(const HistoryNote&) const = default;
};

// What one transaction adds to a workflow's history.
struct HistoryChanges {
  std::vector<AttemptRecord> attempts;  // each attempt once, as it ended
  std::vector<HistoryNote> notes;
  bool empty() const { return attempts.empty() && notes.empty(); }
};

}  // namespace brickwork
