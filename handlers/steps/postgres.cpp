// postgres: one parameterised statement on a database named under `databases:`.
//
//   postgres:
//     database: results
//     statement: "INSERT INTO orders_daily (day, n) VALUES ($1, $2) ON CONFLICT (day) DO UPDATE SET n = $2 RETURNING day, n"
//     parameters: ["{{ input.day }}", "{{ steps.count.output.rows.0.1 }}"]
//     row_limit: 1000
//
// Values travel only as libpq parameters ($1..$n), never in the text: a
// string as it is, null as NULL, numbers and booleans as their text, objects
// and lists as JSON text. Output: {"rows": [{column: value}...], "row_count"}.
// A repeated attempt runs the statement again: write it to be repeatable
// (ON CONFLICT, upserts) where that matters.
#include "daemon/store/databases.hpp"
#include "handlers/steps/action_fields.hpp"

namespace brickwork {
namespace {


// postgres's action, checked.
struct PostgresAction final : BoundAction {
  std::string database;
  std::string statement;  // never templated: values go in parameters
  json::array parameters; // may hold templates
  int64_t row_limit = kDefaultRowLimit;
};

class PostgresStep final : public StepType {
 public:
  std::string_view action_key() const override { return "postgres"; }

  Result<BoundActionPtr> compile(StepDefinition& step) const override {
    const json::object& action = step.action;
    if (auto e = unknown_action_key(action, "postgres",
                                    {"database", "statement", "parameters", "row_limit"})) {
      return compile_error(*e);
    }
    const json::value* database = action.if_contains("database");
    if (database == nullptr || !database->is_string() || holds_template(*database)) {
      return compile_error("postgres.database is required: the name of an entry under databases:");
    }
    const json::value* statement = action.if_contains("statement");
    if (statement == nullptr || !statement->is_string() || statement->as_string().empty()) {
      return compile_error("postgres.statement is required (use $1, $2, ... for values)");
    }
    if (holds_template(*statement)) {
      return compile_error(
          "postgres.statement may not hold templates: pass values as parameters ($1, $2, ...)");
    }
    auto bound = std::make_shared<PostgresAction>();
    bound->database = std::string(database->as_string());
    bound->statement = std::string(statement->as_string());
    if (const json::value* p = action.if_contains("parameters")) {
      if (!p->is_array()) return compile_error("postgres.parameters must be a list (the values of $1, $2, ...)");
      bound->parameters = p->as_array();
    }
    if (const json::value* r = action.if_contains("row_limit")) {
      if (!(r->is_int64() && r->as_int64() >= 0 && r->as_int64() <= 100'000)) {
        return compile_error("postgres.row_limit must be an integer from 0 to 100000");
      }
      bound->row_limit = r->as_int64();
    }
    return BoundActionPtr(std::move(bound));
  }

  std::optional<std::string> check_references(const StepDefinition& step,
                                              const Config& config) const override {
    const std::string database(step.action.at("database").as_string());
    if (config.databases.count(database) == 0) {
      return "postgres.database '" + database + "' is not a name under databases:";
    }
    return std::nullopt;
  }

  Result<StepOutcome> execute(const StepContext& context, StepServices& services) const override {
    if (services.databases == nullptr) {
      return invalid_action("no databases are configured");
    }
    const auto& action = context.action<PostgresAction>();
    auto rendered = render_value(json::value(action.parameters), context);
    if (!rendered) return rendered.error();
    std::vector<std::optional<std::string>> parameters;
    for (const auto& v : rendered->as_array()) {
      if (v.is_null()) {
        parameters.emplace_back(std::nullopt);
      } else if (v.is_string()) {
        parameters.emplace_back(std::string(v.as_string()));
      } else if (v.is_bool()) {
        parameters.emplace_back(v.as_bool() ? "true" : "false");
      } else {
        parameters.emplace_back(json::serialize(v));
      }
    }
    auto result =
        services.databases->query(action.database, action.statement, parameters, action.row_limit);
    if (!result) return result.error();
    StepOutcome outcome;
    outcome.output = std::move(*result);
    return outcome;
  }
};

}  // namespace

std::unique_ptr<StepType> make_postgres_step() { return std::make_unique<PostgresStep>(); }

}  // namespace brickwork
