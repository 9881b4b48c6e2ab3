#pragma once
// The subcommands of `brickwork` (contract section 8). Each returns the exit
// code: 0 success, 1 error, 2 usage; for a command that follows a workflow
// (--wait, --follow) 0 succeeded, 3 failed, 4 canceled, 5 --timeout first.
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

// How long to wait for the daemon's answer to a command; nullopt: do not
// wait (--no-wait).
using AnswerWait = std::optional<Duration>;

int run_daemon(const std::string& config_path);
// Migrates the schema; with `topics_partitions`, then creates the missing
// topics with that many partitions each.
int run_migrate(const std::string& config_path, std::optional<int32_t> topics_partitions,
                bool as_json);
// Validates the configuration and kafka.properties; with `connect`, also
// reaches every configured service and prints one line per target.
int run_check(const std::string& config_path, bool connect, bool as_json);
// check --workflows FILE: one workflows file alone, without the configuration.
int run_check_workflows(const std::string& workflows_path, bool as_json);
// Produces a start command and prints its id. With `wait`, then prints the
// workflow's status events until it ends (or *wait's timeout, if any, passes).
struct FollowOptions {
  std::optional<Duration> timeout;  // none: until the workflow ends
};
int run_submit(const std::string& config_path, const std::string& workflow,
               std::optional<std::string> id, const std::string& input_json, bool as_json,
               std::optional<FollowOptions> wait);
// One workflow from Postgres; with `follow`, then its status events until it ends.
int run_status(const std::string& config_path, const std::string& id, bool as_json,
               std::optional<FollowOptions> follow);
// `list`'s filters as typed: --since and --until take an RFC 3339 time in
// UTC or an age (2h, 7d: that long before now); --after a workflow id.
struct ListOptions {
  std::string state;
  std::string workflow;
  std::string since;
  std::string until;
  std::string after;
  int32_t limit = 50;
};
int run_list(const std::string& config_path, const ListOptions& options, bool as_json);
// A workflow's history from Postgres: every attempt of every step, signals
// kept and delivered, cancel and retry commands.
int run_history(const std::string& config_path, const std::string& id, bool as_json);
// Deletes the finished workflows (of `state`, else every finished state)
// that ended more than `older_than` ago, then the definitions no workflow
// uses; with `dry_run`, only counts them.
int run_purge(const std::string& config_path, Duration older_than,
              std::optional<std::string> state, bool dry_run, bool as_json);
// cancel, retry and signal send their command and, unless `wait` is empty,
// wait that long for the status event that answers it: accepted (exit 0),
// refused by command_rejected or without effect (exit 1), no answer (exit 5).
int run_cancel(const std::string& config_path, const std::string& id, const std::string& reason,
               AnswerWait wait, bool as_json);
int run_retry(const std::string& config_path, const std::string& id, AnswerWait wait,
              bool as_json);
int run_signal(const std::string& config_path, const std::string& id, const std::string& name,
               const std::string& value_json, AnswerWait wait, bool as_json);

// The development tools' subcommands. They are defined with the stand-ins they
// start, in the devstack folder (library bw_devstack_cli), which the program
// links and the product libraries never do.
int run_demo(bool keep_going_on_failure);
// `brickwork simulator`'s pace flags as typed; each overrides the jobs file's
// key of the same name (empty: the file's, else off).
struct SimulatorPaceFlags {
  std::string latency;              // "200ms" or "100ms..500ms"
  std::vector<std::string> limits;  // "jobs/run-now=20/s", ...
  std::string transfer_rate;        // "1MiB/s"
  std::string transfer_time;        // "40s"
};
int run_simulator(uint16_t port, const std::string& jobs_file, const std::string& brokers,
                  const std::string& events_topic, const SimulatorPaceFlags& pace);
// librdkafka's mock cluster until SIGTERM/SIGINT, with `topics` created; its
// bootstrap servers printed and, when `bootstrap_file` is set, written there.
int run_mock_kafka(int32_t brokers, const std::vector<std::string>& topics, int32_t partitions,
                   const std::string& bootstrap_file);

}  // namespace brickwork::cli
