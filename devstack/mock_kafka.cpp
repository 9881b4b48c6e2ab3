#include "devstack/mock_kafka.hpp"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "daemon/kafka/rdkafka_detail.hpp"
#include "devstack/mock_kafka_no_delay.hpp"

namespace brickwork {
namespace {

class RdKafkaMockCluster final : public MockKafkaCluster {
 public:
  RdKafkaMockCluster(rd_kafka_t* rk, rd_kafka_mock_cluster_t* cluster, int32_t brokers)
      : rk_(rk), cluster_(cluster), brokers_(brokers), ports_(ports_of(bootstrap_servers())) {
    // As a real broker answers: each response at once (mock_kafka_no_delay.cpp).
    for (uint16_t port : ports_) devstack_detail::answer_at_once_on(port);
  }
  ~RdKafkaMockCluster() override {
    rd_kafka_mock_cluster_destroy(cluster_);
    rd_kafka_destroy(rk_);
    for (uint16_t port : ports_) devstack_detail::forget_listener(port);
  }
  std::string bootstrap_servers() const override {
    return rd_kafka_mock_cluster_bootstraps(cluster_);
  }
  Status create_topic(const std::string& topic, int32_t partitions) override {
    const int32_t replication = std::min<int32_t>(brokers_, 3);
    const rd_kafka_resp_err_t err =
        rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, replication);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka_detail::kafka_error("kafka_mock", rd_kafka_err2str(err));
    }
    return ok_status();
  }
  Status set_broker_down(int32_t broker_id) override {
    const rd_kafka_resp_err_t err = rd_kafka_mock_broker_set_down(cluster_, broker_id);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka_detail::kafka_error("kafka_mock", rd_kafka_err2str(err));
    }
    return ok_status();
  }
  Status set_broker_up(int32_t broker_id) override {
    const rd_kafka_resp_err_t err = rd_kafka_mock_broker_set_up(cluster_, broker_id);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka_detail::kafka_error("kafka_mock", rd_kafka_err2str(err));
    }
    return ok_status();
  }
  int32_t broker_count() const override { return brokers_; }
  void push_request_errors(int16_t api_key, int32_t count, int32_t error) override {
    std::vector<rd_kafka_resp_err_t> errors(static_cast<size_t>(count),
                                            static_cast<rd_kafka_resp_err_t>(error));
    rd_kafka_mock_push_request_errors_array(cluster_, api_key, errors.size(), errors.data());
  }
  void set_topic_error(const std::string& topic, int32_t error) override {
    rd_kafka_mock_topic_set_error(cluster_, topic.c_str(), static_cast<rd_kafka_resp_err_t>(error));
  }
  Status set_partition_leader(const std::string& topic, int32_t partition,
                              int32_t broker_id) override {
    const rd_kafka_resp_err_t err =
        rd_kafka_mock_partition_set_leader(cluster_, topic.c_str(), partition, broker_id);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka_detail::kafka_error("kafka_mock", rd_kafka_err2str(err));
    }
    return ok_status();
  }

 private:
  // The ports of "host:port,host:port".
  static std::vector<uint16_t> ports_of(const std::string& bootstraps) {
    std::vector<uint16_t> ports;
    size_t start = 0;
    while (start < bootstraps.size()) {
      size_t end = bootstraps.find(',', start);
      if (end == std::string::npos) end = bootstraps.size();
      const std::string address = bootstraps.substr(start, end - start);
      if (const size_t colon = address.rfind(':'); colon != std::string::npos) {
        ports.push_back(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
      }
      start = end + 1;
    }
    return ports;
  }

  rd_kafka_t* rk_;
  rd_kafka_mock_cluster_t* cluster_;
  int32_t brokers_;
  std::vector<uint16_t> ports_;
};

}  // namespace

Result<std::unique_ptr<MockKafkaCluster>> MockKafkaCluster::create(int32_t brokers) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return Error{ErrorKind::kInternal, "kafka_mock", errstr};
  }
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(rk, brokers);
  if (cluster == nullptr) {
    rd_kafka_destroy(rk);
    return Error{ErrorKind::kInternal, "kafka_mock", "could not start the mock cluster"};
  }
  return std::unique_ptr<MockKafkaCluster>(
      std::make_unique<RdKafkaMockCluster>(rk, cluster, brokers));
}

Result<std::vector<KafkaMessage>> read_topic(const std::string& brokers, const std::string& topic,
                                             Duration timeout) {
  KafkaConfig config;
  config.brokers = brokers;
  auto conf =
      kafka_detail::make_conf(config, "brickwork-reader",
                              {{"group.id", "brickwork-reader"}, {"enable.auto.commit", "false"}});
  if (!conf) return conf.error();
  char errstr[512];
  kafka_detail::RdKafkaPtr rk(rd_kafka_new(RD_KAFKA_CONSUMER, *conf, errstr, sizeof errstr),
                              &rd_kafka_destroy);
  if (!rk) return Error{ErrorKind::kPermanent, "kafka_config", errstr};
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto marks = kafka_detail::watermarks(rk.get(), topic, timeout);
  if (!marks) return marks.error();
  std::map<int32_t, int64_t> high;
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(static_cast<int>(marks->size()));
  for (const auto& [p, w] : *marks) {
    if (w.high > w.low) {
      high[p] = w.high;
      rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = w.low;
    }
  }
  rd_kafka_assign(rk.get(), list);
  rd_kafka_topic_partition_list_destroy(list);
  std::vector<KafkaMessage> out;
  std::map<int32_t, int64_t> next;
  auto done = [&] {
    for (const auto& [p, hi] : high) {
      if (next[p] < hi) return false;
    }
    return true;
  };
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk.get(), 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      next[m->partition] = m->offset + 1;
      out.push_back(kafka_detail::to_message(topic, m));
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk.get());
  if (!done()) return kafka_detail::kafka_error("kafka_timeout", "could not read all of " + topic);
  return out;
}

}  // namespace brickwork
