#pragma once
// The daemon's Prometheus series (contract section 10), behind typed calls so
// that no caller spells a metric name or a label. Thread-safe: any thread may
// count or set at any time. Only the imperative shell counts; the engine
// stays pure. prometheus-cpp stays inside metrics.cpp.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace brickwork {

// One assigned partition's distance from the end of its log.
struct PartitionLag {
  std::string topic;
  int32_t partition = 0;
  int64_t lag = 0;
};

class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // brickwork_inputs_total{topic, result}: result applied | duplicate | dead_letter.
  void count_input(std::string_view topic, std::string_view result, int64_t n = 1);
  // brickwork_consumer_lag{topic, partition}: replaces the whole set, so a
  // partition this member lost stops being reported.
  void set_consumer_lag(const std::vector<PartitionLag>& lags);
  void set_outbox_backlog(int64_t rows);
  void set_effects_due(int64_t effects);
  // Every Databricks series carries the `workspace` label ("default" for
  // `databricks:`, else the name under `workspaces:`).
  // One HTTP exchange with Databricks: brickwork_databricks_requests_total
  // {workspace, endpoint, code} and brickwork_databricks_request_seconds
  // {workspace, endpoint}. `code` is the HTTP status, or the transport
  // error's code when no response came (timeout, connection_error, ...).
  void observe_databricks_request(std::string_view workspace, std::string_view endpoint,
                                  std::string_view code, double seconds);
  // Client-side limits, by API name (daemon/databricks/rate_limits.hpp):
  // brickwork_databricks_throttled_total{workspace, api} (answers 429),
  // brickwork_databricks_limit_wait_seconds_total{workspace, api} (time calls
  // waited for their turn), brickwork_databricks_polls_deferred_total
  // {workspace, api} (polls put off by a busy limit),
  // brickwork_databricks_limit_rate{workspace, api} (calls per second allowed
  // now, after 429s lowered it).
  void count_databricks_throttled(std::string_view workspace, std::string_view api);
  void observe_databricks_limit_wait(std::string_view workspace, std::string_view api,
                                     double seconds);
  void count_databricks_poll_deferred(std::string_view workspace, std::string_view api);
  void set_databricks_limit_rate(std::string_view workspace, std::string_view api, double rate);
  void count_workflow_finished(std::string_view workflow, std::string_view state);
  // brickwork_workflows_purged_total{state}: finished workflows retention deleted.
  void count_workflows_purged(std::string_view state, int64_t n);
  // brickwork_step_seconds{workflow, type}: one step attempt, start to end.
  void observe_step(std::string_view workflow, std::string_view type, double seconds);
  void set_intake_paused(bool paused);
  // Seconds until the credential of `database` expires (negative: expired).
  void set_credential_expiry(std::string_view database, double seconds);

  // Every series in the Prometheus text exposition format (version 0.0.4).
  std::string exposition() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Observations made inside a database transaction, applied to the metrics
// only once it committed: a rolled-back or retried transaction counts nothing.
class PendingMetrics {
 public:
  void add(std::function<void(Metrics&)> observation) {
    observations_.push_back(std::move(observation));
  }
  void clear() { observations_.clear(); }
  // Applies and clears; `metrics` may be null (then only clears).
  void commit(Metrics* metrics) {
    if (metrics != nullptr) {
      for (auto& o : observations_) o(*metrics);
    }
    observations_.clear();
  }

 private:
  std::vector<std::function<void(Metrics&)>> observations_;
};

// The `endpoint` label of a Databricks API path: the version prefix, query
// and every identifier removed, so the label set stays small.
// "/api/2.2/jobs/runs/get?run_id=7" -> "jobs/runs/get";
// "/api/2.0/sql/statements/01ef.../cancel" -> "sql/statements/{id}/cancel";
// "/api/2.0/fs/files/Volumes/a/b.csv?overwrite=false" -> "fs/files";
// "/oidc/v1/token" -> "oidc/v1/token".
std::string databricks_endpoint_label(std::string_view path_and_query);

}  // namespace brickwork
