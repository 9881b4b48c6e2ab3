#pragma once
// What an operator's tools ask of Kafka besides producing and consuming:
// whether librdkafka accepts the configured properties, whether the cluster
// answers (and which topics it has), and creating the topics brickwork needs.
// Used by `brickwork check` and `brickwork migrate --topics` (contract 8).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "daemon/core/result.hpp"
#include "daemon/core/time.hpp"

namespace brickwork {

// Builds (and discards) a librdkafka configuration from `config`: a property
// name librdkafka does not know, or a value it refuses, is a kPermanent
// "kafka_config" Error naming the property. Touches no network.
Status check_kafka_properties(const KafkaConfig& config);

struct KafkaClusterView {
  int32_t brokers = 0;
  std::map<std::string, int32_t> partitions_by_topic;  // every topic the cluster lists
};

// One metadata request for every topic, waiting at most `timeout`. A broker
// that cannot be reached (or refuses the credentials) is a transient Error
// whose message says what the client last saw (connection refused, SASL
// authentication failed, ...).
Result<KafkaClusterView> describe_kafka_cluster(const KafkaConfig& config, Duration timeout);

struct TopicCreation {
  enum class Outcome { kCreated, kExisted, kFailed };
  std::string topic;
  Outcome outcome = Outcome::kFailed;
  int32_t partitions = 0;  // created with, or found with
  std::string error;       // kFailed: the broker's reason
};

// Creates those of `topics` the cluster does not have yet (CreateTopics,
// `partitions` each, the broker's default replication factor); topics that
// exist are left as they are and reported kExisted. A cluster that cannot be
// reached is an Error; a topic the broker refuses to create is a kFailed
// entry.
Result<std::vector<TopicCreation>> create_missing_topics(const KafkaConfig& config,
                                                         const std::vector<std::string>& topics,
                                                         int32_t partitions, Duration timeout);

}  // namespace brickwork
