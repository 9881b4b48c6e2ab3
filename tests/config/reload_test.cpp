#include <gtest/gtest.h>

#include "config/config.hpp"

namespace brickwork {
namespace {

Config base_config() {
  Config c;
  c.source_path = "running.yaml";
  c.kafka.properties = {{"security.protocol", "SASL_SSL"}, {"sasl.password", "kafka-pass-1"}};
  c.postgres.url = "postgresql://brickwork:pg-pass-1@db:5432/brickwork";
  c.databricks.host = "https://adb-1.azuredatabricks.net";
  c.databricks.token = "dapi-token-1";
  c.callbacks.secret = "callback-secret-number-1";
  WorkflowDefinition w;
  w.name = "old";
  w.steps.emplace_back();
  w.steps.back().name = "a";
  w.steps.back().type = "run_job";
  c.workflows["old"] = w;
  return c;
}

TEST(Reload, OnlyWorkflowsChangeAndNothingElseIsReported) {
  const Config running = base_config();
  Config fresh = running;
  fresh.source_path = "fresh.yaml";
  fresh.workflows.erase("old");
  WorkflowDefinition w;
  w.name = "new";
  w.steps.emplace_back();
  w.steps.back().name = "b";
  w.steps.back().type = "sleep";
  fresh.workflows["new"] = w;

  ReloadedConfig r = reloaded_config(running, fresh);
  EXPECT_TRUE(r.needs_restart.empty());
  ASSERT_EQ(r.config->workflows.size(), 1u);
  EXPECT_EQ(r.config->workflows.count("new"), 1u);
  EXPECT_EQ(r.config->workflows.at("new").steps.at(0).name, "b");
  EXPECT_EQ(r.config->source_path, "running.yaml");
}

TEST(Reload, EveryOtherChangeIsKeptOutAndNamedByItsKey) {
  const Config running = base_config();
  Config fresh = running;
  fresh.kafka.brokers = "other:9092";
  fresh.kafka.group = "other-group";
  fresh.kafka.topics.commands = "renamed.commands";
  fresh.kafka.topics.events = "renamed.events";
  fresh.kafka.topics.status = "renamed.status";
  fresh.kafka.topics.dead_letter = "renamed.dlq";
  fresh.kafka.properties["sasl.password"] = "kafka-pass-2";  // changed
  fresh.kafka.properties.erase("security.protocol");         // removed
  fresh.kafka.properties["client.rack"] = "rack-2";          // added
  fresh.postgres.url = "postgresql://brickwork:pg-pass-2@db:5432/brickwork";
  fresh.databricks.host = "https://adb-2.azuredatabricks.net";
  fresh.databricks.token = "dapi-token-2";
  fresh.databricks.client_id = "client-2";
  fresh.databricks.client_secret = "client-secret-2";
  fresh.databricks.auth_type = "azure-msi";
  fresh.databricks.profile = "prod";
  fresh.databricks.request_timeout = Duration(1000);
  fresh.databricks.retry_budget = Duration(2000);
  fresh.callbacks.secret = "callback-secret-number-2";
  fresh.callbacks.previous_secrets = {"callback-secret-number-1"};
  fresh.retention.succeeded = Duration(3'600'000);
  fresh.daemon.batch_max_messages = 7;
  fresh.daemon.batch_max_wait = Duration(7);
  fresh.daemon.effect_workers = 7;
  fresh.daemon.lease = Duration(7000);
  fresh.daemon.shutdown_grace = Duration(7000);
  fresh.daemon.outbox_stall = Duration(7000);
  fresh.daemon.metrics_listen = "127.0.0.1:9464";
  fresh.daemon.log_format = "text";
  fresh.daemon.log_level = "debug";

  ReloadedConfig r = reloaded_config(running, fresh);
  const std::vector<std::string> expected = {"kafka.brokers",
                                             "kafka.group",
                                             "kafka.topics.commands",
                                             "kafka.topics.events",
                                             "kafka.topics.status",
                                             "kafka.topics.dead_letter",
                                             "kafka.properties.client.rack",
                                             "kafka.properties.sasl.password",
                                             "kafka.properties.security.protocol",
                                             "postgres.url",
                                             "databricks.host",
                                             "databricks.token",
                                             "databricks.client_id",
                                             "databricks.client_secret",
                                             "databricks.auth_type",
                                             "databricks.profile",
                                             "databricks.request_timeout",
                                             "databricks.retry_budget",
                                             "callbacks.secret",
                                             "callbacks.previous_secrets",
                                             "retention",
                                             "daemon.batch_max_messages",
                                             "daemon.batch_max_wait",
                                             "daemon.effect_workers",
                                             "daemon.lease",
                                             "daemon.shutdown_grace",
                                             "daemon.outbox_stall",
                                             "daemon.metrics_listen",
                                             "daemon.log_format",
                                             "daemon.log_level"};
  EXPECT_EQ(r.needs_restart, expected);

  // The running values stay, every one of them.
  const Config& c = *r.config;
  EXPECT_EQ(c.kafka.brokers, running.kafka.brokers);
  EXPECT_EQ(c.kafka.group, running.kafka.group);
  EXPECT_EQ(c.kafka.topics.commands, running.kafka.topics.commands);
  EXPECT_EQ(c.kafka.topics.events, running.kafka.topics.events);
  EXPECT_EQ(c.kafka.topics.status, running.kafka.topics.status);
  EXPECT_EQ(c.kafka.topics.dead_letter, running.kafka.topics.dead_letter);
  EXPECT_EQ(c.kafka.properties, running.kafka.properties);
  EXPECT_EQ(c.postgres.url, running.postgres.url);
  EXPECT_EQ(c.databricks.host, running.databricks.host);
  EXPECT_EQ(c.databricks.token, running.databricks.token);
  EXPECT_EQ(c.databricks.client_id, running.databricks.client_id);
  EXPECT_EQ(c.databricks.client_secret, running.databricks.client_secret);
  EXPECT_EQ(c.databricks.request_timeout, running.databricks.request_timeout);
  EXPECT_EQ(c.databricks.retry_budget, running.databricks.retry_budget);
  EXPECT_EQ(c.callbacks.secret, running.callbacks.secret);
  EXPECT_EQ(c.daemon.batch_max_messages, running.daemon.batch_max_messages);
  EXPECT_EQ(c.daemon.batch_max_wait, running.daemon.batch_max_wait);
  EXPECT_EQ(c.daemon.effect_workers, running.daemon.effect_workers);
  EXPECT_EQ(c.daemon.lease, running.daemon.lease);
  EXPECT_EQ(c.daemon.shutdown_grace, running.daemon.shutdown_grace);
  EXPECT_EQ(c.daemon.outbox_stall, running.daemon.outbox_stall);
  EXPECT_EQ(c.daemon.metrics_listen, running.daemon.metrics_listen);
  EXPECT_EQ(c.daemon.log_format, running.daemon.log_format);
  EXPECT_EQ(c.daemon.log_level, running.daemon.log_level);
  EXPECT_EQ(c.workflows.count("old"), 1u);
}

TEST(Reload, TheListNeverHoldsAValue) {
  const Config running = base_config();
  Config fresh = running;
  fresh.kafka.properties["sasl.password"] = "kafka-pass-2";
  fresh.postgres.url = "postgresql://brickwork:pg-pass-2@db:5432/brickwork";
  fresh.databricks.token = "dapi-token-2";
  fresh.callbacks.secret = "callback-secret-number-2";
  ReloadedConfig r = reloaded_config(running, fresh);
  ASSERT_EQ(r.needs_restart.size(), 4u);
  for (const auto& key : r.needs_restart) {
    for (const char* secret : {"pass-1", "pass-2", "token-1", "token-2", "number-1", "number-2"}) {
      EXPECT_EQ(key.find(secret), std::string::npos) << key;
    }
  }
}

}  // namespace
}  // namespace brickwork
