// The Postgres store over libpqxx 6.4. Values travel only as statement
// parameters; times as epoch milliseconds (to_timestamp(ms / 1000.0) in,
// extract(epoch) * 1000 out, exact to the millisecond); JSON as text cast to
// jsonb. Every libpqxx exception stops at this file's edge (guarded()).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <pqxx/pqxx>
#include <string>

#include "daemon/core/json_limits.hpp"
#include "daemon/store/conninfo.hpp"
#include "daemon/store/effect_codec.hpp"
#include "daemon/store/migrations.hpp"
#include "daemon/store/pg_errors.hpp"
#include "daemon/store/pg_notices.hpp"
#include "daemon/store/store.hpp"

namespace brickwork {
namespace {

using store_detail::CorruptRow;

// ------------------------------------------------------------------ decoding

json::value parse_json_field(const pqxx::field& f) {
  if (f.is_null()) return nullptr;
  boost::system::error_code ec;
  json::value v = parse_json(f.c_str(), ec);
  if (ec)
    throw CorruptRow(std::string("column ") + f.name() + " holds invalid JSON: " + ec.message());
  return v;
}

json::object parse_object_field(const pqxx::field& f) {
  json::value v = parse_json_field(f);
  if (v.is_null()) return {};
  if (!v.is_object()) throw CorruptRow(std::string("column ") + f.name() + " is not a JSON object");
  return std::move(v.as_object());
}

std::optional<TimePoint> time_field(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return from_epoch_ms(f.as<int64_t>());
}

WorkflowStatus workflow_status_field(const pqxx::field& f) {
  auto s = workflow_status_from_string(f.c_str());
  if (!s) throw CorruptRow(std::string("unknown workflow status ") + f.c_str());
  return *s;
}

std::optional<StepError> step_error_field(const pqxx::field& f) {
  json::value v = parse_json_field(f);
  if (v.is_null()) return std::nullopt;
  const json::object* o = v.if_object();
  if (o == nullptr) throw CorruptRow("steps.error is not a JSON object");
  StepError error;
  if (const json::value* c = o->if_contains("code"); c != nullptr && c->is_string()) {
    error.code = std::string(c->as_string());
  }
  if (const json::value* m = o->if_contains("message"); m != nullptr && m->is_string()) {
    error.message = std::string(m->as_string());
  }
  return error;
}

// ------------------------------------------------------------------ workflows

constexpr const char* kSelectWorkflow =
    "SELECT workflow, definition::text, input::text, status, seq,"
    " (extract(epoch FROM created_at) * 1000)::bigint,"
    " (extract(epoch FROM updated_at) * 1000)::bigint"
    " FROM workflows WHERE id = $1";

constexpr const char* kSelectSteps =
    "SELECT name, status, attempt, attempts_before_retry, run_id, run_page_url,"
    " handle::text, output::text, error::text,"
    " (extract(epoch FROM started_at) * 1000)::bigint,"
    " (extract(epoch FROM finished_at) * 1000)::bigint"
    " FROM steps WHERE workflow_id = $1 ORDER BY position";

std::optional<WorkflowState> load_workflow(pqxx::work& tx, const std::string& id, bool lock) {
  const pqxx::result w = tx.exec_params(
      lock ? std::string(kSelectWorkflow) + " FOR UPDATE" : std::string(kSelectWorkflow), id);
  if (w.empty()) return std::nullopt;
  const pqxx::row row = w[0];
  WorkflowState state;
  state.id = id;
  state.workflow = row[0].as<std::string>();
  auto definition = workflow_definition_from_json(parse_json_field(row[1]));
  if (!definition) throw CorruptRow("workflow " + id + ": " + definition.error().message);
  state.definition = std::move(*definition);
  state.input = parse_object_field(row[2]);
  state.status = workflow_status_field(row[3]);
  state.seq = row[4].as<int64_t>();
  state.created_at = from_epoch_ms(row[5].as<int64_t>());
  state.updated_at = from_epoch_ms(row[6].as<int64_t>());

  for (const pqxx::row s : tx.exec_params(kSelectSteps, id)) {
    StepState step;
    step.name = s[0].as<std::string>();
    auto status = step_status_from_string(s[1].c_str());
    if (!status) throw CorruptRow("workflow " + id + ": unknown step status " + s[1].c_str());
    step.status = *status;
    step.attempt = s[2].as<int32_t>();
    step.attempts_before_retry = s[3].as<int32_t>();
    if (!s[4].is_null()) step.run_id = s[4].as<int64_t>();
    step.run_page_url = s[5].as<std::string>();
    step.handle = parse_json_field(s[6]);
    if (!s[7].is_null()) {
      json::value output = parse_json_field(s[7]);
      if (output.is_object()) step.output = std::move(output.as_object());
    }
    step.error = step_error_field(s[8]);
    step.started_at = time_field(s[9]);
    step.finished_at = time_field(s[10]);
    state.steps.push_back(std::move(step));
  }
  return state;
}

// All steps as one JSON array, written with a single statement (jsonb_to_recordset).
std::string steps_json(const WorkflowState& state) {
  json::array steps;
  steps.reserve(state.steps.size());
  int32_t position = 0;
  for (const StepState& s : state.steps) {
    json::object o;
    o["name"] = s.name;
    o["position"] = position++;
    o["status"] = to_string(s.status);
    o["attempt"] = s.attempt;
    o["attempts_before_retry"] = s.attempts_before_retry;
    if (s.run_id) o["run_id"] = *s.run_id;
    o["run_page_url"] = s.run_page_url;
    if (!s.handle.is_null()) o["handle"] = s.handle;
    if (s.output) o["output"] = *s.output;
    if (s.error) o["error"] = json::object{{"code", s.error->code}, {"message", s.error->message}};
    if (s.started_at) o["started_at_ms"] = to_epoch_ms(*s.started_at);
    if (s.finished_at) o["finished_at_ms"] = to_epoch_ms(*s.finished_at);
    steps.push_back(std::move(o));
  }
  return json::serialize(steps);
}

constexpr const char* kUpsertWorkflow =
    "INSERT INTO workflows (id, workflow, definition, input, status, seq, created_at, updated_at)"
    " VALUES ($1, $2, $3::jsonb, $4::jsonb, $5, $6,"
    "         to_timestamp($7::bigint / 1000.0), to_timestamp($8::bigint / 1000.0))"
    " ON CONFLICT (id) DO UPDATE SET workflow = EXCLUDED.workflow,"
    "   definition = EXCLUDED.definition, input = EXCLUDED.input, status = EXCLUDED.status,"
    "   seq = EXCLUDED.seq, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at";

constexpr const char* kUpsertSteps =
    "INSERT INTO steps (workflow_id, name, position, status, attempt, attempts_before_retry,"
    "                   run_id, run_page_url, handle, output, error, started_at, finished_at)"
    " SELECT $1, s.name, s.position, s.status, s.attempt, s.attempts_before_retry,"
    "        s.run_id, s.run_page_url, s.handle, s.output, s.error,"
    "        to_timestamp(s.started_at_ms / 1000.0), to_timestamp(s.finished_at_ms / 1000.0)"
    " FROM jsonb_to_recordset($2::jsonb) AS s(name text, position int, status text, attempt int,"
    "      attempts_before_retry int, run_id bigint, run_page_url text, handle jsonb,"
    "      output jsonb, error jsonb, started_at_ms bigint, finished_at_ms bigint)"
    " ON CONFLICT (workflow_id, name) DO UPDATE SET position = EXCLUDED.position,"
    "   status = EXCLUDED.status, attempt = EXCLUDED.attempt,"
    "   attempts_before_retry = EXCLUDED.attempts_before_retry, run_id = EXCLUDED.run_id,"
    "   run_page_url = EXCLUDED.run_page_url, handle = EXCLUDED.handle, output = EXCLUDED.output,"
    "   error = EXCLUDED.error, started_at = EXCLUDED.started_at, finished_at = "
    "EXCLUDED.finished_at";

constexpr const char* kDeleteOtherSteps =
    "DELETE FROM steps WHERE workflow_id = $1 AND NOT EXISTS ("
    " SELECT 1 FROM jsonb_to_recordset($2::jsonb) AS s(name text) WHERE s.name = steps.name)";

// ------------------------------------------------------------------ the transaction

class PgStoreTx final : public StoreTx {
 public:
  explicit PgStoreTx(pqxx::work& tx) : tx_(tx) {}

  Result<std::optional<WorkflowState>> load_workflow_for_update(const std::string& id) override {
    try {
      return load_workflow(tx_, id, true);
    } catch (const CorruptRow& e) {
      // Only the decoding failed; the database transaction is intact.
      return Error{ErrorKind::kInternal, "unloadable", e.what()};
    }
  }

  std::optional<ForcedFailure> fail_unloadable_workflow(const std::string& id,
                                                        TimePoint now) override {
    const pqxx::result r = tx_.exec_params(
        "UPDATE workflows SET status = 'failed', seq = seq + 1,"
        " updated_at = to_timestamp($2::bigint / 1000.0)"
        " WHERE id = $1 AND status = 'running' RETURNING workflow, seq",
        id, to_epoch_ms(now));
    tx_.exec_params("DELETE FROM effects WHERE workflow_id = $1", id);
    if (r.empty()) return std::nullopt;
    return ForcedFailure{r[0][0].as<std::string>(), r[0][1].as<int64_t>()};
  }

  void save_workflow(const WorkflowState& state) override {
    tx_.exec_params(kUpsertWorkflow, state.id, state.workflow,
                    json::serialize(to_json(state.definition)), json::serialize(state.input),
                    std::string(to_string(state.status)), state.seq, to_epoch_ms(state.created_at),
                    to_epoch_ms(state.updated_at));
    const std::string steps = steps_json(state);
    tx_.exec_params(kUpsertSteps, state.id, steps);
    tx_.exec_params(kDeleteOtherSteps, state.id, steps);
  }

  void add_effect(const std::string& workflow_id, const Effect& effect, TimePoint due) override {
    const store_detail::EffectRow row = store_detail::encode_effect(effect);
    tx_.exec_params(
        "INSERT INTO effects (workflow_id, kind, step, attempt, payload, due_at)"
        " VALUES ($1, $2, $3, $4, $5::jsonb, to_timestamp($6::bigint / 1000.0))",
        workflow_id, row.kind, row.step, row.attempt, json::serialize(row.payload),
        to_epoch_ms(due));
  }

  bool delete_effect(int64_t effect_id, const std::string& owner, TimePoint now) override {
    // Owner and lease checked in the same statement: a worker whose lease ran
    // out cannot record a result that the effect's new holder also records.
    const pqxx::result r = tx_.exec_params(
        "DELETE FROM effects WHERE id = $1 AND lease_owner = $2"
        " AND lease_until >= to_timestamp($3::bigint / 1000.0)",
        effect_id, owner, to_epoch_ms(now));
    return r.affected_rows() == 1;
  }

  void add_outbox(const std::string& topic, const std::string& key,
                  const std::string& payload) override {
    tx_.exec_params("INSERT INTO outbox (topic, key, payload) VALUES ($1, $2, $3)", topic, key,
                    payload);
  }

  int64_t input_offset_for_update(const std::string& topic, int32_t partition) override {
    // The row is created first so that there is always a row to lock: two
    // consumers of a new partition then queue on it like on any other.
    tx_.exec_params(
        "INSERT INTO input_offsets (topic, partition, next_offset) VALUES ($1, $2, -1)"
        " ON CONFLICT (topic, partition) DO NOTHING",
        topic, partition);
    const pqxx::result r = tx_.exec_params(
        "SELECT next_offset FROM input_offsets WHERE topic = $1 AND partition = $2 FOR UPDATE",
        topic, partition);
    if (r.empty()) throw CorruptRow("input_offsets row vanished for " + topic);
    return r[0][0].as<int64_t>();
  }

  void set_input_offset(const std::string& topic, int32_t partition, int64_t next_offset) override {
    tx_.exec_params(
        "INSERT INTO input_offsets (topic, partition, next_offset) VALUES ($1, $2, $3)"
        " ON CONFLICT (topic, partition) DO UPDATE"
        " SET next_offset = EXCLUDED.next_offset, updated_at = now()",
        topic, partition, next_offset);
  }

 private:
  pqxx::work& tx_;
};

// ------------------------------------------------------------------ the store

class PgStore final : public Store {
 public:
  PgStore(const std::string& url, std::shared_ptr<PasswordSource> password)
      : conninfo_(store_conninfo(url)), passwords_(url), password_(std::move(password)) {}

  Status migrate() override {
    return guarded<Done>("migrate", [&](pqxx::connection& c) {
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

  Status transact(const std::function<void(StoreTx&)>& body) override {
    return guarded<Done>("transact", [&](pqxx::connection& c) {
      pqxx::work tx(c);
      PgStoreTx store_tx(tx);
      body(store_tx);
      tx.commit();
      return Done{};
    });
  }

  Result<std::vector<StoredEffect>> claim_due_effects(const std::string& owner, int32_t limit,
                                                      TimePoint now, Duration lease) override {
    return guarded<std::vector<StoredEffect>>("claim_due_effects", [&](pqxx::connection& c) {
      pqxx::work tx(c);
      const pqxx::result r = tx.exec_params(
          "WITH claimed AS ("
          " UPDATE effects SET lease_owner = $1, lease_until = to_timestamp($3::bigint / 1000.0),"
          "   tries = tries + 1"
          " WHERE id IN (SELECT id FROM effects"
          "   WHERE due_at <= to_timestamp($2::bigint / 1000.0)"
          "     AND (lease_until IS NULL OR lease_until < to_timestamp($2::bigint / 1000.0))"
          "   ORDER BY due_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)"
          " RETURNING id, workflow_id, kind, step, attempt, payload, tries, due_at)"
          " SELECT id, workflow_id, kind, step, attempt, payload::text, tries FROM claimed"
          " ORDER BY due_at, id",
          owner, to_epoch_ms(now), to_epoch_ms(now + lease), std::max(limit, 0));
      std::vector<StoredEffect> effects;
      effects.reserve(r.size());
      for (const pqxx::row row : r) {
        store_detail::EffectRow effect_row{row[2].as<std::string>(), row[3].as<std::string>(),
                                           row[4].as<int32_t>(), parse_object_field(row[5])};
        auto effect = store_detail::decode_effect(effect_row);
        if (!effect) throw CorruptRow(effect.error().message);
        // `tries` counts claims including this one; StoredEffect wants the ones before.
        effects.push_back(StoredEffect{row[0].as<int64_t>(), row[1].as<std::string>(),
                                       std::move(*effect), row[6].as<int32_t>() - 1, owner});
      }
      tx.commit();
      return effects;
    });
  }

  Status reschedule_effect(int64_t effect_id, const std::string& owner, TimePoint due) override {
    return guarded<Done>("reschedule_effect", [&](pqxx::connection& c) {
      pqxx::work tx(c);
      tx.exec_params(
          "UPDATE effects SET due_at = to_timestamp($2::bigint / 1000.0),"
          " lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $3",
          effect_id, to_epoch_ms(due), owner);
      tx.commit();
      return Done{};
    });
  }

  Status renew_leases(const std::vector<HeldLease>& held, TimePoint now, Duration lease) override {
    if (held.empty()) return ok_status();
    return guarded<Done>("renew_leases", [&](pqxx::connection& c) {
      pqxx::work tx(c);
      for (const HeldLease& h : held) {
        tx.exec_params(
            "UPDATE effects SET lease_until = to_timestamp($3::bigint / 1000.0)"
            " WHERE id = $1 AND lease_owner = $2"
            " AND lease_until >= to_timestamp($4::bigint / 1000.0)",
            h.effect_id, h.owner, to_epoch_ms(now + lease), to_epoch_ms(now));
      }
      tx.commit();
      return Done{};
    });
  }

  Result<std::optional<TimePoint>> next_effect_due() override {
    return guarded<std::optional<TimePoint>>("next_effect_due", [&](pqxx::connection& c) {
      pqxx::work tx(c);
      // A leased effect becomes claimable again only just after its lease ends.
      const pqxx::result r = tx.exec(
          "SELECT (extract(epoch FROM min(CASE WHEN lease_until IS NOT NULL AND lease_until >= "
          "due_at"
          "   THEN lease_until + interval '1 millisecond' ELSE due_at END)) * 1000)::bigint"
          " FROM effects");
      tx.commit();
      return time_field(r[0][0]);
    });
  }

  Result<int32_t> drain_outbox(int32_t limit, const OutboxPublish& publish) override {
    std::optional<Error> publish_error;
    auto drained = guarded<int32_t>("drain_outbox", [&](pqxx::connection& c) -> int32_t {
      pqxx::work tx(c);
      if (!tx.exec_params("SELECT pg_try_advisory_xact_lock($1)",
                          store_detail::kOutboxLockKey)[0][0]
               .as<bool>()) {
        return 0;  // another publisher is draining
      }
      const pqxx::result r = tx.exec_params(
          "SELECT id, topic, key, payload FROM outbox ORDER BY id LIMIT $1", std::max(limit, 0));
      if (r.empty()) return 0;
      std::vector<OutboxMessage> messages;
      messages.reserve(r.size());
      std::string ids = "{";
      for (const pqxx::row row : r) {
        messages.push_back(OutboxMessage{row[0].as<int64_t>(), row[1].as<std::string>(),
                                         row[2].as<std::string>(), row[3].as<std::string>()});
        if (ids.size() > 1) ids += ',';
        ids += std::to_string(messages.back().id);
      }
      ids += '}';
      auto published = publish(messages);
      if (!published) {
        publish_error = published.error();
        return 0;  // the work's destructor rolls back; the rows stay
      }
      // By id, never by range: a row with a smaller id may commit after we read.
      tx.exec_params("DELETE FROM outbox WHERE id = ANY($1::bigint[])", ids);
      for (const OutboxMessage& m : *published) {
        tx.exec_params("INSERT INTO outbox (topic, key, payload) VALUES ($1, $2, $3)", m.topic,
                       m.key, m.payload);
      }
      tx.commit();
      return static_cast<int32_t>(messages.size());
    });
    if (publish_error) return *publish_error;
    return drained;
  }

  Result<std::optional<WorkflowState>> get_workflow(const std::string& id) override {
    return guarded<std::optional<WorkflowState>>("get_workflow", [&](pqxx::connection& c) {
      pqxx::work tx(c);
      auto state = load_workflow(tx, id, false);
      tx.commit();
      return state;
    });
  }

  Result<std::vector<WorkflowSummary>> list_workflows(std::optional<WorkflowStatus> state,
                                                      int32_t limit) override {
    return guarded<std::vector<WorkflowSummary>>("list_workflows", [&](pqxx::connection& c) {
      pqxx::work tx(c);
      // LIMIT NULL is LIMIT ALL.
      const char* limit_param = nullptr;
      const std::string limit_text = std::to_string(limit);
      if (limit > 0) limit_param = limit_text.c_str();
      constexpr const char* kColumns =
          "SELECT id, workflow, status, (extract(epoch FROM created_at) * 1000)::bigint,"
          " (extract(epoch FROM updated_at) * 1000)::bigint FROM workflows";
      const pqxx::result r =
          state ? tx.exec_params(std::string(kColumns) +
                                     " WHERE status = $1 ORDER BY created_at DESC, id DESC"
                                     " LIMIT $2::bigint",
                                 std::string(to_string(*state)), limit_param)
                : tx.exec_params(
                      std::string(kColumns) + " ORDER BY created_at DESC, id DESC LIMIT $1::bigint",
                      limit_param);
      std::vector<WorkflowSummary> summaries;
      summaries.reserve(r.size());
      for (const pqxx::row row : r) {
        summaries.push_back(WorkflowSummary{
            row[0].as<std::string>(), row[1].as<std::string>(), workflow_status_field(row[2]),
            from_epoch_ms(row[3].as<int64_t>()), from_epoch_ms(row[4].as<int64_t>())});
      }
      tx.commit();
      return summaries;
    });
  }

  Result<QueueDepths> queue_depths(TimePoint now) override {
    return guarded<QueueDepths>("queue_depths", [&](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      const pqxx::row r = tx.exec_params1(
          "SELECT (SELECT count(*) FROM outbox),"
          " (SELECT count(*) FROM effects WHERE due_at <= to_timestamp($1::bigint / 1000.0)"
          "    AND (lease_until IS NULL OR lease_until < to_timestamp($1::bigint / 1000.0)))",
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
  // Connects on first use and after a lost connection; runs `fn` on the
  // connection and turns whatever it throws into an Error. No retry here: the
  // caller decides by the Error's kind.
  template <class T, class Fn>
  Result<T> guarded(const char* context, Fn&& fn) {
    try {
      if (!conninfo_) return conninfo_.error();  // a configuration error: never worth a retry
      if (!connection_) {
        auto conninfo = with_password(*conninfo_, password_.get());
        if (!conninfo) return conninfo.error();
        connection_ = std::make_unique<LoggedConnection>(*conninfo);
      }
      return Result<T>(fn(*connection_));
    } catch (...) {
      store_detail::PgFailure failure =
          store_detail::classify_current_exception(context, passwords_);
      if (password_ && is_password_refusal(failure.error.message)) {
        // An expired or rotated credential: fetch a new one, try again later.
        password_->refused();
        failure.error.kind = ErrorKind::kTransient;
        failure.error.code = "28P01";
        failure.drop_connection = true;
      }
      if (failure.drop_connection || (connection_ && !connection_->is_open())) {
        if (connection_)
          spdlog::warn("store: dropping the Postgres connection: {}", failure.error.message);
        connection_.reset();
      }
      return failure.error;
    }
  }

  Result<std::string> conninfo_;  // postgres.url with the store's timeouts
  PasswordRedactor passwords_;
  std::shared_ptr<PasswordSource> password_;
  std::unique_ptr<LoggedConnection> connection_;
};

}  // namespace

std::unique_ptr<Store> Store::open(const std::string& url, std::shared_ptr<PasswordSource> password) {
  return std::make_unique<PgStore>(url, std::move(password));
}

}  // namespace brickwork
