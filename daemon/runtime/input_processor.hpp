#pragma once
// Turns a batch of Kafka messages (commands and completion events) into
// workflow changes, all in one Postgres transaction together with the
// partitions' next offsets, so a message read twice changes nothing.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "daemon/kafka/kafka.hpp"
#include "daemon/runtime/runtime_context.hpp"
#include "daemon/store/store.hpp"

namespace brickwork {

struct BatchReport {
  int32_t applied = 0;        // messages that reached the engine
  int32_t skipped = 0;        // already applied before (offset below the stored one)
  int32_t dead_lettered = 0;  // refused with a reason on the dead-letter topic
};

class InputProcessor {
 public:
  explicit InputProcessor(RuntimeContext& context) : context_(context) {}

  // Applies the batch in one transaction. A transient error (Postgres gone)
  // leaves everything as it was: the caller retries the same batch later.
  // Not thread-safe: one intake loop calls it.
  Result<BatchReport> apply_batch(WorkflowWriter& writer, const std::vector<KafkaMessage>& batch,
                                  TimePoint now);
  // Parks a message that cannot be applied at all (it failed alone with a
  // non-transient error) on the dead-letter topic and moves past it.
  Status dead_letter_unprocessable(WorkflowWriter& writer, const KafkaMessage& message,
                                   const Error& error, TimePoint now);

 private:
  Result<BatchReport> apply_batch(WorkflowWriter& writer, const std::vector<KafkaMessage>& batch,
                                  TimePoint now, bool trust_written_offsets);

  RuntimeContext& context_;
  // The next offset of each partition as this member last committed it. A
  // batch of partitions all known here skips the locked read of their
  // offsets and advances them on condition that they still hold these
  // values; another member that moved one (a rebalance) makes that batch
  // fail with 40001, and it is applied again with the read.
  std::map<std::pair<std::string, int32_t>, int64_t> written_offsets_;
};

}  // namespace brickwork
