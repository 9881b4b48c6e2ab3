#pragma once
// Decoding the columns the store reads back: JSON as text, times as epoch
// milliseconds, statuses by name. A value that is not what its column should
// hold throws CorruptRow (pg_errors.hpp), which the store's edge reports.
#include <optional>
#include <pqxx/pqxx>

#include "daemon/core/json_limits.hpp"
#include "daemon/core/time.hpp"
#include "daemon/engine/workflow_state.hpp"

namespace brickwork::store_detail {

// SQL NULL is JSON null.
json::value json_field(const pqxx::field& f);
// SQL NULL is an empty object.
json::object object_field(const pqxx::field& f);
std::optional<TimePoint> time_field(const pqxx::field& f);
WorkflowStatus workflow_status_field(const pqxx::field& f);
// {"code", "message"}, or nullopt for SQL NULL.
std::optional<StepError> step_error_field(const pqxx::field& f);

}  // namespace brickwork::store_detail
