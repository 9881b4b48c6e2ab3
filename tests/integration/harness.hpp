#pragma once
// End-to-end harness: a LocalStack (real Postgres, librdkafka's mock cluster,
// the Databricks simulator) plus brickwork daemons, in-process or as child
// processes that can be killed with SIGKILL.
#include <gtest/gtest.h>
#include <pqxx/pqxx>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "daemon/databricks/lakebase.hpp"
#include "daemon/runtime/daemon.hpp"
#include "devstack/local_stack.hpp"
#include "handlers/inbound/messages.hpp"
#include "daemon/store/store.hpp"
#include "handlers/steps/step_type.hpp"

namespace brickwork::testing {

using namespace std::chrono_literals;

inline SimulatedJob sim_job(const std::string& name, int64_t ms, json::object output = {},
                            std::string outcome = "SUCCESS", bool emit_event = true) {
  SimulatedJob job;
  job.name = name;
  job.duration = Duration(ms);
  job.output = std::move(output);
  job.outcome = std::move(outcome);
  job.emit_event = emit_event;
  return job;
}

// A daemon running in this process on its own thread.
class InProcessDaemon {
 public:
  InProcessDaemon(ConfigPtr config, std::string instance, DaemonOptions options = {}) {
    BuiltWorkspaces built = make_workspaces(*config);
    for (const auto& [label, error] : built.failed) {
      ADD_FAILURE() << "workspace " << label << ": " << error.message;
    }
    options.instance_id = std::move(instance);
    options.on_ready = [this] { ready_ = true; };
    daemon_ = std::make_unique<Daemon>(config, std::move(built.workspaces), options);
    thread_ = std::thread([this] {
      status_ = daemon_->run(stop_);
      exited_ = true;
    });
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (!ready_ && !exited_ && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
    EXPECT_TRUE(ready_) << "daemon did not start";
  }
  ~InProcessDaemon() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  const Status& status() const { return status_; }
  bool exited() const { return exited_; }
  Daemon& daemon() { return *daemon_; }

 private:
  std::unique_ptr<Daemon> daemon_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> ready_{false};
  std::atomic<bool> exited_{false};
  Status status_ = ok_status();
  std::thread thread_;
};

// A daemon as a child process of the `brickwork` binary.
class ChildDaemon {
 public:
  ChildDaemon(const std::string& config_path, const std::string& log_path) {
    pid_ = fork();
    if (pid_ == 0) {
      FILE* log = std::fopen(log_path.c_str(), "a");
      if (log != nullptr) {
        dup2(fileno(log), 1);
        dup2(fileno(log), 2);
      }
      execl(BRICKWORK_BINARY, BRICKWORK_BINARY, "daemon", "-c", config_path.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~ChildDaemon() {
    if (pid_ > 0) kill_hard();
  }
  void kill_hard() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  // SIGTERM and wait; returns the exit status (or -1 on timeout, then SIGKILL).
  int terminate(std::chrono::seconds limit = 60s) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(20ms);
    }
    kill_hard();
    return -1;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};


// A shell command's exit code and what it wrote to stdout.
struct CommandResult {
  int exit_code = -1;
  std::string out;
};

inline CommandResult run_command(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) result.out.append(buf, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

class EndToEndTest : public ::testing::Test {
 protected:
  // One statement on the configured Postgres, in a transaction of its own.
  pqxx::result sql(const std::string& statement) {
    pqxx::connection c(config_->postgres.url);
    pqxx::work tx(c);
    pqxx::result r = tx.exec(statement);
    tx.commit();
    return r;
  }

  // Starts the stack with `jobs` at the simulator (answering at `pace`).
  void start_stack(std::map<int64_t, SimulatedJob> jobs, SimulatorFaults faults = {},
                   SimulatorPace pace = {}) {
    LocalStackOptions options;
    options.simulator.jobs = std::move(jobs);
    options.simulator.faults = faults;
    options.simulator.pace = std::move(pace);
    auto stack = LocalStack::start(options);
    ASSERT_TRUE(stack) << stack.error().message;
    stack_ = std::move(*stack);
    dir_ = std::filesystem::temp_directory_path() /
           ("brickwork-e2e-" + std::to_string(getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(dir_);
  }

  void TearDown() override {
    daemons_.clear();
    children_.clear();
    capture_contract_messages();
    // A sanitizer report in a child daemon (ASan, UBSan, TSan in the test
    // command's builds) fails the test even when the work got done.
    if (!dir_.empty()) {
      for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
        if (entry.path().extension() != ".log") continue;
        std::ifstream in(entry.path());
        std::string text((std::istreambuf_iterator<char>(in)), {});
        if (text.find("Sanitizer:") != std::string::npos ||
            text.find("runtime error:") != std::string::npos) {
          ADD_FAILURE() << "sanitizer report in " << entry.path();
        }
      }
    }
    if (HasFailure() && !dir_.empty()) {
      for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
        if (entry.path().extension() == ".log") {
          std::ifstream in(entry.path());
          std::string text((std::istreambuf_iterator<char>(in)), {});
          if (text.size() > 20000) text = text.substr(text.size() - 20000);
          std::cerr << "---- " << entry.path() << " (tail)\n" << text << "\n";
        }
      }
    }
    // What reads the store (and renews its credentials) goes before the
    // stack it talks to.
    store_.reset();
    store_password_.reset();
    store_api_.reset();
    producer_.reset();
    stack_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  ConfigPtr config(const std::string& workflows_yaml) {
    yaml_ = stack_->config_yaml(workflows_yaml, "e2e");
    return load_yaml();
  }

  // Rotates callbacks.secret to `secret` as docs/OPERATIONS.md says: the old
  // value moves to callbacks.previous_secrets. Daemons started afterwards
  // (child daemons too) and store() use the new configuration.
  ConfigPtr rotate_callback_secret(const std::string& secret) {
    const std::string old = config_->callbacks.secret;
    const std::string line = "  secret: \"" + old + "\"\n";
    const size_t at = yaml_.find(line);
    EXPECT_NE(at, std::string::npos) << "no callbacks.secret line to rotate";
    if (at == std::string::npos) return config_;
    yaml_.replace(at, line.size(),
                  "  secret: \"" + secret + "\"\n  previous_secrets: [\"" + old + "\"]\n");
    std::ofstream(dir_ / "brickwork.yaml") << yaml_;
    store_.reset();
    return load_yaml();
  }

  InProcessDaemon& start_daemon(const std::string& name = "d1", DaemonOptions options = {}) {
    if (options.steps == nullptr) options.steps = steps_;
    daemons_.push_back(std::make_unique<InProcessDaemon>(config_, name, std::move(options)));
    return *daemons_.back();
  }

  ChildDaemon& start_child_daemon(const std::string& name) {
    const std::string path = (dir_ / "brickwork.yaml").string();
    if (!std::filesystem::exists(path)) {
      std::ofstream(path) << yaml_;
    }
    children_.push_back(std::make_unique<ChildDaemon>(path, (dir_ / (name + ".log")).string()));
    return *children_.back();
  }

  void send(const std::string& topic, const std::string& key, const std::string& payload,
            KafkaHeaders headers = {}) {
    if (!producer_) {
      auto p = KafkaProducer::create(config_->kafka, true, "e2e-client");
      ASSERT_TRUE(p);
      producer_ = std::move(*p);
    }
    Status s = producer_->produce_and_wait({{topic, key, payload, std::move(headers)}}, 30s);
    ASSERT_TRUE(s) << s.error().message;
  }
  void send_command(const json::object& command, KafkaHeaders headers = {}) {
    send(config_->kafka.topics.commands, std::string(command.at("id").as_string()),
         json::serialize(command), std::move(headers));
  }

  // With BRICKWORK_CONTRACT_CAPTURE=FILE, every message of the four topics
  // and the configuration are appended to FILE as JSON lines, which
  // scripts/check-contract.sh checks against schemas/ (contract section 11).
  void capture_contract_messages() {
    const char* path = std::getenv("BRICKWORK_CONTRACT_CAPTURE");
    if (path == nullptr || *path == '\0' || !config_ || !stack_) return;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    const std::string test = std::string(info->test_suite_name()) + "." + info->name();
    const KafkaTopics& topics = config_->kafka.topics;
    std::string lines;
    // A test's own step types are not the contract's.
    if (steps_ == &StepRegistry::builtin()) {
      lines += json::serialize(json::object{{"test", test}, {"role", "config"}, {"yaml", yaml_}}) +
               "\n";
    }
    for (const auto& [role, topic] : {std::pair{"commands", &topics.commands},
                                      std::pair{"events", &topics.events},
                                      std::pair{"status", &topics.status},
                                      std::pair{"dead_letter", &topics.dead_letter}}) {
      if (!capture_topics_) break;
      auto messages = read_topic(config_->kafka.brokers, *topic, 10s);
      if (!messages) continue;
      for (const KafkaMessage& m : *messages) {
        json::object line{{"test", test},          {"role", role},
                          {"topic", m.topic},      {"partition", m.partition},
                          {"offset", m.offset}};
        // Bytes that are not UTF-8 are not JSON either: left out, they must
        // have a dead letter.
        if (is_valid_utf8(m.payload)) line["payload"] = m.payload;
        json::object headers;
        for (const auto& [name, value] : m.headers) {
          if (is_valid_utf8(name) && is_valid_utf8(value)) headers[name] = value;
        }
        line["headers"] = std::move(headers);
        lines += json::serialize(line) + "\n";
      }
    }
    EXPECT_TRUE(append_contract_capture(lines)) << "cannot append to " << path;
  }
  void start_workflow(const std::string& id, const std::string& workflow,
                      json::object input = {}) {
    send_command(json::object{{"type", "start"}, {"id", id}, {"workflow", workflow},
                              {"input", std::move(input)}});
  }

  Store& store() {
    if (!store_) {
      // On Lakebase the test reads the store with credentials too.
      if (config_->postgres.lakebase && !store_password_) {
        auto api = make_databricks_api(config_->databricks);
        EXPECT_TRUE(api);
        if (api) {
          store_api_ = std::move(*api);
          store_password_ =
              make_lakebase_credentials(*store_api_, *config_->postgres.lakebase, "test");
        }
      }
      store_ = Store::open(config_->postgres.url, store_password_,
                           std::make_shared<const SecretBox>(
                               config_->callbacks.secret, config_->callbacks.previous_secrets));
    }
    return *store_;
  }

  void signal(const std::string& id, const std::string& name, json::value value) {
    send_command(json::object{{"type", "signal"}, {"id", id}, {"name", name}, {"value", value}});
  }

  bool step_is(const std::string& id, const std::string& step, StepStatus status) {
    auto w = workflow(id);
    if (!w) return false;
    const StepState* s = w->find_step(step);
    return s != nullptr && s->status == status;
  }

  std::optional<WorkflowState> workflow(const std::string& id) {
    auto w = store().get_workflow(id);
    if (!w) return std::nullopt;
    return *w;
  }

  // Waits until the workflow reaches a terminal state; returns it.
  std::optional<WorkflowState> wait_terminal(const std::string& id,
                                             std::chrono::seconds limit = 60s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      auto w = workflow(id);
      if (w && is_terminal(w->status)) return w;
      std::this_thread::sleep_for(100ms);
    }
    return workflow(id);
  }

  // Every message of `topic` once it holds at least one (empty after 30 s).
  std::vector<KafkaMessage> wait_for_messages(const std::string& topic) {
    std::vector<KafkaMessage> messages;
    eventually([&] {
      auto read = read_topic(config_->kafka.brokers, topic, 10s);
      if (read) messages = *read;
      return !messages.empty();
    });
    return messages;
  }

  template <class Pred>
  bool eventually(Pred pred, std::chrono::seconds limit = 30s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(100ms);
    }
    return pred();
  }

  std::vector<json::object> topic_objects(const std::string& topic,
                                          std::optional<std::string> key = std::nullopt) {
    auto messages = read_topic(config_->kafka.brokers, topic, 20s);
    EXPECT_TRUE(messages) << messages.error().message;
    std::vector<json::object> out;
    if (!messages) return out;
    for (const auto& m : *messages) {
      if (key && m.key != key) continue;
      boost::system::error_code ec;
      json::value v = json::parse(m.payload, ec);
      EXPECT_FALSE(ec) << m.payload;
      if (!ec && v.is_object()) out.push_back(v.as_object());
    }
    return out;
  }
  // Every status event, grouped by workflow id, from one read of the topic.
  std::map<std::string, std::vector<json::object>> all_status_events() {
    std::map<std::string, std::vector<json::object>> by_id;
    for (auto& e : topic_objects(config_->kafka.topics.status)) {
      by_id[std::string(e.at("workflow_id").as_string())].push_back(std::move(e));
    }
    for (auto& [id, events] : by_id) sort_by_seq(events);
    return by_id;
  }
  static void sort_by_seq(std::vector<json::object>& events) {
    std::stable_sort(events.begin(), events.end(), [](const auto& a, const auto& b) {
      return a.at("seq").as_int64() < b.at("seq").as_int64();
    });
  }
  std::vector<json::object> status_events(const std::string& id) {
    auto events = topic_objects(config_->kafka.topics.status, id);
    std::stable_sort(events.begin(), events.end(), [](const auto& a, const auto& b) {
      return a.at("seq").as_int64() < b.at("seq").as_int64();
    });
    return events;
  }
  std::vector<json::object> dead_letters() { return topic_objects(config_->kafka.topics.dead_letter); }

  // Status events of a workflow, duplicates (same seq) dropped as a consumer
  // would; fails the test on a gap.
  std::vector<std::string> event_types(const std::string& id) {
    return event_types_of(status_events(id), id);
  }
  static std::vector<std::string> event_types_of(const std::vector<json::object>& events,
                                                 const std::string& id) {
    std::vector<std::string> types;
    int64_t last = 0;
    for (const auto& e : events) {
      const int64_t seq = e.at("seq").as_int64();
      if (seq == 0) continue;  // command_rejected outside any workflow
      if (seq <= last) continue;
      EXPECT_EQ(seq, last + 1) << "gap in seq for " << id;
      last = seq;
      types.emplace_back(e.at("type").as_string());
    }
    return types;
  }

  // Runs created at the simulator per "workflow/step", whatever token they
  // carried. The simulator honours idempotency tokens, so counting per token
  // could never see a duplicate; what can go wrong is a second run for the
  // same step (a repeated call with a new token, an attempt started twice).
  std::map<std::string, int> runs_per_step() {
    std::map<std::string, int> out;
    for (const auto& [run_id, run] : stack_->simulator().stats().runs) {
      auto wf = run.parameters.find("brickwork_workflow_id");
      auto step = run.parameters.find("brickwork_step");
      if (wf == run.parameters.end() || step == run.parameters.end()) continue;
      ++out[wf->second + "/" + step->second];
    }
    return out;
  }
  // Every step of workflow `id` has exactly as many runs as it made
  // attempts, and each run carries a distinct attempt's token.
  void expect_one_run_per_attempt(const std::string& id) {
    auto state = workflow(id);
    ASSERT_TRUE(state) << id;
    const auto runs = runs_per_step();
    for (const auto& step : state->steps) {
      const auto it = runs.find(id + "/" + step.name);
      const int count = it == runs.end() ? 0 : it->second;
      EXPECT_EQ(count, step.attempt) << id << "/" << step.name;
    }
    std::set<std::string> tokens;
    for (const auto& [run_id, run] : stack_->simulator().stats().runs) {
      auto wf = run.parameters.find("brickwork_workflow_id");
      if (wf == run.parameters.end() || wf->second != id) continue;
      EXPECT_TRUE(tokens.insert(run.parameters.at("brickwork_token")).second)
          << "two runs of " << id << " for one attempt";
    }
  }

  ConfigPtr load_yaml() {
    LoadOptions load;
    load.steps = steps_;
    auto loaded = load_config_from_string(yaml_, "e2e.yaml", load);
    EXPECT_TRUE(loaded) << loaded.error().message;
    config_ = std::make_shared<const Config>(std::move(*loaded));
    return config_;
  }

  // The step types for config() and start_daemon(); a test may point it at
  // its own registry (child daemons always use the built-in one).
  const StepRegistry* steps_ = &StepRegistry::builtin();
  // False when the test itself wrote records brickwork would not (made-up
  // outbox rows): its topics are then not checked against the contract.
  bool capture_topics_ = true;
  std::unique_ptr<LocalStack> stack_;
  std::filesystem::path dir_;
  std::string yaml_;
  ConfigPtr config_;
  std::unique_ptr<KafkaProducer> producer_;
  std::unique_ptr<DatabricksApi> store_api_;
  std::shared_ptr<PasswordSource> store_password_;
  std::unique_ptr<Store> store_;
  std::vector<std::unique_ptr<InProcessDaemon>> daemons_;
  std::vector<std::unique_ptr<ChildDaemon>> children_;
  static inline int counter_ = 0;
};

}  // namespace brickwork::testing
