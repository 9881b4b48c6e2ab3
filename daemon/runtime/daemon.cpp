#include "daemon/runtime/daemon.hpp"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cstdio>
#include <future>
#include <optional>
#include <random>
#include <thread>

#include "daemon/kafka/kafka.hpp"
#include "daemon/runtime/effect_runner.hpp"
#include "daemon/runtime/input_processor.hpp"
#include "daemon/runtime/ops_monitor.hpp"
#include "daemon/runtime/ops_server.hpp"
#include "daemon/runtime/outbox_publisher.hpp"
#include "daemon/databricks/http.hpp"
#include "daemon/runtime/retention_task.hpp"
#include "daemon/databricks/lakebase.hpp"
#include "daemon/store/databases.hpp"
#include "daemon/store/store.hpp"

namespace brickwork {
namespace {

// Host and pid say where to look; the random part keeps two daemons apart
// when those repeat (containers: every daemon is pid 1, often on one hostname),
// because effect leases are owned by this id.
std::string default_instance_id() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  std::random_device random;
  char suffix[9];
  std::snprintf(suffix, sizeof suffix, "%08x", static_cast<unsigned>(random()));
  return std::string(host) + ":" + std::to_string(getpid()) + ":" + suffix;
}

// Waits on a transient condition with capped exponential backoff, watching `stop`.
class Backoff {
 public:
  void wait(const std::atomic<bool>& stop) {
    const auto until = std::chrono::steady_clock::now() + delay_;
    while (!stop && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    delay_ = std::min(delay_ * 2, Duration(5000));
  }
  void reset() { delay_ = Duration(100); }
  Duration current() const { return delay_; }

 private:
  Duration delay_{100};
};

// The first step of `fresh` that names a workspace `running` does not have.
std::optional<std::string> unknown_workspace(const Config& running, const Config& fresh) {
  for (const auto& [name, workflow] : fresh.workflows) {
    for (const auto* list : {&workflow.steps, &workflow.on_failure}) {
      for (const auto& step : *list) {
        if (!step.workspace.empty() && find_workspace(running, step.workspace) == nullptr) {
          return "workflows." + name + ", step '" + step.name + "' names workspace '" +
                 step.workspace + "', which the running daemon does not have";
        }
      }
    }
  }
  return std::nullopt;
}

}  // namespace

Daemon::Daemon(ConfigPtr config, Workspaces workspaces, DaemonOptions options)
    : workspaces_(std::move(workspaces)),
      context_(std::make_unique<RuntimeContext>(
          std::move(config), options.steps != nullptr ? *options.steps : StepRegistry::builtin())),
      options_(std::move(options)) {
  if (options_.instance_id.empty()) options_.instance_id = default_instance_id();
}

Daemon::Daemon(ConfigPtr config, std::unique_ptr<DatabricksApi> databricks, DaemonOptions options)
    : Daemon(std::move(config), Workspaces(std::move(databricks)), std::move(options)) {}

Daemon::~Daemon() = default;

void Daemon::reload(ConfigPtr config) {
  // A step naming a workspace the running daemon has no client for would
  // fail when it runs: refused now, as load refuses an unknown one.
  if (auto problem = unknown_workspace(*context_->config(), *config)) {
    spdlog::error("reload refused, keeping the running configuration: {} (workspaces take effect "
                  "after a restart)",
                  *problem);
    return;
  }
  // Only the workflow definitions change: the consumer, producer, store and
  // token minter were built from the running configuration and keep using it.
  ReloadedConfig reloaded = reloaded_config(*context_->config(), *config);
  if (!reloaded.needs_restart.empty()) {
    std::string keys;
    for (const auto& key : reloaded.needs_restart) keys += (keys.empty() ? "" : ", ") + key;
    spdlog::warn("{} changed: restart the daemon to apply", keys);
  }
  spdlog::info("reloaded {} workflow definitions", reloaded.config->workflows.size());
  context_->replace_config(std::move(reloaded.config));
}

Status Daemon::run(const std::atomic<bool>& stop) {
  const ConfigPtr config = context_->config();
  const std::string& id = options_.instance_id;
  if (options_.stall_limit.count() > 0) context_->liveness().override_limit(options_.stall_limit);
  // The operator's endpoint comes first, so a daemon waiting for Postgres
  // already answers /healthz (alive) and /readyz (not ready, and why).
  OpsMonitor monitor(*context_);
  monitor.set_not_ready("starting: waiting for postgres");
  std::unique_ptr<OpsServer> ops_server;
  if (!config->daemon.metrics_listen.empty()) {
    auto address = parse_listen_address(config->daemon.metrics_listen);
    if (!address) return Error{ErrorKind::kInvalidInput, "config", address.error().message};
    auto server = OpsServer::start(*address, [&monitor](std::string_view method,
                                                        std::string_view path) {
      return monitor.handle(method, path);
    });
    if (!server) return server.error();
    ops_server = std::move(*server);
    ops_port_ = ops_server->port();
    spdlog::info("serving /metrics, /healthz and /readyz on {}:{}", address->host,
                 ops_server->port());
  }
  workspaces_.set_metrics(&context_->metrics());
  // Lakebase: every connection's password is a database credential.
  if (config->postgres.lakebase) {
    DatabricksApi* asking = workspaces_.find(config->postgres.lakebase->workspace);
    if (asking == nullptr) {
      return Error{ErrorKind::kInvalidInput, "config",
                   "postgres.lakebase needs Databricks credentials (workspace " +
                       workspace_label(config->postgres.lakebase->workspace) + ")"};
    }
    context_->set_store_password(
        make_lakebase_credentials(*asking, *config->postgres.lakebase, "postgres"));
    monitor.add_credential("postgres", context_->store_password());
  }
  auto store = context_->open_store();

  // Postgres may come up after us (compose, systemd ordering): wait for it.
  Backoff backoff;
  for (;;) {
    Status migrated = store->migrate();
    if (migrated) break;
    if (!migrated.error().transient()) return migrated;
    spdlog::warn("postgres not reachable ({}); again in {}", migrated.error().message,
                 format_duration(backoff.current()));
    backoff.wait(stop);
    if (stop) return ok_status();
  }
  backoff.reset();
  monitor.set_not_ready("starting: joining the consumer group");

  // Beside the group join, which takes far longer.
  std::future<void> tls_loaded = std::async(std::launch::async, http::load_tls_trust_store);
  auto producer = KafkaProducer::create(config->kafka, true, "brickwork-" + id);
  if (!producer) return producer.error();
  auto consumer = KafkaConsumer::create(
      config->kafka, {config->kafka.topics.commands, config->kafka.topics.events},
      "brickwork-" + id);
  if (!consumer) return consumer.error();
  // The group join (seconds: the coordinator's rebalance delay) runs from
  // here, beside the start of everything below.
  spdlog::info("kafka: joining group {} for {} and {}", config->kafka.group,
               config->kafka.topics.commands, config->kafka.topics.events);

  if (options_.on_kafka_clients) options_.on_kafka_clients(**consumer, **producer);
  OutboxPublisher publisher(*context_, **producer);
  // Everything step types may use, built once here.
  auto databases = NamedDatabases::create(
      config->databases, 4,
      [this, &monitor](const std::string& name,
                       const DatabaseConfig& db) -> std::shared_ptr<PasswordSource> {
        DatabricksApi* asking = db.lakebase ? workspaces_.find(db.lakebase->workspace) : nullptr;
        if (asking == nullptr) return nullptr;
        auto credentials = make_lakebase_credentials(*asking, *db.lakebase, "databases." + name);
        monitor.add_credential(name, credentials);
        return credentials;
      });
  http::Client web;  // plain HTTPS for step types that call other services
  EffectRunner effects(
      *context_,
      StepServices{workspaces_.find(""), databases.get(), config->files.allowed_dirs, &web,
                   &workspaces_},
      id);
  InputProcessor inputs(*context_);
  RetentionTask retention(*context_, options_.retention_clock);
  publisher.start();
  retention.start();
  // Each workspace's own slots (its max_in_flight and max_transfers).
  EffectRunner::SlotsByWorkspace slots{
      {"", EffectRunner::Slots{config->databricks.max_in_flight, config->databricks.max_transfers}}};
  for (const auto& [name, workspace] : config->workspaces) {
    slots[name] = EffectRunner::Slots{workspace.max_in_flight, workspace.max_transfers};
  }
  effects.start(std::move(slots));
  monitor.start(**consumer, options_.monitor_period);
  Liveness::Loop& intake = context_->liveness().add("intake", kLoopStallLimit);

  if (options_.notify_systemd) sd_notify(0, "READY=1\nSTATUS=consuming");
  if (options_.on_ready) options_.on_ready();
  spdlog::info("brickwork {} started as {}: group {}, topics {} and {}", BRICKWORK_VERSION, id,
               config->kafka.group, config->kafka.topics.commands, config->kafka.topics.events);

  uint64_t watchdog_usec = 0;
  const bool watchdog = options_.notify_systemd && sd_watchdog_enabled(0, &watchdog_usec) > 0;
  auto last_watchdog = std::chrono::steady_clock::now();

  std::vector<KafkaMessage> pending;  // read but not yet durable
  std::optional<Error> fatal;
  std::string stuck;  // the loop for which the watchdog is not fed, while it is not
  Metrics& metrics = context_->metrics();
  metrics.set_intake_paused(false);
  while (!stop) {
    intake.beat();
    // A fatal client error does not heal: stop cleanly and let systemd restart us.
    if (auto e = (*consumer)->fatal_error()) {
      fatal = Error{ErrorKind::kInternal, "kafka_fatal", "Kafka consumer: " + *e};
    } else if (auto p = (*producer)->fatal_error()) {
      fatal = Error{ErrorKind::kInternal, "kafka_fatal", "Kafka producer: " + *p};
    }
    if (fatal) {
      spdlog::critical("{}: shutting down to be restarted", fatal->message);
      break;
    }
    if (watchdog && std::chrono::steady_clock::now() - last_watchdog >
                        std::chrono::microseconds(watchdog_usec / 2)) {
      // Fed only while every loop is alive: a stuck one gets us restarted.
      const Liveness::Verdict verdict = context_->liveness().check();
      if (verdict.alive) {
        sd_notify(0, "WATCHDOG=1");
        last_watchdog = std::chrono::steady_clock::now();
        if (!stuck.empty()) spdlog::info("every loop is alive again: feeding the watchdog");
        stuck.clear();
      } else if (verdict.loop != stuck) {  // once per stuck loop, not per check
        spdlog::error("{}: no longer feeding the systemd watchdog", verdict.reason);
        stuck = verdict.loop;
      }
    }
    const ConfigPtr current = context_->config();
    if (pending.empty()) {
      pending = (*consumer)->poll_batch(current->daemon.batch_max_messages,
                                        current->daemon.batch_max_wait,
                                        static_cast<size_t>(current->daemon.batch_max_bytes));
      if (pending.empty()) continue;
    }
    auto report = inputs.apply_batch(*store, pending, now_ms());
    if (report) {
      (*consumer)->commit(pending);
      pending.clear();
      if ((*consumer)->paused()) {
        spdlog::info("postgres is back: resuming intake");
        (*consumer)->resume();
        metrics.set_intake_paused(false);
      }
      backoff.reset();
      continue;
    }
    if (report.error().transient()) {
      // Keep the batch, stop fetching more, keep serving the group, try again.
      if (!(*consumer)->paused()) {
        spdlog::warn("cannot apply inputs ({}): pausing intake", report.error().message);
        (*consumer)->pause();
        metrics.set_intake_paused(true);
      }
      intake.beat();  // waiting is not being stuck
      backoff.wait(stop);
      (*consumer)->poll_batch(1, Duration(0));  // serves rebalances; paused: returns nothing
      continue;
    }
    // Not transient: apply the messages one at a time so one bad input cannot
    // block the rest; one that still fails goes to the dead-letter topic.
    spdlog::error("cannot apply a batch of {}: {}; applying one by one", pending.size(),
                  report.error().message);
    std::vector<KafkaMessage> remaining;
    for (size_t i = 0; i < pending.size(); ++i) {
      const KafkaMessage& message = pending[i];
      auto single = inputs.apply_batch(*store, {message}, now_ms());
      if (!single && single.error().transient()) {
        remaining.assign(pending.begin() + static_cast<std::ptrdiff_t>(i), pending.end());
        break;
      }
      if (!single) {
        spdlog::error("input {}[{}]@{} cannot be applied: {}", message.topic, message.partition,
                      message.offset, single.error().message);
        Status parked = inputs.dead_letter_unprocessable(*store, message, single.error(), now_ms());
        if (!parked) {
          remaining.assign(pending.begin() + static_cast<std::ptrdiff_t>(i), pending.end());
          break;
        }
      }
    }
    if (remaining.size() < pending.size()) {
      pending.resize(pending.size() - remaining.size());
      (*consumer)->commit(pending);
    }
    pending = std::move(remaining);
  }

  if (options_.notify_systemd) sd_notify(0, "STOPPING=1");
  spdlog::info("stopping: intake closed, finishing work in hand");
  // Everything below shares one shutdown_grace: the effects most of it, the
  // outbox and the Kafka clients what is left (a few seconds at least).
  const auto stop_by = std::chrono::steady_clock::now() + config->daemon.shutdown_grace;
  const auto left = [&stop_by](Duration at_least) {
    return std::max(at_least, std::chrono::duration_cast<Duration>(
                                  stop_by - std::chrono::steady_clock::now()));
  };
  intake.retire();
  monitor.stop();
  monitor.set_not_ready("stopping");
  retention.stop();
  effects.stop(config->daemon.shutdown_grace * 3 / 4);
  publisher.stop(left(Duration(1000)));
  (*consumer)->close();
  (void)(*producer)->flush(std::min(Duration(5000), left(Duration(500))));
  workspaces_.set_metrics(nullptr);
  spdlog::info("stopped");
  if (fatal) return *fatal;
  return ok_status();
}

}  // namespace brickwork
