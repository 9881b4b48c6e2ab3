#pragma once
// `check --connect`: each configured service reached with the configured
// credentials, and the configuration mistakes the daemon refuses to start with.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace brickwork::cli {

struct ConnectProbe {
  std::string target;  // kafka, kafka topics, postgres, lakebase credential (NAME), database NAME, databricks
  bool ok = false;
  std::string detail;  // on failure, why
};

// Kafka (a metadata request; are the four topics there?), Postgres (with its
// Lakebase credential), each database under `databases:` (with its own), and
// Databricks (GET jobs/list?limit=1), each within a few seconds.
std::vector<ConnectProbe> probe_connections(const Config& config);

// The four topics of contract 1, in its order.
std::vector<std::string> brickwork_topics(const KafkaTopics& topics);

// "workflow/step (type)" of every step that calls Databricks, by the label
// of its workspace ("default", or the name under workspaces:).
std::map<std::string, std::vector<std::string>> databricks_steps(const Config& config);

// Why the daemon cannot run this configuration: a workflow has Databricks
// steps in a workspace whose credentials do not resolve. nullopt when it can.
std::optional<std::string> missing_databricks_credentials(const Config& config);

// The Databricks identity `check` reports, resolved as the daemon would
// (process environment, ~/.databrickscfg): never a secret.
struct DatabricksIdentity {
  std::string workspace;  // "default", or the name under workspaces:
  bool resolved = false;
  std::string host;
  std::string auth_type;
  std::string profile;
  std::string summary;  // "https://host (auth_type X, profile P)", or why none resolves
};
// The default workspace's; when the configuration has none (only
// `workspaces:`), its summary says so and `resolved` is false.
DatabricksIdentity databricks_identity(const Config& config);
// Each workspace under `workspaces:`, in name order.
std::vector<DatabricksIdentity> workspace_identities(const Config& config);

}  // namespace brickwork::cli
