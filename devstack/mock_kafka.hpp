#pragma once
// librdkafka's in-process mock cluster, and a reader of whole topics: Kafka on
// this machine alone, for tests and `brickwork demo`.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "daemon/core/result.hpp"
#include "daemon/core/time.hpp"
#include "daemon/kafka/kafka.hpp"

namespace brickwork {

// A real Kafka-protocol broker set on loopback, with fault injection.
class MockKafkaCluster {
 public:
  virtual ~MockKafkaCluster() = default;
  static Result<std::unique_ptr<MockKafkaCluster>> create(int32_t brokers);

  virtual std::string bootstrap_servers() const = 0;
  virtual Status create_topic(const std::string& topic, int32_t partitions) = 0;
  virtual Status set_broker_down(int32_t broker_id) = 0;  // broker ids are 1..brokers
  virtual Status set_broker_up(int32_t broker_id) = 0;
  virtual int32_t broker_count() const = 0;
  // The next `count` requests of `api_key` (rd_kafka ApiKey) fail with `error`
  // (rd_kafka_resp_err_t).
  virtual void push_request_errors(int16_t api_key, int32_t count, int32_t error) = 0;
  // Every metadata answer about `topic` carries `error` (rd_kafka_resp_err_t;
  // 0 clears it): e.g. TOPIC_AUTHORIZATION_FAILED, a topic we may not write.
  virtual void set_topic_error(const std::string& topic, int32_t error) = 0;
  // Makes `broker_id` lead the partition; -1 leaves it without a leader, so
  // records for it wait.
  virtual Status set_partition_leader(const std::string& topic, int32_t partition,
                                      int32_t broker_id) = 0;
};

// Reads every message currently in `topic` from the beginning (a test and
// demo helper; uses its own consumer outside any group).
Result<std::vector<KafkaMessage>> read_topic(const std::string& brokers, const std::string& topic,
                                             Duration timeout);

}  // namespace brickwork
