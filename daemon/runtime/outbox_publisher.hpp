#pragma once
// Publishes the outbox (status events and dead letters) to Kafka in id order,
// deleting rows only after the broker acknowledged them. One publisher at a
// time across all daemons (the store's advisory lock), so per-workflow order
// holds. A crash between the ack and the delete republishes a few events with
// the same seq: consumers drop them by seq (at least once, gap-free).
#include <atomic>
#include <string>
#include <thread>

#include "daemon/kafka/kafka.hpp"
#include "daemon/runtime/runtime_context.hpp"
#include "daemon/store/store.hpp"

namespace brickwork {

class OutboxPublisher {
 public:
  OutboxPublisher(RuntimeContext& context, KafkaProducer& producer)
      : context_(context), producer_(producer) {}
  ~OutboxPublisher() { stop(); }

  void start();
  // Publishes what is left (bounded by `grace`), then stops.
  void stop(Duration grace = Duration(5000));

  // One round: publishes up to `limit` rows. Returns how many.
  Result<int32_t> drain_once(Store& store, int32_t limit);

  int64_t published() const { return published_; }
  // Rows the broker refused for good (each replaced by a dead letter).
  int64_t refused() const { return refused_; }

 private:
  void loop();

  RuntimeContext& context_;
  KafkaProducer& producer_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> published_{0};
  std::atomic<int64_t> refused_{0};
  Duration final_grace_{5000};
  std::thread thread_;
};

}  // namespace brickwork
