// The simulator's Statement Execution API (databricks-api.md section 3):
// POST /api/2.0/sql/statements, GET .../{id}, POST .../{id}/cancel and
// GET .../{id}/result/chunks/{n}. Statements end by the clock; a POST
// answers at once with the final state when the statement ends within its
// wait_timeout, else PENDING (the simulator never blocks its I/O thread).
#include "daemon/core/json_limits.hpp"
#include "daemon/core/time.hpp"
#include "devstack/simulator_impl.hpp"

namespace brickwork {
namespace {

using simulator_detail::api_error;
using simulator_detail::json_response;
using simulator_detail::Statement;

constexpr std::string_view kPrefix = "/api/2.0/sql/statements";

// "Ns" with N = 0 or 5..50 (the API's rule); nullopt otherwise.
std::optional<Duration> wait_timeout_of(const json::object& o) {
  const json::value* w = o.if_contains("wait_timeout");
  if (w == nullptr) return Duration(10'000);
  if (!w->is_string() || w->as_string().empty() || w->as_string().back() != 's') return std::nullopt;
  const std::string digits(w->as_string().begin(), w->as_string().end() - 1);
  const auto n = int64_from_text(digits);
  if (!n || !(*n == 0 || (*n >= 5 && *n <= 50))) return std::nullopt;
  return Duration(*n * 1000);
}

}  // namespace

http::ServerResponse DatabricksSimulator::Impl::sql(const http::ServerRequest& req,
                                                    const std::string& path) {
  const std::string rest = path.substr(kPrefix.size());
  if (rest.empty() || rest == "/") {
    if (req.method != "POST") return api_error(405, "METHOD_NOT_ALLOWED", "use POST");
    boost::system::error_code ec;
    const json::value body = parse_json(req.body, ec);
    if (ec || !body.is_object()) {
      return api_error(400, "MALFORMED_REQUEST", "Invalid JSON given in the body of the request");
    }
    return execute_statement(body.as_object());
  }
  // "/{id}", "/{id}/cancel", "/{id}/result/chunks/{n}"
  const std::string tail = rest.substr(1);
  const size_t slash = tail.find('/');
  const std::string id = tail.substr(0, slash);
  const std::string action = slash == std::string::npos ? std::string() : tail.substr(slash);
  auto it = statements.find(id);
  if (it == statements.end()) {
    return api_error(404, "NOT_FOUND", "Statement " + id + " does not exist");
  }
  const auto now = SteadyClock::now();
  if (action.empty() && req.method == "GET") {
    ++stats.statement_polls;
    return json_response(200, statement_json(id, it->second, now));
  }
  if (action == "/cancel" && req.method == "POST") {
    ++stats.statement_cancels;
    if (now < it->second.ends) it->second.canceled = true;  // may lose the race, as documented
    return json_response(200, json::object{});
  }
  if (action.rfind("/result/chunks/", 0) == 0 && req.method == "GET") {
    const json::object whole = statement_json(id, it->second, now);
    if (action != "/result/chunks/0" || !whole.contains("result")) {
      return api_error(400, "INVALID_PARAMETER_VALUE", "no such chunk");
    }
    return json_response(200, whole.at("result"));
  }
  return api_error(404, "ENDPOINT_NOT_FOUND", "No API found for '" + req.method + " " + path + "'");
}

http::ServerResponse DatabricksSimulator::Impl::execute_statement(const json::object& o) {
  stats.statements_received.push_back(o);
  const json::value* statement = o.if_contains("statement");
  const json::value* warehouse = o.if_contains("warehouse_id");
  if (statement == nullptr || !statement->is_string() || warehouse == nullptr ||
      !warehouse->is_string()) {
    return api_error(400, "INVALID_PARAMETER_VALUE", "statement and warehouse_id are required");
  }
  const auto wait = wait_timeout_of(o);
  if (!wait) {
    return api_error(400, "INVALID_PARAMETER_VALUE",
                     "wait_timeout must be 0s or between 5s and 50s");
  }
  Statement s;
  const std::string text(statement->as_string());
  const SimulatedStatement* spec = nullptr;
  for (const auto& candidate : options.statements) {
    if (text.find(candidate.match) != std::string::npos) {
      spec = &candidate;
      break;
    }
  }
  if (spec != nullptr) {
    s.spec = *spec;
    s.columns = spec->columns;
    s.rows = spec->rows;
  } else {
    json::array row;
    if (const json::value* params = o.if_contains("parameters"); params && params->is_array()) {
      for (const auto& p : params->as_array()) {
        if (!p.is_object() || !p.as_object().contains("name")) {
          return api_error(400, "INVALID_PARAMETER_VALUE", "every parameter needs a name");
        }
        s.columns.emplace_back(json::value_to<std::string>(p.as_object().at("name")));
        const json::value* v = p.as_object().if_contains("value");
        row.push_back(v != nullptr ? *v : json::value(nullptr));
      }
    }
    s.rows.push_back(std::move(row));
  }
  if (const json::value* limit = o.if_contains("row_limit")) {
    if (const auto n = simulator_detail::request_int64(limit)) s.row_limit = *n;
  }
  const auto now = SteadyClock::now();
  s.ends = now + s.spec.duration;
  const std::string id = "01ef-" + std::to_string(next_statement++);
  auto& stored = statements.emplace(id, std::move(s)).first->second;
  // Within the wait the POST answers with the end state; after it, PENDING.
  const auto seen_at = stored.spec.duration <= *wait && wait->count() > 0 ? stored.ends : now;
  return json_response(200, statement_json(id, stored, seen_at));
}

json::object DatabricksSimulator::Impl::statement_json(const std::string& id, const Statement& s,
                                                       SteadyClock::time_point now) const {
  json::object status;
  if (s.canceled) {
    status["state"] = "CANCELED";
  } else if (now < s.ends) {
    status["state"] = "RUNNING";
  } else if (s.spec.outcome == "FAILED") {
    status["state"] = "FAILED";
    status["error"] = json::object{{"error_code", s.spec.error_code}, {"message", s.spec.message}};
    status["sql_state"] = "42601";
  } else {
    status["state"] = "SUCCEEDED";
  }
  json::object out{{"statement_id", id}, {"status", std::move(status)}};
  if (out.at("status").at("state") != "SUCCEEDED") return out;
  json::array columns;
  int32_t position = 0;
  for (const auto& name : s.columns) {
    columns.push_back(json::object{{"name", name}, {"position", position++},
                                   {"type_name", "STRING"}, {"type_text", "STRING"}});
  }
  json::array rows = s.rows;
  bool truncated = false;
  if (s.row_limit >= 0 && static_cast<int64_t>(rows.size()) > s.row_limit) {
    rows.resize(static_cast<size_t>(s.row_limit));
    truncated = true;
  }
  const int64_t count = static_cast<int64_t>(rows.size());
  out["manifest"] = json::object{
      {"format", "JSON_ARRAY"},
      {"schema", json::object{{"column_count", s.columns.size()}, {"columns", std::move(columns)}}},
      {"total_chunk_count", 1},
      {"total_row_count", count},
      {"truncated", truncated}};
  out["result"] = json::object{{"chunk_index", 0},
                               {"row_offset", 0},
                               {"row_count", count},
                               {"data_array", std::move(rows)}};
  return out;
}

}  // namespace brickwork
