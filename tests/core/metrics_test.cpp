#include "daemon/core/metrics.hpp"

#include <gtest/gtest.h>

#include "daemon/core/listen_address.hpp"

namespace brickwork {
namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST(Metrics, EverySeriesOfTheContractIsExposed) {
  Metrics metrics;
  metrics.count_input("brickwork.commands", "applied", 3);
  metrics.count_input("brickwork.commands", "dead_letter");
  metrics.set_consumer_lag({{"brickwork.commands", 2, 17}});
  metrics.set_outbox_backlog(5);
  metrics.set_effects_due(2);
  metrics.observe_databricks_request("default", "jobs/run-now", "200", 0.02);
  metrics.observe_databricks_request("eu", "jobs/run-now", "200", 0.03);
  metrics.count_workflow_finished("daily", "succeeded");
  metrics.observe_step("daily", "run_job", 12.5);
  metrics.set_intake_paused(true);
  metrics.set_credential_expiry("postgres", 1800);
  const std::string text = metrics.exposition();
  EXPECT_TRUE(has_line(text, "# TYPE brickwork_inputs_total counter")) << text;
  EXPECT_TRUE(has_line(text, R"(brickwork_inputs_total{result="applied",topic="brickwork.commands"} 3)"))
      << text;
  EXPECT_TRUE(has_line(text, R"(brickwork_consumer_lag{partition="2",topic="brickwork.commands"} 17)"))
      << text;
  EXPECT_TRUE(has_line(text, "brickwork_outbox_backlog 5")) << text;
  EXPECT_TRUE(has_line(text, "brickwork_effects_due 2")) << text;
  // One series per workspace.
  EXPECT_TRUE(has_line(
      text,
      R"(brickwork_databricks_requests_total{code="200",endpoint="jobs/run-now",workspace="default"} 1)"))
      << text;
  EXPECT_TRUE(has_line(
      text, R"(brickwork_databricks_requests_total{code="200",endpoint="jobs/run-now",workspace="eu"} 1)"))
      << text;
  EXPECT_TRUE(has_line(text, "# TYPE brickwork_databricks_request_seconds histogram")) << text;
  EXPECT_TRUE(has_line(
      text, R"(brickwork_databricks_request_seconds_count{endpoint="jobs/run-now",workspace="default"} 1)"))
      << text;
  EXPECT_TRUE(has_line(text, R"(brickwork_workflows_finished_total{state="succeeded",workflow="daily"} 1)"))
      << text;
  EXPECT_TRUE(has_line(text, R"(brickwork_step_seconds_sum{type="run_job",workflow="daily"} 12.5)"))
      << text;
  EXPECT_TRUE(has_line(text, "brickwork_intake_paused 1")) << text;
  EXPECT_TRUE(has_line(text, R"(brickwork_postgres_credential_expiry_seconds{database="postgres"} 1800)"))
      << text;
}

TEST(Metrics, APartitionNoLongerAssignedStopsBeingReported) {
  Metrics metrics;
  metrics.set_consumer_lag({{"t", 0, 1}, {"t", 1, 2}});
  metrics.set_consumer_lag({{"t", 1, 0}});
  const std::string text = metrics.exposition();
  EXPECT_EQ(text.find(R"(partition="0")"), std::string::npos) << text;
  EXPECT_TRUE(has_line(text, R"(brickwork_consumer_lag{partition="1",topic="t"} 0)")) << text;
}

TEST(Metrics, PendingObservationsCountOnlyOnceCommitted) {
  Metrics metrics;
  PendingMetrics pending;
  pending.add([](Metrics& m) { m.count_workflow_finished("w", "failed"); });
  pending.clear();  // the transaction rolled back and is retried
  pending.add([](Metrics& m) { m.count_workflow_finished("w", "succeeded"); });
  pending.commit(&metrics);
  pending.commit(&metrics);  // nothing left to count twice
  const std::string text = metrics.exposition();
  EXPECT_EQ(text.find(R"(state="failed")"), std::string::npos) << text;
  EXPECT_TRUE(has_line(text, R"(brickwork_workflows_finished_total{state="succeeded",workflow="w"} 1)"))
      << text;
}

TEST(Metrics, DatabricksEndpointsLoseTheirIdentifiers) {
  EXPECT_EQ(databricks_endpoint_label("/api/2.2/jobs/run-now"), "jobs/run-now");
  EXPECT_EQ(databricks_endpoint_label("/api/2.2/jobs/runs/get?run_id=7"), "jobs/runs/get");
  EXPECT_EQ(databricks_endpoint_label("/api/2.2/jobs/runs/get-output?run_id=8"),
            "jobs/runs/get-output");
  EXPECT_EQ(databricks_endpoint_label("/api/2.0/sql/statements/01ef-ab12/cancel"),
            "sql/statements/{id}/cancel");
  EXPECT_EQ(databricks_endpoint_label("/api/2.0/sql/statements/"), "sql/statements");
  EXPECT_EQ(databricks_endpoint_label("/api/2.0/fs/files/Volumes/main/raw/in/a.csv?overwrite=true"),
            "fs/files");
  EXPECT_EQ(databricks_endpoint_label("/api/2.1/unity-catalog/shares/acme_usage/permissions"),
            "unity-catalog/shares/{id}/permissions");
  EXPECT_EQ(databricks_endpoint_label("/api/2.1/unity-catalog/recipients/acme"),
            "unity-catalog/recipients/{id}");
  EXPECT_EQ(databricks_endpoint_label("/api/2.0/database/credentials"), "database/credentials");
  EXPECT_EQ(databricks_endpoint_label("/oidc/v1/token"), "oidc/v1/token");
}

TEST(ListenAddress, HostAndPortAreRead) {
  auto v4 = parse_listen_address("127.0.0.1:9464");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 9464);
  auto v6 = parse_listen_address("[::1]:0");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 0);
  auto name = parse_listen_address("localhost:80");
  ASSERT_TRUE(name);
  EXPECT_EQ(name->host, "localhost");
}

TEST(ListenAddress, WhatIsNotHostPortIsRefusedWithTheReason) {
  for (const char* bad : {"9464", ":9464", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:http",
                          "::1:9464", "[::1:9464", "[nope]:1", "host name:1", "127.0.0.1:-1"}) {
    auto parsed = parse_listen_address(bad);
    EXPECT_FALSE(parsed) << bad;
    if (!parsed) {
      EXPECT_EQ(parsed.error().kind, ErrorKind::kInvalidInput) << bad;
      EXPECT_NE(parsed.error().message.find(bad), std::string::npos) << parsed.error().message;
    }
  }
}

}  // namespace
}  // namespace brickwork
