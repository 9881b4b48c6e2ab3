#include "daemon/store/pg_params.hpp"

namespace brickwork::store_detail {

void append_array_element(std::string& array, std::string_view value) {
  if (array.size() > 1) array += ',';
  array += '"';
  for (char c : value) {
    if (c == '"' || c == '\\') array += '\\';
    array += c;
  }
  array += '"';
}

void append_array_null(std::string& array) {
  if (array.size() > 1) array += ',';
  array += "NULL";
}

std::string text_array(const std::vector<std::string>& values) {
  std::string array = "{";
  for (const std::string& value : values) append_array_element(array, value);
  return array + '}';
}

std::string number_array(const std::vector<int64_t>& values) {
  std::string array = "{";
  for (int64_t value : values) append_array_element(array, std::to_string(value));
  return array + '}';
}

NullableText json_param(const boost::json::value& v) {
  return v.is_null() ? NullableText() : NullableText(boost::json::serialize(v));
}

NullableText ms_param(const std::optional<TimePoint>& t) {
  return t ? NullableText(std::to_string(to_epoch_ms(*t))) : NullableText();
}

NullableText optional_text(const std::optional<std::string>& text) {
  return text ? NullableText(*text) : NullableText();
}

std::vector<const char*> param_pointers(const std::vector<NullableText>& params) {
  std::vector<const char*> pointers;
  pointers.reserve(params.size());
  for (const NullableText& p : params) pointers.push_back(p.get());
  return pointers;
}

}  // namespace brickwork::store_detail
