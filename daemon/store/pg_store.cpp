// The Postgres store over libpqxx 6.4. Values travel only as statement
// parameters; times as epoch milliseconds (to_timestamp(ms / 1000.0) in,
// extract(epoch) * 1000 out, exact to the millisecond); JSON as text cast to
// jsonb. Every libpqxx exception stops at this file's edge (guarded()).
#include <spdlog/spdlog.h>

#include <algorithm>

#include <cctype>

#include <map>
#include <pqxx/pqxx>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/core/json_limits.hpp"
#include "daemon/store/claim_query.hpp"
#include "daemon/store/conninfo.hpp"
#include "daemon/store/definition_cache.hpp"
#include "daemon/store/drain_cursor.hpp"
#include "daemon/store/effect_codec.hpp"
#include "daemon/store/history_store.hpp"
#include "daemon/store/migrations.hpp"
#include "daemon/store/pg_errors.hpp"
#include "daemon/store/pg_params.hpp"
#include "daemon/store/pg_session.hpp"
#include "daemon/store/row_fields.hpp"
#include "daemon/store/sealing.hpp"
#include "daemon/store/store.hpp"
#include "daemon/store/write_buffer.hpp"

namespace brickwork {
namespace {

using store_detail::CorruptRow;
using store_detail::DefinitionCache;
using store_detail::NullableText;
using store_detail::WriteBuffer;
using store_detail::json_param;
using store_detail::ms_param;
using store_detail::number_array;
using store_detail::optional_text;
using store_detail::text_array;

// ------------------------------------------------------------------ decoding

using store_detail::json_field;
using store_detail::object_field;
using store_detail::step_error_field;
using store_detail::time_field;
using store_detail::workflow_status_field;

// ------------------------------------------------------------------ workflows

// Hot statements, prepared once per connection: these reads, and the writes
// of WriteBuffer (a statement per set of row kinds sent together).
constexpr const char* kWorkflowsColumns =
    "SELECT id, workflow, definition_hash,"
    " CASE WHEN definition_hash IS NULL THEN definition::text END, input::text, status, seq,"
    " (extract(epoch FROM created_at) * 1000)::bigint,"
    " (extract(epoch FROM updated_at) * 1000)::bigint, signals::text, coalesce(traceparent, '')"
    " FROM workflows WHERE id = ANY($1::text[])";

// The effects of (id, lease owner) pairs $1, $2 that still hold their lease,
// locked in id order: `held` in a WITH clause, closed by kInIdOrder (after
// any further condition on e).
constexpr const char* kHeldEffects =
    "WITH held AS (SELECT e.id FROM effects e"
    " JOIN unnest($1::bigint[], $2::text[]) AS c(id, owner)"
    " ON e.id = c.id AND e.lease_owner = c.owner WHERE true";
constexpr const char* kInIdOrder = " ORDER BY e.id FOR UPDATE OF e)";

const std::map<std::string, std::string>& prepared_statements() {
  static const std::map<std::string, std::string> statements = {
      {"select_workflows", kWorkflowsColumns},
      {"select_workflows_locked", std::string(kWorkflowsColumns) + " ORDER BY id FOR UPDATE"},
      {"select_steps_of",
       "SELECT workflow_id, name, status, attempt, attempts_before_retry, run_id, run_page_url,"
       " handle::text, output::text, error::text,"
       " (extract(epoch FROM started_at) * 1000)::bigint,"
       " (extract(epoch FROM finished_at) * 1000)::bigint"
       " FROM steps WHERE workflow_id = ANY($1::text[]) ORDER BY workflow_id, position"},
      // Effect rows are locked in id order by every statement that writes
      // several (kHeldEffects): two of them never wait for each other in a cycle.
      {"delete_effects",
       std::string(kHeldEffects) + " AND e.lease_until >= to_timestamp($3::bigint / 1000.0)" +
           kInIdOrder + " DELETE FROM effects e USING held WHERE e.id = held.id RETURNING e.id"},
      {"select_definition", "SELECT definition::text FROM definitions WHERE hash = $1"},
      {"drain_outbox", store_detail::kDrainOutbox},
      {"insert_definition",
       "INSERT INTO definitions (hash, definition) VALUES ($1, $2::jsonb)"
       " ON CONFLICT (hash) DO NOTHING"},
      {"ensure_input_offsets",
       "INSERT INTO input_offsets (topic, partition, next_offset)"
       " SELECT t, p, -1 FROM unnest($1::text[], $2::int[]) AS x(t, p)"
       " ON CONFLICT (topic, partition) DO NOTHING"},
      // In key order, so that two transactions lock overlapping sets alike.
      {"select_input_offsets",
       "SELECT topic, partition, next_offset FROM input_offsets"
       " WHERE (topic, partition) IN (SELECT t, p FROM unnest($1::text[], $2::int[]) AS x(t, p))"
       " ORDER BY topic, partition FOR UPDATE"},
  };
  return statements;
}

const WorkflowDefinition& definition_by_hash(pqxx::work& tx, const std::string& id,
                                             const std::string& hash, DefinitionCache& cache) {
  if (const WorkflowDefinition* known = cache.find(hash)) return *known;
  const pqxx::result r = tx.exec_prepared("select_definition", hash);
  if (r.empty()) throw CorruptRow("workflow " + id + ": no definition " + hash);
  auto definition = workflow_definition_from_json(json_field(r[0][0]));
  if (!definition) throw CorruptRow("workflow " + id + ": " + definition.error().message);
  cache.add(hash, std::move(*definition));
  cache.mark_stored(hash);
  return *cache.find(hash);
}

// The workflow columns of kWorkflowsColumns after the id, from `first` on.
WorkflowState workflow_from_row(pqxx::work& tx, const std::string& id, const pqxx::row& row,
                                int first, DefinitionCache& cache) {
  WorkflowState state;
  state.id = id;
  state.workflow = row[first].as<std::string>();
  if (!row[first + 1].is_null()) {
    state.definition = definition_by_hash(tx, id, row[first + 1].as<std::string>(), cache);
  } else {
    auto definition = workflow_definition_from_json(json_field(row[first + 2]));
    if (!definition) throw CorruptRow("workflow " + id + ": " + definition.error().message);
    state.definition = std::move(*definition);
  }
  state.input = object_field(row[first + 3]);
  state.status = workflow_status_field(row[first + 4]);
  state.seq = row[first + 5].as<int64_t>();
  state.created_at = from_epoch_ms(row[first + 6].as<int64_t>());
  state.updated_at = from_epoch_ms(row[first + 7].as<int64_t>());
  state.kept_signals = store_detail::kept_signals_from_column(row[first + 8]);
  state.traceparent = row[first + 9].as<std::string>();
  return state;
}

// The step columns of select_steps_of after the workflow id, from `first` on.
StepState step_from_row(const WorkflowState& state, const pqxx::row& s, int first,
                        const SecretBox* sealer) {
  StepState step;
  step.name = s[first].as<std::string>();
  auto status = step_status_from_string(s[first + 1].c_str());
  if (!status) {
    throw CorruptRow("workflow " + state.id + ": unknown step status " + s[first + 1].c_str());
  }
  step.status = *status;
  step.attempt = s[first + 2].as<int32_t>();
  step.attempts_before_retry = s[first + 3].as<int32_t>();
  if (!s[first + 4].is_null()) step.run_id = s[first + 4].as<int64_t>();
  step.run_page_url = s[first + 5].as<std::string>();
  step.handle = json_field(s[first + 6]);
  if (!s[first + 7].is_null()) {
    json::value output = json_field(s[first + 7]);
    if (output.is_object()) {
      step.output =
          store_detail::output_from_column(state, step.name, std::move(output.as_object()), sealer);
    }
  }
  step.error = step_error_field(s[first + 8]);
  step.started_at = time_field(s[first + 9]);
  step.finished_at = time_field(s[first + 10]);
  return step;
}

using LoadedWorkflows = Store::LoadedWorkflows;

// Several workflows in two queries, their rows locked in id order (so two
// transactions locking overlapping sets cannot deadlock). A workflow whose
// rows do not decode is an Error of its own.
LoadedWorkflows load_workflows(pqxx::work& tx, std::vector<std::string> ids, bool lock,
                               const SecretBox* sealer, DefinitionCache& cache) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  LoadedWorkflows out;
  if (ids.empty()) return out;
  const std::string array = text_array(ids);
  std::map<std::string, WorkflowState> states;
  for (const pqxx::row row :
       tx.exec_prepared(lock ? "select_workflows_locked" : "select_workflows", array)) {
    const std::string id = row[0].as<std::string>();
    try {
      states.emplace(id, workflow_from_row(tx, id, row, 1, cache));
    } catch (const CorruptRow& e) {
      out.emplace(id, Error{ErrorKind::kInternal, "unloadable", e.what()});
    }
  }
  for (const pqxx::row row : tx.exec_prepared("select_steps_of", array)) {
    auto it = states.find(row[0].as<std::string>());
    if (it == states.end()) continue;
    try {
      it->second.steps.push_back(step_from_row(it->second, row, 1, sealer));
    } catch (const CorruptRow& e) {
      out.emplace(it->first, Error{ErrorKind::kInternal, "unloadable", e.what()});
      states.erase(it);
    }
  }
  for (auto& [id, state] : states) out.emplace(id, std::optional<WorkflowState>(std::move(state)));
  for (const std::string& id : ids) out.emplace(id, std::optional<WorkflowState>());  // absent
  return out;
}

// One workflow, by the same queries; rows that do not decode throw CorruptRow.
std::optional<WorkflowState> load_workflow(pqxx::work& tx, const std::string& id, bool lock,
                                           const SecretBox* sealer, DefinitionCache& cache) {
  LoadedWorkflows loaded = load_workflows(tx, {id}, lock, sealer, cache);
  auto& state = loaded.at(id);
  if (!state) throw CorruptRow(state.error().message);
  return std::move(*state);
}

// All steps as one JSON array, written with a single statement (jsonb_to_recordset).
std::string steps_json(const WorkflowState& state, const SecretBox* sealer) {
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
    if (s.output) {
      o["output"] = store_detail::stored_output(state, s, *s.output, sealer);
    }
    if (s.error) o["error"] = json::object{{"code", s.error->code}, {"message", s.error->message}};
    if (s.started_at) o["started_at_ms"] = to_epoch_ms(*s.started_at);
    if (s.finished_at) o["finished_at_ms"] = to_epoch_ms(*s.finished_at);
    steps.push_back(std::move(o));
  }
  return json::serialize(steps);
}

constexpr const char* kUpsertWorkflow =
    "INSERT INTO workflows (id, workflow, definition_hash, input, status, seq, created_at,"
    "                       updated_at, traceparent)"
    " VALUES ($1, $2, $3, $4::jsonb, $5, $6,"
    "         to_timestamp($7::bigint / 1000.0), to_timestamp($8::bigint / 1000.0), NULLIF($9, ''))"
    " ON CONFLICT (id) DO UPDATE SET workflow = EXCLUDED.workflow, definition = NULL,"
    "   definition_hash = EXCLUDED.definition_hash, input = EXCLUDED.input,"
    "   status = EXCLUDED.status, traceparent = EXCLUDED.traceparent,"
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

// Leases as two Postgres array literals (ids, owners), for unnest().
std::pair<std::string, std::string> lease_arrays(const std::vector<HeldLease>& held) {
  std::vector<int64_t> ids;
  std::vector<std::string> owners;
  for (const HeldLease& h : held) {
    ids.push_back(h.effect_id);
    owners.push_back(h.owner);
  }
  return {number_array(ids), text_array(owners)};
}

// The drain's transaction as the publisher sees it.
class PgOutboxTx final : public OutboxTx {
 public:
  explicit PgOutboxTx(pqxx::work& tx) : tx_(tx) {}
  std::optional<WorkflowSequence> take_next_seq(const std::string& workflow_id) override {
    // The row lock is taken as any transition takes it, so seq stays gap-free.
    const pqxx::result r = tx_.exec_params(
        "UPDATE workflows SET seq = seq + 1 WHERE id = $1 RETURNING workflow, seq, status",
        workflow_id);
    if (r.empty()) return std::nullopt;
    auto status = workflow_status_from_string(r[0][2].as<std::string>());
    return WorkflowSequence{r[0][0].as<std::string>(), r[0][1].as<int64_t>(),
                            status.value_or(WorkflowStatus::kRunning)};
  }

 private:
  pqxx::work& tx_;
};

// A claimed effect from the columns id, workflow_id, kind, step, attempt,
// payload, tries (lease owner left to the caller).
StoredEffect stored_effect_of(const pqxx::row& row) {
  store_detail::EffectRow effect_row{row[2].as<std::string>(), row[3].as<std::string>(),
                                     row[4].as<int32_t>(), object_field(row[5])};
  auto effect = store_detail::decode_effect(effect_row);
  if (!effect) throw CorruptRow(effect.error().message);
  // `tries` counts claims including this one; StoredEffect wants the ones before.
  return StoredEffect{row[0].as<int64_t>(), row[1].as<std::string>(), std::move(*effect),
                      row[6].as<int32_t>() - 1, {}};
}

// ------------------------------------------------------------------ the transaction

// Times travel as epoch milliseconds (bigint), JSON as jsonb array elements.
const WriteBuffer::RowKind kOutboxRows{
    "o",
    "INSERT INTO outbox (topic, key, payload, workflow_id, step, traceparent)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
    " $6::text[])",
    "outbox", false};
const WriteBuffer::RowKind kEffectRows{
    "e",
    "INSERT INTO effects (workflow_id, kind, step, attempt, payload, due_at)"
    " SELECT workflow_id, kind, step, attempt, payload, to_timestamp(due_ms / 1000.0)"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::jsonb[], $6::bigint[])"
    " AS v(workflow_id, kind, step, attempt, payload, due_ms)",
    "effects", false};
const WriteBuffer::RowKind kLeasedEffectRows{
    "l",
    "INSERT INTO effects (workflow_id, kind, step, attempt, payload, due_at, lease_owner,"
    " lease_until, tries)"
    " SELECT workflow_id, kind, step, attempt, payload, to_timestamp(due_ms / 1000.0),"
    " lease_owner, to_timestamp(lease_until_ms / 1000.0), 1"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::jsonb[], $6::bigint[],"
    " $7::text[], $8::bigint[])"
    " AS v(workflow_id, kind, step, attempt, payload, due_ms, lease_owner, lease_until_ms)"
    " RETURNING id, workflow_id, kind, step, attempt, payload::text, tries, lease_owner",
    "effects", false, true};
const WriteBuffer::RowKind kNewWorkflowRows{
    "w",
    "INSERT INTO workflows (id, workflow, definition_hash, input, status, seq, created_at,"
    " updated_at, traceparent)"
    " SELECT id, workflow, definition_hash, input, status, seq, to_timestamp(created_ms / 1000.0),"
    " to_timestamp(updated_ms / 1000.0), traceparent"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::bigint[],"
    " $7::bigint[], $8::bigint[], $9::text[])"
    " AS v(id, workflow, definition_hash, input, status, seq, created_ms, updated_ms, traceparent)",
    "workflows", false};
const WriteBuffer::RowKind kNewStepRows{
    "s",
    "INSERT INTO steps (workflow_id, name, position, status, attempt, attempts_before_retry,"
    " run_id, run_page_url, handle, output, error, started_at, finished_at)"
    " SELECT workflow_id, name, position, status, attempt, attempts_before_retry, run_id,"
    " run_page_url, handle, output, error, to_timestamp(started_ms / 1000.0),"
    " to_timestamp(finished_ms / 1000.0)"
    " FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::int[], $6::int[],"
    " $7::bigint[], $8::text[], $9::jsonb[], $10::jsonb[], $11::jsonb[], $12::bigint[],"
    " $13::bigint[])"
    " AS v(workflow_id, name, position, status, attempt, attempts_before_retry, run_id,"
    " run_page_url, handle, output, error, started_ms, finished_ms)",
    "steps", false};
// Only polls no one holds: a claimed one is its holder's to record. The
// lease test is one no index answers, so the rows are found by workflow:
// as `lease_until IS NULL OR lease_until < now()` it was planned as a scan
// of both partial indexes of effects (every unleased and leased effect).
const WriteBuffer::RowKind kDroppedPollRows{
    "p",
    "DELETE FROM effects e USING unnest($1::text[], $2::text[], $3::int[])"
    " AS v(workflow_id, step, attempt)"
    " WHERE e.workflow_id = v.workflow_id AND e.step = v.step AND e.attempt = v.attempt"
    " AND e.kind = 'poll' AND coalesce(e.lease_until, '-infinity') < now()",
    "effects", true};
const WriteBuffer::RowKind kInputOffsetRows{
    "i",
    "INSERT INTO input_offsets (topic, partition, next_offset)"
    " SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[])"
    " ON CONFLICT (topic, partition) DO UPDATE"
    " SET next_offset = EXCLUDED.next_offset, updated_at = now()",
    "input_offsets", true};
const WriteBuffer::RowKind kWorkflowUpdateRows{
    "u",
    "UPDATE workflows w SET status = v.status, seq = v.seq,"
    " updated_at = to_timestamp(v.updated_ms / 1000.0)"
    " FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])"
    " AS v(id, status, seq, updated_ms) WHERE w.id = v.id",
    "workflows", true};
const WriteBuffer::RowKind kStepUpdateRows{
    "t",
    "UPDATE steps s SET status = v.status, attempt = v.attempt,"
    " attempts_before_retry = v.attempts_before_retry, run_id = v.run_id,"
    " run_page_url = v.run_page_url, handle = v.handle, output = v.output, error = v.error,"
    " started_at = to_timestamp(v.started_ms / 1000.0),"
    " finished_at = to_timestamp(v.finished_ms / 1000.0)"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[], $6::bigint[],"
    " $7::text[], $8::jsonb[], $9::jsonb[], $10::jsonb[], $11::bigint[], $12::bigint[])"
    " AS v(workflow_id, name, status, attempt, attempts_before_retry, run_id, run_page_url,"
    " handle, output, error, started_ms, finished_ms)"
    " WHERE s.workflow_id = v.workflow_id AND s.name = v.name",
    "steps", true};

// Signals and history (history_store.hpp).
const WriteBuffer::RowKind kWorkflowWithSignalsRows{
    "g", store_detail::kUpdateWorkflowWithSignals, "workflows", true};
const WriteBuffer::RowKind kAttemptRows{"a", store_detail::kUpsertAttempts, "step_attempts", true};
const WriteBuffer::RowKind kHistoryNoteRows{
    "n", store_detail::kInsertHistoryNotes, "workflow_history", false};

const std::string& statement(const char* name) { return prepared_statements().at(name); }

class PgStoreTx final : public StoreTx {
 public:
  PgStoreTx(pqxx::work& tx, const SecretBox* sealer, DefinitionCache& definitions)
      : tx_(tx), sealer_(sealer), definitions_(definitions) {}

  // Sends the writes still buffered; before commit.
  void flush() { writes_.flush(); }

  Result<std::optional<WorkflowState>> load_workflow_for_update(const std::string& id) override {
    writes_.flush();
    try {
      return load_workflow(tx_, id, true, sealer_, definitions_);
    } catch (const CorruptRow& e) {
      // Only the decoding failed; the database transaction is intact.
      return Error{ErrorKind::kInternal, "unloadable", e.what()};
    }
  }

  LoadedWorkflows load_workflows_for_update(const std::vector<std::string>& ids) override {
    writes_.flush();
    return load_workflows(tx_, ids, true, sealer_, definitions_);
  }

  std::set<int64_t> delete_effects(const std::vector<HeldLease>& held, TimePoint now) override {
    writes_.flush();
    std::set<int64_t> deleted;
    if (held.empty()) return deleted;
    const auto [ids, owners] = lease_arrays(held);
    for (const pqxx::row row : tx_.exec_prepared("delete_effects", ids, owners, to_epoch_ms(now))) {
      deleted.insert(row[0].as<int64_t>());
    }
    return deleted;
  }

  std::optional<ForcedFailure> fail_unloadable_workflow(const std::string& id,
                                                        TimePoint now) override {
    writes_.flush();
    const pqxx::result r = tx_.exec_params(
        "UPDATE workflows SET status = 'failed', seq = seq + 1,"
        " updated_at = to_timestamp($2::bigint / 1000.0)"
        " WHERE id = $1 AND status = 'running' RETURNING workflow, seq",
        id, to_epoch_ms(now));
    tx_.exec_params("DELETE FROM effects WHERE workflow_id = $1", id);
    if (r.empty()) return std::nullopt;
    return ForcedFailure{r[0][0].as<std::string>(), r[0][1].as<int64_t>()};
  }

  void save_workflow(const WorkflowState& state, const WorkflowRows* loaded) override {
    if (loaded == nullptr) return save_whole_workflow(state);
    if (state.kept_signals != loaded->kept_signals) {
      update_with_signals(state);
    } else if (state.status != loaded->status || state.seq != loaded->seq ||
               state.updated_at != loaded->updated_at) {
      writes_.add_row(kWorkflowUpdateRows, state.id,
                      {state.id, to_string(state.status), state.seq, to_epoch_ms(state.updated_at)});
    }
    bool same_names = state.steps.size() == loaded->steps.size();
    for (size_t i = 0; same_names && i < state.steps.size(); ++i) {
      same_names = state.steps[i].name == loaded->steps[i].name;
    }
    // Steps come and go only when a definition's step list changes, never in
    // a transition the engine makes today; rewrite them all then.
    if (!same_names) return save_all_steps(state);
    for (size_t i = 0; i < state.steps.size(); ++i) {
      const StepState& before = loaded->steps[i];
      const StepState& after = state.steps[i];
      if (after == before) continue;
      update_step(state, after);
      // A step that stopped waiting needs no more safety polls: drop the one
      // queued now rather than claim, load and discard it when it comes due.
      if (before.status == StepStatus::kWaiting && after.status != StepStatus::kWaiting) {
        writes_.add_row(kDroppedPollRows, state.id + '\n' + before.name,
                        {state.id, before.name, before.attempt});
      }
    }
  }

  void add_effect(const std::string& workflow_id, const Effect& effect, TimePoint due) override {
    const store_detail::EffectRow row = store_detail::encode_effect(effect);
    writes_.add_row(kEffectRows, "", {workflow_id, row.kind, row.step, row.attempt,
                                      json::serialize(row.payload), to_epoch_ms(due)});
  }

  void add_leased_effect(const std::string& workflow_id, const Effect& effect, TimePoint due,
                         const EffectLease& lease) override {
    const store_detail::EffectRow row = store_detail::encode_effect(effect);
    writes_.add_row(kLeasedEffectRows, "",
                    {workflow_id, row.kind, row.step, row.attempt, json::serialize(row.payload),
                     to_epoch_ms(due), lease.owner, to_epoch_ms(lease.until)});
  }

  std::vector<StoredEffect> take_leased_effects() override {
    std::vector<StoredEffect> effects;
    for (const pqxx::result& r : writes_.take_returned()) {
      for (const pqxx::row row : r) {
        effects.push_back(stored_effect_of(row));
        effects.back().lease_owner = row[7].as<std::string>();
      }
    }
    return effects;
  }

  void add_outbox(const std::string& topic, const std::string& key, const std::string& payload,
                  bool sensitive, const std::string& workflow_id, const std::string& step,
                  const std::string& traceparent) override {
    const auto or_null = [](const std::string& s) {
      return s.empty() ? NullableText() : NullableText(s);
    };
    const std::string stored =
        store_detail::stored_outbox_payload(topic, key, payload, sensitive, sealer_);
    writes_.add_row(kOutboxRows, "", {topic, key, stored, or_null(workflow_id), or_null(step),
                                      or_null(traceparent)});
  }

  int64_t input_offset_for_update(const std::string& topic, int32_t partition) override {
    return input_offsets_for_update({{topic, partition}}).at({topic, partition});
  }

  std::map<TopicPartition, int64_t> input_offsets_for_update(
      const std::vector<TopicPartition>& partitions) override {
    writes_.flush();
    std::map<TopicPartition, int64_t> offsets;
    if (partitions.empty()) return offsets;
    std::vector<std::string> topic_names;
    std::vector<int64_t> partition_numbers;
    for (const auto& [topic, partition] : partitions) {
      topic_names.push_back(topic);
      partition_numbers.push_back(partition);
    }
    const std::string topics = text_array(topic_names);
    const std::string numbers = number_array(partition_numbers);
    const auto select = [&] {
      for (const pqxx::row row : tx_.exec_prepared("select_input_offsets", topics, numbers)) {
        offsets[{row[0].as<std::string>(), row[1].as<int32_t>()}] = row[2].as<int64_t>();
      }
    };
    select();
    if (offsets.size() < std::set<TopicPartition>(partitions.begin(), partitions.end()).size()) {
      // A partition seen for the first time: its row is created, then locked
      // like any other, so two consumers of a new partition queue on it.
      tx_.exec_prepared("ensure_input_offsets", topics, numbers);
      offsets.clear();
      select();
    }
    for (const auto& tp : partitions) {
      if (offsets.count(tp) == 0) throw CorruptRow("input_offsets row vanished for " + tp.first);
    }
    return offsets;
  }

  void set_input_offset(const std::string& topic, int32_t partition, int64_t next_offset) override {
    writes_.add_row(kInputOffsetRows, topic + '\n' + std::to_string(partition),
                    {topic, partition, next_offset});
  }

  void record_history(const std::string& workflow_id, const HistoryChanges& changes) override {
    for (const AttemptRecord& a : changes.attempts) {
      writes_.add_row(kAttemptRows, workflow_id + '\n' + a.step + '\n' + std::to_string(a.attempt),
                      {workflow_id, a.step, a.attempt, a.state,
                       a.run_id ? NullableText(*a.run_id) : NullableText(), a.run_page_url,
                       ms_param(a.started_at), ms_param(a.ended_at),
                       a.error ? NullableText(store_detail::error_column(*a.error)) : NullableText(),
                       a.output_bytes ? NullableText(*a.output_bytes) : NullableText()});
    }
    for (const HistoryNote& n : changes.notes) {
      writes_.add_row(kHistoryNoteRows, "",
                      {workflow_id, to_epoch_ms(n.at), n.kind, n.step, n.signal, n.detail});
    }
  }

 private:
  // The definition's hash, its row queued unless this connection knows it stored.
  std::string definition_hash(const WorkflowState& state) {
    const std::string definition = json::serialize(to_json(state.definition));
    std::string hash = store_detail::sha256_hex(definition);
    if (!definitions_.stored(hash) &&
        std::find(new_definitions_.begin(), new_definitions_.end(), hash) ==
            new_definitions_.end()) {
      writes_.add(statement("insert_definition"), {hash, definition});
      new_definitions_.push_back(hash);
    }
    return hash;
  }

  // A workflow whose loaded rows are unknown: every row, over what exists.
  void save_whole_workflow(const WorkflowState& state) {
    const std::string hash = definition_hash(state);
    writes_.add(kUpsertWorkflow, {state.id, state.workflow, hash, json::serialize(state.input),
                                  to_string(state.status), state.seq,
                                  to_epoch_ms(state.created_at), to_epoch_ms(state.updated_at),
                                  state.traceparent});
    update_with_signals(state);  // also clears those the row kept before
    save_all_steps(state);
  }

  // The workflow's row with its kept signals (rare: a signal kept or taken).
  void update_with_signals(const WorkflowState& state) {
    writes_.add_row(kWorkflowWithSignalsRows, state.id,
                    {state.id, to_string(state.status), state.seq, to_epoch_ms(state.updated_at),
                     optional_text(store_detail::kept_signals_column(state.kept_signals))});
  }

  void save_all_steps(const WorkflowState& state) {
    const std::string steps = steps_json(state, sealer_);
    writes_.add(kUpsertSteps, {state.id, steps});
    writes_.add(kDeleteOtherSteps, {state.id, steps});
  }

  // A step's columns that a transition may change, as parameters.
  struct StepColumns {
    NullableText output;
    NullableText run_id;
    NullableText error;
  };
  StepColumns step_columns(const WorkflowState& state, const StepState& s) const {
    StepColumns c;
    if (s.output) {
      c.output =
          NullableText(json::serialize(store_detail::stored_output(state, s, *s.output, sealer_)));
    }
    if (s.run_id) c.run_id = NullableText(std::to_string(*s.run_id));
    if (s.error) {
      c.error = NullableText(json::serialize(
          json::object{{"code", s.error->code}, {"message", s.error->message}}));
    }
    return c;
  }

  void update_step(const WorkflowState& state, const StepState& s) {
    const StepColumns c = step_columns(state, s);
    writes_.add_row(kStepUpdateRows, state.id + '\n' + s.name,
                    {state.id, s.name, to_string(s.status), s.attempt, s.attempts_before_retry,
                     c.run_id, s.run_page_url, json_param(s.handle), c.output, c.error,
                     ms_param(s.started_at), ms_param(s.finished_at)});
  }

 public:
  void create_workflow(const WorkflowState& state) override {
    const std::string hash = definition_hash(state);
    writes_.add_row(kNewWorkflowRows, state.id,
                    {state.id, state.workflow, hash, json::serialize(state.input),
                     to_string(state.status), state.seq, to_epoch_ms(state.created_at),
                     to_epoch_ms(state.updated_at),
                     state.traceparent.empty() ? NullableText() : NullableText(state.traceparent)});
    // Signals kept in the transaction that started it (start and signal in one batch).
    if (!state.kept_signals.empty()) update_with_signals(state);
    int32_t position = 0;
    for (const StepState& s : state.steps) {
      const StepColumns c = step_columns(state, s);
      writes_.add_row(kNewStepRows, state.id + '\n' + s.name,
                      {state.id, s.name, position++, to_string(s.status), s.attempt,
                       s.attempts_before_retry, c.run_id, s.run_page_url, json_param(s.handle),
                       c.output, c.error, ms_param(s.started_at), ms_param(s.finished_at)});
    }
  }

 private:

  pqxx::work& tx_;
  const SecretBox* sealer_;
  DefinitionCache& definitions_;
  WriteBuffer writes_{tx_};

 public:
  // Definitions this transaction inserted: known to be stored once it commits.
  std::vector<std::string> new_definitions_;
};

// ------------------------------------------------------------------ the store

class PgStore final : public Store {
 public:
  PgStore(const std::string& url, std::shared_ptr<PasswordSource> password,
          std::shared_ptr<const SecretBox> sealer)
      : sealer_(std::move(sealer)), session_(url, std::move(password),
                 [this](pqxx::connection& c) { prepare(c); }) {}

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
      PgStoreTx store_tx(tx, sealer_.get(), definitions_);
      try {
        body(store_tx);
        store_tx.flush();
      } catch (const pqxx::foreign_key_violation& e) {
        if (std::string_view(e.what()).find("definition_hash") == std::string_view::npos) throw;
        // A definition this connection knew stored was purged meanwhile
        // (retention): the transaction is worth trying again, storing it anew.
        definitions_.forget_stored();
        throw pqxx::transaction_rollback(std::string("a definition was purged meanwhile: ") +
                                         e.what());
      }
      tx.commit();
      for (const std::string& hash : store_tx.new_definitions_) definitions_.mark_stored(hash);
      return Done{};
    });
  }

  Result<std::vector<StoredEffect>> claim_due_effects(const std::string& owner, int32_t limit,
                                                      TimePoint now, Duration lease) override {
    return guarded<std::vector<StoredEffect>>("claim_due_effects", [&](pqxx::connection& c) {
      pqxx::work tx(c);
      const pqxx::result r = tx.exec_params(
          store_detail::kClaimDueEffects,
          owner, to_epoch_ms(now), to_epoch_ms(now + lease), std::max(limit, 0));
      std::vector<StoredEffect> effects;
      effects.reserve(r.size());
      for (const pqxx::row row : r) {
        effects.push_back(stored_effect_of(row));
        effects.back().lease_owner = owner;
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
    const auto [ids, owners] = lease_arrays(held);
    return guarded<Done>("renew_leases", [&](pqxx::connection& c) {
      pqxx::work tx(c);
      tx.exec_params(
          std::string(kHeldEffects) + " AND e.lease_until >= to_timestamp($4::bigint / 1000.0)" +
              kInIdOrder +
              " UPDATE effects e SET lease_until = to_timestamp($3::bigint / 1000.0)"
              " FROM held WHERE e.id = held.id",
          ids, owners, to_epoch_ms(now + lease), to_epoch_ms(now));
      tx.commit();
      return Done{};
    });
  }

  Status release_leases(const std::vector<HeldLease>& held) override {
    if (held.empty()) return ok_status();
    const auto [ids, owners] = lease_arrays(held);
    return guarded<Done>("release_leases", [&](pqxx::connection& c) {
      pqxx::work tx(c);
      tx.exec_params(std::string(kHeldEffects) + kInIdOrder +
                         " UPDATE effects e SET lease_owner = NULL, lease_until = NULL"
                         " FROM held WHERE e.id = held.id",
                     ids, owners);
      tx.commit();
      return Done{};
    });
  }

  Result<int32_t> drain_outbox(int32_t limit, const std::vector<OutboxStream>& skip,
                               const OutboxPublish& publish) override {
    std::optional<Error> publish_error;
    auto drained = guarded<int32_t>("drain_outbox", [&](pqxx::connection& c) -> int32_t {
      pqxx::work tx(c);
      if (!tx.exec_params("SELECT pg_try_advisory_xact_lock($1)",
                          store_detail::kOutboxLockKey)[0][0]
               .as<bool>()) {
        return 0;  // another publisher is draining
      }
      std::vector<std::string> skip_topics, skip_keys;
      for (const OutboxStream& s : skip) {
        skip_topics.push_back(s.topic);
        skip_keys.push_back(s.key);
      }
      const pqxx::result r = tx.exec_prepared("drain_outbox", std::max(limit, 0),
                                              text_array(skip_topics), text_array(skip_keys),
                                              drain_cursor_.after());
      store_detail::DrainCursor::Read read{r[0][0].as<int64_t>(), 0, r[0][2].as<int64_t>()};
      std::vector<int64_t> ids;
      std::vector<OutboxMessage> messages;
      messages.reserve(r.size());
      for (const pqxx::row row : r) {
        if (row[3].is_null()) continue;  // no rows: the snapshot's columns only
        ids.push_back(row[3].as<int64_t>());
        OutboxMessage message{row[3].as<int64_t>(), row[4].as<std::string>(),
                              row[5].as<std::string>(), row[6].as<std::string>(), false,
                              row[7].as<std::string>(), row[8].as<std::string>(),
                              row[9].as<std::string>()};
        if (SecretBox::is_sealed(message.payload)) {
          auto plain = store_detail::opened_outbox_payload(message.topic, message.key,
                                                           message.payload, sealer_.get());
          if (!plain) {
            // Sealed under another key: nothing can ever publish it (deleted below).
            spdlog::error("outbox: record {} for {} is sealed under a key no longer configured "
                          "(was callbacks.secret changed without its old value in "
                          "callbacks.previous_secrets?); dropping it",
                          message.id, message.topic);
            continue;
          }
          message.payload = std::move(*plain);
          message.sensitive = true;
        }
        messages.push_back(std::move(message));
      }
      if (ids.empty()) {
        drain_cursor_.advance(read, {}, false, !skip.empty());
        return 0;
      }
      // Taken after the read: above every transaction that could have taken
      // an id before it (a snapshot's xmax is not: a transaction may hold an
      // xid above it and be running already).
      read.xid_after = tx.exec("SELECT pg_current_xact_id()::text::bigint")[0][0].as<int64_t>();
      PgOutboxTx outbox_tx(tx);
      auto round = publish(messages, outbox_tx);
      if (!round) {
        publish_error = round.error();
        return 0;  // the work's destructor rolls back; the rows stay
      }
      // By id, never by range: a row with a smaller id may commit after we read.
      const std::set<int64_t> kept(round->unpublished.begin(), round->unpublished.end());
      std::vector<int64_t> done;
      for (int64_t id : ids) {
        if (kept.count(id) == 0) done.push_back(id);
      }
      tx.exec_params("DELETE FROM outbox WHERE id = ANY($1::bigint[])", number_array(done));
      for (const OutboxMessage& m : round->replacements) {
        tx.exec_params(
            "INSERT INTO outbox (topic, key, payload, workflow_id, step, traceparent)"
            " VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), NULLIF($6, ''))",
            m.topic, m.key, m.payload, m.workflow_id, m.step, m.traceparent);
      }
      // Deletes alone need not wait for the disk: lost in a crash, they only
      // republish records the broker has, which consumers drop by seq, and
      // the server's next durable commit flushes them anyway. A round that
      // took a workflow's seq for a replacement waits: its event may be
      // published before a crash could take the seq back.
      if (round->replacements.empty()) tx.exec("SET LOCAL synchronous_commit = off");
      tx.commit();
      drain_cursor_.advance(read, ids, ids.size() >= static_cast<size_t>(std::max(limit, 0)),
                            !skip.empty() || !kept.empty());
      return static_cast<int32_t>(done.size());
    });
    if (publish_error) return *publish_error;
    return drained;
  }

  Result<std::optional<WorkflowState>> get_workflow(const std::string& id) override {
    return guarded<std::optional<WorkflowState>>("get_workflow", [&](pqxx::connection& c) {
      pqxx::work tx(c);
      auto state = load_workflow(tx, id, false, sealer_.get(), definitions_);
      tx.commit();
      return state;
    });
  }

  Result<LoadedWorkflows> get_workflows(const std::vector<std::string>& ids) override {
    return guarded<LoadedWorkflows>("get_workflows", [&](pqxx::connection& c) {
      pqxx::work tx(c);
      LoadedWorkflows loaded = load_workflows(tx, ids, false, sealer_.get(), definitions_);
      tx.commit();
      return loaded;
    });
  }

  Result<std::vector<WorkflowSummary>> list_workflows(const WorkflowQuery& query) override {
    std::optional<Error> refused;
    auto listed = guarded<std::vector<WorkflowSummary>>("list_workflows", [&](pqxx::connection& c) {
      pqxx::work tx(c);
      auto summaries = store_detail::query_workflows(tx, query);
      tx.commit();
      if (!summaries) refused = summaries.error();
      return summaries ? std::move(*summaries) : std::vector<WorkflowSummary>{};
    });
    if (refused) return *refused;
    return listed;
  }

  Result<std::optional<WorkflowHistory>> get_history(const std::string& id) override {
    return guarded<std::optional<WorkflowHistory>>("get_history", [&](pqxx::connection& c) {
      pqxx::work tx(c);
      auto history = store_detail::read_history(tx, id);
      tx.commit();
      return history;
    });
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
  // sequential scans: a prepared statement's plan made while a table was
  // empty (a new daemon's first minute, before any ANALYZE) read the whole
  // table, dead rows included, at every call until autovacuum's next ANALYZE
  // replanned it; each call is planned for the table as it is (a cached plan
  // walked the whole steps index instead). And no JIT: a plan that has to
  // scan a table anyway costs more than jit_above_cost then, and compiling
  // it took a second.
  void prepare(pqxx::connection& connection) {
    for (const auto& [name, statement] : prepared_statements()) {
      connection.prepare(name, statement);
    }
    pqxx::nontransaction(connection).exec(
        "SET enable_hashjoin = off; SET enable_mergejoin = off; SET enable_seqscan = off;"
        " SET plan_cache_mode = force_custom_plan; SET jit = off");
    // A new connection may be to a server that lost or restored rows
    // (crash recovery, a fail-over): read the outbox from its start.
    drain_cursor_ = store_detail::DrainCursor();
  }

  std::shared_ptr<const SecretBox> sealer_;
  DefinitionCache definitions_;
  store_detail::DrainCursor drain_cursor_;
  store_detail::PgSession session_;
};

}  // namespace

std::unique_ptr<Store> Store::open(const std::string& url, std::shared_ptr<PasswordSource> password,
                                  std::shared_ptr<const SecretBox> sealer) {
  return std::make_unique<PgStore>(url, std::move(password), std::move(sealer));
}

}  // namespace brickwork
