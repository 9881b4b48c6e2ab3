#pragma once
// The subcommands of `brickwork` (contract section 8). Each returns the exit code.
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace brickwork::cli {

// Loads and validates the configuration (step actions included); prints the
// error to stderr and returns empty on failure. Read-only commands pass
// false: they do not need (or read) callbacks.secret.
std::optional<Config> load_checked_config(const std::string& path,
                                          bool needs_callback_secret = true);

int run_daemon(const std::string& config_path);
int run_migrate(const std::string& config_path);
int run_check(const std::string& config_path);
int run_submit(const std::string& config_path, const std::string& workflow,
               std::optional<std::string> id, const std::string& input_json);
int run_status(const std::string& config_path, const std::string& id, bool as_json);
int run_list(const std::string& config_path, std::optional<std::string> state, int32_t limit,
             bool as_json);
int run_cancel(const std::string& config_path, const std::string& id, const std::string& reason);
int run_retry(const std::string& config_path, const std::string& id);
// Sends the signal; with `wait`, then waits that long for the status event
// that answers it: a step it resolved (exit 0) or command_rejected (exit 1);
// no answer in time exits 5.
int run_signal(const std::string& config_path, const std::string& id, const std::string& name,
               const std::string& value_json, std::optional<Duration> wait);

// The development tools' subcommands. They are defined with the stand-ins they
// start, in the devstack folder (library bw_devstack_cli), which the program
// links and the product libraries never do.
int run_demo(bool keep_going_on_failure);
int run_simulator(uint16_t port, const std::string& jobs_file, const std::string& brokers,
                  const std::string& events_topic);
// librdkafka's mock cluster until SIGTERM/SIGINT, with `topics` created; its
// bootstrap servers printed and, when `bootstrap_file` is set, written there.
int run_mock_kafka(int32_t brokers, const std::vector<std::string>& topics, int32_t partitions,
                   const std::string& bootstrap_file);

}  // namespace brickwork::cli
