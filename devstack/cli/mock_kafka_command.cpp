// `brickwork mock-kafka`: librdkafka's mock cluster as a process of its own,
// for a development stack without a Kafka image (scripts/docker-test.sh runs
// the compose file against it). Not a broker: data lives in memory only.
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "daemon/cli/commands.hpp"
#include "daemon/core/logging.hpp"
#include "devstack/mock_kafka.hpp"

namespace brickwork::cli {
namespace {

std::atomic<bool> g_mock_kafka_stop{false};
extern "C" void on_mock_kafka_signal(int) { g_mock_kafka_stop = true; }

}  // namespace

int run_mock_kafka(int32_t brokers, const std::vector<std::string>& topics, int32_t partitions,
                   const std::string& bootstrap_file) {
  setup_logging("text", "info");
  auto cluster = MockKafkaCluster::create(brokers);
  if (!cluster) {
    std::cerr << "error: " << cluster.error().message << "\n";
    return 1;
  }
  for (const auto& topic : topics) {
    Status created = (*cluster)->create_topic(topic, partitions);
    if (!created) {
      std::cerr << "error: topic " << topic << ": " << created.error().message << "\n";
      return 1;
    }
  }
  const std::string bootstrap = (*cluster)->bootstrap_servers();
  if (!bootstrap_file.empty()) {
    // Written whole, then renamed: a reader never sees half an address.
    const std::string partial = bootstrap_file + ".partial";
    std::ofstream(partial) << bootstrap << "\n";
    std::error_code ec;
    std::filesystem::rename(partial, bootstrap_file, ec);
    if (ec) {
      std::cerr << "error: cannot write " << bootstrap_file << ": " << ec.message() << "\n";
      return 1;
    }
  }
  std::cout << "mock kafka cluster listening on " << bootstrap << std::endl;
  std::signal(SIGINT, on_mock_kafka_signal);
  std::signal(SIGTERM, on_mock_kafka_signal);
  while (!g_mock_kafka_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return 0;
}

}  // namespace brickwork::cli
