#pragma once
// Kafka adapters over librdkafka: a consumer-group member that hands out
// batches and commits only what the caller says is durable, an idempotent
// producer that reports per-message delivery, and a tail of a topic for the CLI.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "daemon/core/metrics.hpp"
#include "daemon/core/result.hpp"
#include "daemon/core/time.hpp"

namespace brickwork {

// Kafka record headers, name and value, in order (a name may repeat).
using KafkaHeaders = std::vector<std::pair<std::string, std::string>>;

struct KafkaMessage {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::optional<std::string> key;
  std::string payload;
  KafkaHeaders headers = {};

  // The value of the last header named `name`, if any.
  std::optional<std::string> header(std::string_view name) const {
    for (auto it = headers.rbegin(); it != headers.rend(); ++it) {
      if (it->first == name) return it->second;
    }
    return std::nullopt;
  }
};

struct ProducerRecord {
  std::string topic;
  std::string key;
  std::string payload;
  KafkaHeaders headers = {};
};

class KafkaConsumer {
 public:
  virtual ~KafkaConsumer() = default;

  // Joins `config.group` and subscribes to `topics`. Only what the caller
  // commits after its own durable write is committed.
  static Result<std::unique_ptr<KafkaConsumer>> create(const KafkaConfig& config,
                                                       const std::vector<std::string>& topics,
                                                       const std::string& client_id);

  // Up to `max_messages`, waiting at most `wait` for the first and then taking
  // what is already fetched; the batch stops growing once its payloads and
  // keys hold `max_bytes` (a message is never split, so it may pass the bound
  // by one message). Serves rebalances and heartbeats; errors that are not
  // fatal are logged and skipped.
  virtual std::vector<KafkaMessage> poll_batch(int32_t max_messages, Duration wait,
                                               size_t max_bytes = SIZE_MAX) = 0;
  // Commits offset+1 of the highest message per partition in `messages`:
  // within a second, and at the latest when the partition is revoked or the
  // consumer closes.
  virtual void commit(const std::vector<KafkaMessage>& messages) = 0;
  // Stops (or restarts) fetching on every assigned partition, staying in the group.
  virtual void pause() = 0;
  virtual void resume() = 0;
  virtual bool paused() const = 0;
  // Number of partitions currently assigned to this member.
  virtual int32_t assigned_partitions() = 0;
  // Leaves the group cleanly. Idempotent.
  virtual void close() = 0;
  // Whether this member has joined its group (received an assignment, which
  // may be empty when the group has more members than partitions). Any thread.
  virtual bool joined() const { return true; }
  // The lag of each assigned partition, from librdkafka's latest statistics
  // (statistics.interval.ms); empty before the first. Any thread.
  virtual std::vector<PartitionLag> lag() const { return {}; }
  // A fatal client error occurred: the consumer cannot be used again and the
  // process should restart (systemd does).
  virtual std::optional<std::string> fatal_error() const = 0;
  // Raises a fatal error through librdkafka's own test hook.
  virtual void inject_fatal_error_for_testing() = 0;
};

// A record the broker (or librdkafka) refused for good: too large, invalid,
// a topic it may not write or that does not exist. Sending it again cannot
// succeed.
struct RecordRefusal {
  size_t index = 0;  // into the records given
  Error error;       // kind kPermanent
};

// What became of each record of one produce_batch call: acknowledged by the
// broker (neither list names it), refused for good, or unconfirmed.
struct BatchDelivery {
  std::vector<RecordRefusal> refused;
  // Neither acknowledged nor refused in time (or a transient error): taken
  // out of the producer's queue, to be sent again later. A record that could
  // not be queued holds back the later records of its topic and key here, so
  // their order is kept.
  std::vector<size_t> unconfirmed;
  std::optional<Error> unconfirmed_reason;  // why, when `unconfirmed` is not empty
};

class KafkaProducer {
 public:
  virtual ~KafkaProducer() = default;

  // Idempotent (enable.idempotence) when `idempotent`; acks=all either way.
  // Keys are partitioned with murmur2_random, as the Java producer does.
  static Result<std::unique_ptr<KafkaProducer>> create(const KafkaConfig& config, bool idempotent,
                                                       const std::string& client_id);

  // Produces every record and waits until each is acknowledged or refused,
  // at most `timeout`. A record that waits longer (its partition has no
  // leader, its topic is still unknown) does not fail the others: it is
  // reported unconfirmed and purged from the queue, so sending it again
  // later does not double it. A topic the broker answers with an
  // authorization error in its metadata is refused for good (librdkafka
  // itself would hold its records until they time out).
  virtual BatchDelivery produce_batch(const std::vector<ProducerRecord>& records,
                                      Duration timeout) = 0;
  // produce_batch where a refused or unconfirmed record is an error too.
  Status produce_and_wait(const std::vector<ProducerRecord>& records, Duration timeout) {
    BatchDelivery delivery = produce_batch(records, timeout);
    if (!delivery.unconfirmed.empty()) return *delivery.unconfirmed_reason;
    if (!delivery.refused.empty()) return delivery.refused.front().error;
    return ok_status();
  }
  // Queues one record without waiting (delivery failures are logged).
  virtual Status produce_async(const ProducerRecord& record) = 0;
  virtual Status flush(Duration timeout) = 0;
  // A fatal error of the (idempotent) producer: it cannot be used again and
  // the process should restart.
  virtual std::optional<std::string> fatal_error() const = 0;
  // Raises a fatal error through librdkafka's own test hook
  // (rd_kafka_test_fatal_error): the real path a fenced idempotent producer takes.
  virtual void inject_fatal_error_for_testing() = 0;
};

// Follows a topic from its end at the moment it is opened, outside any
// consumer group: what a CLI needs to see the answer to a command it is
// about to send (open first, then send, then poll).
class TopicTail {
 public:
  virtual ~TopicTail() = default;
  static Result<std::unique_ptr<TopicTail>> open(const KafkaConfig& config,
                                                 const std::string& topic, Duration timeout);
  // The messages that arrived since, waiting at most `wait` for the first.
  virtual std::vector<KafkaMessage> poll(Duration wait) = 0;
};

}  // namespace brickwork
