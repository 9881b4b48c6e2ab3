#include "daemon/runtime/outbox_publisher.hpp"

#include <spdlog/spdlog.h>

namespace brickwork {

void OutboxPublisher::start() {
  stopping_ = false;
  thread_ = std::thread([this] { loop(); });
}

void OutboxPublisher::stop(Duration grace) {
  if (!thread_.joinable()) return;
  final_grace_ = grace;
  stopping_ = true;
  context_.outbox_wakeup().notify();
  thread_.join();
}

Result<int32_t> OutboxPublisher::drain_once(Store& store, int32_t limit) {
  auto published = store.drain_outbox(limit, [&](const std::vector<OutboxMessage>& rows) {
    std::vector<ProducerRecord> records;
    records.reserve(rows.size());
    for (const auto& row : rows) records.push_back({row.topic, row.key, row.payload});
    return producer_.produce_and_wait(records, Duration(15000));
  });
  if (published) published_ += *published;
  return published;
}

void OutboxPublisher::loop() {
  auto store = Store::open(context_.config()->postgres.url);
  Duration backoff{100};
  while (!stopping_) {
    auto published = drain_once(*store, 1000);
    if (!published) {
      spdlog::warn("outbox: cannot publish: {}; again in {}", published.error().message,
                   format_duration(backoff));
      context_.outbox_wakeup().wait_for(backoff);
      backoff = std::min(backoff * 2, Duration(5000));
      continue;
    }
    backoff = Duration(100);
    if (*published == 0) {
      // New rows from this daemon wake us; other daemons' rows wait for the tick.
      context_.outbox_wakeup().wait_for(std::chrono::milliseconds(100));
    }
  }
  // Last drain so a clean shutdown leaves nothing behind, within the grace period.
  const auto deadline = now_ms() + final_grace_;
  while (now_ms() < deadline) {
    auto published = drain_once(*store, 1000);
    if (!published || *published == 0) break;
  }
}

}  // namespace brickwork
