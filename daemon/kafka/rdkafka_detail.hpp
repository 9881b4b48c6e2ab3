#pragma once
// The librdkafka plumbing under kafka.cpp: configurations with every conf_set
// checked, owning client handles, a topic's watermarks and messages copied out
// of librdkafka. The product reaches Kafka only through kafka.hpp; this header
// is for code that drives librdkafka itself on the same terms (the development
// tools' mock cluster and topic reader).
#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "daemon/core/result.hpp"
#include "daemon/core/time.hpp"
#include "daemon/kafka/kafka.hpp"

namespace brickwork::kafka_detail {

// A client handle that rd_kafka_destroy releases.
using RdKafkaPtr = std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)>;

// An error of kind kTransient.
Error kafka_error(std::string code, std::string message);

// A librdkafka configuration: bootstrap.servers and client.id from `config`
// and `client_id`, then `settings`, then config.properties (last, so SASL, TLS
// and tuning can be set from the file). Every conf_set result is checked: a
// property librdkafka refuses is a kPermanent "kafka_config" error. The caller
// owns the configuration until rd_kafka_new takes it.
Result<rd_kafka_conf_t*> make_conf(const KafkaConfig& config, const std::string& client_id,
                                   const std::map<std::string, std::string>& settings);

// `m`, received from `topic`, copied out of librdkafka.
KafkaMessage to_message(const std::string& topic, const rd_kafka_message_t* m);

struct Watermarks {
  int64_t low = 0;
  int64_t high = 0;  // the next offset to be written
};

// The partitions of `topic` with their watermarks; each request waits at most
// `timeout`.
Result<std::map<int32_t, Watermarks>> watermarks(rd_kafka_t* rk, const std::string& topic,
                                                 Duration timeout);

}  // namespace brickwork::kafka_detail
