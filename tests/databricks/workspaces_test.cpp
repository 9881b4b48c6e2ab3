// The workspaces of one configuration (issue 20): a client each, found by
// name, each naming its workspace in metrics and log lines.
#include "daemon/databricks/workspaces.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include "daemon/core/metrics.hpp"
#include "devstack/simulator.hpp"
#include "tests/databricks/cancel_only_api.hpp"

namespace brickwork {
namespace {

using namespace std::chrono_literals;

// Counts cancel_calls; nothing else is called.
std::unique_ptr<DatabricksApi> counting_api(int* canceled) {
  return std::make_unique<testing::CancelOnlyApi>([canceled] { ++*canceled; });
}

TEST(Workspaces, FindsEachByNameAndCancelsEvery) {
  int canceled = 0;
  Workspaces workspaces(counting_api(&canceled));
  auto eu = counting_api(&canceled);
  DatabricksApi* eu_api = eu.get();
  workspaces.add("eu", std::move(eu));
  EXPECT_EQ(workspaces.find("eu"), eu_api);
  ASSERT_NE(workspaces.find(""), nullptr);
  EXPECT_EQ(workspaces.find("default"), workspaces.find(""));
  EXPECT_EQ(workspaces.find("us"), nullptr);
  EXPECT_EQ(workspaces.names(), (std::vector<std::string>{"default", "eu"}));
  EXPECT_THROW(workspaces.add("default", counting_api(&canceled)),
               std::logic_error);
  workspaces.cancel_calls();
  EXPECT_EQ(canceled, 2);  // shutdown reaches every workspace's calls
}

TEST(Workspaces, MakeWorkspacesBuildsEveryConfiguredOneOrSaysWhyNot) {
  Config config;
  config.databricks.host = "http://127.0.0.1:1";  // loopback without credentials: the simulator form
  config.workspaces["eu"].host = "http://127.0.0.1:2";
  config.workspaces["eu"].token = "t";
  config.workspaces["us"].host = "https://dbc-3.cloud.databricks.com";  // no credentials
  DatabricksClientOptions options;
  options.env = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  BuiltWorkspaces built = make_workspaces(config, options);
  EXPECT_EQ(built.workspaces.names(), (std::vector<std::string>{"default", "eu"}));
  EXPECT_EQ(built.workspaces.find("eu")->host(), "http://127.0.0.1:2");
  EXPECT_EQ(built.workspaces.find("eu")->auth_type(), "pat");
  ASSERT_EQ(built.failed.count("us"), 1u);
  EXPECT_EQ(built.failed.at("us").kind, ErrorKind::kInvalidInput);

  // Only workspaces: no default workspace to build.
  config.has_default_workspace = false;
  EXPECT_EQ(make_workspaces(config, options).workspaces.find(""), nullptr);
}

TEST(Workspaces, ANamedWorkspaceLabelsItsMetricsAndNamesItselfInLogLines) {
  SimulatorOptions sim_options;
  sim_options.bearer_token = "eu-token";
  DatabricksSimulator sim(sim_options);
  ASSERT_TRUE(sim.start());
  sim.set_faults(SimulatorFaults{1.0, {503}, 0s, 1});  // every call: 503, retried

  Config config;
  config.has_default_workspace = false;
  DatabricksConfig& eu = config.workspaces["eu"];
  eu.host = sim.base_url();
  eu.token = "eu-token";
  eu.retry_budget = 300ms;
  DatabricksClientOptions options;
  options.env = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  options.backoff_initial = 10ms;
  options.backoff_max = 50ms;
  BuiltWorkspaces built = make_workspaces(config, options);
  DatabricksApi* api = built.workspaces.find("eu");
  ASSERT_NE(api, nullptr);
  Metrics metrics;
  built.workspaces.set_metrics(&metrics);

  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  spdlog::default_logger()->sinks().push_back(sink);
  auto listed = api->call("GET", "/api/2.2/jobs/list?limit=1", nullptr, true);
  auto& sinks = spdlog::default_logger()->sinks();
  sinks.erase(std::remove(sinks.begin(), sinks.end(), sink), sinks.end());
  built.workspaces.set_metrics(nullptr);

  EXPECT_FALSE(listed.ok());
  EXPECT_NE(log.str().find("databricks (workspace eu) GET /api/2.2/jobs/list"), std::string::npos)
      << log.str();
  const std::string text = metrics.exposition();
  EXPECT_NE(text.find(R"(brickwork_databricks_requests_total{code="503",endpoint="jobs/list",workspace="eu"})"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find(R"(workspace="default")"), std::string::npos) << text;
  sim.stop();
}

}  // namespace
}  // namespace brickwork
