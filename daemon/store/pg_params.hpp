#pragma once
// How values travel to Postgres: as statement parameters, never in the SQL
// text, so that no server log (log_min_error_statement logs the text of a
// failed statement) holds a workflow's inputs or outputs. One exception,
// identifiers only: the first reads of a transition (its workflows) and of
// an outbox drain go with their BEGIN in one round trip, which only the
// simple protocol allows, so the ids they read by (workflow ids, held
// effects' ids and lease owners, skipped streams' topics and keys) travel
// as quoted literals there (DeferredBeginWork). A list of values is one parameter, a
// Postgres array literal (for `= ANY($1::text[])` and unnest()); times are
// epoch milliseconds, JSON is text cast to jsonb.
#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/core/time.hpp"

namespace brickwork::store_detail {

// Appends one element to an array literal still open ("{" and what follows):
// quoted, its quotes and backslashes escaped; NULL unquoted.
void append_array_element(std::string& array, std::string_view value);
void append_array_null(std::string& array);
std::string text_array(const std::vector<std::string>& values);
std::string number_array(const std::vector<int64_t>& values);

// A nullable statement parameter: libpqxx sends a null pointer as NULL.
class NullableText {
 public:
  NullableText() = default;
  // Implicit on purpose: statement parameters read like a list of values.
  NullableText(std::string text) : text_(std::move(text)), null_(false) {}
  NullableText(const char* text) : text_(text), null_(false) {}
  NullableText(std::string_view text) : text_(text), null_(false) {}
  NullableText(int64_t n) : text_(std::to_string(n)), null_(false) {}
  NullableText(int32_t n) : text_(std::to_string(n)), null_(false) {}
  const char* get() const { return null_ ? nullptr : text_.c_str(); }
  bool null() const { return null_; }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  bool null_ = true;
};

// JSON null is SQL NULL.
NullableText json_param(const boost::json::value& v);
NullableText ms_param(const std::optional<TimePoint>& t);
NullableText optional_text(const std::optional<std::string>& text);
// The values as libpq takes them (a null pointer for NULL); valid while
// `params` is.
std::vector<const char*> param_pointers(const std::vector<NullableText>& params);

}  // namespace brickwork::store_detail
