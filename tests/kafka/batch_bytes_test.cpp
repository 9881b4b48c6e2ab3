// poll_batch's byte bound against librdkafka's mock cluster: a batch stops
// growing once it holds max_bytes, however many messages are fetched.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "daemon/kafka/kafka.hpp"
#include "devstack/mock_kafka.hpp"

namespace brickwork {
namespace {

using namespace std::chrono_literals;

TEST(KafkaBatchBytes, ABatchStopsOnceItHoldsMaxBytesAndNothingIsLost) {
  auto cluster = MockKafkaCluster::create(1);
  ASSERT_TRUE(cluster) << cluster.error().message;
  ASSERT_TRUE((*cluster)->create_topic("in", 1));
  KafkaConfig config;
  config.brokers = (*cluster)->bootstrap_servers();
  config.group = "bytes";
  auto producer = KafkaProducer::create(config, true, "p");
  ASSERT_TRUE(producer) << producer.error().message;
  constexpr int kMessages = 20;
  constexpr size_t kBytes = 100'000;
  std::vector<ProducerRecord> records;
  for (int i = 0; i < kMessages; ++i) records.push_back({"in", "k", std::string(kBytes, 'a' + i)});
  ASSERT_TRUE((*producer)->produce_and_wait(records, 10s));

  auto consumer = KafkaConsumer::create(config, {"in"}, "c");
  ASSERT_TRUE(consumer) << consumer.error().message;
  std::vector<KafkaMessage> got = (*consumer)->poll_batch(1, 20s);
  ASSERT_EQ(got.size(), 1u);
  std::this_thread::sleep_for(2s);  // the rest prefetched: all could come at once
  // 2 messages (plus keys) are under 250,000 bytes, the third passes it: the batch ends there.
  const auto batch = (*consumer)->poll_batch(500, 100ms, 250'000);
  EXPECT_EQ(batch.size(), 3u);
  got.insert(got.end(), batch.begin(), batch.end());
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (got.size() < kMessages && std::chrono::steady_clock::now() < deadline) {
    const auto more = (*consumer)->poll_batch(500, 100ms, 250'000);
    EXPECT_LE(more.size(), 3u);
    got.insert(got.end(), more.begin(), more.end());
  }
  ASSERT_EQ(got.size(), static_cast<size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i) EXPECT_EQ(got[i].payload[0], 'a' + i) << i;
  (*consumer)->close();
}

}  // namespace
}  // namespace brickwork
