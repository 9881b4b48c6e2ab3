#pragma once
// {{ path }} templates in step actions (contract section 6). Paths read the
// scope: input.*, workflow.id, steps.NAME.output.*, steps.NAME.run_id.
#include <boost/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/core/result.hpp"

namespace brickwork {

namespace json = boost::json;

// Renders every string in `value`. A string that is exactly one template
// keeps the looked-up value's JSON type ("{{ steps.a.output.rows }}" -> 42);
// a template inside other text is replaced by text (strings as they are,
// other values serialized). A path that does not resolve is an Error
// (kInvalidInput) naming it. Array elements are addressed by index: items.0
Result<json::value> render_templates(const json::value& value, const json::object& scope);

// Every well-formed template path used in `value`, in order (for validation).
std::vector<std::string> template_paths(const json::value& value);

// The template paths in one string, checked: an unclosed "{{", an empty path,
// a path with spaces or an empty segment ("a..b") is an Error (kInvalidInput,
// code "template") saying what was expected.
Result<std::vector<std::string>> template_paths_in(std::string_view text);

}  // namespace brickwork
