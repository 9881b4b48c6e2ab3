#include "daemon/store/row_fields.hpp"

#include <string>

#include "daemon/store/pg_errors.hpp"

namespace brickwork::store_detail {

json::value json_field(const pqxx::field& f) {
  if (f.is_null()) return nullptr;
  boost::system::error_code ec;
  json::value v = parse_json(f.c_str(), ec);
  if (ec)
    throw CorruptRow(std::string("column ") + f.name() + " holds invalid JSON: " + ec.message());
  return v;
}

json::object object_field(const pqxx::field& f) {
  json::value v = json_field(f);
  if (v.is_null()) return {};
  if (!v.is_object()) throw CorruptRow(std::string("column ") + f.name() + " is not a JSON object");
  return std::move(v.as_object());
}

std::optional<TimePoint> time_field(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return from_epoch_ms(f.as<int64_t>());
}

WorkflowStatus workflow_status_field(const pqxx::field& f) {
  auto s = workflow_status_from_string(f.c_str());
  if (!s) throw CorruptRow(std::string("unknown workflow status ") + f.c_str());
  return *s;
}

std::optional<StepError> step_error_field(const pqxx::field& f) {
  json::value v = json_field(f);
  if (v.is_null()) return std::nullopt;
  const json::object* o = v.if_object();
  if (o == nullptr) throw CorruptRow(std::string("column ") + f.name() + " is not a JSON object");
  StepError error;
  if (const json::value* c = o->if_contains("code"); c != nullptr && c->is_string()) {
    error.code = std::string(c->as_string());
  }
  if (const json::value* m = o->if_contains("message"); m != nullptr && m->is_string()) {
    error.message = std::string(m->as_string());
  }
  return error;
}

}  // namespace brickwork::store_detail
