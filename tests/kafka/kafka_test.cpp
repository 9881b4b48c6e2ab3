// The Kafka adapters against librdkafka's mock cluster: a real
// Kafka-protocol broker on loopback.
#include "daemon/kafka/kafka.hpp"
#include "devstack/mock_kafka.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <thread>

namespace brickwork {
namespace {

using namespace std::chrono_literals;

class KafkaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = MockKafkaCluster::create(3);
    ASSERT_TRUE(cluster) << cluster.error().message;
    cluster_ = std::move(*cluster);
    ASSERT_TRUE(cluster_->create_topic("in", 4));
    config_.brokers = cluster_->bootstrap_servers();
    config_.group = "test-group";
  }

  std::vector<KafkaMessage> consume_until(KafkaConsumer& consumer, size_t count,
                                          Duration limit = 20s) {
    std::vector<KafkaMessage> got;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (got.size() < count && std::chrono::steady_clock::now() < deadline) {
      auto batch = consumer.poll_batch(100, 100ms);
      got.insert(got.end(), batch.begin(), batch.end());
    }
    return got;
  }

  std::unique_ptr<MockKafkaCluster> cluster_;
  KafkaConfig config_;
};

TEST_F(KafkaTest, ProducedRecordsAreConsumedWithKeysAndCommittedOffsetsHold) {
  auto producer = KafkaProducer::create(config_, true, "p");
  ASSERT_TRUE(producer) << producer.error().message;
  std::vector<ProducerRecord> records;
  for (int i = 0; i < 50; ++i) {
    records.push_back({"in", "key-" + std::to_string(i % 7), "value-" + std::to_string(i)});
  }
  ASSERT_TRUE((*producer)->produce_and_wait(records, 10s));

  {
    auto consumer = KafkaConsumer::create(config_, {"in"}, "c1");
    ASSERT_TRUE(consumer) << consumer.error().message;
    auto got = consume_until(**consumer, 50);
    ASSERT_EQ(got.size(), 50u);
    std::set<std::string> values;
    for (const auto& m : got) {
      values.insert(m.payload);
      ASSERT_TRUE(m.key.has_value());
    }
    EXPECT_EQ(values.size(), 50u);
    // Commit only the first 20 by partition order: the rest must come again.
    std::vector<KafkaMessage> first;
    std::map<int32_t, int64_t> last_offset;
    for (const auto& m : got) last_offset[m.partition] = std::max(last_offset[m.partition], m.offset);
    (*consumer)->commit(got);
    std::this_thread::sleep_for(500ms);
    (*consumer)->close();
  }
  ASSERT_TRUE((*producer)->produce_and_wait({{"in", "k", "late"}}, 10s));
  auto consumer = KafkaConsumer::create(config_, {"in"}, "c2");
  ASSERT_TRUE(consumer);
  auto got = consume_until(**consumer, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "late");
}

TEST_F(KafkaTest, SameKeyLandsInOnePartitionInOrder) {
  auto producer = KafkaProducer::create(config_, true, "p");
  ASSERT_TRUE(producer);
  std::vector<ProducerRecord> records;
  for (int i = 0; i < 30; ++i) records.push_back({"in", "order-1", std::to_string(i)});
  ASSERT_TRUE((*producer)->produce_and_wait(records, 10s));
  auto got = read_topic(config_.brokers, "in", 10s);
  ASSERT_TRUE(got) << got.error().message;
  ASSERT_EQ(got->size(), 30u);
  for (size_t i = 0; i < got->size(); ++i) {
    EXPECT_EQ((*got)[i].partition, (*got)[0].partition);
    EXPECT_EQ((*got)[i].payload, std::to_string(i));
  }
}

TEST_F(KafkaTest, PausedConsumerReceivesNothingUntilResumed) {
  auto producer = KafkaProducer::create(config_, true, "p");
  ASSERT_TRUE(producer);
  auto consumer = KafkaConsumer::create(config_, {"in"}, "c");
  ASSERT_TRUE(consumer);
  ASSERT_TRUE((*producer)->produce_and_wait({{"in", "a", "1"}}, 10s));
  ASSERT_EQ(consume_until(**consumer, 1).size(), 1u);
  (*consumer)->pause();
  ASSERT_TRUE((*producer)->produce_and_wait({{"in", "a", "2"}}, 10s));
  EXPECT_TRUE(consume_until(**consumer, 1, 2s).empty());
  (*consumer)->resume();
  auto got = consume_until(**consumer, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "2");
}

TEST_F(KafkaTest, ProduceFailsWhileAllBrokersAreDownAndWorksAfter) {
  auto producer = KafkaProducer::create(config_, true, "p");
  ASSERT_TRUE(producer);
  ASSERT_TRUE((*producer)->produce_and_wait({{"in", "a", "before"}}, 10s));
  for (int32_t b = 1; b <= cluster_->broker_count(); ++b) ASSERT_TRUE(cluster_->set_broker_down(b));
  EXPECT_FALSE((*producer)->produce_and_wait({{"in", "a", "during"}}, 2s));
  for (int32_t b = 1; b <= cluster_->broker_count(); ++b) ASSERT_TRUE(cluster_->set_broker_up(b));
  Status after = (*producer)->produce_and_wait({{"in", "a", "after"}}, 30s);
  ASSERT_TRUE(after) << after.error().message;
  auto got = read_topic(config_.brokers, "in", 10s);
  ASSERT_TRUE(got);
  std::vector<std::string> values;
  for (const auto& m : *got) values.push_back(m.payload);
  EXPECT_EQ(values.front(), "before");
  EXPECT_EQ(values.back(), "after");
  // The purged record must not have gone out later.
  EXPECT_EQ(std::count(values.begin(), values.end(), "during"), 0);
}

TEST_F(KafkaTest, BadPropertyIsAClearError) {
  config_.properties["no.such.property"] = "1";
  auto producer = KafkaProducer::create(config_, true, "p");
  ASSERT_FALSE(producer);
  EXPECT_NE(producer.error().message.find("no.such.property"), std::string::npos);
}

// A record no broker takes is reported by index and the rest of the batch is
// delivered, instead of the whole batch failing (and being retried) forever.
TEST_F(KafkaTest, ARecordRefusedForGoodIsReportedAndTheRestIsDelivered) {
  auto producer = KafkaProducer::create(config_, true, "p");
  ASSERT_TRUE(producer) << producer.error().message;
  const BatchDelivery delivery = (*producer)->produce_batch(
      {{"in", "a", "before"}, {"in", "b", std::string(2'000'000, 'x')}, {"in", "c", "after"}}, 10s);
  EXPECT_TRUE(delivery.unconfirmed.empty());
  ASSERT_EQ(delivery.refused.size(), 1u);
  EXPECT_EQ(delivery.refused[0].index, 1u);
  EXPECT_EQ(delivery.refused[0].error.kind, ErrorKind::kPermanent);
  auto got = read_topic(config_.brokers, "in", 20s);
  ASSERT_TRUE(got) << got.error().message;
  std::multiset<std::string> values;
  for (const auto& m : *got) values.insert(m.payload);
  EXPECT_EQ(values, (std::multiset<std::string>{"before", "after"}));
  // The all-or-nothing form calls that an error, a permanent one.
  Status whole = (*producer)->produce_and_wait({{"in", "b", std::string(2'000'000, 'x')}}, 10s);
  ASSERT_FALSE(whole);
  EXPECT_FALSE(whole.error().transient());
}

// Issue 16: a topic the cluster will not let us write (its metadata says
// TOPIC_AUTHORIZATION_FAILED; librdkafka alone would hold its records until
// message.timeout.ms) is refused for good, quickly, and the rest delivered.
TEST_F(KafkaTest, ATopicWeMayNotWriteIsRefusedAndTheRestIsDelivered) {
  cluster_->set_topic_error("denied", 29 /* RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED */);
  auto producer = KafkaProducer::create(config_, true, "p");
  ASSERT_TRUE(producer) << producer.error().message;
  const auto start = std::chrono::steady_clock::now();
  const BatchDelivery delivery = (*producer)->produce_batch(
      {{"in", "a", "before"}, {"denied", "x", "refused"}, {"in", "c", "after"}}, 30s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_TRUE(delivery.unconfirmed.empty());
  ASSERT_EQ(delivery.refused.size(), 1u);
  EXPECT_EQ(delivery.refused[0].index, 1u);
  EXPECT_EQ(delivery.refused[0].error.kind, ErrorKind::kPermanent);
  EXPECT_NE(delivery.refused[0].error.message.find("denied"), std::string::npos)
      << delivery.refused[0].error.message;
  auto got = read_topic(config_.brokers, "in", 20s);
  ASSERT_TRUE(got) << got.error().message;
  std::multiset<std::string> values;
  for (const auto& m : *got) values.insert(m.payload);
  EXPECT_EQ(values, (std::multiset<std::string>{"before", "after"}));
}

// A topic that does not exist where auto-creation is off (the mock answers
// UNKNOWN_TOPIC_OR_PART) is refused once its metadata had time to propagate.
TEST_F(KafkaTest, ATopicThatDoesNotExistIsRefusedAfterMetadataPropagation) {
  cluster_->set_topic_error("missing", 3 /* RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART */);
  config_.properties["topic.metadata.propagation.max.ms"] = "1000";
  auto producer = KafkaProducer::create(config_, true, "p");
  ASSERT_TRUE(producer) << producer.error().message;
  const auto start = std::chrono::steady_clock::now();
  BatchDelivery delivery =
      (*producer)->produce_batch({{"in", "a", "1"}, {"missing", "x", "lost"}}, 30s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_TRUE(delivery.unconfirmed.empty());
  ASSERT_EQ(delivery.refused.size(), 1u);
  EXPECT_EQ(delivery.refused[0].index, 1u);
  // librdkafka now knows the topic is missing: the next record is refused at once.
  delivery = (*producer)->produce_batch({{"missing", "x", "again"}}, 30s);
  ASSERT_EQ(delivery.refused.size(), 1u);
  EXPECT_TRUE(delivery.unconfirmed.empty());
}

// A record that waits longer than the timeout (its partition has no leader)
// is unconfirmed, with the later record of its key, while the others are
// delivered; sent again once the partition has a leader, each record of
// that key is on the topic once and in order, and the acknowledged ones
// were never sent twice.
TEST_F(KafkaTest, ARecordThatWaitsIsUnconfirmedAloneAndSentOnceLater) {
  ASSERT_TRUE(cluster_->create_topic("slow", 1));
  ASSERT_TRUE(cluster_->set_partition_leader("slow", 0, -1));
  auto producer = KafkaProducer::create(config_, true, "p");
  ASSERT_TRUE(producer) << producer.error().message;
  BatchDelivery delivery = (*producer)->produce_batch(
      {{"in", "a", "1"}, {"slow", "k", "s1"}, {"in", "b", "2"}, {"slow", "k", "s2"}}, 2s);
  EXPECT_TRUE(delivery.refused.empty());
  EXPECT_EQ(delivery.unconfirmed, (std::vector<size_t>{1, 3}));
  ASSERT_TRUE(delivery.unconfirmed_reason.has_value());
  EXPECT_TRUE(delivery.unconfirmed_reason->transient());

  ASSERT_TRUE(cluster_->set_partition_leader("slow", 0, 1));
  delivery = (*producer)->produce_batch({{"slow", "k", "s1"}, {"slow", "k", "s2"}}, 20s);
  EXPECT_TRUE(delivery.refused.empty());
  EXPECT_TRUE(delivery.unconfirmed.empty());
  auto slow = read_topic(config_.brokers, "slow", 20s);
  ASSERT_TRUE(slow) << slow.error().message;
  std::vector<std::string> values;
  for (const auto& m : *slow) values.push_back(m.payload);
  EXPECT_EQ(values, (std::vector<std::string>{"s1", "s2"}));
  auto in = read_topic(config_.brokers, "in", 20s);
  ASSERT_TRUE(in) << in.error().message;
  EXPECT_EQ(in->size(), 2u);
}

TEST_F(KafkaTest, FatalErrorsAreReportedByBothClients) {
  auto producer = KafkaProducer::create(config_, true, "p");
  ASSERT_TRUE(producer);
  EXPECT_FALSE((*producer)->fatal_error());
  (*producer)->inject_fatal_error_for_testing();
  EXPECT_TRUE((*producer)->fatal_error());
  auto consumer = KafkaConsumer::create(config_, {"in"}, "c1");
  ASSERT_TRUE(consumer);
  EXPECT_FALSE((*consumer)->fatal_error());
  (*consumer)->inject_fatal_error_for_testing();
  EXPECT_TRUE((*consumer)->fatal_error());
}

}  // namespace
}  // namespace brickwork
