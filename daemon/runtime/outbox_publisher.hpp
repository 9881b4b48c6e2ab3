#pragma once
// Publishes the outbox (status events, dead letters, emitted records) to
// Kafka in id order, deleting each row once the broker acknowledged or
// refused it. One publisher at a time across all daemons (the store's
// advisory lock), so order per topic and key holds. A record the broker
// does not answer within `daemon.outbox_stall` waits aside, with the later
// records of its topic and key, while the others go on. A crash between the
// ack and the delete republishes a few events with the same seq: consumers
// drop them by seq (at least once, gap-free).
#include <atomic>
#include <map>
#include <optional>
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

  // One round: publishes up to `limit` rows (fewer when their payloads
  // reach the store's bound on a round's bytes), waiting for the broker at most
  // `wait` (default: daemon.outbox_stall). Returns how many rows it removed
  // (acknowledged or refused). Only the publisher's thread, or a test
  // without it.
  Result<int32_t> drain_once(OutboxDrain& outbox, int32_t limit,
                             std::optional<Duration> wait = {});

  int64_t published() const { return published_; }
  // Rows the broker refused for good (each replaced by a dead letter).
  int64_t refused() const { return refused_; }
  // Topic and key pairs whose records wait aside now.
  size_t streams_waiting() const { return waiting_.size(); }

 private:
  // A stream whose record the broker did not answer: skipped until `until`,
  // then tried again; `backoff` doubles each time it stalls again.
  struct Waiting {
    TimePoint until{};
    Duration backoff{};
  };

  void loop();
  // The dead letter and, for an emitted record, the status event that
  // report a record the broker refused for good.
  void report_refusal(const OutboxMessage& row, const Error& error, OutboxTx& tx,
                      std::vector<OutboxMessage>& out) const;
  void note_stalls(const std::vector<OutboxStream>& stalled, TimePoint round_start);

  RuntimeContext& context_;
  KafkaProducer& producer_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> published_{0};
  std::atomic<int64_t> refused_{0};
  Duration final_grace_{5000};
  std::map<OutboxStream, Waiting> waiting_;
  std::thread thread_;
};

}  // namespace brickwork
