#pragma once
// What one decision adds to its workflow's history (`brickwork history`),
// derived in the shell from the states before and after it and from its
// status events, so that the engine itself records nothing.
#include <optional>
#include <vector>

#include "daemon/engine/engine.hpp"
#include "daemon/store/history.hpp"

namespace brickwork {

// Each attempt that ended in this decision (succeeded, failed, canceled; a
// failed attempt the retry policy follows is `failed` too, ended `now`), and
// the signals kept and delivered, cancel and retry commands its events tell.
HistoryChanges history_changes(const std::optional<WorkflowState>& before,
                               const WorkflowState& after,
                               const std::vector<StatusEvent>& events, TimePoint now);

}  // namespace brickwork
