#include "daemon/kafka/kafka.hpp"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "daemon/core/logging.hpp"
#include "daemon/kafka/rdkafka_detail.hpp"

namespace brickwork {

namespace kafka_detail {

Error kafka_error(std::string code, std::string message) {
  return Error{ErrorKind::kTransient, std::move(code), std::move(message)};
}

// librdkafka's own messages through the daemon's logger (JSON lines), never
// its `%3|...` lines on stderr. Called on librdkafka's threads.
void log_through_logger(const rd_kafka_t* rk, int level, const char* facility, const char* text) {
  LogScope client(std::vector<LogScope::Field>{{"client", rk != nullptr ? rd_kafka_name(rk) : ""}});
  log_library_message(library_level_from_syslog(level), "librdkafka", facility, text);
}

Result<rd_kafka_conf_t*> make_conf(const KafkaConfig& config, const std::string& client_id,
                                   const std::map<std::string, std::string>& settings) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set_log_cb(conf, &log_through_logger);
  char errstr[512];
  auto set = [&](const std::string& name, const std::string& value) -> bool {
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      return false;
    }
    return true;
  };
  std::map<std::string, std::string> all = {{"bootstrap.servers", config.brokers},
                                            {"client.id", client_id}};
  for (const auto& [k, v] : settings) all[k] = v;
  // The user's properties come last so SASL/TLS and tuning can be set from the file.
  for (const auto& [k, v] : config.properties) all[k] = v;
  for (const auto& [k, v] : all) {
    if (!set(k, v)) {
      rd_kafka_conf_destroy(conf);
      return Error{ErrorKind::kPermanent, "kafka_config",
                   "kafka property '" + k + "': " + errstr};
    }
  }
  return conf;
}

KafkaMessage to_message(const std::string& topic, const rd_kafka_message_t* m) {
  KafkaMessage msg;
  msg.topic = topic;
  msg.partition = m->partition;
  msg.offset = m->offset;
  if (m->key != nullptr) msg.key.emplace(static_cast<const char*>(m->key), m->key_len);
  if (m->payload != nullptr) msg.payload.assign(static_cast<const char*>(m->payload), m->len);
  rd_kafka_headers_t* headers = nullptr;  // owned by the message
  if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) ==
                       RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      msg.headers.emplace_back(name, value != nullptr
                                         ? std::string(static_cast<const char*>(value), size)
                                         : std::string());
    }
  }
  return msg;
}

Result<std::map<int32_t, Watermarks>> watermarks(rd_kafka_t* rk, const std::string& topic,
                                                 Duration timeout) {
  const rd_kafka_metadata_t* metadata = nullptr;
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_resp_err_t merr =
      rd_kafka_metadata(rk, 0, rkt, &metadata, static_cast<int>(timeout.count()));
  rd_kafka_topic_destroy(rkt);
  if (merr != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return kafka_error("kafka_metadata", rd_kafka_err2str(merr));
  }
  std::vector<int32_t> partitions;
  for (int i = 0; i < metadata->topic_cnt; ++i) {
    for (int p = 0; p < metadata->topics[i].partition_cnt; ++p) {
      partitions.push_back(metadata->topics[i].partitions[p].id);
    }
  }
  rd_kafka_metadata_destroy(metadata);
  std::map<int32_t, Watermarks> out;
  for (int32_t p : partitions) {
    Watermarks w;
    if (rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &w.low, &w.high,
                                         static_cast<int>(timeout.count())) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka_error("kafka_watermarks", "could not read watermarks of " + topic);
    }
    out[p] = w;
  }
  return out;
}

}  // namespace kafka_detail

namespace {

using kafka_detail::kafka_error;
using kafka_detail::make_conf;
using kafka_detail::RdKafkaPtr;
using kafka_detail::to_message;
using kafka_detail::watermarks;

// librdkafka's fatal error of a client, if one was raised (consumer fenced
// by a static member, idempotent producer out of sequence, ...).
std::optional<std::string> client_fatal_error(rd_kafka_t* rk) {
  char errstr[512];
  if (rd_kafka_fatal_error(rk, errstr, sizeof errstr) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    return std::nullopt;
  }
  return std::string(errstr);
}

// Errors worth sending the same record again for: the broker or the network
// away, leadership moving, our own purge or timeout, the idempotent
// producer's sequence troubles (a fatal one restarts the daemon instead).
// Any other error refuses the record for good: too large, invalid, a topic
// that does not exist (librdkafka reports UNKNOWN_TOPIC_OR_PART only after
// topic.metadata.propagation.max.ms), authorization, ...
bool worth_retrying(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR__NODE_UPDATE:
    case RD_KAFKA_RESP_ERR__WAIT_CACHE:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR__RETRY:
    case RD_KAFKA_RESP_ERR__PREV_IN_PROGRESS:  // held back behind an earlier record of its key
    case RD_KAFKA_RESP_ERR__INTR:
    case RD_KAFKA_RESP_ERR__DESTROY:
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:  // partitions changing under us
    case RD_KAFKA_RESP_ERR__STATE:
    case RD_KAFKA_RESP_ERR__GAPLESS_GUARANTEE:
    case RD_KAFKA_RESP_ERR__INCONSISTENT:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
    case RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH:
    case RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH:
    case RD_KAFKA_RESP_ERR_LISTENER_NOT_FOUND:
    case RD_KAFKA_RESP_ERR_PREFERRED_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_CONTROLLER:
    case RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED:
    case RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER:
    case RD_KAFKA_RESP_ERR_DUPLICATE_SEQUENCE_NUMBER:
    case RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_ID_MAPPING:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS:
      return true;
    default:
      return false;
  }
}

bool refused_for_good(rd_kafka_resp_err_t err) {
  return err != RD_KAFKA_RESP_ERR_NO_ERROR && !worth_retrying(err);
}

// Errors in a topic's metadata that no retry fixes. librdkafka 2.0 keeps the
// records of such a topic queued until message.timeout.ms instead of
// failing them; an unknown topic is left to librdkafka, which fails its
// records once metadata had time to propagate.
bool topic_refused_for_good(rd_kafka_resp_err_t err) {
  return err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
         err == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED ||
         err == RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION;
}

class RdKafkaConsumer final : public KafkaConsumer {
 public:
  // Two-phase: the object is the rebalance callback's opaque, so it exists
  // before the handle does.
  RdKafkaConsumer() = default;
  void attach(rd_kafka_t* rk) { rk_ = rk; }
  ~RdKafkaConsumer() override {
    if (rk_ == nullptr) return;
    if (client_fatal_error(rk_)) {
      // After a fatal error librdkafka 2.0's close-on-destroy never returns
      // (its main thread spins): leave the group to the session timeout.
      rd_kafka_destroy_flags(rk_, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
      return;
    }
    close();
    rd_kafka_destroy(rk_);
  }

  static void rebalance_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* partitions, void* opaque) {
    auto* self = static_cast<RdKafkaConsumer*>(opaque);
    const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      spdlog::info("kafka: assigned {} partition(s)", partitions->cnt);
      self->joined_ = true;
      if (cooperative) {
        if (rd_kafka_error_t* e = rd_kafka_incremental_assign(rk, partitions)) {
          spdlog::warn("kafka: incremental assign failed: {}", rd_kafka_error_string(e));
          rd_kafka_error_destroy(e);
        }
      } else {
        rd_kafka_assign(rk, partitions);
      }
      // Partitions that arrive while intake is paused stay paused.
      if (self->paused_) rd_kafka_pause_partitions(rk, partitions);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
      spdlog::info("kafka: revoked {} partition(s)", partitions->cnt);
      if (cooperative) {
        if (rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk, partitions)) {
          rd_kafka_error_destroy(e);
        }
      } else {
        self->joined_ = false;  // eager: everything goes; the next assignment rejoins
        rd_kafka_assign(rk, nullptr);
      }
    } else {
      spdlog::warn("kafka: rebalance error: {}", rd_kafka_err2str(err));
      self->joined_ = false;
      rd_kafka_assign(rk, nullptr);
    }
  }

  // librdkafka's statistics (JSON, every statistics.interval.ms, on the
  // polling thread): keeps each assigned partition's consumer_lag.
  static int stats_cb(rd_kafka_t*, char* json_text, size_t json_len, void* opaque) {
    auto* self = static_cast<RdKafkaConsumer*>(opaque);
    boost::system::error_code ec;
    const boost::json::value stats =
        boost::json::parse(std::string_view(json_text, json_len), ec);
    if (ec || !stats.is_object()) return 0;
    std::vector<PartitionLag> lags;
    const auto* topics = stats.as_object().if_contains("topics");
    if (topics != nullptr && topics->is_object()) {
      for (const auto& [topic, t] : topics->as_object()) {
        const auto* partitions = t.is_object() ? t.as_object().if_contains("partitions") : nullptr;
        if (partitions == nullptr || !partitions->is_object()) continue;
        for (const auto& [id, p] : partitions->as_object()) {
          if (!p.is_object()) continue;
          const auto& o = p.as_object();
          const auto* partition = o.if_contains("partition");
          const auto* lag = o.if_contains("consumer_lag");
          const auto* desired = o.if_contains("desired");
          if (partition == nullptr || !partition->is_int64() || partition->as_int64() < 0) continue;
          if (lag == nullptr || !lag->is_int64() || lag->as_int64() < 0) continue;  // unknown yet
          if (desired != nullptr && desired->is_bool() && !desired->as_bool()) continue;
          lags.push_back(PartitionLag{std::string(topic),
                                      static_cast<int32_t>(partition->as_int64()),
                                      lag->as_int64()});
        }
      }
    }
    std::lock_guard lock(self->mutex_);
    self->lag_ = std::move(lags);
    return 0;  // librdkafka frees the text
  }

  bool joined() const override { return joined_; }
  std::vector<PartitionLag> lag() const override {
    std::lock_guard lock(mutex_);
    return lag_;
  }

  std::vector<KafkaMessage> poll_batch(int32_t max_messages, Duration wait,
                                       size_t max_bytes) override {
    std::vector<KafkaMessage> batch;
    size_t bytes = 0;
    auto timeout = static_cast<int>(wait.count());
    while (static_cast<int32_t>(batch.size()) < max_messages && bytes < max_bytes) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, timeout);
      if (m == nullptr) break;
      timeout = 0;  // after the first message take only what is already here
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
          spdlog::warn("kafka: consumer: {}", rd_kafka_message_errstr(m));
          char errstr[512];
          if (rd_kafka_fatal_error(rk_, errstr, sizeof errstr) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            std::lock_guard lock(mutex_);
            fatal_ = errstr;
          }
        }
        rd_kafka_message_destroy(m);
        continue;
      }
      bytes += m->len + m->key_len;
      batch.push_back(to_message(rd_kafka_topic_name(m->rkt), m));
      rd_kafka_message_destroy(m);
    }
    return batch;
  }

  void commit(const std::vector<KafkaMessage>& messages) override {
    if (messages.empty() || closed_) return;
    std::map<std::pair<std::string, int32_t>, int64_t> next;
    for (const auto& m : messages) {
      auto& value = next[{m.topic, m.partition}];
      value = std::max(value, m.offset + 1);
    }
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(
        static_cast<int>(next.size()));
    for (const auto& [tp, offset] : next) {
      rd_kafka_topic_partition_list_add(list, tp.first.c_str(), tp.second)->offset = offset;
    }
    // Stored, and committed by librdkafka within auto.commit.interval.ms, on
    // a rebalance and on close: Postgres holds the authoritative offsets and
    // these only save re-reads, so one commit request per batch (hundreds a
    // second under load) would buy nothing. A partition no longer assigned
    // is refused here and skipped: its new owner reads from what was
    // committed and skips what Postgres has.
    const rd_kafka_resp_err_t err = rd_kafka_offsets_store(rk_, list);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::debug("kafka: offsets store: {}", rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(list);
  }

  void pause() override { set_paused(true); }
  void resume() override { set_paused(false); }
  bool paused() const override { return paused_; }

  int32_t assigned_partitions() override {
    rd_kafka_topic_partition_list_t* list = nullptr;
    if (rd_kafka_assignment(rk_, &list) != RD_KAFKA_RESP_ERR_NO_ERROR || list == nullptr) return 0;
    const int32_t count = list->cnt;
    rd_kafka_topic_partition_list_destroy(list);
    return count;
  }

  void close() override {
    if (closed_) return;
    closed_ = true;
    if (client_fatal_error(rk_)) return;  // a fenced member cannot leave; see the destructor
    // Leaves the group so the others take over at once instead of after a session timeout.
    const rd_kafka_resp_err_t err = rd_kafka_consumer_close(rk_);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::warn("kafka: consumer close: {}", rd_kafka_err2str(err));
    }
  }

  std::optional<std::string> fatal_error() const override {
    {
      std::lock_guard lock(mutex_);
      if (fatal_) return fatal_;
    }
    return client_fatal_error(rk_);
  }

  void inject_fatal_error_for_testing() override {
    rd_kafka_test_fatal_error(rk_, RD_KAFKA_RESP_ERR__FATAL, "injected by a test");
  }

 private:
  void set_paused(bool paused) {
    if (paused_ == paused) return;
    paused_ = paused;
    rd_kafka_topic_partition_list_t* list = nullptr;
    if (rd_kafka_assignment(rk_, &list) != RD_KAFKA_RESP_ERR_NO_ERROR || list == nullptr) return;
    if (paused) {
      rd_kafka_pause_partitions(rk_, list);
    } else {
      rd_kafka_resume_partitions(rk_, list);
    }
    rd_kafka_topic_partition_list_destroy(list);
  }

  rd_kafka_t* rk_ = nullptr;
  bool paused_ = false;
  bool closed_ = false;
  std::atomic<bool> joined_{false};
  mutable std::mutex mutex_;
  std::optional<std::string> fatal_;
  std::vector<PartitionLag> lag_;  // guarded by mutex_
};

// Shared by the producer and every record of one produce_batch call; each
// in-flight record holds a reference, so a late delivery report stays safe.
struct DeliveryBatch {
  enum class Fate : uint8_t { kPending, kDelivered, kRefused, kUnconfirmed };
  std::mutex mutex;
  std::vector<Fate> fates;           // one per record
  std::vector<std::string> refusals;  // why, for kRefused
  size_t pending = 0;        // records not decided yet
  std::string first_error;  // the first transient failure

  explicit DeliveryBatch(size_t n) : fates(n, Fate::kPending), refusals(n), pending(n) {}

  // The record's fate, once (a late report of a record already decided is
  // dropped), except that an acknowledgement always wins: it was delivered.
  void decide(size_t index, rd_kafka_resp_err_t err, std::string refusal_prefix = "") {
    std::lock_guard lock(mutex);
    Fate& fate = fates[index];
    if (fate == Fate::kPending) --pending;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      fate = Fate::kDelivered;
    } else if (fate != Fate::kPending) {
      return;
    } else if (refused_for_good(err)) {
      fate = Fate::kRefused;
      refusals[index] = refusal_prefix + rd_kafka_err2str(err);
    } else {
      fate = Fate::kUnconfirmed;
      if (first_error.empty()) first_error = rd_kafka_err2str(err);
    }
  }
  size_t pending_count() {
    std::lock_guard lock(mutex);
    return pending;
  }
};

struct RecordTicket {
  std::shared_ptr<DeliveryBatch> batch;
  size_t index = 0;
};

void delivery_report(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  auto* ticket = static_cast<RecordTicket*>(m->_private);
  if (ticket == nullptr) {
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::warn("kafka: delivery to {} failed: {}", rd_kafka_topic_name(m->rkt),
                   rd_kafka_err2str(m->err));
    }
    return;
  }
  std::shared_ptr<DeliveryBatch> batch = std::move(ticket->batch);
  const size_t index = ticket->index;
  delete ticket;
  batch->decide(index, m->err);
}

class RdKafkaProducer final : public KafkaProducer {
 public:
  explicit RdKafkaProducer(rd_kafka_t* rk) : rk_(rk) {}
  ~RdKafkaProducer() override {
    rd_kafka_flush(rk_, 5000);
    rd_kafka_destroy(rk_);
  }

  BatchDelivery produce_batch(const std::vector<ProducerRecord>& records,
                              Duration timeout) override {
    std::lock_guard lock(mutex_);
    auto batch = std::make_shared<DeliveryBatch>(records.size());
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = start + timeout;
    // A record not queued keeps the later records of its topic and key back.
    std::set<std::pair<std::string_view, std::string_view>> held_back;
    for (size_t i = 0; i < records.size(); ++i) {
      const std::pair<std::string_view, std::string_view> stream{records[i].topic, records[i].key};
      if (held_back.count(stream) != 0) {
        batch->decide(i, RD_KAFKA_RESP_ERR__PREV_IN_PROGRESS);
        continue;
      }
      auto* ticket = new RecordTicket{batch, i};
      const rd_kafka_resp_err_t err = produce_one(records[i], ticket, deadline);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
      delete ticket;
      batch->decide(i, err);
      if (!refused_for_good(err)) held_back.insert(stream);
    }
    // Topics that cannot take records are asked about once the batch has
    // had a moment, and again now and then, not for every batch.
    auto next_metadata_check = start + kMetadataCheckAfter;
    bool refused_by_metadata = false;
    while (batch->pending_count() > 0 && std::chrono::steady_clock::now() < deadline) {
      rd_kafka_poll(rk_, 20);
      if (std::chrono::steady_clock::now() >= next_metadata_check) {
        refused_by_metadata |= refuse_unwritable_topics(*batch, records, deadline);
        next_metadata_check = std::chrono::steady_clock::now() + kMetadataCheckEvery;
      }
    }
    const bool timed_out = batch->pending_count() > 0;
    if (timed_out || refused_by_metadata) {
      // What is still queued must not go out later beside the retried
      // records; what is in flight may still be acknowledged in a moment.
      rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE);
      const auto settle = std::chrono::steady_clock::now() + kSettleAfterPurge;
      while (batch->pending_count() > 0 && std::chrono::steady_clock::now() < settle) {
        rd_kafka_poll(rk_, 20);
      }
    }
    return outcome(*batch, timed_out, timeout);
  }

  Status produce_async(const ProducerRecord& record) override {
    std::lock_guard lock(mutex_);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    const rd_kafka_resp_err_t err = produce_one(record, nullptr, deadline);
    rd_kafka_poll(rk_, 0);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return ok_status();
    if (refused_for_good(err)) {
      return Error{ErrorKind::kPermanent, "kafka_refused", rd_kafka_err2str(err)};
    }
    return kafka_error("kafka_produce", rd_kafka_err2str(err));
  }

  std::optional<std::string> fatal_error() const override { return client_fatal_error(rk_); }

  void inject_fatal_error_for_testing() override {
    rd_kafka_test_fatal_error(rk_, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                              "injected by a test");
  }

  Status flush(Duration timeout) override {
    std::lock_guard lock(mutex_);
    const rd_kafka_resp_err_t err = rd_kafka_flush(rk_, static_cast<int>(timeout.count()));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return kafka_error("kafka_flush", rd_kafka_err2str(err));
    return ok_status();
  }

 private:
  static constexpr Duration kMetadataCheckAfter{1000};
  static constexpr Duration kMetadataCheckEvery{5000};
  static constexpr Duration kSettleAfterPurge{500};

  // Refuses the pending records of every topic whose metadata says it can
  // never take them. True if any was refused.
  bool refuse_unwritable_topics(DeliveryBatch& batch, const std::vector<ProducerRecord>& records,
                                std::chrono::steady_clock::time_point deadline) {
    std::set<std::string_view> topics;
    {
      std::lock_guard lock(batch.mutex);
      for (size_t i = 0; i < records.size(); ++i) {
        if (batch.fates[i] == DeliveryBatch::Fate::kPending) topics.insert(records[i].topic);
      }
    }
    bool refused = false;
    for (std::string_view topic : topics) {
      const auto left = std::chrono::duration_cast<Duration>(deadline -
                                                             std::chrono::steady_clock::now());
      if (left <= Duration(0)) break;
      const rd_kafka_resp_err_t err =
          topic_error(std::string(topic), std::min(left, Duration(2000)));
      if (!topic_refused_for_good(err)) continue;
      spdlog::warn("kafka: topic {} refuses records: {}", topic, rd_kafka_err2str(err));
      for (size_t i = 0; i < records.size(); ++i) {
        if (records[i].topic == topic) batch.decide(i, err, "topic " + std::string(topic) + ": ");
      }
      refused = true;
    }
    return refused;
  }

  // The error the cluster gives for one topic's metadata (NO_ERROR when the
  // request itself fails: that is not the topic's fault).
  rd_kafka_resp_err_t topic_error(const std::string& topic, Duration timeout) {
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_, topic.c_str(), nullptr);
    const rd_kafka_metadata_t* metadata = nullptr;
    const rd_kafka_resp_err_t err =
        rd_kafka_metadata(rk_, 0, rkt, &metadata, static_cast<int>(timeout.count()));
    rd_kafka_topic_destroy(rkt);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_resp_err_t topic_err = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int i = 0; i < metadata->topic_cnt; ++i) {
      if (topic == metadata->topics[i].topic) topic_err = metadata->topics[i].err;
    }
    rd_kafka_metadata_destroy(metadata);
    return topic_err;
  }

  BatchDelivery outcome(DeliveryBatch& batch, bool timed_out, Duration timeout) {
    BatchDelivery delivery;
    std::lock_guard lock(batch.mutex);
    for (size_t i = 0; i < batch.fates.size(); ++i) {
      switch (batch.fates[i]) {
        case DeliveryBatch::Fate::kDelivered:
          break;
        case DeliveryBatch::Fate::kRefused:
          delivery.refused.push_back(
              RecordRefusal{i, Error{ErrorKind::kPermanent, "kafka_refused", batch.refusals[i]}});
          break;
        case DeliveryBatch::Fate::kPending:
        case DeliveryBatch::Fate::kUnconfirmed:
          delivery.unconfirmed.push_back(i);
          break;
      }
    }
    if (delivery.unconfirmed.empty()) return delivery;
    if (auto fatal = client_fatal_error(rk_)) {
      delivery.unconfirmed_reason = Error{ErrorKind::kInternal, "kafka_fatal", *fatal};
    } else if (timed_out) {
      delivery.unconfirmed_reason =
          kafka_error("kafka_timeout", "delivery not confirmed within " + format_duration(timeout));
    } else {
      delivery.unconfirmed_reason = kafka_error("kafka_delivery", batch.first_error);
    }
    return delivery;
  }

  rd_kafka_resp_err_t produce_one(const ProducerRecord& record, void* opaque,
                                  std::chrono::steady_clock::time_point deadline) {
    for (;;) {
      // librdkafka owns the headers once the record is queued, not before.
      rd_kafka_headers_t* headers = nullptr;
      if (!record.headers.empty()) {
        headers = rd_kafka_headers_new(record.headers.size());
        for (const auto& [name, value] : record.headers) {
          rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), value.data(),
                              static_cast<ssize_t>(value.size()));
        }
      }
      const rd_kafka_resp_err_t err = rd_kafka_producev(
          rk_, RD_KAFKA_V_TOPIC(record.topic.c_str()),
          RD_KAFKA_V_KEY(record.key.data(), record.key.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(record.payload.data()), record.payload.size()),
          RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR && headers != nullptr) rd_kafka_headers_destroy(headers);
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && std::chrono::steady_clock::now() < deadline) {
        rd_kafka_poll(rk_, 50);  // make room by serving delivery reports
        continue;
      }
      return err;
    }
  }

  rd_kafka_t* rk_;
  std::mutex mutex_;
};

}  // namespace

Result<std::unique_ptr<KafkaConsumer>> KafkaConsumer::create(const KafkaConfig& config,
                                                             const std::vector<std::string>& topics,
                                                             const std::string& client_id) {
  auto conf = make_conf(config, client_id,
                        {{"group.id", config.group},
                         // Offsets of applied batches only (commit() stores
                         // them), committed every second and on rebalance and close.
                         {"enable.auto.commit", "true"},
                         {"auto.commit.interval.ms", "1000"},
                         {"enable.auto.offset.store", "false"},
                         {"auto.offset.reset", "earliest"},
                         // The broker's minimum: a dead member's partitions move within ~6 s.
                         {"session.timeout.ms", "6000"},
                         {"heartbeat.interval.ms", "1000"},
                         {"topic.metadata.refresh.interval.ms", "10000"},
                         // Consumer lag for brickwork_consumer_lag (stats_cb).
                         {"statistics.interval.ms", "5000"},
                         // What librdkafka holds for us: 64 MiB of prefetched
                         // messages and 50 MiB per fetch by default, on top of the
                         // batch in hand. 8 MiB ahead is plenty for a loop that
                         // applies 4 MiB (daemon.batch_max_bytes) per
                         // transaction; a fetch answer is
                         // capped to the same, and 1 MiB per partition (a
                         // larger message is still fetched whole).
                         {"queued.max.messages.kbytes", "8192"},
                         {"fetch.max.bytes", "8388608"},
                         {"max.partition.fetch.bytes", "1048576"}});
  if (!conf) return conf.error();
  rd_kafka_conf_t* c = *conf;
  auto consumer = std::make_unique<RdKafkaConsumer>();
  rd_kafka_conf_set_opaque(c, consumer.get());
  rd_kafka_conf_set_rebalance_cb(c, &RdKafkaConsumer::rebalance_cb);
  rd_kafka_conf_set_stats_cb(c, &RdKafkaConsumer::stats_cb);
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof errstr);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(c);
    return Error{ErrorKind::kPermanent, "kafka_config", errstr};
  }
  consumer->attach(rk);
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(static_cast<int>(topics.size()));
  for (const auto& t : topics) {
    rd_kafka_topic_partition_list_add(list, t.c_str(), RD_KAFKA_PARTITION_UA);
  }
  const rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Error{ErrorKind::kPermanent, "kafka_subscribe", rd_kafka_err2str(err)};
  }
  return std::unique_ptr<KafkaConsumer>(std::move(consumer));
}

Result<std::unique_ptr<KafkaProducer>> KafkaProducer::create(const KafkaConfig& config,
                                                             bool idempotent,
                                                             const std::string& client_id) {
  std::map<std::string, std::string> settings = {{"acks", "all"},
                                                 {"linger.ms", "5"},
                                                 {"message.timeout.ms", "60000"},
                                                 {"retry.backoff.ms", "100"},
                                                 // Java's partitioner: a key lands on the
                                                 // partition a Java producer would choose.
                                                 {"partitioner", "murmur2_random"}};
  if (idempotent) settings["enable.idempotence"] = "true";
  auto conf = make_conf(config, client_id, settings);
  if (!conf) return conf.error();
  rd_kafka_conf_t* c = *conf;
  rd_kafka_conf_set_dr_msg_cb(c, delivery_report);
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, errstr, sizeof errstr);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(c);
    return Error{ErrorKind::kPermanent, "kafka_config", errstr};
  }
  return std::unique_ptr<KafkaProducer>(std::make_unique<RdKafkaProducer>(rk));
}

namespace {

class RdKafkaTopicTail final : public TopicTail {
 public:
  RdKafkaTopicTail(RdKafkaPtr rk, std::string topic) : rk_(std::move(rk)), topic_(std::move(topic)) {}
  ~RdKafkaTopicTail() override { rd_kafka_consumer_close(rk_.get()); }

  std::vector<KafkaMessage> poll(Duration wait) override {
    std::vector<KafkaMessage> out;
    int timeout = static_cast<int>(wait.count());
    while (rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_.get(), timeout)) {
      timeout = 0;
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) out.push_back(to_message(topic_, m));
      rd_kafka_message_destroy(m);
    }
    return out;
  }

 private:
  RdKafkaPtr rk_;
  std::string topic_;
};

}  // namespace

Result<std::unique_ptr<TopicTail>> TopicTail::open(const KafkaConfig& config,
                                                   const std::string& topic, Duration timeout) {
  auto conf = make_conf(config, "brickwork-cli-tail",
                        {{"group.id", "brickwork-cli-tail"}, {"enable.auto.commit", "false"}});
  if (!conf) return conf.error();
  char errstr[512];
  RdKafkaPtr rk(rd_kafka_new(RD_KAFKA_CONSUMER, *conf, errstr, sizeof errstr), &rd_kafka_destroy);
  if (!rk) return Error{ErrorKind::kPermanent, "kafka_config", errstr};
  auto marks = watermarks(rk.get(), topic, timeout);
  if (!marks) return marks.error();
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(static_cast<int>(marks->size()));
  for (const auto& [p, w] : *marks) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = w.high;
  }
  rd_kafka_assign(rk.get(), list);
  rd_kafka_topic_partition_list_destroy(list);
  return std::unique_ptr<TopicTail>(std::make_unique<RdKafkaTopicTail>(std::move(rk), topic));
}

}  // namespace brickwork
