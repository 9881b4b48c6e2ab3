#pragma once
// What the subcommands' files share (commands.cpp, follow.cpp,
// connect_check.cpp): error printing, the CLI's store and producer.
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "daemon/core/password_source.hpp"
#include "daemon/core/result.hpp"
#include "daemon/databricks/api.hpp"
#include "daemon/engine/workflow_state.hpp"
#include "daemon/store/store.hpp"

namespace brickwork::cli {

// Exit codes (contract 8).
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitFailed = 3;
inline constexpr int kExitCanceled = 4;
inline constexpr int kExitTimeout = 5;

// "error: <message>" on stderr, control characters escaped: the text comes
// from outside (Postgres, Kafka, the configuration file).
void print_error(std::string_view message);

// The store of a CLI command, with a Lakebase credential when configured
// (members in the order they depend on each other).
struct CliStore {
  std::unique_ptr<DatabricksApi> databricks;
  std::shared_ptr<PasswordSource> password;
  std::unique_ptr<Store> store;
};
Result<CliStore> open_cli_store(const Config& config);

// Sends one command keyed by `id` to the commands topic and waits for the
// broker's acknowledgement; prints the error and returns kExitError on failure.
int produce_command(const Config& config, const std::string& id, const json::object& command);

// The exit code of a workflow in `status`: 0 succeeded, 3 failed,
// 4 canceled; nullopt while it runs.
std::optional<int> exit_code_of(WorkflowStatus status);

}  // namespace brickwork::cli
