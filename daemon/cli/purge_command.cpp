// `brickwork purge`: retention by hand (contract 8), the same batches the
// daemon's retention loop runs.
#include <iostream>

#include "daemon/cli/cli_common.hpp"
#include "daemon/cli/commands.hpp"
#include "daemon/store/retention.hpp"

namespace brickwork::cli {
namespace {

constexpr WorkflowStatus kFinished[] = {WorkflowStatus::kSucceeded, WorkflowStatus::kFailed,
                                        WorkflowStatus::kCanceled};

// "12 workflows (succeeded 10, failed 2)"
std::string counted(const std::map<WorkflowStatus, int64_t>& by_state) {
  int64_t total = 0;
  std::string parts;
  for (const auto& [state, n] : by_state) {
    total += n;
    parts += std::string(parts.empty() ? "" : ", ") + to_string(state) + " " + std::to_string(n);
  }
  return std::to_string(total) + " workflows (" + parts + ")";
}

json::object counts_json(const std::map<WorkflowStatus, int64_t>& by_state) {
  json::object out;
  for (const auto& [state, n] : by_state) out[to_string(state)] = n;
  return out;
}

}  // namespace

int run_purge(const std::string& config_path, Duration older_than,
              std::optional<std::string> state, bool dry_run, bool as_json) {
  auto config = load_checked_config(config_path, /*needs_callback_secret=*/false);
  if (!config) return kExitError;
  std::vector<PurgeCutoff> cutoffs;
  const TimePoint before = now_ms() - older_than;
  if (state) {
    auto chosen = workflow_status_from_string(*state);
    if (!chosen || !is_terminal(*chosen)) {
      print_error("--state must be succeeded, failed or canceled");
      return kExitUsage;
    }
    cutoffs.push_back(PurgeCutoff{*chosen, before});
  } else {
    for (WorkflowStatus s : kFinished) cutoffs.push_back(PurgeCutoff{s, before});
  }
  auto opened = open_cli_store(*config);
  if (!opened) {
    print_error(opened.error().message);
    return kExitError;
  }
  auto purger = WorkflowPurger::open(config->postgres.url, opened->password);
  std::map<WorkflowStatus, int64_t> by_state;
  int64_t definitions = 0;
  if (dry_run) {
    for (const PurgeCutoff& cutoff : cutoffs) {
      auto n = purger->count(cutoff);
      if (!n) {
        print_error(n.error().message);
        return kExitError;
      }
      by_state[cutoff.state] = *n;
    }
  } else {
    auto totals = purge_finished(*purger, cutoffs, config->retention.batch_size);
    if (!totals) {
      print_error(totals.error().message);
      return kExitError;
    }
    by_state = totals->workflows;
    definitions = totals->definitions;
  }
  if (as_json) {
    json::object out{{"dry_run", dry_run}, {"workflows", counts_json(by_state)}};
    if (!dry_run) out["definitions"] = definitions;
    std::cout << json::serialize(out) << std::endl;
  } else if (dry_run) {
    std::cout << "would purge " << counted(by_state) << "; nothing deleted" << std::endl;
  } else {
    std::cout << "purged " << counted(by_state) << " and " << definitions
              << " unused definitions" << std::endl;
  }
  return kExitOk;
}

}  // namespace brickwork::cli
