#include "config/config.hpp"

#include "config/templates.hpp"
#include "daemon/core/loopback.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <sstream>

namespace brickwork {

const StepDefinition* WorkflowDefinition::find_step(std::string_view step_name) const {
  for (const auto* list : {&steps, &on_failure}) {
    for (const auto& step : *list) {
      if (step.name == step_name) return &step;
    }
  }
  return nullptr;
}

bool WorkflowDefinition::is_on_failure_step(std::string_view step_name) const {
  return std::any_of(on_failure.begin(), on_failure.end(),
                     [&](const StepDefinition& s) { return s.name == step_name; });
}

namespace {

// [A-Za-z0-9_.-]{1,100} without std::regex (recursive, slow on long input).
bool is_valid_name(std::string_view s) {
  if (s.empty() || s.size() > 100) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

bool is_valid_env_name(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

}  // namespace

Result<std::string> substitute_env(const std::string& text) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = text.find("${", pos);
    if (start == std::string::npos) break;
    if (start > pos && text[start - 1] == '$') {
      // "$${" is a literal "${".
      out.append(text, pos, start - 1 - pos);
      out += "${";
      pos = start + 2;
      continue;
    }
    out.append(text, pos, start - pos);
    const size_t end = text.find('}', start + 2);
    if (end == std::string::npos) {
      return Error{ErrorKind::kInvalidInput, "config", "unterminated ${ at offset " +
                                                           std::to_string(start)};
    }
    const std::string body = text.substr(start + 2, end - start - 2);
    const size_t dflt = body.find(":-");
    const std::string name = body.substr(0, dflt);
    if (!is_valid_env_name(name)) {
      // The text is not repeated: it may be part of a secret that holds "${".
      return Error{ErrorKind::kInvalidInput, "config",
                   "the ${ at offset " + std::to_string(start) +
                       " is not a variable reference (expected ${NAME} or ${NAME:-default}; "
                       "$${ is a literal ${)"};
    }
    const char* value = std::getenv(name.c_str());
    if (value != nullptr && (*value != '\0' || dflt == std::string::npos)) {
      out += value;
    } else if (dflt != std::string::npos) {
      out += body.substr(dflt + 2);
    } else {
      return Error{ErrorKind::kInvalidInput, "config",
                   "environment variable " + name + " is not set (use ${" + name +
                       ":-default} for a default)"};
    }
    pos = end + 1;
  }
  out.append(text, pos);
  return out;
}

namespace {

constexpr int kMaxActionDepth = 64;

// A string in a step action that holds "{{": checked against the workflow's
// steps after all of them are read.
struct TemplateUse {
  std::string text;
  std::string path;
  YAML::Node node;
};

// What load_step learns beyond the StepDefinition, for checks across steps.
struct StepSource {
  YAML::Node node;
  std::string path;
  std::vector<YAML::Node> depends_on_nodes;  // parallel to StepDefinition::depends_on
  std::vector<TemplateUse> templates;
};

// Every error names file:line:col, the path of the value and what was expected.
class Loader {
 public:
  Loader(std::string file, const LoadOptions& options) : file_(std::move(file)), options_(options) {}

  Error error(const YAML::Node& node, const std::string& path, const std::string& what) const {
    std::ostringstream out;
    out << file_;
    const YAML::Mark mark = node.Mark();
    if (!mark.is_null()) out << ":" << mark.line + 1 << ":" << mark.column + 1;
    out << ": " << path << ": " << what;
    return Error{ErrorKind::kInvalidInput, "config", out.str()};
  }

  std::string location(const YAML::Node& node) const {
    const YAML::Mark mark = node.Mark();
    if (mark.is_null()) return file_;
    return file_ + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }

  // What was found where something else was expected. A scalar is described,
  // never quoted: a value misplaced by indentation (`postgres: "postgresql://
  // u:secret@h/db"`) may be a secret, and this message goes to logs.
  static std::string shown(const YAML::Node& node) {
    if (node.IsScalar()) return "a single value";
    if (node.IsMap()) return "a mapping";
    if (node.IsSequence()) return "a list";
    return "nothing";
  }

  Result<std::string> string(const YAML::Node& node, const std::string& path) const {
    if (!node.IsScalar()) return error(node, path, "expected a string, got " + shown(node));
    auto substituted = substitute_env(node.Scalar());
    if (!substituted) return error(node, path, substituted.error().message);
    return substituted;
  }

  Result<int64_t> integer(const YAML::Node& node, const std::string& path, int64_t min,
                          int64_t max) const {
    auto text = string(node, path);
    if (!text) return text.error();
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
    if (ec != std::errc() || ptr != text->data() + text->size() || v < min || v > max) {
      return error(node, path,
                   "expected an integer from " + std::to_string(min) + " to " +
                       std::to_string(max) + ", got \"" + *text + "\"");
    }
    return v;
  }

  Result<Duration> duration(const YAML::Node& node, const std::string& path) const {
    auto text = string(node, path);
    if (!text) return text.error();
    auto d = parse_duration(*text);
    if (!d) {
      return error(node, path,
                   "expected a duration like 250ms, 30s, 5m, 2h or 1d, got \"" + *text + "\"");
    }
    return *d;
  }

  // Keys of a mapping that are not in `known` are typos: say so.
  std::optional<Error> check_keys(const YAML::Node& map, const std::string& path,
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

  // A mapping whose keys are scalars, each once: yaml-cpp keeps both entries of a
  // repeated key and lookups see only the first, so a repeat would pass silently.
  std::optional<Error> map_node(const YAML::Node& node, const std::string& path) const {
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
                     "key given twice (first at line " + std::to_string(it->second.line + 1) +
                         ")");
      }
    }
    return std::nullopt;
  }

  // YAML to JSON for step actions: plain scalars get their YAML 1.2 (core
  // schema) type, quoted ones and `!!str` stay strings; ${VAR} is substituted
  // first, so `job_id: ${JOB_ID}` is a number. Strings holding "{{" are noted in
  // `uses` with their node, to check template paths once all steps are known.
  Result<json::value> to_json(const YAML::Node& node, const std::string& path,
                              std::vector<TemplateUse>* uses = nullptr, int depth = 0) const {
    if (depth > kMaxActionDepth) {
      return error(node, path, "nested more than " + std::to_string(kMaxActionDepth) +
                                   " levels deep");
    }
    if (node.IsNull()) return json::value(nullptr);
    if (node.IsScalar()) {
      auto text = string(node, path);
      if (!text) return text.error();
      const std::string& tag = node.Tag();
      json::value v = (tag == "!" || tag == "tag:yaml.org,2002:str") ? json::value(*text)
                                                                      : plain_scalar(*text);
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

  // A plain scalar by the YAML 1.2 core schema. Numbers that JSON cannot hold
  // (.inf, .nan, beyond a double) stay strings.
  static json::value plain_scalar(const std::string& s) {
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
      auto [ptr, ec] =
          std::from_chars(digits.data(), digits.data() + digits.size(), magnitude, base);
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

  std::optional<Error> load_kafka(const YAML::Node& node, KafkaConfig& kafka) const {
    if (auto e = map_node(node, "kafka")) return e;
    if (auto e = check_keys(node, "kafka", {"brokers", "group", "topics", "properties"})) return e;
    for (const char* key : {"brokers", "group"}) {
      if (const YAML::Node v = node[key]) {
        auto s = string(v, std::string("kafka.") + key);
        if (!s) return s.error();
        if (s->empty()) return error(v, std::string("kafka.") + key, "must not be empty");
        (std::string(key) == "brokers" ? kafka.brokers : kafka.group) = *s;
      }
    }
    if (const YAML::Node topics = node["topics"]) {
      if (auto e = map_node(topics, "kafka.topics")) return e;
      if (auto e = check_keys(topics, "kafka.topics",
                              {"commands", "events", "status", "dead_letter"})) {
        return e;
      }
      const std::pair<const char*, std::string*> fields[] = {
          {"commands", &kafka.topics.commands},
          {"events", &kafka.topics.events},
          {"status", &kafka.topics.status},
          {"dead_letter", &kafka.topics.dead_letter}};
      for (const auto& [key, target] : fields) {
        if (const YAML::Node v = topics[key]) {
          const std::string path = std::string("kafka.topics.") + key;
          auto s = string(v, path);
          if (!s) return s.error();
          if (s->empty()) return error(v, path, "must not be empty");
          *target = *s;
        }
      }
    }
    // A daemon reading its own output (or dead letters as commands) would loop.
    const std::pair<const char*, const std::string*> named[] = {
        {"commands", &kafka.topics.commands},
        {"events", &kafka.topics.events},
        {"status", &kafka.topics.status},
        {"dead_letter", &kafka.topics.dead_letter}};
    for (size_t a = 0; a < 4; ++a) {
      for (size_t b = a + 1; b < 4; ++b) {
        if (*named[a].second == *named[b].second) {
          return error(node["topics"] ? node["topics"] : node, "kafka.topics",
                       std::string("expected four different topics; ") + named[a].first +
                           " and " + named[b].first + " are both \"" + *named[a].second + "\"");
        }
      }
    }
    if (const YAML::Node props = node["properties"]) {
      if (!props.IsNull()) {
        if (auto e = map_node(props, "kafka.properties")) return e;
        for (const auto& kv : props) {
          auto s = string(kv.second, "kafka.properties." + kv.first.Scalar());
          if (!s) return s.error();
          kafka.properties[kv.first.Scalar()] = *s;
        }
      }
    }
    return std::nullopt;
  }

  // The same rule the HTTP client applies, reported here with a position:
  // https://, or http:// to a loopback address (the local simulator).
  static std::optional<std::string> host_problem(const std::string& host) {
    if (host.empty() || host.find("://") == std::string::npos) return std::nullopt;  // https:// is added
    if (host.rfind("https://", 0) == 0) return std::nullopt;
    if (host.rfind("http://", 0) != 0) {
      return "expected https://<workspace> (or http:// to a local simulator), got \"" + host + "\"";
    }
    std::string authority = host.substr(7, host.find('/', 7) == std::string::npos
                                               ? std::string::npos
                                               : host.find('/', 7) - 7);
    std::string name = !authority.empty() && authority.front() == '['
                           ? authority.substr(0, authority.find(']') + 1)
                           : authority.substr(0, authority.find(':'));
    if (is_loopback_host(name)) return std::nullopt;
    return "http:// is accepted only for a loopback address (a local simulator); use https:// "
           "for \"" + host + "\"";
  }

  std::optional<Error> load_databricks(const YAML::Node& node, DatabricksConfig& dbx) const {
    if (auto e = map_node(node, "databricks")) return e;
    if (auto e = check_keys(node, "databricks",
                            {"host", "token", "client_id", "client_secret", "request_timeout",
                             "retry_budget"})) {
      return e;
    }
    const std::pair<const char*, std::string*> fields[] = {{"host", &dbx.host},
                                                           {"token", &dbx.token},
                                                           {"client_id", &dbx.client_id},
                                                           {"client_secret", &dbx.client_secret}};
    for (const auto& [key, target] : fields) {
      if (const YAML::Node v = node[key]) {
        auto s = string(v, std::string("databricks.") + key);
        if (!s) return s.error();
        *target = *s;
      }
    }
    if (const YAML::Node v = node["host"]) {
      while (!dbx.host.empty() && dbx.host.back() == '/') dbx.host.pop_back();
      if (auto what = host_problem(dbx.host)) return error(v, "databricks.host", *what);
    }
    if (dbx.client_id.empty() != dbx.client_secret.empty()) {
      return error(node, "databricks", "client_id and client_secret (OAuth M2M) go together");
    }
    if (!dbx.token.empty() && !dbx.client_id.empty()) {
      return error(node, "databricks",
                   "expected either token or client_id + client_secret, not both");
    }
    if (const YAML::Node v = node["request_timeout"]) {
      auto d = duration(v, "databricks.request_timeout");
      if (!d) return d.error();
      if (d->count() <= 0) return error(v, "databricks.request_timeout", "must be longer than 0");
      dbx.request_timeout = *d;
    }
    if (const YAML::Node v = node["retry_budget"]) {
      auto d = duration(v, "databricks.retry_budget");
      if (!d) return d.error();
      dbx.retry_budget = *d;
    }
    return std::nullopt;
  }

  std::optional<Error> load_daemon(const YAML::Node& node, DaemonConfig& daemon) const {
    if (auto e = map_node(node, "daemon")) return e;
    if (auto e = check_keys(node, "daemon",
                            {"batch_max_messages", "batch_max_wait", "effect_workers", "lease",
                             "shutdown_grace", "metrics_listen", "log_format", "log_level"})) {
      return e;
    }
    if (const YAML::Node v = node["batch_max_messages"]) {
      auto i = integer(v, "daemon.batch_max_messages", 1, 100000);
      if (!i) return i.error();
      daemon.batch_max_messages = static_cast<int32_t>(*i);
    }
    if (const YAML::Node v = node["effect_workers"]) {
      auto i = integer(v, "daemon.effect_workers", 1, 256);
      if (!i) return i.error();
      daemon.effect_workers = static_cast<int32_t>(*i);
    }
    const std::pair<const char*, Duration*> durations[] = {
        {"batch_max_wait", &daemon.batch_max_wait},
        {"lease", &daemon.lease},
        {"shutdown_grace", &daemon.shutdown_grace}};
    for (const auto& [key, target] : durations) {
      if (const YAML::Node v = node[key]) {
        auto d = duration(v, std::string("daemon.") + key);
        if (!d) return d.error();
        *target = *d;
      }
    }
    if (const YAML::Node v = node["metrics_listen"]) {
      auto s = string(v, "daemon.metrics_listen");
      if (!s) return s.error();
      daemon.metrics_listen = *s;
    }
    if (const YAML::Node v = node["log_format"]) {
      auto s = string(v, "daemon.log_format");
      if (!s) return s.error();
      if (*s != "json" && *s != "text") {
        return error(v, "daemon.log_format", "expected json or text, got \"" + *s + "\"");
      }
      daemon.log_format = *s;
    }
    if (const YAML::Node v = node["log_level"]) {
      auto s = string(v, "daemon.log_level");
      if (!s) return s.error();
      static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn",
                                                    "error", "critical", "off"};
      if (kLevels.count(*s) == 0) {
        return error(v, "daemon.log_level",
                     "expected trace, debug, info, warn, error, critical or off, got \"" + *s +
                         "\"");
      }
      daemon.log_level = *s;
    }
    return std::nullopt;
  }

  Result<StepDefinition> load_step(const YAML::Node& node, const std::string& path,
                                   const StepDefinition* previous, StepSource& source) const {
    if (auto e = map_node(node, path)) return *e;
    source.node = node;
    source.path = path;
    StepDefinition step;
    step.source_location = location(node);
    std::vector<std::string> actions;
    const std::vector<std::string> action_keys =
        options_.steps != nullptr ? options_.steps->action_keys() : std::vector<std::string>{};
    for (const auto& kv : node) {
      const std::string key = kv.first.Scalar();
      const bool is_action =
          std::find(action_keys.begin(), action_keys.end(), key) != action_keys.end();
      static const std::set<std::string> kFields = {"name",       "depends_on", "completion",
                                                    "poll_every", "timeout",    "retry"};
      if (is_action) {
        actions.push_back(key);
      } else if (kFields.count(key) == 0) {
        std::string list;
        for (const auto& a : action_keys) list += (list.empty() ? "" : ", ") + a;
        return error(kv.first, path + "." + key,
                     "unknown key (a step has name, depends_on, completion, poll_every, timeout, "
                     "retry and exactly one action: " + list + ")");
      }
    }
    const YAML::Node name = node["name"];
    if (!name) return error(node, path + ".name", "every step needs a name");
    auto name_value = string(name, path + ".name");
    if (!name_value) return name_value.error();
    if (!is_valid_name(*name_value)) {
      return error(name, path + ".name",
                   "expected 1-100 characters of [A-Za-z0-9_.-], got \"" + *name_value + "\"");
    }
    step.name = *name_value;
    if (actions.size() != 1) {
      std::string list;
      for (const auto& a : action_keys) list += (list.empty() ? "" : ", ") + a;
      std::string given;
      for (const auto& a : actions) given += (given.empty() ? "" : ", ") + a;
      return error(node, path,
                   actions.empty() ? "step '" + step.name + "' has no action (expected one of: " +
                                         list + ")"
                                   : "step '" + step.name + "' has " +
                                         std::to_string(actions.size()) + " actions (" + given +
                                         "); exactly one is allowed");
    }
    step.type = actions.front();
    const YAML::Node action = node[step.type];
    if (!action.IsMap() && !action.IsNull()) {
      return error(action, path + "." + step.type, "expected a mapping, got " + shown(action));
    }
    auto action_json = to_json(action, path + "." + step.type, &source.templates);
    if (!action_json) return action_json.error();
    if (action_json->is_object()) step.action = action_json->as_object();
    if (auto message = options_.steps->compile(step)) {
      return error(action, path + "." + step.type, *message);
    }
    if (const YAML::Node deps = node["depends_on"]) {
      if (!deps.IsSequence()) {
        return error(deps, path + ".depends_on", "expected a list of step names");
      }
      for (size_t i = 0; i < deps.size(); ++i) {
        const std::string dep_path = path + ".depends_on[" + std::to_string(i) + "]";
        auto dep = string(deps[i], dep_path);
        if (!dep) return dep.error();
        if (std::find(step.depends_on.begin(), step.depends_on.end(), *dep) !=
            step.depends_on.end()) {
          return error(deps[i], dep_path, "'" + *dep + "' is listed twice");
        }
        step.depends_on.push_back(*dep);
        source.depends_on_nodes.push_back(deps[i]);
      }
    } else if (previous != nullptr) {
      step.depends_on = {previous->name};
    }
    bool poll = false;
    if (const YAML::Node v = node["completion"]) {
      auto s = string(v, path + ".completion");
      if (!s) return s.error();
      if (*s != "event" && *s != "poll") {
        return error(v, path + ".completion", "expected event or poll, got \"" + *s + "\"");
      }
      poll = *s == "poll";
      step.completion = poll ? CompletionMode::kPoll : CompletionMode::kEvent;
    }
    step.poll_every = poll ? Duration(std::chrono::seconds(15)) : Duration(std::chrono::seconds(60));
    if (const YAML::Node v = node["poll_every"]) {
      auto d = duration(v, path + ".poll_every");
      if (!d) return d.error();
      if (d->count() < 100) return error(v, path + ".poll_every", "must be at least 100ms");
      step.poll_every = *d;
    }
    if (const YAML::Node v = node["timeout"]) {
      auto d = duration(v, path + ".timeout");
      if (!d) return d.error();
      if (d->count() <= 0) return error(v, path + ".timeout", "must be longer than 0");
      step.timeout = *d;
    }
    if (const YAML::Node retry = node["retry"]) {
      if (auto e = map_node(retry, path + ".retry")) return *e;
      if (auto e = check_keys(retry, path + ".retry", {"max_attempts", "backoff"})) return *e;
      if (const YAML::Node v = retry["max_attempts"]) {
        auto i = integer(v, path + ".retry.max_attempts", 1, 1000);
        if (!i) return i.error();
        step.retry.max_attempts = static_cast<int32_t>(*i);
      }
      if (const YAML::Node v = retry["backoff"]) {
        auto d = duration(v, path + ".retry.backoff");
        if (!d) return d.error();
        step.retry.backoff = *d;
      }
    }
    return step;
  }

  // The key node of `key` in a mapping (for a position), or the mapping itself.
  static YAML::Node node_of_key(const YAML::Node& map, const std::string& key) {
    for (const auto& kv : map) {
      if (kv.first.IsScalar() && kv.first.Scalar() == key) return kv.second;
    }
    return map;
  }

  std::optional<Error> check_template(const TemplateUse& use, const WorkflowDefinition& def,
                                      const std::string& step_name,
                                      const std::set<std::string>& upstream) const {
    auto paths = template_paths_in(use.text);
    if (!paths) return error(use.node, use.path, paths.error().message);
    for (const auto& p : *paths) {
      std::vector<std::string> parts;
      for (size_t from = 0;;) {
        const size_t dot = p.find('.', from);
        parts.push_back(p.substr(from, dot == std::string::npos ? std::string::npos : dot - from));
        if (dot == std::string::npos) break;
        from = dot + 1;
      }
      const std::string shown_path = "{{ " + p + " }}";
      auto bad = [&](const std::string& what) {
        return error(use.node, use.path, shown_path + ": " + what);
      };
      if (parts[0] == "input") continue;
      if (parts[0] == "workflow") {
        if (parts.size() == 2 && (parts[1] == "id" || parts[1] == "name")) continue;
        return bad("expected workflow.id or workflow.name");
      }
      if (parts[0] == "steps" && parts.size() >= 3) {
        const std::string& other = parts[1];
        if (def.find_step(other) == nullptr) {
          return bad("no step named '" + other + "' in workflow " + def.name);
        }
        if (other == step_name) return bad("a step cannot read its own results");
        if (upstream.count(other) == 0) {
          return bad("step '" + step_name + "' does not depend on '" + other +
                     "' (directly or through other steps), so its results may not exist yet; "
                     "add it to depends_on");
        }
        const std::string& field = parts[2];
        if (field == "output") continue;
        if ((field == "run_id" || field == "state" || field == "attempt") && parts.size() == 3) {
          continue;
        }
        return bad("expected steps." + other + ".output[.FIELD...], steps." + other +
                   ".run_id, .state or .attempt");
      }
      return bad("expected a path starting with input., workflow.id, workflow.name or "
                 "steps.NAME.output / steps.NAME.run_id");
    }
    return std::nullopt;
  }

  Result<WorkflowDefinition> load_workflow(const std::string& name, const YAML::Node& node) const {
    const std::string path = "workflows." + name;
    if (auto e = map_node(node, path)) return *e;
    if (auto e = check_keys(node, path, {"steps", "on_failure", "description"})) return *e;
    const YAML::Node steps = node["steps"];
    if (!steps || !steps.IsSequence() || steps.size() == 0) {
      return error(steps ? steps : node, path + ".steps", "expected a non-empty list of steps");
    }
    WorkflowDefinition def;
    def.name = name;
    std::map<std::string, YAML::Node> names;  // across both lists
    auto main = load_step_list(name, steps, path + ".steps", names);
    if (!main) return main.error();
    def.steps = std::move(*main);
    if (const YAML::Node on_failure = node["on_failure"]) {
      if (!on_failure.IsSequence() || on_failure.size() == 0) {
        return error(on_failure, path + ".on_failure", "expected a non-empty list of steps");
      }
      auto compensation = load_step_list(name, on_failure, path + ".on_failure", names);
      if (!compensation) return compensation.error();
      def.on_failure = std::move(*compensation);
    }
    return def;
  }

  // One list of steps (`steps` or `on_failure`): each step, then depends_on
  // within the list, cycles and templates. `names` holds the names taken in
  // the workflow so far.
  Result<std::vector<StepDefinition>> load_step_list(const std::string& workflow,
                                                     const YAML::Node& steps,
                                                     const std::string& path,
                                                     std::map<std::string, YAML::Node>& names) const {
    WorkflowDefinition def;  // this list alone, for the checks below
    def.name = workflow;
    std::vector<StepSource> sources(steps.size());
    std::map<std::string, size_t> index_of;
    for (size_t i = 0; i < steps.size(); ++i) {
      const std::string step_path = path + "[" + std::to_string(i) + "]";
      auto step = load_step(steps[i], step_path, def.steps.empty() ? nullptr : &def.steps.back(),
                            sources[i]);
      if (!step) return step.error();
      if (auto it = names.find(step->name); it != names.end()) {
        return error(node_of_key(steps[i], "name"), step_path + ".name",
                     "step name '" + step->name + "' is used twice in this workflow (first at " +
                         location(it->second) + ")");
      }
      names[step->name] = steps[i];
      index_of[step->name] = i;
      def.steps.push_back(std::move(*step));
    }
    for (size_t i = 0; i < def.steps.size(); ++i) {
      const StepDefinition& step = def.steps[i];
      for (size_t d = 0; d < step.depends_on.size(); ++d) {
        const std::string& dep = step.depends_on[d];
        const YAML::Node at = d < sources[i].depends_on_nodes.size()
                                  ? sources[i].depends_on_nodes[d]
                                  : sources[i].node;
        const std::string at_path = sources[i].path + ".depends_on[" + std::to_string(d) + "]";
        if (dep == step.name) return error(at, at_path, "a step cannot depend on itself");
        if (index_of.count(dep) == 0) {
          return error(at, at_path,
                       "no step named '" + dep + "' in this list of steps (expected a step's name)");
        }
      }
    }
    // Cycles would leave steps waiting forever.
    std::vector<int> state(def.steps.size(), 0);  // 0 new, 1 visiting, 2 done
    std::vector<size_t> trail;
    std::function<std::optional<Error>(size_t)> visit = [&](size_t s) -> std::optional<Error> {
      if (state[s] == 2) return std::nullopt;
      if (state[s] == 1) {
        std::string cycle;
        auto it = std::find(trail.begin(), trail.end(), s);
        for (; it != trail.end(); ++it) cycle += def.steps[*it].name + " -> ";
        return error(sources[s].node, sources[s].path + ".depends_on",
                     "depends_on has a cycle: " + cycle + def.steps[s].name);
      }
      state[s] = 1;
      trail.push_back(s);
      for (const auto& dep : def.steps[s].depends_on) {
        if (auto e = visit(index_of.at(dep))) return e;
      }
      trail.pop_back();
      state[s] = 2;
      return std::nullopt;
    };
    for (size_t i = 0; i < def.steps.size(); ++i) {
      if (auto e = visit(i)) return *e;
    }
    // A template may read only what is certain to be there when the step runs:
    // the input, the workflow, and the steps it waits for (directly or not).
    std::vector<std::set<std::string>> upstream(def.steps.size());
    for (size_t i = 0; i < def.steps.size(); ++i) {
      std::vector<size_t> stack = {i};
      while (!stack.empty()) {
        const size_t s = stack.back();
        stack.pop_back();
        for (const auto& dep : def.steps[s].depends_on) {
          if (upstream[i].insert(dep).second) stack.push_back(index_of.at(dep));
        }
      }
    }
    for (size_t i = 0; i < def.steps.size(); ++i) {
      for (const auto& use : sources[i].templates) {
        if (auto e = check_template(use, def, def.steps[i].name, upstream[i])) return *e;
      }
    }
    return std::move(def.steps);
  }

  // `defined_at` holds where each workflow in `out` came from, across files.
  std::optional<Error> load_workflows(const YAML::Node& node,
                                      std::map<std::string, WorkflowDefinition>& out,
                                      std::map<std::string, std::string>& defined_at) const {
    if (node.IsNull()) return std::nullopt;
    if (auto e = map_node(node, "workflows")) return e;
    for (const auto& kv : node) {
      const std::string name = kv.first.Scalar();
      if (!is_valid_name(name)) {
        return error(kv.first, "workflows." + name, "a workflow name is 1-100 characters of [A-Za-z0-9_.-]");
      }
      if (auto it = defined_at.find(name); it != defined_at.end()) {
        return error(kv.first, "workflows." + name,
                     "workflow '" + name + "' is defined twice (first at " + it->second + ")");
      }
      defined_at[name] = location(kv.first);
      auto def = load_workflow(name, kv.second);
      if (!def) return def.error();
      out[name] = std::move(*def);
    }
    return std::nullopt;
  }

  Result<Config> load(const YAML::Node& root, const std::filesystem::path& base_dir) const {
    Config config;
    config.source_path = file_;
    if (root.IsNull()) return config_error_empty();
    if (auto e = map_node(root, "(top level)")) return *e;
    if (auto e = check_keys(root, "", {"kafka", "postgres", "databricks", "callbacks", "daemon",
                                       "workflows", "workflows_dir"})) {
      return *e;
    }
    if (const YAML::Node v = root["kafka"]) {
      if (auto e = load_kafka(v, config.kafka)) return *e;
    }
    if (const YAML::Node v = root["postgres"]) {
      if (v.IsScalar()) {
        return error(v, "postgres",
                     "expected a mapping with the URL under url (postgres: {url: \"postgresql://"
                     "...\"}), got a single value");
      }
      if (auto e = map_node(v, "postgres")) return *e;
      if (auto e = check_keys(v, "postgres", {"url"})) return *e;
      if (const YAML::Node url = v["url"]) {
        auto s = string(url, "postgres.url");
        if (!s) return s.error();
        if (s->empty()) return error(url, "postgres.url", "must not be empty");
        if (options_.validate_postgres_url) {
          if (auto problem = options_.validate_postgres_url(*s)) {
            return error(url, "postgres.url", *problem);
          }
        }
        config.postgres.url = *s;
      }
    }
    if (const YAML::Node v = root["databricks"]) {
      if (auto e = load_databricks(v, config.databricks)) return *e;
    }
    const YAML::Node callbacks = root["callbacks"];
    if (!callbacks) {
      return error(root, "callbacks.secret",
                   "required: the secret that keys completion tokens (at least 16 characters)");
    }
    if (auto e = map_node(callbacks, "callbacks")) return *e;
    if (auto e = check_keys(callbacks, "callbacks", {"secret"})) return *e;
    const YAML::Node secret = callbacks["secret"];
    if (!secret) return error(callbacks, "callbacks.secret", "required (at least 16 characters)");
    auto secret_value = string(secret, "callbacks.secret");
    if (!secret_value) return secret_value.error();
    if (secret_value->size() < 16) {
      // The message never repeats the secret.
      return error(secret, "callbacks.secret",
                   "must be at least 16 characters (it keys the HMAC tokens); it has " +
                       std::to_string(secret_value->size()));
    }
    config.callbacks.secret = *secret_value;
    if (const YAML::Node v = root["daemon"]) {
      if (auto e = load_daemon(v, config.daemon)) return *e;
    }
    std::map<std::string, std::string> defined_at;
    if (const YAML::Node v = root["workflows"]) {
      if (auto e = load_workflows(v, config.workflows, defined_at)) return *e;
    }
    if (const YAML::Node v = root["workflows_dir"]) {
      auto dir = string(v, "workflows_dir");
      if (!dir) return dir.error();
      std::filesystem::path path(*dir);
      if (path.is_relative()) path = base_dir / path;
      std::error_code ec;
      if (!std::filesystem::is_directory(path, ec)) {
        return error(v, "workflows_dir", "'" + path.string() + "' is not a directory");
      }
      std::vector<std::filesystem::path> files;
      for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
        const auto ext = entry.path().extension();
        if (entry.is_regular_file() && (ext == ".yaml" || ext == ".yml")) files.push_back(entry.path());
      }
      std::sort(files.begin(), files.end());
      for (const auto& file : files) {
        Loader sub(file.string(), options_);
        YAML::Node doc;
        try {
          doc = YAML::LoadFile(file.string());
        } catch (const YAML::Exception& e) {
          return sub.yaml_error(e);
        }
        if (doc.IsNull()) continue;
        if (auto e = sub.map_node(doc, "(top level)")) return *e;
        if (auto e = sub.check_keys(doc, "", {"workflows"})) return *e;
        if (const YAML::Node w = doc["workflows"]) {
          if (auto e = sub.load_workflows(w, config.workflows, defined_at)) return *e;
        }
      }
    }
    return config;
  }

  Error yaml_error(const YAML::Exception& e) const {
    std::ostringstream out;
    out << file_;
    if (!e.mark.is_null()) out << ":" << e.mark.line + 1 << ":" << e.mark.column + 1;
    out << ": invalid YAML: " << e.msg;
    return Error{ErrorKind::kInvalidInput, "config", out.str()};
  }

  Error config_error_empty() const {
    return Error{ErrorKind::kInvalidInput, "config", file_ + ": the configuration is empty"};
  }

 private:
  std::string file_;
  const LoadOptions& options_;
};

Result<Config> load_from_text(const std::string& text, const std::string& source_name,
                              const std::filesystem::path& base_dir, const LoadOptions& options) {
  Loader loader(source_name, options);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return loader.yaml_error(e);
  }
  try {
    return loader.load(root, base_dir);
  } catch (const YAML::Exception& e) {
    return loader.yaml_error(e);
  }
}

}  // namespace

Result<Config> load_config(const std::string& path, const LoadOptions& options) {
  std::ifstream in(path);
  if (!in) {
    return Error{ErrorKind::kInvalidInput, "config",
                 path + ": cannot read the configuration file"};
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return load_from_text(buffer.str(), path, std::filesystem::path(path).parent_path(), options);
}

Result<Config> load_config_from_string(const std::string& yaml_text,
                                       const std::string& source_name,
                                       const LoadOptions& options) {
  return load_from_text(yaml_text, source_name, std::filesystem::current_path(), options);
}

}  // namespace brickwork
