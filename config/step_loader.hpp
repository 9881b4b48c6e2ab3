#pragma once
// One step of a workflow: its name, its one action (read as JSON and compiled
// by its step type), depends_on, completion, poll_every, timeout and retry.
// The checks across the steps of a list are in workflows_loader.cpp. Internal
// to the loader.
#include <yaml-cpp/yaml.h>

#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "config/yaml_reader.hpp"
#include "daemon/core/result.hpp"

namespace brickwork::config_detail {

// What load_step learns beyond the StepDefinition, for checks across steps.
struct StepSource {
  YAML::Node node;
  std::string path;
  std::vector<YAML::Node> depends_on_nodes;  // parallel to StepDefinition::depends_on
  std::vector<TemplateUse> templates;
};

// The step at `node` (`path` names it in messages). Without depends_on it
// depends on `previous`, if there is one. Without `steps` every action key is
// unknown.
Result<StepDefinition> load_step(const YamlReader& in, const StepCatalog* steps,
                                 const YAML::Node& node, const std::string& path,
                                 const StepDefinition* previous, StepSource& source);

// A workflow or step name: 1-100 characters of [A-Za-z0-9_.-].
bool is_valid_name(std::string_view s);

}  // namespace brickwork::config_detail
