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

// The ids a batch chose, kept in a setting of its session between its
// statements (a text array: array_out quotes what needs quoting).
constexpr const char* kChosenIds = "current_setting('brickwork.purge_ids')::text[]";

// Deletes the child rows and stale effects of the workflows in `doomed` (a
// CTE named so, defined before). With `keep_cancels`, a cancel not yet sent
// is left: its workflow waits for it, and the final statement's check (which
// chooses no workflow with one) then rolls the batch back.
std::string child_deletes(bool keep_cancels) {
  std::string sql;
  for (size_t i = 0; i < kWorkflowChildTables.size(); ++i) {
    sql += ", child" + std::to_string(i) + " AS (DELETE FROM " +
           std::string(kWorkflowChildTables[i]) +
           " WHERE workflow_id IN (SELECT id FROM doomed))";
  }
  return sql +
         ", stale AS (DELETE FROM effects WHERE id IN (SELECT e.id FROM doomed d CROSS JOIN"
         " LATERAL (SELECT id FROM effects x WHERE x.workflow_id = d.id" +
         (keep_cancels ? std::string(" AND x.kind <> 'cancel'") : std::string()) + " OFFSET 0) e))";
}

// Before the workflows are locked: the chosen workflows' child rows go.
std::string build_child_purge_statement() {
  return std::string("WITH doomed AS (SELECT unnest(") + kChosenIds + ") AS id)" +
         child_deletes(true) + " SELECT 1";
}

// The batch's end: the chosen workflows locked again (skipping those another
// transaction holds), checked again, and deleted with whatever child row
// came since. It ends in `last` (a SELECT over `gone`, the deleted ones).
std::string build_final_purge_statement(const std::string& last) {
  return std::string("WITH doomed AS (") + kSelectPurgeable + " AND id = ANY(" + kChosenIds +
         ") ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED)" + child_deletes(false) +
         ", gone AS (DELETE FROM workflows WHERE id IN (SELECT id FROM doomed) RETURNING 1) " +
         last;
}

// A batch's own SQLSTATE: a chosen workflow changed or was locked between the
// choice and the final statement, so the batch rolls back whole (its child
// rows are deleted already).
constexpr const char* kRacedState = "BWP01";

// Several daemons purge at once. Their batches take turns under this session
// lock ("brikpurg"): the choice no longer keeps its rows locked, so two
// batches would otherwise choose the same workflows and one would roll back.
constexpr const char* kPurgeTurnKey = "7093848273231114855";

// A batch is one message to the server. Its rows of `workflows` stay locked
// only while the server works, never while an answer travels back and the
// purger's thread waits for a core (on a busy machine, tens of ms each way),
// and only for two short statements, not while the child rows are deleted:
//  1. a transaction of its own chooses the workflows, locking them only for
//     the choice (FOR UPDATE SKIP LOCKED: a row another transaction holds,
//     such as a `retry` of that workflow, is skipped, not waited for);
//  2. their child rows are deleted, locking no workflow;
//  3. the workflows are locked again, checked again and deleted. A workflow
//     that changed or was locked meanwhile rolls the batch back (raced).
// Its values are in the text, not parameters (a message with parameters
// holds one statement): `state` quoted, the others numbers. The last
// statement, after the commit, reads how many were deleted and the longer of
// the two locked stretches, as the server timed them.
std::string one_message_batch(const std::string& quoted_state, int64_t before_ms, int32_t limit) {
  const auto inline_values = [&](std::string sql) {
    const std::pair<const char*, std::string> values[] = {
        {"$1", quoted_state}, {"$2", std::to_string(before_ms)}, {"$3", std::to_string(limit)}};
    for (const auto& [param, value] : values) {
      for (size_t at = sql.find(param); at != std::string::npos; at = sql.find(param, at)) {
        sql.replace(at, 2, value);
        at += value.size();
      }
    }
    return sql;
  };
  const std::string choose = inline_values(
      std::string("SELECT set_config('brickwork.purge_ids', coalesce(array_agg(id)::text, '{}'),"
                  " false) FROM (") +
      kSelectPurgeable + " ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED) chosen");
  const std::string final_delete = inline_values(build_final_purge_statement(
      "SELECT set_config('brickwork.purged', count(*)::text, false) FROM gone"));
  const std::string raced_check =
      std::string("DO $$ BEGIN IF current_setting('brickwork.purged')::int <> cardinality(") +
      kChosenIds + ") THEN RAISE EXCEPTION 'a workflow of the batch changed or was locked'" +
      " USING ERRCODE = '" + kRacedState + "'; END IF; END $$";
  const std::string statements[] = {
      std::string("SELECT pg_advisory_lock(") + kPurgeTurnKey + ")",
      "SELECT set_config('brickwork.purge_started', clock_timestamp()::text, false)",
      "BEGIN",
      "SET LOCAL synchronous_commit = off",
      choose,
      "COMMIT",
      "SELECT set_config('brickwork.purge_hold', (1000 * extract(epoch FROM clock_timestamp()"
      " - current_setting('brickwork.purge_started')::timestamptz))::text, false)",
      "BEGIN",
      "SET LOCAL synchronous_commit = off",
      build_child_purge_statement(),
      "SELECT set_config('brickwork.purge_locked_at', clock_timestamp()::text, false)",
      final_delete,
      raced_check,
      "COMMIT",
      "SELECT current_setting('brickwork.purged')::bigint,"
      " greatest(current_setting('brickwork.purge_hold')::float8, (1000 * extract(epoch FROM"
      " clock_timestamp() - current_setting('brickwork.purge_locked_at')::timestamptz))::float8),"
      " (1000 * extract(epoch FROM clock_timestamp()"
      " - current_setting('brickwork.purge_started')::timestamptz))::float8,"
      " pg_advisory_unlock(" +
          std::string(kPurgeTurnKey) + ")"};
  std::string message;
  for (const std::string& statement : statements) message += statement + "; ";
  return message;
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

// How long one batch should take at most, and the size it starts at.
constexpr Duration kTargetTook{8};
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
      const auto sent = std::chrono::steady_clock::now();
      const auto roll_back = [&tx] {
        // A statement that failed left the transaction open and aborted.
        // One message, so a pooler keeps it on the server connection that
        // holds the purgers' turn.
        try {
          tx.exec("ROLLBACK; SELECT pg_advisory_unlock_all()");
        } catch (...) {
        }
      };
      try {
        // A purge lost in a crash is purged again by the next round, so its
        // commits need not wait for the disk (synchronous_commit off).
        const pqxx::row r = tx.exec1(batch);
        const auto server_ms = [&r](int column) {
          return std::chrono::ceil<Duration>(
              std::chrono::duration<double, std::milli>(r[column].as<double>()));
        };
        PurgeBatch done;
        done.workflows = r[0].as<int64_t>();
        done.held = server_ms(1);
        done.took = server_ms(2);
        return done;
      } catch (const pqxx::broken_connection&) {
        throw;
      } catch (const pqxx::sql_error& e) {
        roll_back();
        if (e.sqlstate() != kRacedState) throw;
        // Its server times were rolled back with it: the whole round trip
        // bounds how long it held its rows.
        PurgeBatch raced;
        raced.held = std::chrono::ceil<Duration>(std::chrono::steady_clock::now() - sent);
        raced.took = raced.held;
        raced.raced = true;
        return raced;
      } catch (...) {
        roll_back();
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
// task that slept is scheduled sooner when it wakes. Measured over 1M, with
// batches that held their rows throughout: a pause as long as the batch gave
// a longest hold over 100 ms in four runs of six (97-235 ms); three times as
// long, 74-90 ms in three of four (132 ms in the fourth), 1M in 110-125 s.
constexpr int kPausePerTook = 3;
constexpr int kRacesPerRound = 3;

void pause_after(const PurgeBatch& batch, const std::atomic<bool>* stop) {
  const auto until =
      std::chrono::steady_clock::now() + std::min(batch.took * kPausePerTook, Duration(3000));
  while (std::chrono::steady_clock::now() < until) {
    if (stop != nullptr && stop->load()) return;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(until - std::chrono::steady_clock::now(),
                                                      std::chrono::milliseconds(20)));
  }
}

}  // namespace

const std::string& store_detail::purge_final_statement() {
  static const std::string statement = build_final_purge_statement("SELECT count(*) FROM gone");
  return statement;
}

const std::string& store_detail::purge_children_statement() {
  static const std::string statement = build_child_purge_statement();
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
  int raced_in_a_row = 0;
  for (const PurgeCutoff& cutoff : cutoffs) {
    for (;;) {
      if (stopped()) return totals;
      auto batch = purger.purge_batch(cutoff, size);
      if (!batch) return batch.error();
      ++totals.batches;
      totals.workflows[cutoff.state] += batch->workflows;
      totals.longest_hold = std::max(totals.longest_hold, batch->held);
      if (on_batch) on_batch(cutoff.state, *batch);
      if (batch->raced) {
        // Rolled back because a command touched one of its workflows: the
        // next choice skips that one while it is held. Three in a row end the
        // round; the next round tries again.
        if (++raced_in_a_row >= kRacesPerRound) break;
        pause_after(*batch, stop);
        continue;
      }
      raced_in_a_row = 0;
      // A short batch found all there was (or only rows others hold).
      if (batch->workflows < size) break;
      pause_after(*batch, stop);
      if (batch->took > kTargetTook) {
        size = std::max(1, size / 2);
      } else if (batch->took < kTargetTook / 2) {
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
