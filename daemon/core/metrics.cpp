#include "daemon/core/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <map>
#include <mutex>
#include <set>

namespace brickwork {

namespace prom = prometheus;

struct Metrics::Impl {
  prom::Registry registry;
  prom::Family<prom::Counter>& inputs = prom::BuildCounter()
      .Name("brickwork_inputs_total")
      .Help("Kafka inputs (commands, completion events) handled, by topic and result")
      .Register(registry);
  prom::Family<prom::Gauge>& consumer_lag = prom::BuildGauge()
      .Name("brickwork_consumer_lag")
      .Help("Messages between the committed offset and the end of each assigned partition")
      .Register(registry);
  prom::Family<prom::Gauge>& outbox_backlog_family = prom::BuildGauge()
      .Name("brickwork_outbox_backlog")
      .Help("Status events and dead letters written but not yet published to Kafka")
      .Register(registry);
  prom::Gauge& outbox_backlog = outbox_backlog_family.Add({});
  prom::Family<prom::Gauge>& effects_due_family = prom::BuildGauge()
      .Name("brickwork_effects_due")
      .Help("Effects (Databricks calls, polls, timers) due now and not yet performed")
      .Register(registry);
  prom::Gauge& effects_due = effects_due_family.Add({});
  prom::Family<prom::Counter>& requests = prom::BuildCounter()
      .Name("brickwork_databricks_requests_total")
      .Help("HTTP exchanges with Databricks, by API endpoint and status code")
      .Register(registry);
  prom::Family<prom::Histogram>& request_seconds = prom::BuildHistogram()
      .Name("brickwork_databricks_request_seconds")
      .Help("Duration of one HTTP exchange with Databricks, by API endpoint")
      .Register(registry);
  prom::Family<prom::Counter>& throttled = prom::BuildCounter()
      .Name("brickwork_databricks_throttled_total")
      .Help("Databricks answers 429 (rate limited), by API")
      .Register(registry);
  prom::Family<prom::Counter>& limit_wait = prom::BuildCounter()
      .Name("brickwork_databricks_limit_wait_seconds_total")
      .Help("Time Databricks calls waited for their turn under the client-side limit, by API")
      .Register(registry);
  prom::Family<prom::Counter>& polls_deferred = prom::BuildCounter()
      .Name("brickwork_databricks_polls_deferred_total")
      .Help("Polls put off because their API's client-side limit was busy, by API")
      .Register(registry);
  prom::Family<prom::Gauge>& limit_rate = prom::BuildGauge()
      .Name("brickwork_databricks_limit_rate")
      .Help("Calls per second the client-side limit allows now, by API (lowered by 429s)")
      .Register(registry);
  prom::Family<prom::Counter>& finished = prom::BuildCounter()
      .Name("brickwork_workflows_finished_total")
      .Help("Workflows that reached a terminal state, by definition and state")
      .Register(registry);
  prom::Family<prom::Counter>& purged = prom::BuildCounter()
      .Name("brickwork_workflows_purged_total")
      .Help("Finished workflows deleted by retention, by state")
      .Register(registry);
  prom::Family<prom::Histogram>& step_seconds = prom::BuildHistogram()
      .Name("brickwork_step_seconds")
      .Help("Duration of one step attempt, start to end, by workflow and step type")
      .Register(registry);
  prom::Family<prom::Gauge>& intake_paused_family = prom::BuildGauge()
      .Name("brickwork_intake_paused")
      .Help("1 while intake is paused because inputs cannot be applied (Postgres away)")
      .Register(registry);
  prom::Gauge& intake_paused = intake_paused_family.Add({});
  prom::Family<prom::Gauge>& credential_expiry = prom::BuildGauge()
      .Name("brickwork_postgres_credential_expiry_seconds")
      .Help("Seconds until the current Lakebase database credential expires")
      .Register(registry);

  std::mutex lag_mutex;
  std::map<std::pair<std::string, int32_t>, prom::Gauge*> lag_series;
};

namespace {

// HTTP exchanges: 5 ms to 2 min.
const prom::Histogram::BucketBoundaries& request_buckets() {
  static const prom::Histogram::BucketBoundaries kBuckets = {
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
  return kBuckets;
}

// Step attempts: a timer of a second to a job of hours.
const prom::Histogram::BucketBoundaries& step_buckets() {
  static const prom::Histogram::BucketBoundaries kBuckets = {
      0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200};
  return kBuckets;
}

std::string text(std::string_view s) { return std::string(s); }

}  // namespace

Metrics::Metrics() : impl_(std::make_unique<Impl>()) {}
Metrics::~Metrics() = default;

void Metrics::count_input(std::string_view topic, std::string_view result, int64_t n) {
  if (n <= 0) return;
  impl_->inputs.Add({{"topic", text(topic)}, {"result", text(result)}})
      .Increment(static_cast<double>(n));
}

void Metrics::set_consumer_lag(const std::vector<PartitionLag>& lags) {
  std::lock_guard lock(impl_->lag_mutex);
  std::set<std::pair<std::string, int32_t>> current;
  for (const auto& l : lags) {
    const auto key = std::make_pair(l.topic, l.partition);
    current.insert(key);
    auto& series = impl_->lag_series[key];
    if (series == nullptr) {
      series = &impl_->consumer_lag.Add(
          {{"topic", l.topic}, {"partition", std::to_string(l.partition)}});
    }
    series->Set(static_cast<double>(l.lag));
  }
  for (auto it = impl_->lag_series.begin(); it != impl_->lag_series.end();) {
    if (current.count(it->first) != 0) {
      ++it;
      continue;
    }
    impl_->consumer_lag.Remove(it->second);
    it = impl_->lag_series.erase(it);
  }
}

void Metrics::set_outbox_backlog(int64_t rows) {
  impl_->outbox_backlog.Set(static_cast<double>(rows));
}

void Metrics::set_effects_due(int64_t effects) {
  impl_->effects_due.Set(static_cast<double>(effects));
}

void Metrics::observe_databricks_request(std::string_view workspace, std::string_view endpoint,
                                         std::string_view code, double seconds) {
  impl_->requests
      .Add({{"workspace", text(workspace)}, {"endpoint", text(endpoint)}, {"code", text(code)}})
      .Increment();
  impl_->request_seconds
      .Add({{"workspace", text(workspace)}, {"endpoint", text(endpoint)}}, request_buckets())
      .Observe(seconds);
}

void Metrics::count_databricks_throttled(std::string_view workspace, std::string_view api) {
  impl_->throttled.Add({{"workspace", text(workspace)}, {"api", text(api)}}).Increment();
}

void Metrics::observe_databricks_limit_wait(std::string_view workspace, std::string_view api,
                                            double seconds) {
  impl_->limit_wait.Add({{"workspace", text(workspace)}, {"api", text(api)}}).Increment(seconds);
}

void Metrics::count_databricks_poll_deferred(std::string_view workspace, std::string_view api) {
  impl_->polls_deferred.Add({{"workspace", text(workspace)}, {"api", text(api)}}).Increment();
}

void Metrics::set_databricks_limit_rate(std::string_view workspace, std::string_view api,
                                        double rate) {
  impl_->limit_rate.Add({{"workspace", text(workspace)}, {"api", text(api)}}).Set(rate);
}

void Metrics::count_workflow_finished(std::string_view workflow, std::string_view state) {
  impl_->finished.Add({{"workflow", text(workflow)}, {"state", text(state)}}).Increment();
}

void Metrics::count_workflows_purged(std::string_view state, int64_t n) {
  if (n <= 0) return;
  impl_->purged.Add({{"state", text(state)}}).Increment(static_cast<double>(n));
}

void Metrics::observe_step(std::string_view workflow, std::string_view type, double seconds) {
  impl_->step_seconds.Add({{"workflow", text(workflow)}, {"type", text(type)}}, step_buckets())
      .Observe(seconds);
}

void Metrics::set_intake_paused(bool paused) { impl_->intake_paused.Set(paused ? 1 : 0); }

void Metrics::set_credential_expiry(std::string_view database, double seconds) {
  impl_->credential_expiry.Add({{"database", text(database)}}).Set(seconds);
}

std::string Metrics::exposition() const {
  return prom::TextSerializer().Serialize(impl_->registry.Collect());
}

std::string databricks_endpoint_label(std::string_view path_and_query) {
  std::string_view path = path_and_query.substr(0, path_and_query.find('?'));
  while (path.starts_with('/')) path.remove_prefix(1);
  if (path.starts_with("oidc/")) return std::string(path);
  if (path.starts_with("api/")) {
    path.remove_prefix(4);
    path.remove_prefix(std::min(path.size(), path.find('/') + 1));  // "2.1/"
  }
  // Segments after these name one object; a file path is all identifier.
  static const std::set<std::string_view> kCollections = {
      "statements", "shares",   "recipients", "instances", "endpoints", "projects",
      "branches",   "catalogs", "schemas",    "tables",    "volumes",   "providers"};
  std::string label;
  bool identifier_next = false;
  size_t from = 0;
  while (from <= path.size()) {
    const size_t slash = std::min(path.find('/', from), path.size());
    const std::string_view segment = path.substr(from, slash - from);
    from = slash + 1;
    if (segment.empty()) continue;
    const bool looks_like_id =
        segment.find_first_not_of("abcdefghijklmnopqrstuvwxyz-_") != std::string_view::npos;
    if (!label.empty()) label += '/';
    if (identifier_next || looks_like_id) {
      label += "{id}";
      identifier_next = false;
    } else {
      label += segment;
      identifier_next = kCollections.count(segment) != 0;
    }
    if (label == "fs/files" || label == "fs/directories") break;
  }
  return label;
}

}  // namespace brickwork
