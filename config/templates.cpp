#include "config/templates.hpp"

#include <charconv>

namespace brickwork {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

Result<json::value> lookup(std::string_view path, const json::object& scope) {
  auto unresolved = [&] {
    return Error{ErrorKind::kInvalidInput, "template",
                 "template {{ " + std::string(path) + " }} does not resolve"};
  };
  const size_t first_dot = path.find('.');
  const json::value* current = scope.if_contains(path.substr(0, first_dot));
  if (current == nullptr || path.empty()) return unresolved();
  std::string_view rest =
      first_dot == std::string_view::npos ? std::string_view() : path.substr(first_dot + 1);
  while (!rest.empty()) {
    const size_t dot = rest.find('.');
    const std::string_view part = rest.substr(0, dot);
    rest = dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
    if (part.empty()) return unresolved();
    if (current->is_object()) {
      current = current->as_object().if_contains(part);
    } else if (current->is_array()) {
      size_t index = 0;
      auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), index);
      const auto& array = current->as_array();
      current = (ec == std::errc() && ptr == part.data() + part.size() && index < array.size())
                    ? &array[index]
                    : nullptr;
    } else {
      current = nullptr;
    }
    if (current == nullptr) return unresolved();
  }
  return *current;
}

Result<json::value> render_string(std::string_view text, const json::object& scope) {
  // The whole string is one template: keep the value's type.
  if (text.size() >= 4 && text.substr(0, 2) == "{{" && text.find("}}", 2) == text.size() - 2 &&
      text.find("{{", 2) == std::string_view::npos) {
    return lookup(trim(text.substr(2, text.size() - 4)), scope);
  }
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t open = text.find("{{", pos);
    if (open == std::string_view::npos) break;
    const size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos) break;
    out.append(text.substr(pos, open - pos));
    auto value = lookup(trim(text.substr(open + 2, close - open - 2)), scope);
    if (!value) return value.error();
    if (value->is_string()) {
      out.append(value->as_string().data(), value->as_string().size());
    } else {
      out.append(json::serialize(*value));
    }
    pos = close + 2;
  }
  out.append(text.substr(pos));
  return json::value(out);
}

void collect(const json::value& value, std::vector<std::string>& out) {
  if (value.is_string()) {
    // A malformed template contributes nothing: the loader reports it.
    if (auto paths = template_paths_in(value.as_string())) {
      out.insert(out.end(), paths->begin(), paths->end());
    }
  } else if (value.is_object()) {
    for (const auto& [k, v] : value.as_object()) collect(v, out);
  } else if (value.is_array()) {
    for (const auto& v : value.as_array()) collect(v, out);
  }
}

}  // namespace

Result<json::value> render_templates(const json::value& value, const json::object& scope) {
  if (value.is_string()) return render_string(value.as_string(), scope);
  if (value.is_object()) {
    json::object out;
    for (const auto& [k, v] : value.as_object()) {
      auto rendered = render_templates(v, scope);
      if (!rendered) return rendered;
      out[k] = std::move(*rendered);
    }
    return json::value(std::move(out));
  }
  if (value.is_array()) {
    json::array out;
    for (const auto& v : value.as_array()) {
      auto rendered = render_templates(v, scope);
      if (!rendered) return rendered;
      out.push_back(std::move(*rendered));
    }
    return json::value(std::move(out));
  }
  return value;
}

Result<std::vector<std::string>> template_paths_in(std::string_view text) {
  auto invalid = [&](const std::string& what) {
    return Error{ErrorKind::kInvalidInput, "template", what};
  };
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = text.find("{{", pos)) != std::string_view::npos) {
    const size_t close = text.find("}}", pos + 2);
    if (close == std::string_view::npos) {
      return invalid("a \"{{\" without its \"}}\" (expected {{ path }})");
    }
    const std::string_view path = trim(text.substr(pos + 2, close - pos - 2));
    bool ok = !path.empty() && path.front() != '.' && path.back() != '.' &&
              path.find("..") == std::string_view::npos && path.find('{') == std::string_view::npos;
    for (char c : path) {
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') ok = false;
    }
    if (!ok) {
      return invalid("{{" + std::string(text.substr(pos + 2, close - pos - 2)) +
                     "}} is not a template path (expected dotted names like input.url or "
                     "steps.NAME.output.FIELD)");
    }
    out.emplace_back(path);
    pos = close + 2;
  }
  return out;
}

std::vector<std::string> template_paths(const json::value& value) {
  std::vector<std::string> out;
  collect(value, out);
  return out;
}

}  // namespace brickwork
