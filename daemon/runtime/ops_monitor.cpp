#include "daemon/runtime/ops_monitor.hpp"

#include <spdlog/spdlog.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "daemon/core/thread_name.hpp"
#include "daemon/kafka/kafka.hpp"

namespace brickwork {

void OpsMonitor::set_not_ready(std::string reason) {
  std::lock_guard lock(mutex_);
  not_ready_ = std::move(reason);
}

void OpsMonitor::add_credential(std::string database, std::shared_ptr<PasswordSource> source) {
  if (!source) return;
  std::lock_guard lock(mutex_);
  credentials_.emplace_back(std::move(database), std::move(source));
}

void OpsMonitor::start(const KafkaConsumer& consumer, Duration period) {
  consumer_ = &consumer;
  stopping_ = false;
  thread_ = std::thread([this, period] {
    name_this_thread("bw-gauges");
    auto store = context_.open_store();
    auto next_trim = std::chrono::steady_clock::now();
    for (int check = 0; !stopping_; ++check) {
      check_once(*store, check % kGaugeChecks == 0);
#ifdef __GLIBC__
      // glibc keeps the pages of memory freed after a burst (a backlog of
      // inputs, thousands of effects handed over) in its arenas: give them
      // back, so resident memory follows the load instead of its peak.
      if (std::chrono::steady_clock::now() >= next_trim) {
        malloc_trim(0);
        next_trim = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      }
#endif
      const auto until = std::chrono::steady_clock::now() + period;
      while (!stopping_ && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  });
}

void OpsMonitor::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void OpsMonitor::check_once(QueueGauges& queues, bool depths) {
  Metrics& metrics = context_.metrics();
  // The reason is all /readyz tells (anyone who can reach the port reads
  // it); the details, which may quote Postgres, go to the log only.
  std::string reason;
  std::string details;
  if (depths) {
    auto read = queues.queue_depths(now_ms());
    if (read) {
      metrics.set_outbox_backlog(read->outbox);
      metrics.set_effects_due(read->effects_due);
    } else {
      reason = "postgres unreachable";
      details = read.error().message;
    }
  } else if (Status answers = queues.ping(); !answers) {
    reason = "postgres unreachable";
    details = answers.error().message;
  }
  if (consumer_ != nullptr) {
    if (reason.empty() && !consumer_->joined()) {
      reason = "kafka group not joined";
      details = "the consumer has not joined group " + context_.config()->kafka.group;
    }
    metrics.set_consumer_lag(consumer_->lag());
  }
  std::lock_guard lock(mutex_);
  for (const auto& [database, source] : credentials_) {
    if (auto expires = source->expires_at()) {
      metrics.set_credential_expiry(
          database, std::chrono::duration<double>(*expires - now_ms()).count());
    }
  }
  if (reason != not_ready_) {
    if (reason.empty()) {
      spdlog::info("ready: postgres answers and the consumer has joined its group");
    } else {
      spdlog::warn("not ready: {}: {}", reason, details);
    }
  }
  not_ready_ = std::move(reason);
}

OpsResponse OpsMonitor::handle(std::string_view method, std::string_view path) {
  if (method != "GET" && method != "HEAD") return OpsResponse{405, "text/plain; charset=utf-8", "GET only\n"};
  if (path == "/metrics") {
    return OpsResponse{200, "text/plain; version=0.0.4; charset=utf-8",
                       context_.metrics().exposition()};
  }
  if (path == "/healthz") {
    const Liveness::Verdict verdict = context_.liveness().check();
    if (verdict.alive) return OpsResponse{200, "text/plain; charset=utf-8", "ok\n"};
    return OpsResponse{503, "text/plain; charset=utf-8", verdict.reason + "\n"};
  }
  if (path == "/readyz") {
    std::lock_guard lock(mutex_);
    if (not_ready_.empty()) return OpsResponse{200, "text/plain; charset=utf-8", "ready\n"};
    return OpsResponse{503, "text/plain; charset=utf-8", not_ready_ + "\n"};
  }
  return OpsResponse{404, "text/plain; charset=utf-8", "not found: /metrics, /healthz, /readyz\n"};
}

}  // namespace brickwork
