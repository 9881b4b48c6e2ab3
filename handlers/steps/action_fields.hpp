#pragma once
// What every step type does with its action: one check of the keys it
// allows, and one rendering of its templates (a value missing at run time
// fails the step with code `template`, contract section 6).
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "config/templates.hpp"
#include "handlers/steps/step_type.hpp"

namespace brickwork {

// Rows a query step keeps in its output unless row_limit says otherwise (contract 6.1).
inline constexpr int64_t kDefaultRowLimit = 1000;

// A message naming the first key of `action` that is not in `allowed`.
inline std::optional<std::string> unknown_action_key(const json::object& action,
                                                     std::string_view type,
                                                     std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : action) {
    bool known = false;
    for (std::string_view a : allowed) known = known || key == a;
    if (!known) {
      std::string list;
      for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return std::string(type) + "." + std::string(key) + " is not a field of " +
             std::string(type) + " (expected " + list + ")";
    }
  }
  return std::nullopt;
}

// Whether a string value holds a template (checked when rendered).
inline bool holds_template(const json::value& v) {
  return v.is_string() && v.as_string().find("{{") != json::string::npos;
}

// Whether any string in `v`, however deep, holds a template.
inline bool has_template(const json::value& v) {
  if (v.is_object()) {
    for (const auto& [key, value] : v.as_object()) {
      if (has_template(value)) return true;
    }
    return false;
  }
  if (v.is_array()) {
    for (const auto& value : v.as_array()) {
      if (has_template(value)) return true;
    }
    return false;
  }
  return holds_template(v);
}

// One value of a bound action with its templates rendered.
inline Result<json::value> render_value(const json::value& value, const StepContext& context) {
  if (!holds_template(value) && !value.is_object() && !value.is_array()) return value;
  auto rendered = render_templates(value, context.template_scope);
  if (!rendered) return Error{ErrorKind::kPermanent, "template", rendered.error().message};
  return std::move(*rendered);
}

// A mapping of a bound action with its templates rendered.
inline Result<json::object> render_object(const json::object& object, const StepContext& context) {
  if (object.empty()) return object;
  auto rendered = render_value(json::value(object), context);
  if (!rendered) return rendered.error();
  return std::move(rendered->as_object());
}

// An action that rendered to something the step type cannot use: the same
// every time, so the step fails without its retries (code invalid_step).
inline Error invalid_action(std::string message) {
  return Error{ErrorKind::kPermanent, "invalid_step", std::move(message)};
}

// For step types the runtime never performs or polls (their plan says so).
inline Error not_performed(std::string_view type) {
  return Error{ErrorKind::kInternal, "not_performed",
               std::string(type) + " is resolved by the engine, not performed"};
}

}  // namespace brickwork
