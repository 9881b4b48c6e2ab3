#pragma once
// What the operator's endpoint answers (contract 10): /metrics from the
// daemon's Metrics, /healthz from its loops' Liveness, /readyz from a
// periodic check that Postgres answers and the consumer has joined its group.
// The same check refreshes the gauges read from outside the loops: outbox
// backlog, effects due, consumer lag and credential expiry.
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "daemon/core/password_source.hpp"
#include "daemon/runtime/ops_server.hpp"
#include "daemon/runtime/runtime_context.hpp"

namespace brickwork {

class KafkaConsumer;

class OpsMonitor {
 public:
  explicit OpsMonitor(RuntimeContext& context) : context_(context) {}
  ~OpsMonitor() { stop(); }

  // Not ready, for `reason` (starting, stopping), until start() checks.
  void set_not_ready(std::string reason);
  // A Lakebase credential to report as brickwork_postgres_credential_expiry_seconds
  // {database}. Thread-safe.
  void add_credential(std::string database, std::shared_ptr<PasswordSource> source);

  // Checks every `period` on its own thread with its own Postgres
  // connection, and reads the queue gauges every kGaugeChecks checks.
  // `consumer` must outlive stop().
  void start(const KafkaConsumer& consumer, Duration period);
  void stop();
  // One check now (the thread's body; exposed for tests): Postgres answers
  // (with `depths`, by reading the gauges), the group is joined.
  void check_once(QueueGauges& queues, bool depths = true);
  // The queue gauges count rows (QueueGauges::queue_depths): read each
  // second, that count took 4% of a core on a busy 2-core machine right
  // after a burst, when the queue tables hold many rows not yet vacuumed.
  static constexpr int kGaugeChecks = 10;

  // The endpoint's answer to one request.
  OpsResponse handle(std::string_view method, std::string_view path);

 private:
  RuntimeContext& context_;
  const KafkaConsumer* consumer_ = nullptr;
  std::mutex mutex_;
  std::string not_ready_ = "starting";  // "" when ready; guarded by mutex_
  std::vector<std::pair<std::string, std::shared_ptr<PasswordSource>>> credentials_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace brickwork
