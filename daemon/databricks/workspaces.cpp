#include "daemon/databricks/workspaces.hpp"

#include <stdexcept>

namespace brickwork {

std::string workspace_label(std::string_view name) {
  return name.empty() ? std::string(kDefaultWorkspace) : std::string(name);
}

std::string Workspaces::key(std::string_view name) { return workspace_label(name); }

Workspaces::Workspaces(std::unique_ptr<DatabricksApi> default_api) {
  if (default_api) add("", std::move(default_api));
}

void Workspaces::add(std::string_view name, std::unique_ptr<DatabricksApi> api) {
  if (!apis_.emplace(key(name), std::move(api)).second) {
    throw std::logic_error("workspace added twice: " + key(name));
  }
}

DatabricksApi* Workspaces::find(std::string_view name) const {
  auto it = apis_.find(key(name));
  return it == apis_.end() ? nullptr : it->second.get();
}

std::vector<std::string> Workspaces::names() const {
  std::vector<std::string> out;
  if (apis_.count(kDefaultWorkspace) != 0) out.emplace_back(kDefaultWorkspace);
  for (const auto& [name, api] : apis_) {
    if (name != kDefaultWorkspace) out.push_back(name);
  }
  return out;
}

void Workspaces::set_metrics(Metrics* metrics) {
  for (auto& [name, api] : apis_) api->set_metrics(metrics);
}

void Workspaces::cancel_calls() const {
  for (auto& [name, api] : apis_) api->cancel_calls();
}

std::vector<std::pair<std::string, const DatabricksConfig*>> configured_workspaces(
    const Config& config) {
  std::vector<std::pair<std::string, const DatabricksConfig*>> out;
  if (config.has_default_workspace) out.emplace_back(kDefaultWorkspace, &config.databricks);
  for (const auto& [name, workspace] : config.workspaces) out.emplace_back(name, &workspace);
  return out;
}

BuiltWorkspaces make_workspaces(const Config& config, const DatabricksClientOptions& options) {
  BuiltWorkspaces out;
  for (const auto& [label, workspace] : configured_workspaces(config)) {
    DatabricksClientOptions own = options;
    own.workspace = label == kDefaultWorkspace ? std::string() : label;
    auto api = make_databricks_api(*workspace, own);
    if (api) {
      out.workspaces.add(own.workspace, std::move(*api));
    } else {
      out.failed.emplace(label, api.error());
    }
  }
  return out;
}

}  // namespace brickwork
