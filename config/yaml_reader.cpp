#include "config/yaml_reader.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <map>
#include <sstream>

namespace brickwork::config_detail {

namespace {

constexpr int kMaxActionDepth = 64;

// A plain scalar by the YAML 1.2 core schema. Numbers that JSON cannot hold
// (.inf, .nan, beyond a double) stay strings.
json::value plain_scalar(const std::string& s) {
  if (s == "true" || s == "True" || s == "TRUE") return json::value(true);
  if (s == "false" || s == "False" || s == "FALSE") return json::value(false);
  if (s == "null" || s == "~" || s == "Null" || s == "NULL") return json::value(nullptr);
  if (s.empty()) return json::value(s);
  std::string_view digits = s;
  const bool negative = digits.front() == '-';
  if (digits.front() == '+' || digits.front() == '-') digits.remove_prefix(1);
  int base = 10;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'o')) {
    if (s.size() != digits.size()) return json::value(s);  // YAML 1.2: no sign on 0x / 0o
    base = digits[1] == 'x' ? 16 : 8;
    digits.remove_prefix(2);
  }
  if (!digits.empty() && std::all_of(digits.begin(), digits.end(), [&](char c) {
        return base == 16 ? std::isxdigit(static_cast<unsigned char>(c)) != 0
                          : (c >= '0' && c < static_cast<char>('0' + std::min(base, 10)));
      })) {
    uint64_t magnitude = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), magnitude, base);
    if (ec == std::errc() && ptr == digits.data() + digits.size()) {
      if (!negative && magnitude <= static_cast<uint64_t>(INT64_MAX)) {
        return json::value(static_cast<int64_t>(magnitude));
      }
      if (!negative) return json::value(magnitude);
      if (magnitude <= static_cast<uint64_t>(INT64_MAX) + 1) {
        return json::value(static_cast<int64_t>(0 - magnitude));
      }
    }
    // Too large for 64 bits: fall through to a double (decimal only).
    if (base != 10) return json::value(s);
  }
  // [-+]? ( \.[0-9]+ | [0-9]+ ( \.[0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
  size_t i = 0;
  auto digit_run = [&] {
    const size_t from = i;
    while (i < digits.size() && digits[i] >= '0' && digits[i] <= '9') ++i;
    return i - from;
  };
  const size_t int_digits = digit_run();
  size_t frac_digits = 0;
  if (i < digits.size() && digits[i] == '.') {
    ++i;
    frac_digits = digit_run();
  }
  if (int_digits + frac_digits == 0) return json::value(s);
  if (i < digits.size() && (digits[i] == 'e' || digits[i] == 'E')) {
    ++i;
    if (i < digits.size() && (digits[i] == '+' || digits[i] == '-')) ++i;
    if (digit_run() == 0) return json::value(s);
  }
  if (i != digits.size()) return json::value(s);
  double d = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), d);
  if (ec != std::errc() || ptr != digits.data() + digits.size() || !std::isfinite(d)) {
    return json::value(s);
  }
  return json::value(negative ? -d : d);
}

}  // namespace

Error YamlReader::error(const YAML::Node& node, const std::string& path,
                        const std::string& what) const {
  std::ostringstream out;
  out << file_;
  const YAML::Mark mark = node.Mark();
  if (!mark.is_null()) out << ":" << mark.line + 1 << ":" << mark.column + 1;
  out << ": " << path << ": " << what;
  return Error{ErrorKind::kInvalidInput, "config", out.str()};
}

std::string YamlReader::location(const YAML::Node& node) const {
  const YAML::Mark mark = node.Mark();
  if (mark.is_null()) return file_;
  return file_ + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

Error YamlReader::yaml_error(const YAML::Exception& e) const {
  std::ostringstream out;
  out << file_;
  if (!e.mark.is_null()) out << ":" << e.mark.line + 1 << ":" << e.mark.column + 1;
  out << ": invalid YAML: " << e.msg;
  return Error{ErrorKind::kInvalidInput, "config", out.str()};
}

Error YamlReader::empty_error() const {
  return Error{ErrorKind::kInvalidInput, "config", file_ + ": the configuration is empty"};
}

std::string YamlReader::shown(const YAML::Node& node) {
  if (node.IsScalar()) return "a single value";
  if (node.IsMap()) return "a mapping";
  if (node.IsSequence()) return "a list";
  return "nothing";
}

Result<std::string> YamlReader::string(const YAML::Node& node, const std::string& path) const {
  if (!node.IsScalar()) return error(node, path, "expected a string, got " + shown(node));
  auto substituted = substitute_env(node.Scalar());
  if (!substituted) return error(node, path, substituted.error().message);
  return substituted;
}

Result<int64_t> YamlReader::integer(const YAML::Node& node, const std::string& path, int64_t min,
                                    int64_t max) const {
  auto text = string(node, path);
  if (!text) return text.error();
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc() || ptr != text->data() + text->size() || v < min || v > max) {
    return error(node, path,
                 "expected an integer from " + std::to_string(min) + " to " + std::to_string(max) +
                     ", got \"" + *text + "\"");
  }
  return v;
}

Result<Duration> YamlReader::duration(const YAML::Node& node, const std::string& path) const {
  auto text = string(node, path);
  if (!text) return text.error();
  auto d = parse_duration(*text);
  if (!d) {
    return error(node, path,
                 "expected a duration like 250ms, 30s, 5m, 2h or 1d, got \"" + *text + "\"");
  }
  return *d;
}

Result<int64_t> YamlReader::byte_size(const YAML::Node& node, const std::string& path,
                                      int64_t min, int64_t max) const {
  auto text = string(node, path);
  if (!text) return text.error();
  int64_t v = 0;
  const char* end = text->data() + text->size();
  auto [ptr, ec] = std::from_chars(text->data(), end, v);
  const std::string_view unit(ptr, static_cast<size_t>(end - ptr));
  int shift = -1;
  if (unit.empty()) shift = 0;
  if (unit == "KiB") shift = 10;
  if (unit == "MiB") shift = 20;
  if (unit == "GiB") shift = 30;
  const bool fits = ec == std::errc() && shift >= 0 && v >= 0 && v <= (max >> shift);
  if (!fits || (v << shift) < min) {
    return error(node, path,
                 "expected a size from " + std::to_string(min) + " to " + std::to_string(max) +
                     " bytes (a number of bytes, or with KiB, MiB or GiB), got \"" + *text + "\"");
  }
  return v << shift;
}

std::optional<Error> YamlReader::map_node(const YAML::Node& node, const std::string& path) const {
  if (!node.IsMap()) return error(node, path, "expected a mapping, got " + shown(node));
  std::map<std::string, YAML::Mark> seen;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {
      return error(kv.first, path, "expected a plain key, got " + shown(kv.first));
    }
    const std::string& key = kv.first.Scalar();
    auto [it, inserted] = seen.emplace(key, kv.first.Mark());
    if (!inserted) {
      return error(kv.first, path.empty() || path == "(top level)" ? key : path + "." + key,
                   "key given twice (first at line " + std::to_string(it->second.line + 1) + ")");
    }
  }
  return std::nullopt;
}

std::optional<Error> YamlReader::check_keys(const YAML::Node& map, const std::string& path,
                                            std::initializer_list<const char*> known) const {
  for (const auto& kv : map) {
    const std::string key = kv.first.Scalar();
    if (std::none_of(known.begin(), known.end(), [&](const char* k) { return key == k; })) {
      std::string list;
      for (const char* k : known) list += std::string(list.empty() ? "" : ", ") + k;
      return error(kv.first, path.empty() ? key : path + "." + key,
                   "unknown key (expected one of: " + list + ")");
    }
  }
  return std::nullopt;
}

Result<json::value> YamlReader::to_json(const YAML::Node& node, const std::string& path,
                                        std::vector<TemplateUse>* uses, int depth) const {
  if (depth > kMaxActionDepth) {
    return error(node, path,
                 "nested more than " + std::to_string(kMaxActionDepth) + " levels deep");
  }
  if (node.IsNull()) return json::value(nullptr);
  if (node.IsScalar()) {
    auto text = string(node, path);
    if (!text) return text.error();
    const std::string& tag = node.Tag();
    json::value v =
        (tag == "!" || tag == "tag:yaml.org,2002:str") ? json::value(*text) : plain_scalar(*text);
    if (uses != nullptr && v.is_string() && text->find("{{") != std::string::npos) {
      uses->push_back(TemplateUse{*text, path, node});
    }
    return v;
  }
  if (node.IsSequence()) {
    json::array out;
    size_t i = 0;
    for (const auto& item : node) {
      auto v = to_json(item, path + "[" + std::to_string(i++) + "]", uses, depth + 1);
      if (!v) return v;
      out.push_back(std::move(*v));
    }
    return json::value(std::move(out));
  }
  if (auto e = map_node(node, path)) return *e;
  json::object out;
  for (const auto& kv : node) {
    auto v = to_json(kv.second, path + "." + kv.first.Scalar(), uses, depth + 1);
    if (!v) return v;
    out[kv.first.Scalar()] = std::move(*v);
  }
  return json::value(std::move(out));
}

}  // namespace brickwork::config_detail
