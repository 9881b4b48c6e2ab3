#include "devstack/local_stack.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

namespace brickwork {

Result<std::unique_ptr<LocalStack>> LocalStack::start(LocalStackOptions options) {
  auto stack = std::unique_ptr<LocalStack>(new LocalStack());
  stack->options_ = std::move(options);

  auto postgres = TempPostgres::start(stack->options_.postgres_settings);
  if (!postgres) return postgres.error();
  stack->postgres_ = std::move(*postgres);

  auto kafka = MockKafkaCluster::create(stack->options_.kafka_brokers);
  if (!kafka) return kafka.error();
  stack->kafka_ = std::move(*kafka);
  const KafkaTopics& topics = stack->options_.topics;
  const int32_t outputs = stack->options_.partitions;
  const int32_t inputs = stack->options_.input_partitions > 0 ? stack->options_.input_partitions : outputs;
  for (const auto& [topic, partitions] :
       {std::pair{topics.commands, inputs}, std::pair{topics.events, inputs},
        std::pair{topics.status, outputs}, std::pair{topics.dead_letter, outputs}}) {
    Status created = stack->kafka_->create_topic(topic, partitions);
    if (!created) return created.error();
  }

  KafkaConfig kafka_config;
  kafka_config.brokers = stack->kafka_->bootstrap_servers();
  auto producer = KafkaProducer::create(kafka_config, true, "databricks-simulator");
  if (!producer) return producer.error();
  stack->events_producer_ = std::move(*producer);

  SimulatorOptions sim = stack->options_.simulator;
  if (sim.bearer_token.empty()) sim.bearer_token = kDatabricksToken;
  // Lakebase credentials become passwords of a role on this stack's server.
  if (!sim.lakebase_role.empty() && sim.lakebase_admin_url.empty()) {
    sim.lakebase_admin_url = stack->postgres_->url();
  }
  stack->simulator_ = std::make_unique<DatabricksSimulator>(sim);
  // A finished job's last task publishes its completion event, as in production.
  KafkaProducer* events = stack->events_producer_.get();
  const std::string events_topic = topics.events;
  stack->simulator_->set_sink([events, events_topic](const std::string& key,
                                                     const std::string& payload) {
    Status s = events->produce_async({events_topic, key, payload});
    if (!s) spdlog::warn("simulator: cannot publish completion event: {}", s.error().message);
  });
  Status started = stack->simulator_->start();
  if (!started) return started.error();
  return stack;
}

LocalStack::~LocalStack() {
  if (simulator_) simulator_->stop();
  if (events_producer_) (void)events_producer_->flush(Duration(2000));
}

bool append_contract_capture(const std::string& lines) {
  const char* path = std::getenv("BRICKWORK_CONTRACT_CAPTURE");
  if (path == nullptr || *path == '\0') return true;
  const int fd = ::open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  ::flock(fd, LOCK_EX);
  bool written = true;
  for (size_t done = 0; done < lines.size();) {
    const ssize_t n = ::write(fd, lines.data() + done, lines.size() - done);
    if (n <= 0) {
      written = false;
      break;
    }
    done += static_cast<size_t>(n);
  }
  ::flock(fd, LOCK_UN);
  ::close(fd);
  return written;
}

std::string LocalStack::config_yaml(const std::string& workflows_yaml,
                                    const std::string& group) const {
  const KafkaTopics& t = options_.topics;
  std::ostringstream out;
  out << "kafka:\n"
      << "  brokers: \"" << kafka_->bootstrap_servers() << "\"\n"
      << "  group: \"" << group << "\"\n"
      << "  topics: {commands: \"" << t.commands << "\", events: \"" << t.events
      << "\", status: \"" << t.status << "\", dead_letter: \"" << t.dead_letter << "\"}\n"
      << "postgres:\n"
      << "  url: \"" << postgres_->url() << "\"\n"
      << "databricks:\n"
      << "  host: \"" << simulator_->base_url() << "\"\n"
      << "  token: \"" << kDatabricksToken << "\"\n"
      << "callbacks:\n"
      << "  secret: \"" << kCallbackSecret << "\"\n"
      << "daemon:\n"
      << "  batch_max_wait: 20ms\n"
      << "  log_format: text\n"
      << "workflows:\n"
      << workflows_yaml;
  return out.str();
}

}  // namespace brickwork
