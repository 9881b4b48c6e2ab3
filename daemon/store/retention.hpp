#pragma once
// Retention (contract 7, `retention:`; `brickwork purge`): finished
// workflows are deleted with every row that belongs to them, then the
// definitions no workflow uses any more. In small batches that lock their
// workflows only to choose them and to delete them at the end, not while
// their child rows go, so no purge holds a lock that intake waits on for
// long; rows another transaction holds are skipped (SKIP LOCKED). Several
// daemons may purge at once: their batches take turns. A purged id is free
// again: a later `start` with it begins a new workflow.
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "daemon/core/password_source.hpp"
#include "daemon/core/result.hpp"
#include "daemon/core/time.hpp"
#include "daemon/engine/workflow_state.hpp"

namespace brickwork {

// Finished workflows of `state` whose last change (their end) is older than
// `before`.
struct PurgeCutoff {
  WorkflowStatus state = WorkflowStatus::kSucceeded;
  TimePoint before{};
};

// One batch: how many workflows it deleted and how long it held their rows
// locked (as the server measured it: the longer of its two locked stretches,
// from its turn among the purgers to the end of its choice's commit and from
// its final statement's start to the end of its commit).
struct PurgeBatch {
  int64_t workflows = 0;
  Duration held{0};
  // The whole batch, as the server timed it: what its size and the pause
  // after it follow.
  Duration took{0};
  // Rolled back whole: a workflow it chose changed or was locked before its
  // final statement (a command for it), after its child rows were deleted.
  // Deleted nothing; `held` is then the purger's own time for the batch.
  bool raced = false;
};

struct PurgeTotals {
  std::map<WorkflowStatus, int64_t> workflows;  // by state
  int64_t definitions = 0;
  int32_t batches = 0;
  Duration longest_hold{0};
  int64_t total_workflows() const;
};

class WorkflowPurger {
 public:
  virtual ~WorkflowPurger() = default;
  // Its own connection (store_conninfo's timeouts), opened on first use.
  static std::unique_ptr<WorkflowPurger> open(const std::string& url,
                                              std::shared_ptr<PasswordSource> password = nullptr);

  // How many workflows `cutoff` selects now (a dry run).
  virtual Result<int64_t> count(const PurgeCutoff& cutoff) = 0;
  // Deletes up to `limit` of them, oldest first, with their rows: a short
  // transaction chooses them, a second deletes their rows and then them (see
  // PurgeBatch::raced). A workflow with effects still queued (a cancel of its
  // run not yet sent) waits for a later batch.
  virtual Result<PurgeBatch> purge_batch(const PurgeCutoff& cutoff, int32_t limit) = 0;
  // Deletes up to `limit` definitions no workflow refers to; how many.
  virtual Result<int64_t> purge_unused_definitions(int32_t limit) = 0;
};

// Batches of at most `batch_size` for each cutoff until none is left (a
// batch that took longer than 8 ms halves the next one, a quick one doubles
// it back; after each, a pause three times as long as it took), then the
// unused definitions. `stop` is read between batches and ends a pause;
// `on_batch` hears of each committed batch (metrics), with its cutoff's state. On an Error, what
// was deleted before it stays deleted.
Result<PurgeTotals> purge_finished(
    WorkflowPurger& purger, const std::vector<PurgeCutoff>& cutoffs, int32_t batch_size,
    const std::atomic<bool>* stop = nullptr,
    const std::function<void(WorkflowStatus, const PurgeBatch&)>& on_batch = nullptr);

namespace store_detail {
// The statements of a batch that delete, for the tests of their plans: the
// child rows of the chosen workflows (before the workflows are locked), and
// the final one ($1 state, $2 cutoff in epoch ms, $3 limit). The chosen ids
// are the session's setting brickwork.purge_ids, a text array.
const std::string& purge_children_statement();
const std::string& purge_final_statement();
}  // namespace store_detail

}  // namespace brickwork
