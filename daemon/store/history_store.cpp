#include "daemon/store/history_store.hpp"

#include "daemon/core/json_limits.hpp"
#include "daemon/store/pg_errors.hpp"
#include "daemon/store/row_fields.hpp"

namespace brickwork::store_detail {
namespace {

// The columns of a WorkflowSummary, as list and history read them.
constexpr const char* kSummaryColumns =
    "SELECT id, workflow, status, (extract(epoch FROM created_at) * 1000)::bigint,"
    " (extract(epoch FROM updated_at) * 1000)::bigint FROM workflows";

WorkflowSummary summary_from_row(const pqxx::row& row) {
  return WorkflowSummary{row[0].as<std::string>(), row[1].as<std::string>(),
                         workflow_status_field(row[2]), from_epoch_ms(row[3].as<int64_t>()),
                         from_epoch_ms(row[4].as<int64_t>())};
}

}  // namespace

std::optional<std::string> kept_signals_column(const std::vector<KeptSignal>& signals) {
  if (signals.empty()) return std::nullopt;
  json::array out;
  out.reserve(signals.size());
  for (const KeptSignal& s : signals) {
    out.push_back(json::object{{"name", s.name}, {"value", s.value},
                               {"at_ms", to_epoch_ms(s.received_at)}});
  }
  return json::serialize(out);
}

std::vector<KeptSignal> kept_signals_from_column(const pqxx::field& column) {
  std::vector<KeptSignal> signals;
  const json::value v = json_field(column);
  if (v.is_null()) return signals;
  if (!v.is_array()) throw CorruptRow("workflows.signals is not a JSON array");
  for (const json::value& item : v.as_array()) {
    const json::object* o = item.if_object();
    const json::value* name = o != nullptr ? o->if_contains("name") : nullptr;
    const json::value* at = o != nullptr ? o->if_contains("at_ms") : nullptr;
    if (name == nullptr || !name->is_string() || at == nullptr || !at->is_int64()) {
      throw CorruptRow("workflows.signals holds a malformed signal");
    }
    const json::value* value = o->if_contains("value");
    signals.push_back(KeptSignal{std::string(name->as_string()),
                                 value != nullptr ? *value : json::value(nullptr),
                                 from_epoch_ms(at->as_int64())});
  }
  return signals;
}

std::string error_column(const StepError& error) {
  return json::serialize(json::object{{"code", error.code}, {"message", error.message}});
}

Result<std::vector<WorkflowSummary>> query_workflows(pqxx::work& tx, const WorkflowQuery& query) {
  std::string sql = std::string(kSummaryColumns) + " WHERE true";
  std::vector<std::string> values;
  const auto param = [&](std::string value) {
    values.push_back(std::move(value));
    return "$" + std::to_string(values.size());
  };
  if (query.state) sql += " AND status = " + param(to_string(*query.state));
  if (!query.workflow.empty()) sql += " AND workflow = " + param(query.workflow);
  if (query.since) {
    sql += " AND created_at >= to_timestamp(" + param(std::to_string(to_epoch_ms(*query.since))) +
           "::bigint / 1000.0)";
  }
  if (query.until) {
    sql += " AND created_at < to_timestamp(" + param(std::to_string(to_epoch_ms(*query.until))) +
           "::bigint / 1000.0)";
  }
  if (!query.after.empty()) {
    // The cursor is the last id of the previous page: rows after it in the
    // list's order, whatever was added since.
    const pqxx::result cursor =
        tx.exec_params("SELECT 1 FROM workflows WHERE id = $1", query.after);
    if (cursor.empty()) {
      return Error{ErrorKind::kInvalidInput, "unknown_cursor",
                   "no workflow '" + query.after + "' to list after (was it purged?)"};
    }
    const std::string after = param(query.after);
    sql += " AND (created_at, id) < (SELECT created_at, id FROM workflows WHERE id = " + after + ")";
  }
  sql += " ORDER BY created_at DESC, id DESC";
  if (query.limit > 0) sql += " LIMIT " + param(std::to_string(query.limit)) + "::bigint";
  std::vector<const char*> params;
  for (const std::string& v : values) params.push_back(v.c_str());
  std::vector<WorkflowSummary> summaries;
  for (const pqxx::row row : tx.exec_params(sql, pqxx::prepare::make_dynamic_params(params))) {
    summaries.push_back(summary_from_row(row));
  }
  return summaries;
}

std::optional<WorkflowHistory> read_history(pqxx::work& tx, const std::string& id) {
  const pqxx::result workflow = tx.exec_params(std::string(kSummaryColumns) + " WHERE id = $1", id);
  if (workflow.empty()) return std::nullopt;
  WorkflowHistory history;
  history.workflow = summary_from_row(workflow[0]);
  // Attempts that ended, then the ones still going (those live in steps).
  const pqxx::result attempts = tx.exec_params(
      "SELECT step, attempt, state, run_id, run_page_url,"
      " (extract(epoch FROM started_at) * 1000)::bigint,"
      " (extract(epoch FROM ended_at) * 1000)::bigint, error::text, output_bytes"
      " FROM step_attempts WHERE workflow_id = $1"
      " UNION ALL"
      " SELECT name, attempt, status, run_id, run_page_url,"
      " (extract(epoch FROM started_at) * 1000)::bigint, NULL, NULL, NULL"
      " FROM steps WHERE workflow_id = $1 AND status IN ('running', 'waiting') AND attempt > 0"
      " ORDER BY 6 NULLS LAST, 1, 2",
      id);
  for (const pqxx::row row : attempts) {
    AttemptRecord a;
    a.step = row[0].as<std::string>();
    a.attempt = row[1].as<int32_t>();
    a.state = row[2].as<std::string>();
    if (!row[3].is_null()) a.run_id = row[3].as<int64_t>();
    a.run_page_url = row[4].is_null() ? "" : row[4].as<std::string>();
    a.started_at = time_field(row[5]);
    a.ended_at = time_field(row[6]);
    a.error = step_error_field(row[7]);
    if (!row[8].is_null()) a.output_bytes = row[8].as<int64_t>();
    history.attempts.push_back(std::move(a));
  }
  const pqxx::result notes = tx.exec_params(
      "SELECT (extract(epoch FROM at) * 1000)::bigint, kind, coalesce(step, ''),"
      " coalesce(signal, ''), coalesce(detail, '')"
      " FROM workflow_history WHERE workflow_id = $1 ORDER BY id",
      id);
  for (const pqxx::row row : notes) {
    history.notes.push_back(HistoryNote{from_epoch_ms(row[0].as<int64_t>()),
                                        row[1].as<std::string>(), row[2].as<std::string>(),
                                        row[3].as<std::string>(), row[4].as<std::string>()});
  }
  return history;
}

}  // namespace brickwork::store_detail
