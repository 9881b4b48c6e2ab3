#include <set>

#include "config/config.hpp"

namespace brickwork {
namespace {

class Differences {
 public:
  template <class T>
  void compare(const char* key, const T& running, const T& fresh) {
    if (!(running == fresh)) keys_.emplace_back(key);
  }

  // Per property, so an operator sees which one; the union of both key sets
  // catches a property added or removed as well as one changed.
  void compare_properties(const std::map<std::string, std::string>& running,
                          const std::map<std::string, std::string>& fresh) {
    std::set<std::string> names;
    for (const auto& [name, value] : running) names.insert(name);
    for (const auto& [name, value] : fresh) names.insert(name);
    for (const auto& name : names) {
      auto r = running.find(name);
      auto f = fresh.find(name);
      if (r == running.end() || f == fresh.end() || r->second != f->second) {
        keys_.push_back("kafka.properties." + name);
      }
    }
  }

  std::vector<std::string> take() { return std::move(keys_); }

 private:
  std::vector<std::string> keys_;
};

}  // namespace

ReloadedConfig reloaded_config(const Config& running, const Config& fresh) {
  Differences d;
  d.compare("kafka.brokers", running.kafka.brokers, fresh.kafka.brokers);
  d.compare("kafka.group", running.kafka.group, fresh.kafka.group);
  d.compare("kafka.topics.commands", running.kafka.topics.commands, fresh.kafka.topics.commands);
  d.compare("kafka.topics.events", running.kafka.topics.events, fresh.kafka.topics.events);
  d.compare("kafka.topics.status", running.kafka.topics.status, fresh.kafka.topics.status);
  d.compare("kafka.topics.dead_letter", running.kafka.topics.dead_letter,
            fresh.kafka.topics.dead_letter);
  d.compare_properties(running.kafka.properties, fresh.kafka.properties);
  d.compare("postgres.url", running.postgres.url, fresh.postgres.url);
  d.compare("postgres.lakebase", running.postgres.lakebase, fresh.postgres.lakebase);
  d.compare("databases", running.databases, fresh.databases);
  d.compare("databricks.host", running.databricks.host, fresh.databricks.host);
  d.compare("databricks.token", running.databricks.token, fresh.databricks.token);
  d.compare("databricks.client_id", running.databricks.client_id, fresh.databricks.client_id);
  d.compare("databricks.client_secret", running.databricks.client_secret,
            fresh.databricks.client_secret);
  d.compare("databricks.auth_type", running.databricks.auth_type, fresh.databricks.auth_type);
  d.compare("databricks.profile", running.databricks.profile, fresh.databricks.profile);
  d.compare("databricks.request_timeout", running.databricks.request_timeout,
            fresh.databricks.request_timeout);
  d.compare("databricks.retry_budget", running.databricks.retry_budget,
            fresh.databricks.retry_budget);
  d.compare("databricks.limits", running.databricks.limits, fresh.databricks.limits);
  d.compare("databricks.max_in_flight", running.databricks.max_in_flight,
            fresh.databricks.max_in_flight);
  d.compare("databricks.max_transfers", running.databricks.max_transfers,
            fresh.databricks.max_transfers);
  d.compare("workspaces", running.workspaces, fresh.workspaces);
  d.compare("callbacks.secret", running.callbacks.secret, fresh.callbacks.secret);
  d.compare("callbacks.previous_secrets", running.callbacks.previous_secrets,
            fresh.callbacks.previous_secrets);
  d.compare("files.allowed_dirs", running.files.allowed_dirs, fresh.files.allowed_dirs);
  d.compare("retention", running.retention, fresh.retention);
  const DaemonConfig& rd = running.daemon;
  const DaemonConfig& fd = fresh.daemon;
  d.compare("daemon.batch_max_messages", rd.batch_max_messages, fd.batch_max_messages);
  d.compare("daemon.batch_max_wait", rd.batch_max_wait, fd.batch_max_wait);
  d.compare("daemon.batch_max_bytes", rd.batch_max_bytes, fd.batch_max_bytes);
  d.compare("daemon.effect_workers", rd.effect_workers, fd.effect_workers);
  d.compare("daemon.lease", rd.lease, fd.lease);
  d.compare("daemon.shutdown_grace", rd.shutdown_grace, fd.shutdown_grace);
  d.compare("daemon.outbox_stall", rd.outbox_stall, fd.outbox_stall);
  d.compare("daemon.metrics_listen", rd.metrics_listen, fd.metrics_listen);
  d.compare("daemon.log_format", rd.log_format, fd.log_format);
  d.compare("daemon.log_level", rd.log_level, fd.log_level);

  auto config = std::make_shared<Config>(running);
  config->workflows = fresh.workflows;
  return ReloadedConfig{std::move(config), d.take()};
}

}  // namespace brickwork
