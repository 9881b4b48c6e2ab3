#pragma once
// The running daemon: one consumer-group member feeding inputs to the engine
// in batches, effect workers, and the outbox publisher, all around Postgres.
#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "daemon/databricks/api.hpp"
#include "daemon/databricks/workspaces.hpp"
#include "daemon/runtime/runtime_context.hpp"

namespace brickwork {

class KafkaConsumer;
class KafkaProducer;
class StepRegistry;

struct DaemonOptions {
  std::string instance_id;           // names this member in leases and Kafka client ids
  bool notify_systemd = false;       // sd_notify READY/WATCHDOG/STOPPING
  std::function<void()> on_ready;    // called once intake has started
  // The step types; null: StepRegistry::builtin(). Must outlive the daemon.
  const StepRegistry* steps = nullptr;
  // Tests: the Kafka clients once created (to inject faults through librdkafka).
  std::function<void(KafkaConsumer&, KafkaProducer&)> on_kafka_clients;
  // How often readiness (Postgres, group membership) and the gauges read
  // from Postgres and librdkafka are refreshed.
  Duration monitor_period{std::chrono::seconds(1)};
  // Tests: when set, how long any loop may spend in one iteration before it
  // counts as stuck (otherwise each loop's own limit).
  Duration stall_limit{0};
  // Tests: the time retention measures a finished workflow's age against
  // (default: the system clock).
  std::function<TimePoint()> retention_clock;
};

class Daemon {
 public:
  // `workspaces`: a client for each workspace steps may name (make_workspaces).
  Daemon(ConfigPtr config, Workspaces workspaces, DaemonOptions options);
  // Only the default workspace (may be null: no Databricks).
  Daemon(ConfigPtr config, std::unique_ptr<DatabricksApi> databricks, DaemonOptions options);
  ~Daemon();

  // Runs until `stop` becomes true, then shuts down within daemon.shutdown_grace:
  // stops intake, finishes or persists the work in hand, flushes the outbox and
  // leaves the consumer group. A permanent start-up error is returned, and so
  // is a fatal Kafka client error (code kafka_fatal), after the work in hand
  // is persisted: the process must exit non-zero so systemd restarts it.
  Status run(const std::atomic<bool>& stop);
  // New workflow definitions for workflows started from now on (SIGHUP).
  // Only `workflows` is taken from `config`; any other setting that differs
  // from the running one is logged (by key, never by value) as needing a
  // restart and is not applied.
  void reload(ConfigPtr config);

  RuntimeContext& context() { return *context_; }
  // The port of the daemon.metrics_listen endpoint once it listens, else 0.
  uint16_t ops_port() const { return ops_port_; }

 private:
  // Before the context: the context's Lakebase password source renews its
  // credentials through a workspace's client on a thread of its own, so the
  // clients must outlive it (members are destroyed in reverse order).
  Workspaces workspaces_;
  std::unique_ptr<RuntimeContext> context_;
  DaemonOptions options_;
  std::atomic<uint16_t> ops_port_{0};
};

}  // namespace brickwork
