#include "config/step_loader.hpp"

#include <algorithm>
#include <set>
#include <vector>

namespace brickwork::config_detail {

namespace {

std::string comma_separated(const std::vector<std::string>& values) {
  std::string list;
  for (const auto& v : values) list += (list.empty() ? "" : ", ") + v;
  return list;
}

// The parts of one step, in the order they are checked.
class StepReader {
 public:
  StepReader(const YamlReader& in, const StepCatalog* steps) : in_(in), steps_(steps) {}

  Result<std::vector<std::string>> step_actions(const YAML::Node& node, const std::string& path,
                                                const std::vector<std::string>& action_keys) const;
  std::optional<Error> load_name(const YAML::Node& node, const std::string& path,
                                 StepDefinition& step) const;
  std::optional<Error> load_action(const YAML::Node& node, const std::string& path,
                                   const std::vector<std::string>& actions,
                                   const std::vector<std::string>& action_keys,
                                   StepDefinition& step, StepSource& source) const;
  std::optional<Error> load_depends_on(const YAML::Node& node, const std::string& path,
                                       const StepDefinition* previous, StepDefinition& step,
                                       StepSource& source) const;
  std::optional<Error> load_timing(const YAML::Node& node, const std::string& path,
                                   StepDefinition& step) const;
  std::optional<Error> load_retry(const YAML::Node& node, const std::string& path,
                                  StepDefinition& step) const;
  std::optional<Error> load_workspace(const YAML::Node& node, const std::string& path,
                                      StepDefinition& step) const;

 private:
  const YamlReader& in_;
  const StepCatalog* steps_;
};

// The action keys a step uses; any key that is neither an action nor a field
// of every step is an error.
Result<std::vector<std::string>> StepReader::step_actions(
    const YAML::Node& node, const std::string& path,
    const std::vector<std::string>& action_keys) const {
  static const std::set<std::string> kFields = {"name",        "depends_on", "completion",
                                                "poll_every",  "timeout",    "event_grace",
                                                "retry",       "workspace"};
  std::vector<std::string> actions;
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    const bool is_action =
        std::find(action_keys.begin(), action_keys.end(), key) != action_keys.end();
    if (is_action) {
      actions.push_back(key);
    } else if (kFields.count(key) == 0) {
      return in_.error(kv.first, path + "." + key,
                       "unknown key (a step has name, depends_on, completion, poll_every, "
                       "event_grace, timeout, retry, workspace and exactly one action: " +
                           comma_separated(action_keys) + ")");
    }
  }
  return actions;
}

std::optional<Error> StepReader::load_name(const YAML::Node& node, const std::string& path,
                                           StepDefinition& step) const {
  const YAML::Node name = node["name"];
  if (!name) return in_.error(node, path + ".name", "every step needs a name");
  auto name_value = in_.string(name, path + ".name");
  if (!name_value) return name_value.error();
  if (!is_valid_name(*name_value)) {
    return in_.error(name, path + ".name",
                     "expected 1-100 characters of [A-Za-z0-9_.-], got \"" + *name_value + "\"");
  }
  step.name = *name_value;
  return std::nullopt;
}

// Exactly one action, read as JSON and compiled by its step type.
std::optional<Error> StepReader::load_action(const YAML::Node& node, const std::string& path,
                                             const std::vector<std::string>& actions,
                                             const std::vector<std::string>& action_keys,
                                             StepDefinition& step, StepSource& source) const {
  if (actions.size() != 1) {
    return in_.error(node, path,
                     actions.empty() ? "step '" + step.name + "' has no action (expected one of: " +
                                           comma_separated(action_keys) + ")"
                                     : "step '" + step.name + "' has " +
                                           std::to_string(actions.size()) + " actions (" +
                                           comma_separated(actions) + "); exactly one is allowed");
  }
  step.type = actions.front();
  const YAML::Node action = node[step.type];
  if (!action.IsMap() && !action.IsNull()) {
    return in_.error(action, path + "." + step.type,
                     "expected a mapping, got " + YamlReader::shown(action));
  }
  auto action_json = in_.to_json(action, path + "." + step.type, &source.templates);
  if (!action_json) return action_json.error();
  if (action_json->is_object()) step.action = action_json->as_object();
  // Only the catalog's keys are actions: without a catalog no step gets here.
  // A type may set its own poll_every default; zero means it did not.
  step.poll_every = Duration::zero();
  if (auto message = steps_->compile(step)) {
    return in_.error(action, path + "." + step.type, *message);
  }
  return std::nullopt;
}

// As given, or else the previous step of the list.
std::optional<Error> StepReader::load_depends_on(const YAML::Node& node, const std::string& path,
                                                 const StepDefinition* previous,
                                                 StepDefinition& step, StepSource& source) const {
  const YAML::Node deps = node["depends_on"];
  if (!deps) {
    if (previous != nullptr) step.depends_on = {previous->name};
    return std::nullopt;
  }
  if (!deps.IsSequence()) {
    return in_.error(deps, path + ".depends_on", "expected a list of step names");
  }
  for (size_t i = 0; i < deps.size(); ++i) {
    const std::string dep_path = path + ".depends_on[" + std::to_string(i) + "]";
    auto dep = in_.string(deps[i], dep_path);
    if (!dep) return dep.error();
    if (std::find(step.depends_on.begin(), step.depends_on.end(), *dep) != step.depends_on.end()) {
      return in_.error(deps[i], dep_path, "'" + *dep + "' is listed twice");
    }
    step.depends_on.push_back(*dep);
    source.depends_on_nodes.push_back(deps[i]);
  }
  return std::nullopt;
}

// completion, poll_every (whose default depends on completion), event_grace
// and timeout.
std::optional<Error> StepReader::load_timing(const YAML::Node& node, const std::string& path,
                                             StepDefinition& step) const {
  bool poll = false;
  if (const YAML::Node v = node["completion"]) {
    auto s = in_.string(v, path + ".completion");
    if (!s) return s.error();
    if (*s != "event" && *s != "poll") {
      return in_.error(v, path + ".completion", "expected event or poll, got \"" + *s + "\"");
    }
    poll = *s == "poll";
    step.completion = poll ? CompletionMode::kPoll : CompletionMode::kEvent;
  }
  if (step.poll_every == Duration::zero()) {  // the type has no default of its own
    step.poll_every = poll ? Duration(std::chrono::seconds(15)) : Duration(std::chrono::seconds(60));
  }
  if (const YAML::Node v = node["poll_every"]) {
    auto d = in_.duration(v, path + ".poll_every");
    if (!d) return d.error();
    if (d->count() < 100) return in_.error(v, path + ".poll_every", "must be at least 100ms");
    step.poll_every = *d;
  }
  if (const YAML::Node v = node["event_grace"]) {
    auto d = in_.duration(v, path + ".event_grace");
    if (!d) return d.error();
    if (d->count() < 0) return in_.error(v, path + ".event_grace", "must not be negative");
    if (poll) return in_.error(v, path + ".event_grace", "applies only to completion: event");
    step.event_grace = *d;
  }
  if (const YAML::Node v = node["timeout"]) {
    auto d = in_.duration(v, path + ".timeout");
    if (!d) return d.error();
    if (d->count() <= 0) return in_.error(v, path + ".timeout", "must be longer than 0");
    step.timeout = *d;
  }
  return std::nullopt;
}

std::optional<Error> StepReader::load_retry(const YAML::Node& node, const std::string& path,
                                            StepDefinition& step) const {
  const YAML::Node retry = node["retry"];
  if (!retry) return std::nullopt;
  if (auto e = in_.map_node(retry, path + ".retry")) return *e;
  if (auto e = in_.check_keys(retry, path + ".retry", {"max_attempts", "backoff"})) return *e;
  if (const YAML::Node v = retry["max_attempts"]) {
    auto i = in_.integer(v, path + ".retry.max_attempts", 1, 1000);
    if (!i) return i.error();
    step.retry.max_attempts = static_cast<int32_t>(*i);
  }
  if (const YAML::Node v = retry["backoff"]) {
    auto d = in_.duration(v, path + ".retry.backoff");
    if (!d) return d.error();
    step.retry.backoff = *d;
  }
  return std::nullopt;
}

// `workspace: NAME`, before the action is compiled (its type decides whether
// it may name one). Whether NAME is configured is checked once all sections
// are read (check_references).
std::optional<Error> StepReader::load_workspace(const YAML::Node& node, const std::string& path,
                                                StepDefinition& step) const {
  const YAML::Node v = node["workspace"];
  if (!v) return std::nullopt;
  auto name = in_.string(v, path + ".workspace");
  if (!name) return name.error();
  if (!is_valid_name(*name)) {
    return in_.error(v, path + ".workspace",
                     "expected a workspace name (1-100 characters of [A-Za-z0-9_.-]), got \"" +
                         *name + "\"");
  }
  step.workspace = *name;
  return std::nullopt;
}

}  // namespace

// Without std::regex, which is recursive and slow on long input.
bool is_valid_name(std::string_view s) {
  if (s.empty() || s.size() > 100) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

Result<StepDefinition> load_step(const YamlReader& in, const StepCatalog* steps,
                                 const YAML::Node& node, const std::string& path,
                                 const StepDefinition* previous, StepSource& source) {
  if (auto e = in.map_node(node, path)) return *e;
  source.node = node;
  source.path = path;
  StepDefinition step;
  step.source_location = in.location(node);
  const StepReader reader(in, steps);
  const std::vector<std::string> action_keys =
      steps != nullptr ? steps->action_keys() : std::vector<std::string>{};
  auto actions = reader.step_actions(node, path, action_keys);
  if (!actions) return actions.error();
  if (auto e = reader.load_name(node, path, step)) return *e;
  if (auto e = reader.load_workspace(node, path, step)) return *e;
  if (auto e = reader.load_action(node, path, *actions, action_keys, step, source)) return *e;
  if (auto e = reader.load_depends_on(node, path, previous, step, source)) return *e;
  if (auto e = reader.load_timing(node, path, step)) return *e;
  if (auto e = reader.load_retry(node, path, step)) return *e;
  return step;
}

}  // namespace brickwork::config_detail
