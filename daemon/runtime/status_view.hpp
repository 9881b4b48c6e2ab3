#pragma once
// How `brickwork status` and `list` show workflows (contract section 8).
#include <boost/json.hpp>
#include <string>
#include <vector>

#include "daemon/engine/workflow_state.hpp"
#include "daemon/store/store.hpp"

namespace brickwork {

// {"id","workflow","state","created_at","updated_at","steps":[{name,state,attempt,run_id,output,error}]}
json::object status_json(const WorkflowState& state);
// The same without steps, for `list --json`.
json::object summary_json(const WorkflowSummary& summary);

// Human-readable forms: a header line and an aligned step table. Every value
// passes through escape_control_characters: one row is one line, and nothing
// from outside reaches the terminal as a control character.
std::string status_table(const WorkflowState& state);
std::string list_table(const std::vector<WorkflowSummary>& summaries);

}  // namespace brickwork
