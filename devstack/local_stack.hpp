#pragma once
// Everything brickwork talks to, on this machine alone: a throwaway Postgres
// cluster, librdkafka's mock Kafka cluster and the Databricks simulator (whose
// jobs publish completion events to Kafka as a real job's last task would).
// Used by `brickwork demo` and the end-to-end tests.
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "daemon/kafka/kafka.hpp"
#include "devstack/mock_kafka.hpp"
#include "devstack/simulator.hpp"
#include "devstack/temp_postgres.hpp"

namespace brickwork {

struct LocalStackOptions {
  int32_t kafka_brokers = 3;
  int32_t partitions = 4;
  // Partitions of the commands and events topics (the daemon's inputs);
  // 0: `partitions`.
  int32_t input_partitions = 0;
  SimulatorOptions simulator;
  KafkaTopics topics;
  // Postgres server settings over TempPostgres's defaults ("name=value").
  std::vector<std::string> postgres_settings;
};

class LocalStack {
 public:
  static Result<std::unique_ptr<LocalStack>> start(LocalStackOptions options);
  ~LocalStack();

  // The configuration (YAML) pointing at this stack, with `workflows_yaml`
  // (a `workflows:` mapping body, indented by two spaces) appended.
  std::string config_yaml(const std::string& workflows_yaml, const std::string& group = "brickwork") const;

  TempPostgres& postgres() { return *postgres_; }
  MockKafkaCluster& kafka() { return *kafka_; }
  DatabricksSimulator& simulator() { return *simulator_; }
  const KafkaTopics& topics() const { return options_.topics; }
  static constexpr const char* kCallbackSecret = "local-stack-callback-secret-0123456789";
  static constexpr const char* kDatabricksToken = "local-simulator-token";

 private:
  LocalStackOptions options_;
  std::unique_ptr<TempPostgres> postgres_;
  std::unique_ptr<MockKafkaCluster> kafka_;
  std::unique_ptr<KafkaProducer> events_producer_;
  std::unique_ptr<DatabricksSimulator> simulator_;
};

// With BRICKWORK_CONTRACT_CAPTURE=FILE set, appends `lines` (JSON lines: the
// configurations and messages a run saw) to FILE, one locked append however
// many processes write, for scripts/check-contract.sh to check against
// schemas/. Without it, does nothing. False when FILE cannot be written.
bool append_contract_capture(const std::string& lines);

}  // namespace brickwork
