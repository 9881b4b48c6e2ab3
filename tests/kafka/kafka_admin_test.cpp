// The operator's Kafka calls (check, migrate --topics) and the producer's
// partitioner, against librdkafka's mock cluster.
#include "daemon/kafka/kafka_admin.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <map>

#include "daemon/kafka/kafka.hpp"
#include "devstack/mock_kafka.hpp"

namespace brickwork {
namespace {

using namespace std::chrono_literals;

// Kafka's Java client: org.apache.kafka.common.utils.Utils.murmur2, written
// from its definition (32-bit arithmetic, unsigned shifts).
int32_t java_murmur2(const std::string& key) {
  const auto* data = reinterpret_cast<const uint8_t*>(key.data());
  const uint32_t length = static_cast<uint32_t>(key.size());
  const uint32_t m = 0x5bd1e995;
  uint32_t h = 0x9747b28c ^ length;
  for (uint32_t i = 0; i + 4 <= length; i += 4) {
    uint32_t k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) |
                 (static_cast<uint32_t>(data[i + 3]) << 24);
    k *= m;
    k ^= k >> 24;
    k *= m;
    h *= m;
    h ^= k;
  }
  const uint32_t tail = length & ~3u;
  switch (length % 4) {
    case 3: h ^= static_cast<uint32_t>(data[tail + 2]) << 16; [[fallthrough]];
    case 2: h ^= static_cast<uint32_t>(data[tail + 1]) << 8; [[fallthrough]];
    case 1: h ^= data[tail]; h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return static_cast<int32_t>(h);
}

// The Java producer's partition for a keyed record: toPositive(murmur2) % n.
int32_t java_partition(const std::string& key, int32_t partitions) {
  return static_cast<int32_t>(static_cast<uint32_t>(java_murmur2(key)) & 0x7fffffffu) %
         partitions;
}

TEST(JavaMurmur2, MatchesKafkasPublishedVectors) {
  // From Kafka's UtilsTest.testMurmur2.
  EXPECT_EQ(java_murmur2("21"), -973932308);
  EXPECT_EQ(java_murmur2("foobar"), -790332482);
  EXPECT_EQ(java_murmur2("a-little-bit-long-string"), -985981536);
  EXPECT_EQ(java_murmur2("a-little-bit-longer-string"), -1486304829);
  EXPECT_EQ(java_murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
  EXPECT_EQ(java_murmur2("abc"), 479470107);
}

class KafkaAdminTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = MockKafkaCluster::create(3);
    ASSERT_TRUE(cluster) << cluster.error().message;
    cluster_ = std::move(*cluster);
    config_.brokers = cluster_->bootstrap_servers();
  }
  std::unique_ptr<MockKafkaCluster> cluster_;
  KafkaConfig config_;
};

// The daemon's and the CLI's producer (KafkaProducer) put a key where a Java
// producer would, so a Java service and brickwork agree on a workflow's
// partition.
TEST_F(KafkaAdminTest, ProducerPartitionsKeysAsTheJavaProducerDoes) {
  ASSERT_TRUE(cluster_->create_topic("keyed", 12));
  auto producer = KafkaProducer::create(config_, true, "partitioner-test");
  ASSERT_TRUE(producer) << producer.error().message;
  std::vector<ProducerRecord> records;
  for (const std::string key : {"order-4711", "a", "21", "foobar", "daily_ingest-0001",
                                "x.y:z-9", "brickwork", "order-4712", "order-4713"}) {
    records.push_back({"keyed", key, "{}"});
  }
  ASSERT_TRUE((*producer)->produce_and_wait(records, 10s));
  auto read = read_topic(config_.brokers, "keyed", 20s);
  ASSERT_TRUE(read) << read.error().message;
  ASSERT_EQ(read->size(), records.size());
  std::map<int32_t, int> used;
  for (const auto& m : *read) {
    ASSERT_TRUE(m.key);
    EXPECT_EQ(m.partition, java_partition(*m.key, 12)) << *m.key;
    ++used[m.partition];
  }
  EXPECT_GT(used.size(), 1u);  // not all on one partition by accident
}

TEST_F(KafkaAdminTest, UnknownOrRefusedPropertiesAreNamed) {
  EXPECT_TRUE(check_kafka_properties(config_));
  config_.properties["security.protocol"] = "SASL_SSL";
  config_.properties["sasl.mechanism"] = "PLAIN";
  EXPECT_TRUE(check_kafka_properties(config_));
  config_.properties["sasl.mechanisms.typo"] = "PLAIN";
  Status unknown = check_kafka_properties(config_);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, "kafka_config");
  EXPECT_NE(unknown.error().message.find("sasl.mechanisms.typo"), std::string::npos)
      << unknown.error().message;
  config_.properties.erase("sasl.mechanisms.typo");
  config_.properties["acks"] = "sometimes";
  Status bad_value = check_kafka_properties(config_);
  ASSERT_FALSE(bad_value);
  EXPECT_NE(bad_value.error().message.find("acks"), std::string::npos);
}

TEST_F(KafkaAdminTest, DescribesTheClusterOrSaysWhyItCannot) {
  ASSERT_TRUE(cluster_->create_topic("present", 5));
  auto view = describe_kafka_cluster(config_, 10s);
  ASSERT_TRUE(view) << view.error().message;
  EXPECT_EQ(view->brokers, 3);
  EXPECT_EQ(view->partitions_by_topic.at("present"), 5);

  KafkaConfig nowhere;
  nowhere.brokers = "127.0.0.1:1";
  auto down = describe_kafka_cluster(nowhere, 2s);
  ASSERT_FALSE(down);
  EXPECT_TRUE(down.error().transient());
  EXPECT_NE(down.error().message.find("127.0.0.1:1"), std::string::npos) << down.error().message;
}

// librdkafka 2.0's mock cluster does not implement CreateTopics, so this
// shows the other half of the contract: existing topics are left alone and
// reported, and a broker's refusal is reported per topic, not hidden.
TEST_F(KafkaAdminTest, ExistingTopicsAreLeftAloneAndARefusalIsReported) {
  ASSERT_TRUE(cluster_->create_topic("t.commands", 4));
  auto all_there = create_missing_topics(config_, {"t.commands"}, 12, 5s);
  ASSERT_TRUE(all_there) << all_there.error().message;
  ASSERT_EQ(all_there->size(), 1u);
  EXPECT_EQ(all_there->at(0).outcome, TopicCreation::Outcome::kExisted);
  EXPECT_EQ(all_there->at(0).partitions, 4);  // not changed to 12

  auto mixed = create_missing_topics(config_, {"t.commands", "t.status"}, 12, 5s);
  ASSERT_TRUE(mixed) << mixed.error().message;
  ASSERT_EQ(mixed->size(), 2u);
  EXPECT_EQ(mixed->at(0).outcome, TopicCreation::Outcome::kExisted);
  EXPECT_EQ(mixed->at(1).topic, "t.status");
  EXPECT_EQ(mixed->at(1).outcome, TopicCreation::Outcome::kFailed);
  EXPECT_FALSE(mixed->at(1).error.empty());
  auto after = describe_kafka_cluster(config_, 10s);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->partitions_by_topic.at("t.commands"), 4);
}

}  // namespace
}  // namespace brickwork
