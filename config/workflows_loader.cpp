#include "config/workflows_loader.hpp"

#include <algorithm>
#include <functional>
#include <set>
#include <string_view>
#include <vector>

#include "config/step_loader.hpp"
#include "config/templates.hpp"

namespace brickwork::config_detail {

namespace {

// The key node of `key` in a mapping (for a position), or the mapping itself.
YAML::Node node_of_key(const YAML::Node& map, const std::string& key) {
  for (const auto& kv : map) {
    if (kv.first.IsScalar() && kv.first.Scalar() == key) return kv.second;
  }
  return map;
}

// One list of steps as read, for the checks across its steps.
struct StepList {
  WorkflowDefinition def;           // the workflow's name and this list alone
  std::vector<StepSource> sources;  // parallel to def.steps
  std::map<std::string, size_t> index_of;
};

// Every error names file:line:col, the path of the value and what was expected.
class WorkflowReader {
 public:
  WorkflowReader(const YamlReader& in, const StepCatalog* steps, bool every_error)
      : in_(in), steps_(steps), every_error_(every_error) {}

  Result<WorkflowDefinition> load_workflow(const std::string& name, const YAML::Node& node) const;

 private:
  Result<std::vector<StepDefinition>> load_step_list(
      const std::string& workflow, const YAML::Node& steps, const std::string& path,
      std::map<std::string, YAML::Node>& names) const;
  std::optional<Error> check_depends_on(const StepList& list) const;
  std::optional<Error> check_cycles(const StepList& list) const;
  std::optional<Error> check_templates(const StepList& list) const;
  std::optional<Error> check_template(const TemplateUse& use, const WorkflowDefinition& def,
                                      const std::string& step_name,
                                      const std::set<std::string>& upstream) const;

  const YamlReader& in_;
  const StepCatalog* steps_;
  bool every_error_;  // a step's error does not stop the reading of the next
};

Result<WorkflowDefinition> WorkflowReader::load_workflow(const std::string& name,
                                                         const YAML::Node& node) const {
  const std::string path = "workflows." + name;
  if (auto e = in_.map_node(node, path)) return *e;
  if (auto e = in_.check_keys(node, path, {"steps", "on_failure", "description"})) return *e;
  const YAML::Node steps = node["steps"];
  if (!steps || !steps.IsSequence() || steps.size() == 0) {
    return in_.error(steps ? steps : node, path + ".steps", "expected a non-empty list of steps");
  }
  WorkflowDefinition def;
  def.name = name;
  std::map<std::string, YAML::Node> names;  // across both lists
  auto main = load_step_list(name, steps, path + ".steps", names);
  if (!main) return main.error();
  def.steps = std::move(*main);
  if (const YAML::Node on_failure = node["on_failure"]) {
    if (!on_failure.IsSequence() || on_failure.size() == 0) {
      return in_.error(on_failure, path + ".on_failure", "expected a non-empty list of steps");
    }
    auto compensation = load_step_list(name, on_failure, path + ".on_failure", names);
    if (!compensation) return compensation.error();
    def.on_failure = std::move(*compensation);
  }
  return def;
}

// One list of steps (`steps` or `on_failure`): each step, then depends_on
// within the list, cycles and templates. `names` holds the names taken in the
// workflow so far.
Result<std::vector<StepDefinition>> WorkflowReader::load_step_list(
    const std::string& workflow, const YAML::Node& steps, const std::string& path,
    std::map<std::string, YAML::Node>& names) const {
  StepList list;
  list.def.name = workflow;
  list.sources.resize(steps.size());
  std::optional<Error> step_errors;  // a line each
  for (size_t i = 0; i < steps.size(); ++i) {
    const std::string step_path = path + "[" + std::to_string(i) + "]";
    const StepDefinition* previous = list.def.steps.empty() ? nullptr : &list.def.steps.back();
    auto step = load_step(in_, steps_, steps[i], step_path, previous, list.sources[i]);
    if (!step && every_error_) {
      // The other steps are still read; the checks across them are not.
      if (step_errors) {
        step_errors->message += "\n" + step.error().message;
      } else {
        step_errors = step.error();
      }
      continue;
    }
    if (!step) return step.error();
    if (auto it = names.find(step->name); it != names.end()) {
      return in_.error(node_of_key(steps[i], "name"), step_path + ".name",
                       "step name '" + step->name + "' is used twice in this workflow (first at " +
                           in_.location(it->second) + ")");
    }
    names[step->name] = steps[i];
    list.index_of[step->name] = i;
    list.def.steps.push_back(std::move(*step));
  }
  if (step_errors) return *step_errors;
  if (auto e = check_depends_on(list)) return *e;
  if (auto e = check_cycles(list)) return *e;
  if (auto e = check_templates(list)) return *e;
  return std::move(list.def.steps);
}

std::optional<Error> WorkflowReader::check_depends_on(const StepList& list) const {
  for (size_t i = 0; i < list.def.steps.size(); ++i) {
    const StepDefinition& step = list.def.steps[i];
    const StepSource& source = list.sources[i];
    for (size_t d = 0; d < step.depends_on.size(); ++d) {
      const std::string& dep = step.depends_on[d];
      const YAML::Node at =
          d < source.depends_on_nodes.size() ? source.depends_on_nodes[d] : source.node;
      const std::string at_path = source.path + ".depends_on[" + std::to_string(d) + "]";
      if (dep == step.name) return in_.error(at, at_path, "a step cannot depend on itself");
      if (list.index_of.count(dep) == 0) {
        return in_.error(
            at, at_path,
            "no step named '" + dep + "' in this list of steps (expected a step's name)");
      }
    }
  }
  return std::nullopt;
}

// Cycles would leave steps waiting forever.
std::optional<Error> WorkflowReader::check_cycles(const StepList& list) const {
  const std::vector<StepDefinition>& steps = list.def.steps;
  std::vector<int> state(steps.size(), 0);  // 0 new, 1 visiting, 2 done
  std::vector<size_t> trail;
  std::function<std::optional<Error>(size_t)> visit = [&](size_t s) -> std::optional<Error> {
    if (state[s] == 2) return std::nullopt;
    if (state[s] == 1) {
      std::string cycle;
      auto it = std::find(trail.begin(), trail.end(), s);
      for (; it != trail.end(); ++it) cycle += steps[*it].name + " -> ";
      return in_.error(list.sources[s].node, list.sources[s].path + ".depends_on",
                       "depends_on has a cycle: " + cycle + steps[s].name);
    }
    state[s] = 1;
    trail.push_back(s);
    for (const auto& dep : steps[s].depends_on) {
      if (auto e = visit(list.index_of.at(dep))) return e;
    }
    trail.pop_back();
    state[s] = 2;
    return std::nullopt;
  };
  for (size_t i = 0; i < steps.size(); ++i) {
    if (auto e = visit(i)) return *e;
  }
  return std::nullopt;
}

// A template may read only what is certain to be there when the step runs:
// the input, the workflow, and the steps it waits for (directly or not).
std::optional<Error> WorkflowReader::check_templates(const StepList& list) const {
  const std::vector<StepDefinition>& steps = list.def.steps;
  std::vector<std::set<std::string>> upstream(steps.size());
  for (size_t i = 0; i < steps.size(); ++i) {
    std::vector<size_t> stack = {i};
    while (!stack.empty()) {
      const size_t s = stack.back();
      stack.pop_back();
      for (const auto& dep : steps[s].depends_on) {
        if (upstream[i].insert(dep).second) stack.push_back(list.index_of.at(dep));
      }
    }
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    for (const auto& use : list.sources[i].templates) {
      if (auto e = check_template(use, list.def, steps[i].name, upstream[i])) return *e;
    }
  }
  return std::nullopt;
}

std::optional<Error> WorkflowReader::check_template(const TemplateUse& use,
                                                    const WorkflowDefinition& def,
                                                    const std::string& step_name,
                                                    const std::set<std::string>& upstream) const {
  auto paths = template_paths_in(use.text);
  if (!paths) return in_.error(use.node, use.path, paths.error().message);
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
      return in_.error(use.node, use.path, shown_path + ": " + what);
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
    return bad(
        "expected a path starting with input., workflow.id, workflow.name or "
        "steps.NAME.output / steps.NAME.run_id");
  }
  return std::nullopt;
}

}  // namespace

std::optional<Error> load_workflows(const YamlReader& in, const StepCatalog* steps,
                                    const YAML::Node& node,
                                    std::map<std::string, WorkflowDefinition>& out,
                                    std::map<std::string, std::string>& defined_at,
                                    std::vector<Error>* errors) {
  if (node.IsNull()) return std::nullopt;
  std::optional<Error> first;
  // Without `errors` the first error ends the reading; with it, the next
  // workflow is read.
  auto failed = [&](Error e) {
    if (errors != nullptr) errors->push_back(e);
    if (!first) first = std::move(e);
    return errors == nullptr;
  };
  if (auto e = in.map_node(node, "workflows")) {
    failed(*e);
    return e;
  }
  const WorkflowReader reader(in, steps, errors != nullptr);
  for (const auto& kv : node) {
    const std::string name = kv.first.Scalar();
    if (!is_valid_name(name)) {
      if (failed(in.error(kv.first, "workflows." + name,
                          "a workflow name is 1-100 characters of [A-Za-z0-9_.-]"))) {
        break;
      }
      continue;
    }
    if (auto it = defined_at.find(name); it != defined_at.end()) {
      if (failed(in.error(kv.first, "workflows." + name,
                          "workflow '" + name + "' is defined twice (first at " + it->second +
                              ")"))) {
        break;
      }
      continue;
    }
    defined_at[name] = in.location(kv.first);
    auto def = reader.load_workflow(name, kv.second);
    if (!def) {
      if (failed(def.error())) break;
      continue;
    }
    out[name] = std::move(*def);
  }
  return first;
}

}  // namespace brickwork::config_detail
