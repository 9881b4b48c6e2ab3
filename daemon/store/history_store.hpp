#pragma once
// The store's parts for signals and history, beside pg_store_tx.cpp: the kept
// signals' column, the statements that write a workflow's history, and the
// reads behind `brickwork history` and `brickwork list`.
#include <pqxx/pqxx>
#include <optional>
#include <string>
#include <vector>

#include "daemon/core/result.hpp"
#include "daemon/store/store.hpp"

namespace brickwork::store_detail {

// workflows.signals: a JSON array of {name, value, at_ms}, oldest first;
// NULL when none is kept. A malformed one throws CorruptRow.
std::optional<std::string> kept_signals_column(const std::vector<KeptSignal>& signals);
std::vector<KeptSignal> kept_signals_from_column(const pqxx::field& column);

// Row statements for the write buffer, each column an array parameter.
// $1 id, $2 status, $3 seq, $4 updated_ms, $5 signals (jsonb, NULL for none).
inline constexpr const char* kUpdateWorkflowWithSignals =
    "UPDATE workflows w SET status = v.status, seq = v.seq,"
    " updated_at = to_timestamp(v.updated_ms / 1000.0), signals = v.signals"
    " FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::jsonb[])"
    " AS v(id, status, seq, updated_ms, signals) WHERE w.id = v.id";
// $1 workflow_id, $2 step, $3 attempt, $4 state, $5 run_id, $6 run_page_url,
// $7 started_ms, $8 ended_ms, $9 error (jsonb), $10 output_bytes.
inline constexpr const char* kUpsertAttempts =
    "INSERT INTO step_attempts (workflow_id, step, attempt, state, run_id, run_page_url,"
    " started_at, ended_at, error, output_bytes)"
    " SELECT workflow_id, step, attempt, state, run_id, run_page_url,"
    " to_timestamp(started_ms / 1000.0), to_timestamp(ended_ms / 1000.0), error, output_bytes"
    " FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::bigint[], $6::text[],"
    " $7::bigint[], $8::bigint[], $9::jsonb[], $10::bigint[])"
    " AS v(workflow_id, step, attempt, state, run_id, run_page_url, started_ms, ended_ms, error,"
    " output_bytes)"
    " ON CONFLICT (workflow_id, step, attempt) DO UPDATE SET state = EXCLUDED.state,"
    " run_id = EXCLUDED.run_id, run_page_url = EXCLUDED.run_page_url,"
    " started_at = EXCLUDED.started_at, ended_at = EXCLUDED.ended_at, error = EXCLUDED.error,"
    " output_bytes = EXCLUDED.output_bytes";
// $1 workflow_id, $2 at_ms, $3 kind, $4 step, $5 signal, $6 detail.
inline constexpr const char* kInsertHistoryNotes =
    "INSERT INTO workflow_history (workflow_id, at, kind, step, signal, detail)"
    " SELECT workflow_id, to_timestamp(at_ms / 1000.0), kind, step, signal, detail"
    " FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[])"
    " AS v(workflow_id, at_ms, kind, step, signal, detail)";

// The error column of an attempt (as steps.error): {code, message}.
std::string error_column(const StepError& error);

// `brickwork list`: one query with the filters that are set.
Result<std::vector<WorkflowSummary>> query_workflows(pqxx::work& tx, const WorkflowQuery& query);
// `brickwork history`: nothing when there is no such workflow.
std::optional<WorkflowHistory> read_history(pqxx::work& tx, const std::string& id);

}  // namespace brickwork::store_detail
