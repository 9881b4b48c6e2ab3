#pragma once
// Workflow definitions: the `workflows:` mapping of the configuration file or
// of a file in workflows_dir. Each step is read by load_step (step_loader.hpp);
// then each list of steps (`steps`, `on_failure`) is checked as a whole: names
// unique in the workflow, depends_on naming steps of the same list, no cycles,
// and templates that read only what is certain to exist when the step runs.
// Internal to the loader.
#include <yaml-cpp/yaml.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/yaml_reader.hpp"
#include "daemon/core/result.hpp"

namespace brickwork::config_detail {

// Reads `node` (workflow name to definition; null: none) into `out`.
// `defined_at` holds where each workflow in `out` came from, across files, so
// that a name defined twice is refused. Without `steps` every action key is
// unknown. With `errors`, every error is appended there (those of one list of
// steps as one, a line each) and the next workflow is read on; the result is
// then the first error.
std::optional<Error> load_workflows(const YamlReader& in, const StepCatalog* steps,
                                    const YAML::Node& node,
                                    std::map<std::string, WorkflowDefinition>& out,
                                    std::map<std::string, std::string>& defined_at,
                                    std::vector<Error>* errors = nullptr);

}  // namespace brickwork::config_detail
