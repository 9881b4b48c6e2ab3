#include "daemon/runtime/status_view.hpp"

#include <algorithm>
#include <sstream>

#include "daemon/core/escape.hpp"

namespace brickwork {
namespace {

// Every cell is escaped: error messages come from Databricks, completion
// events and commands, and a newline or an escape sequence in one would break
// the table or drive the operator's terminal.
std::string render_table(std::vector<std::vector<std::string>> rows) {
  for (auto& row : rows) {
    for (auto& cell : row) cell = escape_control_characters(cell);
  }
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::ostringstream out;
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      out << row[i];
      if (i + 1 < row.size()) out << std::string(widths[i] - row[i].size() + 2, ' ');
    }
    out << '\n';
  }
  return out.str();
}

std::string short_json(const json::value& v, size_t limit = 60) {
  std::string text = json::serialize(v);
  if (text.size() > limit) text = text.substr(0, limit - 3) + "...";
  return text;
}

// A sensitive output (contract 6.3) is never shown; that it exists is.
bool output_is_sensitive(const WorkflowState& state, const StepState& step) {
  const StepDefinition* def = state.definition.find_step(step.name);
  return def != nullptr && def->plan.sensitive_output;
}

json::value shown_output(const WorkflowState& state, const StepState& step) {
  if (!step.output) return nullptr;
  if (output_is_sensitive(state, step)) return json::string(kRedactedOutput);
  return *step.output;
}

}  // namespace

json::object status_json(const WorkflowState& state) {
  json::array steps;
  for (const auto& step : state.steps) {
    json::object s;
    s["name"] = step.name;
    s["state"] = to_string(step.status);
    s["attempt"] = step.attempt;
    s["run_id"] = step.run_id ? json::value(*step.run_id) : json::value(nullptr);
    if (!step.run_page_url.empty()) s["run_page_url"] = step.run_page_url;
    s["output"] = shown_output(state, step);
    s["error"] = step.error ? json::value(json::object{{"code", step.error->code},
                                                       {"message", step.error->message}})
                            : json::value(nullptr);
    steps.push_back(std::move(s));
  }
  json::object out{{"id", state.id},
                   {"workflow", state.workflow},
                   {"state", to_string(state.status)},
                   {"created_at", format_iso8601(state.created_at)},
                   {"updated_at", format_iso8601(state.updated_at)},
                   {"steps", std::move(steps)}};
  // Signals no step has taken yet: their names and when they came, not their values.
  if (!state.kept_signals.empty()) {
    json::array kept;
    for (const KeptSignal& s : state.kept_signals) {
      kept.push_back(json::object{{"name", s.name}, {"at", format_iso8601(s.received_at)}});
    }
    out["kept_signals"] = std::move(kept);
  }
  return out;
}

json::object summary_json(const WorkflowSummary& summary) {
  return json::object{{"id", summary.id},
                      {"workflow", summary.workflow},
                      {"state", to_string(summary.status)},
                      {"created_at", format_iso8601(summary.created_at)},
                      {"updated_at", format_iso8601(summary.updated_at)}};
}

std::string status_table(const WorkflowState& state) {
  std::ostringstream out;
  out << escape_control_characters(state.id) << "  " << escape_control_characters(state.workflow)
      << "  " << to_string(state.status) << "  (created " << format_iso8601(state.created_at)
      << ", updated " << format_iso8601(state.updated_at) << ")\n\n";
  std::vector<std::vector<std::string>> rows = {
      {"STEP", "STATE", "ATTEMPT", "RUN", "OUTPUT / ERROR"}};
  for (const auto& step : state.steps) {
    std::string detail;
    if (step.error) {
      detail = step.error->code + ": " + step.error->message;
    } else if (step.output) {
      detail = short_json(shown_output(state, step));
    }
    rows.push_back({step.name, to_string(step.status), std::to_string(step.attempt),
                    step.run_id ? std::to_string(*step.run_id) : "-", detail});
  }
  out << render_table(rows);
  if (!state.kept_signals.empty()) {
    out << "\nkept signals (no step has taken them yet):";
    for (const KeptSignal& s : state.kept_signals) {
      out << ' ' << escape_control_characters(s.name) << " (" << format_iso8601(s.received_at)
          << ')';
    }
    out << '\n';
  }
  return out.str();
}

std::string list_table(const std::vector<WorkflowSummary>& summaries) {
  std::vector<std::vector<std::string>> rows = {{"ID", "WORKFLOW", "STATE", "CREATED", "UPDATED"}};
  for (const auto& s : summaries) {
    rows.push_back({s.id, s.workflow, to_string(s.status), format_iso8601(s.created_at),
                    format_iso8601(s.updated_at)});
  }
  return render_table(rows);
}

namespace {

json::value time_or_null(const std::optional<TimePoint>& t) {
  return t ? json::value(format_iso8601(*t)) : json::value(nullptr);
}

std::string error_text(const StepError& error) { return error.code + ": " + error.message; }

// One line of the history's timeline.
struct TimelineLine {
  TimePoint at{};
  std::vector<std::string> cells;  // WHAT, STEP, ATTEMPT, RUN, DETAIL
};

void add_attempt_lines(const AttemptRecord& a, std::vector<TimelineLine>& lines) {
  const std::string attempt = std::to_string(a.attempt);
  const std::string run = a.run_id ? std::to_string(*a.run_id) : "-";
  const bool going = !a.ended_at;
  if (a.started_at) {
    lines.push_back({*a.started_at, {"step started", a.step, attempt, going ? run : "-",
                                     going ? "now " + a.state : ""}});
  }
  if (a.ended_at) {
    std::string detail;
    if (a.error) {
      detail = error_text(*a.error);
    } else if (a.output_bytes) {
      detail = "output " + std::to_string(*a.output_bytes) + " bytes";
    }
    lines.push_back({*a.ended_at, {"step " + a.state, a.step, attempt, run, detail}});
  }
}

std::vector<std::string> note_cells(const HistoryNote& n) {
  if (n.kind == "signal_kept") return {"signal kept", "", "", "", n.signal};
  if (n.kind == "signal_delivered") return {"signal delivered", n.step, "", "", n.signal};
  if (n.kind == "cancel") return {"cancel", "", "", "", n.detail};
  return {n.kind, "", "", "", n.detail};
}

}  // namespace

json::object history_json(const WorkflowHistory& history) {
  json::object out = summary_json(history.workflow);
  json::array attempts;
  for (const AttemptRecord& a : history.attempts) {
    attempts.push_back(json::object{
        {"step", a.step},
        {"attempt", a.attempt},
        {"state", a.state},
        {"run_id", a.run_id ? json::value(*a.run_id) : json::value(nullptr)},
        {"run_page_url", a.run_page_url},
        {"started_at", time_or_null(a.started_at)},
        {"ended_at", time_or_null(a.ended_at)},
        {"error", a.error ? json::value(json::object{{"code", a.error->code},
                                                     {"message", a.error->message}})
                          : json::value(nullptr)},
        {"output_bytes", a.output_bytes ? json::value(*a.output_bytes) : json::value(nullptr)}});
  }
  json::array timeline;
  for (const HistoryNote& n : history.notes) {
    json::object entry{{"at", format_iso8601(n.at)}, {"kind", n.kind}};
    if (!n.step.empty()) entry["step"] = n.step;
    if (!n.signal.empty()) entry["signal"] = n.signal;
    if (n.kind == "cancel") entry["reason"] = n.detail;
    timeline.push_back(std::move(entry));
  }
  out["attempts"] = std::move(attempts);
  out["timeline"] = std::move(timeline);
  return out;
}

std::string history_table(const WorkflowHistory& history) {
  const WorkflowSummary& w = history.workflow;
  std::vector<TimelineLine> lines;
  lines.push_back({w.created_at, {"workflow started", "", "", "", ""}});
  // Commands and signals first: at one moment, they are what made the step change.
  for (const HistoryNote& n : history.notes) lines.push_back({n.at, note_cells(n)});
  for (const AttemptRecord& a : history.attempts) add_attempt_lines(a, lines);
  std::stable_sort(lines.begin(), lines.end(),
                   [](const TimelineLine& a, const TimelineLine& b) { return a.at < b.at; });
  std::ostringstream out;
  out << escape_control_characters(w.id) << "  " << escape_control_characters(w.workflow) << "  "
      << to_string(w.status) << "  (created " << format_iso8601(w.created_at) << ", updated "
      << format_iso8601(w.updated_at) << ")\n\n";
  std::vector<std::vector<std::string>> rows = {{"AT", "WHAT", "STEP", "ATTEMPT", "RUN", "DETAIL"}};
  for (TimelineLine& line : lines) {
    std::vector<std::string> row{format_iso8601(line.at)};
    for (std::string& cell : line.cells) row.push_back(cell.empty() ? "-" : std::move(cell));
    rows.push_back(std::move(row));
  }
  out << render_table(rows);
  return out.str();
}

}  // namespace brickwork
