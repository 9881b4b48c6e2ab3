#pragma once
// How `brickwork status`, `list` and `history` show workflows (contract section 8).
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

// `history --json`: the summary's fields, "attempts" (step, attempt, state,
// run_id, run_page_url, started_at, ended_at, error, output_bytes) and
// "timeline" (at, kind, and step, signal, reason where they apply).
json::object history_json(const WorkflowHistory& history);
// One line per moment, oldest first: attempts starting and ending, signals
// kept and delivered, cancel and retry commands.
std::string history_table(const WorkflowHistory& history);

}  // namespace brickwork
