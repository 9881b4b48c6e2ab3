// The Postgres store over libpqxx 6.4: one connection (PgSession) shared by
// its parts, one for each consumer's interface (store.hpp). Values travel
// only as statement parameters (pg_params.hpp); times as epoch milliseconds
// (to_timestamp(ms / 1000.0) in, extract(epoch) * 1000 out, exact to the
// millisecond); JSON as text cast to jsonb. Every libpqxx exception stops at
// the session's edge (PgSession::run).
#include <spdlog/spdlog.h>

#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <utility>
#include <vector>

#include "daemon/store/migrations.hpp"
#include "daemon/store/claim_query.hpp"
#include "daemon/store/pg_effect_queue.hpp"
#include "daemon/store/pg_outbox_drain.hpp"
#include "daemon/store/pg_session.hpp"
#include "daemon/store/pg_store_tx.hpp"
#include "daemon/store/pg_workflows.hpp"
#include "daemon/store/store.hpp"
#include "daemon/store/workflow_rows.hpp"

namespace brickwork {
namespace {

class PgStore final : public Store {
 public:
  PgStore(const std::string& url, std::shared_ptr<PasswordSource> password,
          std::shared_ptr<const SecretBox> sealer)
      : sealer_(std::move(sealer)),
        session_(url, std::move(password), [this](pqxx::connection& c) { prepare(c); }),
        workflows_(session_, sealer_.get()),
        effects_(session_, sealer_.get(), workflows_.definitions()),
        outbox_(session_, sealer_.get()) {}

  Status migrate() override {
    return guarded<Done>("migrate", [&](pqxx::connection& c) {
      // Nearly every start finds them all applied: two reads instead of a
      // transaction with the migration lock per migration.
      if (all_migrations_applied(c)) return Done{};
      for (const store_detail::Migration& m : store_detail::migrations()) {
        pqxx::work tx(c);
        // A migration (and waiting for another migrator) may outlast the
        // connection's statement_timeout; it must not be cut short by it.
        tx.exec("SET LOCAL statement_timeout = 0");
        // Serialises migrators across daemons until this transaction ends.
        tx.exec_params("SELECT pg_advisory_xact_lock($1)", store_detail::kMigrateLockKey);
        tx.exec("SET LOCAL client_min_messages = warning");
        tx.exec(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())");
        if (!tx.exec_params("SELECT 1 FROM schema_migrations WHERE version = $1", m.version)
                 .empty()) {
          continue;  // the work's destructor ends the empty transaction
        }
        tx.exec(m.sql);
        tx.exec_params("INSERT INTO schema_migrations (version) VALUES ($1)", m.version);
        tx.commit();
        spdlog::info("store: applied migration {} ({})", m.version, m.description);
      }
      return Done{};
    });
  }

  // Migrations are applied in order, each inserting its version as it
  // commits, so the highest version applied says whether any is missing.
  // One being applied by another daemon is not visible yet: then the
  // caller waits for its lock as before.
  static bool all_migrations_applied(pqxx::connection& c) {
    pqxx::nontransaction read(c);
    if (!read.exec("SELECT to_regclass('schema_migrations') IS NOT NULL")[0][0].as<bool>()) {
      return false;
    }
    const auto latest = read.exec("SELECT coalesce(max(version), 0) FROM schema_migrations");
    return latest[0][0].as<int64_t>() >= store_detail::migrations().back().version;
  }

  // The parts, each what one consumer uses.
  Status transact(const std::function<void(StoreTx&)>& body) override {
    return workflows_.transact(body);
  }
  Result<std::optional<WorkflowState>> get_workflow(const std::string& id) override {
    return workflows_.get_workflow(id);
  }
  Result<LoadedWorkflows> get_workflows(const std::vector<std::string>& ids) override {
    return workflows_.get_workflows(ids);
  }
  Result<std::vector<WorkflowSummary>> list_workflows(const WorkflowQuery& query) override {
    return workflows_.list_workflows(query);
  }
  Result<std::optional<WorkflowHistory>> get_history(const std::string& id) override {
    return workflows_.get_history(id);
  }
  Result<ClaimedEffects> claim_due_effects(const std::string& owner, int32_t limit, TimePoint now,
                                           Duration lease) override {
    return effects_.claim_due_effects(owner, limit, now, lease);
  }
  Status reschedule_effect(int64_t effect_id, const std::string& owner, TimePoint due) override {
    return effects_.reschedule_effect(effect_id, owner, due);
  }
  Status renew_leases(const std::vector<HeldLease>& held, TimePoint now, Duration lease) override {
    return effects_.renew_leases(held, now, lease);
  }
  Status release_leases(const std::vector<HeldLease>& held) override {
    return effects_.release_leases(held);
  }
  Result<int32_t> drain_outbox(int32_t limit, const std::vector<OutboxStream>& skip,
                               const OutboxPublish& publish) override {
    return outbox_.drain_outbox(limit, skip, publish);
  }

  Result<QueueDepths> queue_depths(TimePoint now) override {
    return guarded<QueueDepths>("queue_depths", [&](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      const pqxx::row r = tx.exec_params1(
          "SELECT (SELECT count(*) FROM outbox),"
          // As the claim reads them: unleased, then expired leases (two indexes).
          " (SELECT count(*) FROM effects WHERE lease_until IS NULL"
          "    AND due_at <= to_timestamp($1::bigint / 1000.0))"
          " + (SELECT count(*) FROM effects WHERE lease_until IS NOT NULL"
          "    AND coalesce(lease_until, 'infinity') < to_timestamp($1::bigint / 1000.0)"
          "    AND due_at <= to_timestamp($1::bigint / 1000.0))",
          to_epoch_ms(now));
      return QueueDepths{r[0].as<int64_t>(), r[1].as<int64_t>()};
    });
  }

  Status ping() override {
    return guarded<Done>("ping", [&](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      tx.exec("SELECT 1");
      return Done{};
    });
  }

 private:
  // Runs `fn` on the connection (PgSession: connects when needed, turns
  // whatever it throws into an Error).
  template <class T, class Fn>
  Result<T> guarded(const char* context, Fn&& fn) {
    return session_.run<T>(context, std::forward<Fn>(fn));
  }

  // Every new connection: the hot statements prepared, and its settings.
  // Every join the store makes is of a few keys (an array, a LIMIT) to a
  // table by its index. A write of a few hundred rows was otherwise planned
  // as a hash join over a sequential scan of the whole table while the table
  // was small, which costs more as it grows. For the same reason no
  // sequential scans: a plan made while a table was empty (a new daemon's
  // first minute, before any ANALYZE) read the whole table, dead rows
  // included, at every call. With those three off, each statement reaches
  // its rows by an index condition whatever the statistics say
  // (plans_test.cpp checks on fresh and on full tables), so it is planned
  // once per connection (a generic plan): planning every call cost as much
  // as running it (the intake's write: 0.38 ms planning, 0.63 ms running,
  // on stock Postgres at 1,000 inputs/s). And no JIT: a plan that has to
  // scan a table anyway costs more than jit_above_cost then, and compiling
  // it took a second. And no parallel workers: with statistics that guess
  // thousands of rows for a few hundred keys, the intake's read of its
  // workflows' steps was planned as a parallel scan, whose workers cost more
  // to start than the read (12.5 of 27 s that slow statements took in the
  // bench) and took a core from the daemon.
  void prepare(pqxx::connection& connection) {
    for (const auto* statements : store_detail::prepared_statement_sets()) {
      for (const auto& [name, statement] : *statements) connection.prepare(name, statement);
    }
    pqxx::nontransaction(connection).exec(store_detail::kStoreSessionSettings);
    // A new connection may be to a server that lost or restored rows
    // (crash recovery, a fail-over): read the outbox from its start, and
    // draw effect ids anew from its sequence.
    outbox_.restart();
    workflows_.forget_effect_ids();
  }

  std::shared_ptr<const SecretBox> sealer_;
  store_detail::PgSession session_;
  store_detail::PgWorkflows workflows_;
  store_detail::PgEffectQueue effects_;
  store_detail::PgOutboxDrain outbox_;
};

}  // namespace

std::unique_ptr<Store> Store::open(const std::string& url, std::shared_ptr<PasswordSource> password,
                                   std::shared_ptr<const SecretBox> sealer) {
  return std::make_unique<PgStore>(url, std::move(password), std::move(sealer));
}

}  // namespace brickwork
