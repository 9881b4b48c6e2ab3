#include "daemon/runtime/outbox_publisher.hpp"

#include <spdlog/spdlog.h>

#include <set>

#include "daemon/core/thread_name.hpp"
#include "daemon/core/trace_context.hpp"
#include "handlers/inbound/messages.hpp"

namespace brickwork {
namespace {

// What a refused row leaves behind: small enough for any broker's limit.
constexpr size_t kRefusedPayloadBytes = 64 * 1024;
constexpr std::string_view kRefusedPrefix = R"({"reason":"publish_refused")";
// A stream that stalled is tried again after this, doubling up to the maximum.
constexpr Duration kFirstRetry{1000};
constexpr Duration kMaxRetry{60000};

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
  json::object source{{"topic", row.topic}, {"outbox_id", row.id}};
  if (!row.workflow_id.empty()) {
    source["workflow_id"] = row.workflow_id;
    source["step"] = row.step;
  }
  dead.payload = dead_letter_record(
      "publish_refused", "the broker refused this record: " + error.message, std::move(source),
      row.key, row.sensitive ? std::string(kRedactedOutput) : row.payload, now_ms(),
      kRefusedPayloadBytes);
  return dead;
}

OutboxStream stream_of(const OutboxMessage& row) { return OutboxStream{row.topic, row.key}; }

ProducerRecord record_of(const OutboxMessage& row) {
  ProducerRecord record{row.topic, row.key, row.payload, {}};
  if (!row.traceparent.empty()) record.headers.emplace_back(kTraceparentHeader, row.traceparent);
  return record;
}

}  // namespace

void OutboxPublisher::start() {
  stopping_ = false;
  thread_ = std::thread([this] {
    name_this_thread("bw-outbox");
    loop();
  });
}

void OutboxPublisher::stop(Duration grace) {
  if (!thread_.joinable()) return;
  final_grace_ = grace;
  stopping_ = true;
  context_.outbox_wakeup().notify();
  thread_.join();
}

void OutboxPublisher::report_refusal(const OutboxMessage& row, const Error& error, OutboxTx& tx,
                                     std::vector<OutboxMessage>& out) const {
  const ConfigPtr config = context_.config();
  if (auto dead = replacement_for(row, error, config->kafka.topics.dead_letter)) {
    out.push_back(std::move(*dead));
  }
  // The workflow whose step emitted the record learns of it too (a status
  // event of its own would only be refused again if the status topic is
  // the one refusing).
  if (row.workflow_id.empty() || row.topic == config->kafka.topics.status) return;
  const std::optional<WorkflowSequence> next = tx.take_next_seq(row.workflow_id);
  if (!next) return;
  StatusEvent event;
  event.type = "publish_refused";
  event.seq = next->seq;
  event.at = now_ms();
  if (!row.step.empty()) event.step = row.step;
  event.error = StepError{"publish_refused", "the broker refused the record for topic " +
                                                 row.topic + ": " + error.message};
  event.state = to_string(next->status);
  json::object payload = to_json(event, row.workflow_id, next->workflow);
  payload["topic"] = row.topic;
  OutboxMessage status;
  status.topic = config->kafka.topics.status;
  status.key = row.workflow_id;
  status.payload = json::serialize(payload);
  status.traceparent = row.traceparent;
  out.push_back(std::move(status));
}

Result<int32_t> OutboxPublisher::drain_once(OutboxDrain& outbox, int32_t limit,
                                            std::optional<Duration> wait) {
  const Duration stall = wait.value_or(context_.config()->daemon.outbox_stall);
  const TimePoint now = now_ms();
  std::vector<OutboxStream> skip;
  for (const auto& [stream, waiting] : waiting_) {
    if (waiting.until > now) skip.push_back(stream);
  }
  std::vector<OutboxStream> stalled;
  int64_t delivered = 0, refused = 0;
  auto removed = outbox.drain_outbox(
      limit, skip,
      [&](const std::vector<OutboxMessage>& rows, OutboxTx& tx) -> Result<OutboxRound> {
        stalled.clear();
        std::vector<ProducerRecord> records;
        records.reserve(rows.size());
        for (const auto& row : rows) records.push_back(record_of(row));
        const BatchDelivery delivery = producer_.produce_batch(records, stall);
        OutboxRound round;
        for (size_t i : delivery.unconfirmed) {
          round.unpublished.push_back(rows[i].id);
          stalled.push_back(stream_of(rows[i]));
        }
        for (const RecordRefusal& r : delivery.refused) {
          report_refusal(rows[r.index], r.error, tx, round.replacements);
        }
        if (!delivery.unconfirmed.empty()) {
          spdlog::warn("outbox: {} of {} record(s) not confirmed: {}; they wait aside with the "
                       "later records of their key, the others go on",
                       delivery.unconfirmed.size(), rows.size(),
                       delivery.unconfirmed_reason->message);
        }
        refused = static_cast<int64_t>(delivery.refused.size());
        delivered = static_cast<int64_t>(rows.size()) - refused -
                    static_cast<int64_t>(delivery.unconfirmed.size());
        return round;
      });
  if (!removed) return removed;
  published_ += delivered;
  refused_ += refused;
  note_stalls(stalled, now);
  return removed;
}

void OutboxPublisher::note_stalls(const std::vector<OutboxStream>& stalled, TimePoint round_start) {
  // A stream that could take part in the round and did not stall is done
  // waiting (published, refused, or its rows gone); one that stalled (again)
  // waits, longer each time.
  const std::set<OutboxStream> still(stalled.begin(), stalled.end());
  std::erase_if(waiting_, [&](const auto& entry) {
    return entry.second.until <= round_start && still.count(entry.first) == 0;
  });
  const TimePoint now = now_ms();
  for (const OutboxStream& stream : still) {
    auto [it, first] = waiting_.try_emplace(stream, Waiting{now, kFirstRetry});
    if (!first) it->second.backoff = std::min(it->second.backoff * 2, kMaxRetry);
    it->second.until = now + it->second.backoff;
  }
}

void OutboxPublisher::loop() {
  auto store = context_.open_store();
  // A round may wait for the broker up to daemon.outbox_stall.
  Liveness::Loop& heartbeat = context_.liveness().add(
      "outbox", kLoopStallLimit + context_.config()->daemon.outbox_stall);
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
    const Duration left = std::chrono::duration_cast<Duration>(deadline - now_ms());
    auto published =
        drain_once(*store, 1000, std::min(left, context_.config()->daemon.outbox_stall));
    if (!published || *published == 0) break;
  }
}

}  // namespace brickwork
