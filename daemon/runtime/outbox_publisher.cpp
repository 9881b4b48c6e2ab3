#include "daemon/runtime/outbox_publisher.hpp"

#include <spdlog/spdlog.h>

#include "handlers/inbound/messages.hpp"

namespace brickwork {
namespace {

// What a refused row leaves behind: small enough for any broker's limit.
constexpr size_t kRefusedPayloadBytes = 64 * 1024;
constexpr std::string_view kRefusedPrefix = R"({"reason":"publish_refused")";

// A dead letter in place of an outbox row the broker refused for good, so
// the refusal is visible on the dead-letter topic and the outbox moves on.
// A refused dead letter of this kind is dropped (logged) rather than
// replaced again, so a broker with a tiny size limit cannot make a loop.
std::optional<OutboxMessage> replacement_for(const OutboxMessage& row, const Error& error,
                                             const std::string& dead_letter_topic) {
  if (row.topic == dead_letter_topic && row.payload.starts_with(kRefusedPrefix)) {
    spdlog::error("outbox: the broker refused dead letter {} too ({}); dropping it", row.id,
                  error.message);
    return std::nullopt;
  }
  spdlog::error("outbox: the broker refused record {} for {} ({} bytes) for good: {}; "
                "publishing a truncated dead letter instead",
                row.id, row.topic, row.payload.size(), error.message);
  OutboxMessage dead;
  dead.topic = dead_letter_topic;
  dead.key = dead_letter_key(row.key);
  dead.payload = dead_letter_record(
      "publish_refused", "the broker refused this record: " + error.message,
      json::object{{"topic", row.topic}, {"outbox_id", row.id}}, row.key,
      row.sensitive ? std::string(kRedactedOutput) : row.payload, now_ms(),
      kRefusedPayloadBytes);
  return dead;
}

}  // namespace

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
  const std::string dead_letter_topic = context_.config()->kafka.topics.dead_letter;
  auto published = store.drain_outbox(
      limit, [&](const std::vector<OutboxMessage>& rows) -> Result<std::vector<OutboxMessage>> {
        std::vector<ProducerRecord> records;
        records.reserve(rows.size());
        for (const auto& row : rows) records.push_back({row.topic, row.key, row.payload});
        auto refused = producer_.produce_batch(records, Duration(15000));
        if (!refused) return refused.error();
        std::vector<OutboxMessage> replacements;
        for (const RecordRefusal& r : *refused) {
          if (auto dead = replacement_for(rows[r.index], r.error, dead_letter_topic)) {
            replacements.push_back(std::move(*dead));
          }
        }
        refused_ += static_cast<int64_t>(refused->size());
        return replacements;
      });
  if (published) published_ += *published;
  return published;
}

void OutboxPublisher::loop() {
  auto store = context_.open_store();
  Liveness::Loop& heartbeat = context_.liveness().add("outbox", kLoopStallLimit);
  Duration backoff{100};
  while (!stopping_) {
    heartbeat.beat();
    if (auto fatal = producer_.fatal_error()) {
      // The daemon sees it too and exits; nothing more can be published here.
      spdlog::critical("outbox: the Kafka producer failed for good: {}", *fatal);
      heartbeat.retire();
      return;
    }
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
  heartbeat.retire();
  // Last drain so a clean shutdown leaves nothing behind, within the grace period.
  const auto deadline = now_ms() + final_grace_;
  while (now_ms() < deadline && !producer_.fatal_error()) {
    auto published = drain_once(*store, 1000);
    if (!published || *published == 0) break;
  }
}

}  // namespace brickwork
