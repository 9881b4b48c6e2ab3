#include "daemon/kafka/kafka_admin.hpp"

#include <librdkafka/rdkafka.h>

#include <memory>
#include <mutex>

#include "daemon/kafka/rdkafka_detail.hpp"

namespace brickwork {
namespace {

using kafka_detail::RdKafkaPtr;

// What the client saw go wrong while it tried (connection refused, SASL
// failure, ...): librdkafka reports it through the error callback, not
// through the metadata call's result, which only says "timed out".
struct AdminErrors {
  std::mutex mutex;
  std::string first;
};

void record_admin_error(rd_kafka_t*, int err, const char* reason, void* opaque) {
  auto* errors = static_cast<AdminErrors*>(opaque);
  // "N/N brokers are down" repeats what the first error already said.
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) return;
  std::lock_guard lock(errors->mutex);
  if (errors->first.empty()) errors->first = reason;
}

// A one-off admin client: the errors it meets are reported by the caller,
// so its log lines would only repeat them on stderr.
void silent_log(const rd_kafka_t*, int, const char*, const char*) {}

struct AdminClient {
  std::unique_ptr<AdminErrors> errors = std::make_unique<AdminErrors>();
  RdKafkaPtr rk{nullptr, &rd_kafka_destroy};

  // The call's own error, with what the client saw as its reason.
  Error failure(const std::string& code, rd_kafka_resp_err_t err) {
    rd_kafka_poll(rk.get(), 0);  // serves the error callbacks queued so far
    std::lock_guard lock(errors->mutex);
    std::string message = rd_kafka_err2str(err);
    if (!errors->first.empty()) message += " (" + errors->first + ")";
    return kafka_detail::kafka_error(code, message);
  }
};

Result<std::unique_ptr<AdminClient>> open_admin_client(const KafkaConfig& config) {
  auto conf = kafka_detail::make_conf(config, "brickwork-admin", {});
  if (!conf) return conf.error();
  auto client = std::make_unique<AdminClient>();
  rd_kafka_conf_set_opaque(*conf, client->errors.get());
  rd_kafka_conf_set_error_cb(*conf, &record_admin_error);
  rd_kafka_conf_set_log_cb(*conf, &silent_log);
  char errstr[512];
  client->rk.reset(rd_kafka_new(RD_KAFKA_PRODUCER, *conf, errstr, sizeof errstr));
  if (!client->rk) {
    rd_kafka_conf_destroy(*conf);
    return Error{ErrorKind::kPermanent, "kafka_config", errstr};
  }
  return client;
}

Result<KafkaClusterView> describe_with(AdminClient& client, Duration timeout) {
  const rd_kafka_metadata_t* metadata = nullptr;
  const rd_kafka_resp_err_t err = rd_kafka_metadata(client.rk.get(), 1, nullptr, &metadata,
                                                    static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return client.failure("kafka_metadata", err);
  KafkaClusterView view;
  view.brokers = metadata->broker_cnt;
  for (int i = 0; i < metadata->topic_cnt; ++i) {
    const rd_kafka_metadata_topic_t& t = metadata->topics[i];
    if (t.err == RD_KAFKA_RESP_ERR_NO_ERROR) view.partitions_by_topic[t.topic] = t.partition_cnt;
  }
  rd_kafka_metadata_destroy(metadata);
  return view;
}

using NewTopicPtr = std::unique_ptr<rd_kafka_NewTopic_t, decltype(&rd_kafka_NewTopic_destroy)>;
using AdminOptionsPtr =
    std::unique_ptr<rd_kafka_AdminOptions_t, decltype(&rd_kafka_AdminOptions_destroy)>;
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, decltype(&rd_kafka_queue_destroy)>;
using EventPtr = std::unique_ptr<rd_kafka_event_t, decltype(&rd_kafka_event_destroy)>;

}  // namespace

Status check_kafka_properties(const KafkaConfig& config) {
  auto conf = kafka_detail::make_conf(config, "brickwork-check", {});
  if (!conf) return conf.error();
  rd_kafka_conf_destroy(*conf);
  return ok_status();
}

Result<KafkaClusterView> describe_kafka_cluster(const KafkaConfig& config, Duration timeout) {
  auto client = open_admin_client(config);
  if (!client) return client.error();
  return describe_with(**client, timeout);
}

Result<std::vector<TopicCreation>> create_missing_topics(const KafkaConfig& config,
                                                         const std::vector<std::string>& topics,
                                                         int32_t partitions, Duration timeout) {
  auto client = open_admin_client(config);
  if (!client) return client.error();
  auto view = describe_with(**client, timeout);
  if (!view) return view.error();
  std::vector<TopicCreation> out;
  std::vector<NewTopicPtr> wanted;
  char errstr[512];
  for (const auto& topic : topics) {
    TopicCreation entry;
    entry.topic = topic;
    if (auto it = view->partitions_by_topic.find(topic); it != view->partitions_by_topic.end()) {
      entry.outcome = TopicCreation::Outcome::kExisted;
      entry.partitions = it->second;
    } else {
      entry.partitions = partitions;
      // -1: the broker's default.replication.factor, which the operator set for this cluster.
      NewTopicPtr t(rd_kafka_NewTopic_new(topic.c_str(), partitions, -1, errstr, sizeof errstr),
                    &rd_kafka_NewTopic_destroy);
      if (!t) {
        entry.error = errstr;
      } else {
        wanted.push_back(std::move(t));
      }
    }
    out.push_back(std::move(entry));
  }
  if (wanted.empty()) return out;

  rd_kafka_t* rk = (*client)->rk.get();
  QueuePtr queue(rd_kafka_queue_new(rk), &rd_kafka_queue_destroy);
  AdminOptionsPtr options(rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS),
                          &rd_kafka_AdminOptions_destroy);
  const int ms = static_cast<int>(timeout.count());
  rd_kafka_AdminOptions_set_request_timeout(options.get(), ms, errstr, sizeof errstr);
  // Wait until the topics are created (not only accepted) on the controller.
  rd_kafka_AdminOptions_set_operation_timeout(options.get(), ms, errstr, sizeof errstr);
  std::vector<rd_kafka_NewTopic_t*> raw;
  for (auto& t : wanted) raw.push_back(t.get());
  rd_kafka_CreateTopics(rk, raw.data(), raw.size(), options.get(), queue.get());
  // The request itself times out after `timeout`; the margin lets its result arrive.
  EventPtr event(rd_kafka_queue_poll(queue.get(), ms + 5000), &rd_kafka_event_destroy);
  if (!event) {
    return (*client)->failure("kafka_create_topics", RD_KAFKA_RESP_ERR__TIMED_OUT);
  }
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    // The whole request failed (no controller, CreateTopics not supported, ...).
    const std::string reason = rd_kafka_event_error_string(event.get());
    for (auto& entry : out) {
      if (entry.outcome != TopicCreation::Outcome::kExisted) {
        entry.outcome = TopicCreation::Outcome::kFailed;
        entry.error = reason;
      }
    }
    return out;
  }
  const rd_kafka_CreateTopics_result_t* result = rd_kafka_event_CreateTopics_result(event.get());
  size_t count = 0;
  const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(result, &count);
  std::map<std::string, std::pair<rd_kafka_resp_err_t, std::string>> by_topic;
  for (size_t i = 0; i < count; ++i) {
    const char* message = rd_kafka_topic_result_error_string(results[i]);
    by_topic[rd_kafka_topic_result_name(results[i])] = {
        rd_kafka_topic_result_error(results[i]), message != nullptr ? message : ""};
  }
  for (auto& entry : out) {
    if (entry.outcome == TopicCreation::Outcome::kExisted || !entry.error.empty()) continue;
    auto it = by_topic.find(entry.topic);
    if (it == by_topic.end()) {
      entry.error = "no answer for this topic";
    } else if (it->second.first == RD_KAFKA_RESP_ERR_NO_ERROR) {
      entry.outcome = TopicCreation::Outcome::kCreated;
    } else if (it->second.first == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      entry.outcome = TopicCreation::Outcome::kExisted;  // created meanwhile by someone else
    } else {
      entry.error = it->second.second.empty() ? rd_kafka_err2str(it->second.first)
                                              : it->second.second;
    }
  }
  return out;
}

}  // namespace brickwork
