// sql: one statement on a SQL warehouse (Statement Execution API).
//
//   sql:
//     warehouse_id: "{{ input.warehouse }}"
//     statement: "SELECT count(*) AS n FROM IDENTIFIER(:table) WHERE day = :day"
//     parameters: {day: "{{ input.day }}", table: main.sales.orders}  # the API's named parameters
//     catalog: main                           # optional, as schema
//     row_limit: 1000                         # rows kept in the output (default 1000)
//     wait_timeout: 10s                       # 0s or 5s..50s: how long the POST waits
//
// The statement is literal text (templates are refused at load) and
// parameter values are never spliced into it: each goes as
// {name, value, type} (type from the JSON value: BIGINT, DOUBLE, BOOLEAN;
// strings as STRING; null as SQL NULL). A statement still running when the
// POST returns is polled (GET .../statements/{id}) with its id kept on the
// step, so it is never executed again once recorded; step timeout and
// workflow cancel call .../cancel. Output: {statement_id, columns, rows
// (strings or null, as the API returns them), row_count, truncated}.
#include "daemon/core/time.hpp"
#include "handlers/steps/action_fields.hpp"
#include "handlers/steps/databricks_run.hpp"

namespace brickwork {

// The API's parameter list for a mapping of named parameters (exposed for tests).
json::array sql_parameters(const json::object& parameters);
// The step's outcome for a StatementResponse (exposed for tests): succeeded
// with the output, failed with the API's error, or still running.
Result<StepOutcome> sql_outcome(const json::value& response, int64_t row_limit,
                                DatabricksApi* databricks);

namespace {

constexpr std::string_view kStatements = "/api/2.0/sql/statements";

const json::value* field(const json::value& v, std::string_view key) {
  return v.is_object() ? v.as_object().if_contains(key) : nullptr;
}

std::string string_field(const json::value& v, std::string_view key) {
  const json::value* f = field(v, key);
  return f != nullptr && f->is_string() ? std::string(f->as_string()) : std::string();
}

}  // namespace

json::array sql_parameters(const json::object& parameters) {
  json::array out;
  for (const auto& [name, value] : parameters) {
    json::object p{{"name", name}};
    if (value.is_null()) {
      // no value: SQL NULL
    } else if (value.is_string()) {
      p["value"] = value.as_string();
    } else if (value.is_bool()) {
      p["value"] = value.as_bool() ? "true" : "false";
      p["type"] = "BOOLEAN";
    } else if (value.is_int64() || value.is_uint64()) {
      p["value"] = json::serialize(value);
      p["type"] = "BIGINT";
    } else if (value.is_double()) {
      p["value"] = json::serialize(value);
      p["type"] = "DOUBLE";
    } else {
      p["value"] = json::serialize(value);  // objects and arrays travel as JSON text
    }
    out.push_back(std::move(p));
  }
  return out;
}

Result<StepOutcome> sql_outcome(const json::value& response, int64_t row_limit,
                                DatabricksApi* databricks) {
  const std::string id = string_field(response, "statement_id");
  const json::value* status = field(response, "status");
  const std::string state = status != nullptr ? string_field(*status, "state") : std::string();
  if (id.empty() || state.empty()) {
    return Error{ErrorKind::kInvalidInput, "bad_response",
                 "a statement response without statement_id or status.state"};
  }
  StepOutcome outcome;
  outcome.handle = json::object{{"statement_id", id}};
  if (state == "PENDING" || state == "RUNNING") {
    outcome.kind = StepOutcome::Kind::kStarted;
    return outcome;
  }
  if (state != "SUCCEEDED") {
    outcome.kind = StepOutcome::Kind::kFailed;
    const json::value* error = status != nullptr ? field(*status, "error") : nullptr;
    outcome.error.code = error != nullptr ? string_field(*error, "error_code") : std::string();
    outcome.error.message = error != nullptr ? string_field(*error, "message") : std::string();
    if (outcome.error.code.empty()) outcome.error.code = state;  // CANCELED, CLOSED
    if (outcome.error.message.empty()) outcome.error.message = "statement " + id + " ended " + state;
    return outcome;
  }
  json::array columns;
  const json::value* manifest = field(response, "manifest");
  if (const json::value* schema = manifest != nullptr ? field(*manifest, "schema") : nullptr) {
    if (const json::value* cols = field(*schema, "columns"); cols != nullptr && cols->is_array()) {
      for (const auto& c : cols->as_array()) columns.emplace_back(string_field(c, "name"));
    }
  }
  int64_t row_count = 0;
  bool truncated = false;
  int64_t chunks = 1;
  if (manifest != nullptr) {
    if (const json::value* n = field(*manifest, "total_row_count"); n != nullptr && n->is_int64()) {
      row_count = n->as_int64();
    }
    if (const json::value* t = field(*manifest, "truncated"); t != nullptr && t->is_bool()) {
      truncated = t->as_bool();
    }
    if (const json::value* c = field(*manifest, "total_chunk_count"); c != nullptr && c->is_int64()) {
      chunks = c->as_int64();
    }
  }
  json::array rows;
  auto take = [&](const json::value* result) {
    const json::value* data = result != nullptr ? field(*result, "data_array") : nullptr;
    if (data == nullptr || !data->is_array()) return;
    for (const auto& row : data->as_array()) {
      if (static_cast<int64_t>(rows.size()) >= row_limit) return;
      rows.push_back(row);
    }
  };
  take(field(response, "result"));
  // Later chunks only while the output still wants rows.
  for (int64_t chunk = 1; chunk < chunks && static_cast<int64_t>(rows.size()) < row_limit &&
                          databricks != nullptr;
       ++chunk) {
    auto next = databricks->call("GET", std::string(kStatements) + "/" + id + "/result/chunks/" +
                                            std::to_string(chunk),
                                 nullptr, true);
    if (!next) return next.error();
    take(&*next);
  }
  if (row_count == 0) row_count = static_cast<int64_t>(rows.size());
  outcome.kind = StepOutcome::Kind::kSucceeded;
  outcome.output = json::object{{"statement_id", id},
                                {"columns", std::move(columns)},
                                {"rows", rows},
                                {"row_count", row_count},
                                {"truncated", truncated || row_count > static_cast<int64_t>(rows.size())}};
  return outcome;
}

namespace {

// sql's action, checked.
struct SqlAction final : BoundAction {
  json::value warehouse_id;  // may hold a template
  std::string statement;     // never templated
  json::object parameters;   // values may hold templates
  json::object place;        // catalog, schema (may hold templates)
  int64_t row_limit = kDefaultRowLimit;
  std::string wait_timeout = "10s";
};

class SqlStep final : public StepType {
 public:
  std::string_view action_key() const override { return "sql"; }
  bool calls_databricks() const override { return true; }

  Result<BoundActionPtr> compile(StepDefinition& step) const override {
    const json::object& action = step.action;
    // A statement is no job run: check on it every few seconds by default.
    step.poll_every = std::chrono::seconds(5);
    if (auto e = unknown_action_key(action, "sql",
                                    {"warehouse_id", "statement", "parameters", "catalog",
                                     "schema", "row_limit", "wait_timeout"})) {
      return compile_error(*e);
    }
    for (const char* required : {"warehouse_id", "statement"}) {
      const json::value* v = action.if_contains(required);
      if (v == nullptr || !v->is_string() || v->as_string().empty()) {
        return compile_error("sql." + std::string(required) + " is required (a string)");
      }
    }
    // An input rendered into the text could inject SQL: values go as
    // parameters, names through IDENTIFIER(:name).
    if (holds_template(action.at("statement"))) {
      return compile_error(
          "sql.statement may not hold templates: pass values as parameters (:name), "
          "and table or column names as IDENTIFIER(:name)");
    }
    auto bound = std::make_shared<SqlAction>();
    bound->warehouse_id = action.at("warehouse_id");
    bound->statement = std::string(action.at("statement").as_string());
    if (const json::value* p = action.if_contains("parameters")) {
      if (!p->is_object()) {
        return compile_error(
            "sql.parameters must be a mapping of name to value (used as :name in the statement)");
      }
      bound->parameters = p->as_object();
    }
    for (const char* key : {"catalog", "schema"}) {
      if (const json::value* v = action.if_contains(key)) bound->place[key] = *v;
    }
    if (const json::value* r = action.if_contains("row_limit")) {
      if (!(r->is_int64() && r->as_int64() >= 0 && r->as_int64() <= 100'000)) {
        return compile_error("sql.row_limit must be an integer from 0 to 100000");
      }
      bound->row_limit = r->as_int64();
    }
    if (const json::value* w = action.if_contains("wait_timeout")) {
      const auto d = w->is_string() ? parse_duration(std::string_view(w->as_string())) : std::nullopt;
      if (!d || !(d->count() == 0 || (d->count() >= 5'000 && d->count() <= 50'000))) {
        return compile_error("sql.wait_timeout must be 0s or from 5s to 50s");
      }
      bound->wait_timeout = std::to_string(d->count() / 1000) + "s";
    }
    return BoundActionPtr(std::move(bound));
  }

  Result<StepOutcome> execute(const StepContext& context, StepServices& services) const override {
    const auto& action = context.action<SqlAction>();
    auto warehouse = render_value(action.warehouse_id, context);
    if (!warehouse) return warehouse.error();
    if (!warehouse->is_string()) return invalid_action("sql.warehouse_id must render to a string");
    json::object body{{"warehouse_id", *warehouse},
                      {"statement", action.statement},
                      {"disposition", "INLINE"},
                      {"format", "JSON_ARRAY"},
                      {"on_wait_timeout", "CONTINUE"}};
    auto place = render_object(action.place, context);
    if (!place) return place.error();
    for (const auto& [key, value] : *place) body[key] = value;
    if (!action.parameters.empty()) {
      auto parameters = render_object(action.parameters, context);
      if (!parameters) return parameters.error();
      body["parameters"] = sql_parameters(*parameters);
    }
    body["row_limit"] = action.row_limit;  // the API then says whether it cut (manifest.truncated)
    body["wait_timeout"] = action.wait_timeout;
    // Not repeated by the client: a statement must not run twice.
    const json::value request(std::move(body));
    auto response = services.databricks->call("POST", std::string(kStatements), &request, false);
    if (!response) return response.error();
    return sql_outcome(*response, action.row_limit, services.databricks);
  }

  Result<StepOutcome> poll(const StepContext& context, StepServices& services) const override {
    const std::string id = string_field(context.step.handle, "statement_id");
    if (id.empty()) return Error{ErrorKind::kInternal, "no_statement", "no statement to poll"};
    auto response = services.databricks->call("GET", std::string(kStatements) + "/" + id, nullptr,
                                              true);
    if (!response) return response.error();
    return sql_outcome(*response, context.action<SqlAction>().row_limit, services.databricks);
  }

  Status cancel(const StepContext& context, StepServices& services) const override {
    const std::string id = string_field(context.step.handle, "statement_id");
    if (id.empty()) return ok_status();
    const json::value empty = json::object{};
    auto r = services.databricks->call("POST", std::string(kStatements) + "/" + id + "/cancel",
                                       &empty, true);
    if (!r) return r.error();
    return ok_status();
  }
};

}  // namespace

std::unique_ptr<StepType> make_sql_step() { return std::make_unique<SqlStep>(); }

}  // namespace brickwork
