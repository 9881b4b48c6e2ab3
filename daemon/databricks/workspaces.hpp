#pragma once
// The Databricks workspaces of one configuration, by name: the default one
// (`databricks:`) and those under `workspaces:`, each with its own client
// (its own credentials, per-API limits and metrics label). Built once when
// the daemon or a command starts; a step's calls go to the workspace its
// definition names (StepDefinition::workspace).
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "daemon/databricks/api.hpp"
#include "daemon/databricks/client.hpp"

namespace brickwork {

class Workspaces {
 public:
  Workspaces() = default;
  // One client as the default workspace (tests, and the single-workspace form).
  explicit Workspaces(std::unique_ptr<DatabricksApi> default_api);

  // `name` "" or "default" is the default workspace. A name given twice is a bug: throws.
  void add(std::string_view name, std::unique_ptr<DatabricksApi> api);
  // The client of workspace `name` ("" or "default": the default one), or null.
  DatabricksApi* find(std::string_view name) const;
  // Every workspace with a client, "default" first if it has one.
  std::vector<std::string> names() const;
  bool empty() const { return apis_.empty(); }

  // Every client counts into `metrics` (null: stop), each with its workspace label.
  void set_metrics(Metrics* metrics);
  // Shutdown: ends every call in flight in every workspace (DatabricksApi::cancel_calls).
  void cancel_calls() const;

 private:
  static std::string key(std::string_view name);
  std::map<std::string, std::unique_ptr<DatabricksApi>, std::less<>> apis_;
};

// The name a workspace is shown by: "default" for "" (the default).
std::string workspace_label(std::string_view name);

// The workspaces of `config`, each client built as make_databricks_api does
// (`options` for each, with its name as options.workspace). A workspace
// whose credentials do not resolve has no client; its error is in `failed`.
// The default workspace is left out when the configuration has none.
struct BuiltWorkspaces {
  Workspaces workspaces;
  std::map<std::string, Error> failed;  // by label ("default", or the name)
};
BuiltWorkspaces make_workspaces(const Config& config, const DatabricksClientOptions& options = {});

// Every workspace of `config` as (label, its configuration), the default
// first when there is one: for `check` and the daemon's start.
std::vector<std::pair<std::string, const DatabricksConfig*>> configured_workspaces(
    const Config& config);

}  // namespace brickwork
