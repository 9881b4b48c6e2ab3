#include "daemon/store/retention.hpp"

#include <array>
#include <chrono>
#include <pqxx/pqxx>
#include <string_view>
#include <thread>

#include "daemon/store/claim_query.hpp"
#include "daemon/store/pg_session.hpp"

namespace brickwork {
namespace {

// Every table that holds rows of one workflow, by its `workflow_id` column
// (indexed first): a purge deletes them with the workflow. A table added
// for workflows belongs here: no foreign key deletes them (migration 8).
// The outbox is not one: its rows are still to be published.
constexpr std::array<std::string_view, 3> kWorkflowChildTables{
    {"steps", "step_attempts", "workflow_history"}};

// Finished before the cutoff: updated_at is its end. created_at, never later
// than updated_at, lets the (status, created_at) index find them.
//
// A finished workflow's effects are stale timers and polls (dropped when
// they come due) or a cancel of its run not yet sent: the workflow waits for
// that one. effects is a queue: its statistics may count a few hundred rows
// in pages that held thousands, and the planner then scans it whole, twice
// per batch (measured: a third of a batch's buffers, in a bench purging 1M).
// Each look-up is kept a look-up by its workflow_id index: OFFSET 0 keeps the
// subquery per row (NOT EXISTS) or per workflow (LATERAL).
constexpr const char* kSelectPurgeable =
    "SELECT id FROM workflows w WHERE status = $1"
    " AND created_at < to_timestamp($2::bigint / 1000.0)"
    " AND updated_at < to_timestamp($2::bigint / 1000.0)"
    " AND NOT EXISTS (SELECT 1 FROM effects e WHERE e.workflow_id = w.id AND e.kind = 'cancel'"
    " OFFSET 0)";

// One statement: the batch's rows locked (skipping those another
// transaction holds), their child rows and effects and then themselves
// deleted. It ends in `last` (a SELECT over `gone`, the deleted workflows).
std::string build_purge_batch_statement(const std::string& last) {
  std::string sql = std::string("WITH doomed AS (") + kSelectPurgeable +
                    " ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED)";
  for (size_t i = 0; i < kWorkflowChildTables.size(); ++i) {
    sql += ", child" + std::to_string(i) + " AS (DELETE FROM " +
           std::string(kWorkflowChildTables[i]) +
           " WHERE workflow_id IN (SELECT id FROM doomed))";
  }
  return sql +
         ", stale AS (DELETE FROM effects WHERE id IN (SELECT e.id FROM doomed d CROSS JOIN"
         " LATERAL (SELECT id FROM effects x WHERE x.workflow_id = d.id OFFSET 0) e))"
         ", gone AS (DELETE FROM workflows WHERE id IN (SELECT id FROM doomed) RETURNING 1) " +
         last;
}

// A batch is one message to the server, from BEGIN to COMMIT: its rows stay
// locked only while the server works, never while the answer travels back and
// the purger's thread waits for a core to send COMMIT (on a busy machine,
// tens of ms each way). So its values are in the text, not parameters (a
// message with parameters holds one statement): `state` quoted, the others
// numbers. The last statement, after COMMIT, reads how many were deleted and
// how long the server took from receiving the message to the commit's end.
std::string one_message_batch(const std::string& quoted_state, int64_t before_ms, int32_t limit) {
  std::string sql = build_purge_batch_statement(
      "SELECT set_config('brickwork.purged', count(*)::text, false)"
      " FROM gone");
  const std::pair<const char*, std::string> values[] = {
      {"$1", quoted_state}, {"$2", std::to_string(before_ms)}, {"$3", std::to_string(limit)}};
  for (const auto& [param, value] : values) {
    for (size_t at = sql.find(param); at != std::string::npos; at = sql.find(param, at)) {
      sql.replace(at, 2, value);
      at += value.size();
    }
  }
  return "BEGIN; SET LOCAL synchronous_commit = off; " + sql +
         "; COMMIT; SELECT current_setting('brickwork.purged')::bigint,"
         " (1000 * extract(epoch FROM clock_timestamp() - statement_timestamp()))::float8";
}

// A definition a transaction is linking a new workflow to right now holds a
// key-share lock: skipped. One linked after this statement's snapshot fails
// the delete (foreign key): the next round tries again.
constexpr const char* kPurgeDefinitions =
    "WITH unused AS (SELECT hash FROM definitions d"
    " WHERE NOT EXISTS (SELECT 1 FROM workflows w WHERE w.definition_hash = d.hash)"
    " LIMIT $1 FOR UPDATE SKIP LOCKED),"
    " gone AS (DELETE FROM definitions WHERE hash IN (SELECT hash FROM unused) RETURNING 1)"
    " SELECT count(*) FROM gone";

// How long one batch should hold its rows at most, and the size it starts at.
constexpr Duration kTargetHold{8};
constexpr int32_t kFirstBatch = 50;

class PgWorkflowPurger final : public WorkflowPurger {
 public:
  PgWorkflowPurger(const std::string& url, std::shared_ptr<PasswordSource> password)
      : session_(url, std::move(password), [](pqxx::connection& c) {
          pqxx::nontransaction(c).exec(store_detail::kStoreSessionSettings);
        }) {}

  Result<int64_t> count(const PurgeCutoff& cutoff) override {
    return session_.run<int64_t>("purge_count", [&](pqxx::connection& c) {
      pqxx::work tx(c);
      const pqxx::row r =
          tx.exec_params1(std::string("SELECT count(*) FROM (") + kSelectPurgeable + ") p",
                          to_string(cutoff.state), to_epoch_ms(cutoff.before));
      tx.commit();
      return r[0].as<int64_t>();
    });
  }

  Result<PurgeBatch> purge_batch(const PurgeCutoff& cutoff, int32_t limit) override {
    return session_.run<PurgeBatch>("purge_batch", [&](pqxx::connection& c) {
      const std::string batch = one_message_batch(c.quote(to_string(cutoff.state)),
                                                  to_epoch_ms(cutoff.before), std::max(limit, 1));
      pqxx::nontransaction tx(c);
      try {
        // A purge lost in a crash is purged again by the next round, so its
        // commit need not wait for the disk (synchronous_commit off).
        const pqxx::row r = tx.exec1(batch);
        const auto held = std::chrono::duration<double, std::milli>(r[1].as<double>());
        return PurgeBatch{r[0].as<int64_t>(), std::chrono::ceil<Duration>(held)};
      } catch (const pqxx::broken_connection&) {
        throw;
      } catch (...) {
        // A statement that failed left the transaction open and aborted.
        try {
          tx.exec("ROLLBACK");
        } catch (...) {
        }
        throw;
      }
    });
  }

  Result<int64_t> purge_unused_definitions(int32_t limit) override {
    return session_.run<int64_t>("purge_definitions", [&](pqxx::connection& c) -> int64_t {
      pqxx::work tx(c);
      try {
        const pqxx::row r = tx.exec_params1(kPurgeDefinitions, std::max(limit, 1));
        tx.commit();
        return r[0].as<int64_t>();
      } catch (const pqxx::foreign_key_violation&) {
        return 0;  // linked to a new workflow meanwhile: kept
      }
    });
  }

 private:
  store_detail::PgSession session_;
};

// A purge is background work beside the intake, on the same server and often
// the same cores. Run back to back, its batches took their share of a busy
// machine's CPU and more of its time waiting for it: in the bench, 3.7 s on
// a core and 14.5 s in the run queue while the intake ran, so a batch of
// 12 ms held its rows for up to 400 ms. Pausing three times as long as each
// batch took leaves the others at least three quarters of the time, and a
// task that slept is scheduled sooner when it wakes. Measured over 1M: a
// pause as long as the batch gave a longest hold over 100 ms in four runs of
// six (97-235 ms); three times as long, 74-90 ms in three of four (132 ms in
// the fourth), for a slower purge (1M in 110-125 s instead of 65-145 s).
constexpr int kPausePerHeld = 3;

void pause_after(const PurgeBatch& batch, const std::atomic<bool>* stop) {
  const auto until =
      std::chrono::steady_clock::now() + std::min(batch.held * kPausePerHeld, Duration(3000));
  while (std::chrono::steady_clock::now() < until) {
    if (stop != nullptr && stop->load()) return;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(until - std::chrono::steady_clock::now(),
                                                      std::chrono::milliseconds(20)));
  }
}

}  // namespace

const std::string& store_detail::purge_batch_statement() {
  static const std::string statement = build_purge_batch_statement("SELECT count(*) FROM gone");
  return statement;
}

int64_t PurgeTotals::total_workflows() const {
  int64_t total = 0;
  for (const auto& [state, n] : workflows) total += n;
  return total;
}

std::unique_ptr<WorkflowPurger> WorkflowPurger::open(const std::string& url,
                                                     std::shared_ptr<PasswordSource> password) {
  return std::make_unique<PgWorkflowPurger>(url, std::move(password));
}

Result<PurgeTotals> purge_finished(
    WorkflowPurger& purger, const std::vector<PurgeCutoff>& cutoffs, int32_t batch_size,
    const std::atomic<bool>* stop,
    const std::function<void(WorkflowStatus, const PurgeBatch&)>& on_batch) {
  const auto stopped = [&] { return stop != nullptr && stop->load(); };
  PurgeTotals totals;
  // Up to batch_size, fewer while batches take long: a busy server makes
  // each batch slower, and what counts is how long it holds its rows.
  int32_t size = std::max(1, std::min(batch_size, kFirstBatch));
  for (const PurgeCutoff& cutoff : cutoffs) {
    for (;;) {
      if (stopped()) return totals;
      auto batch = purger.purge_batch(cutoff, size);
      if (!batch) return batch.error();
      ++totals.batches;
      totals.workflows[cutoff.state] += batch->workflows;
      totals.longest_hold = std::max(totals.longest_hold, batch->held);
      if (on_batch) on_batch(cutoff.state, *batch);
      // A short batch found all there was (or only rows others hold).
      if (batch->workflows < size) break;
      pause_after(*batch, stop);
      if (batch->held > kTargetHold) {
        size = std::max(1, size / 2);
      } else if (batch->held < kTargetHold / 2) {
        size = std::min(batch_size, size * 2);
      }
    }
  }
  for (;;) {
    if (stopped()) return totals;
    auto definitions = purger.purge_unused_definitions(batch_size);
    if (!definitions) return definitions.error();
    totals.definitions += *definitions;
    if (*definitions < batch_size) break;
  }
  return totals;
}

}  // namespace brickwork
