// A workflow transaction's operations (StoreTx): reads flush the writes
// buffered before them (WriteBuffer), and a workflow saved is written as
// only what its transition changed.
#include "daemon/store/pg_store_tx.hpp"

#include <algorithm>
#include <set>
#include <stdexcept>
#include <utility>

#include "daemon/store/claim_query.hpp"
#include "daemon/store/effect_codec.hpp"
#include "daemon/store/effect_ids.hpp"
#include "daemon/store/history_store.hpp"
#include "daemon/store/pg_effect_queue.hpp"
#include "daemon/store/pg_errors.hpp"
#include "daemon/store/pg_outbox_drain.hpp"
#include "daemon/store/pg_params.hpp"
#include "daemon/store/sealing.hpp"
#include "daemon/store/workflow_rows.hpp"
#include "daemon/store/write_buffer.hpp"

namespace brickwork::store_detail {
namespace {

constexpr const char* kInsertDefinition =
    "INSERT INTO definitions (hash, definition) VALUES ($1, $2::jsonb)"
    " ON CONFLICT (hash) DO NOTHING";

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
      o["output"] = stored_output(state, s, *s.output, sealer);
    }
    if (s.error) o["error"] = json::object{{"code", s.error->code}, {"message", s.error->message}};
    if (s.started_at) o["started_at_ms"] = to_epoch_ms(*s.started_at);
    if (s.finished_at) o["finished_at_ms"] = to_epoch_ms(*s.finished_at);
    steps.push_back(std::move(o));
  }
  return json::serialize(steps);
}

constexpr const char* kUpsertWorkflow =
    "INSERT INTO workflows (id, workflow, definition_hash, input, status, seq, "
    "created_at,"
    "                       updated_at, traceparent)"
    " VALUES ($1, $2, $3, $4::jsonb, $5, $6,"
    "         to_timestamp($7::bigint / 1000.0), to_timestamp($8::bigint / "
    "1000.0), NULLIF($9, ''))"
    " ON CONFLICT (id) DO UPDATE SET workflow = EXCLUDED.workflow, definition "
    "= NULL,"
    "   definition_hash = EXCLUDED.definition_hash, input = EXCLUDED.input,"
    "   status = EXCLUDED.status, traceparent = EXCLUDED.traceparent,"
    "   seq = EXCLUDED.seq, created_at = EXCLUDED.created_at, updated_at = "
    "EXCLUDED.updated_at";

constexpr const char* kUpsertSteps =
    "INSERT INTO steps (workflow_id, name, position, status, attempt, "
    "attempts_before_retry,"
    "                   run_id, run_page_url, handle, output, error, "
    "started_at, finished_at)"
    " SELECT $1, s.name, s.position, s.status, s.attempt, "
    "s.attempts_before_retry,"
    "        s.run_id, s.run_page_url, s.handle, s.output, s.error,"
    "        to_timestamp(s.started_at_ms / 1000.0), "
    "to_timestamp(s.finished_at_ms / 1000.0)"
    " FROM jsonb_to_recordset($2::jsonb) AS s(name text, position int, status "
    "text, attempt int,"
    "      attempts_before_retry int, run_id bigint, run_page_url text, handle "
    "jsonb,"
    "      output jsonb, error jsonb, started_at_ms bigint, finished_at_ms "
    "bigint)"
    " ON CONFLICT (workflow_id, name) DO UPDATE SET position = "
    "EXCLUDED.position,"
    "   status = EXCLUDED.status, attempt = EXCLUDED.attempt,"
    "   attempts_before_retry = EXCLUDED.attempts_before_retry, run_id = "
    "EXCLUDED.run_id,"
    "   run_page_url = EXCLUDED.run_page_url, handle = EXCLUDED.handle, output "
    "= EXCLUDED.output,"
    "   error = EXCLUDED.error, started_at = EXCLUDED.started_at, finished_at "
    "= "
    "EXCLUDED.finished_at";

constexpr const char* kDeleteOtherSteps =
    "DELETE FROM steps WHERE workflow_id = $1 AND NOT EXISTS ("
    " SELECT 1 FROM jsonb_to_recordset($2::jsonb) AS s(name text) WHERE s.name "
    "= steps.name)";

// Times travel as epoch milliseconds (bigint), JSON as jsonb array elements.
const WriteBuffer::RowKind kOutboxRows{
    "o",
    "INSERT INTO outbox (topic, key, payload, workflow_id, step, traceparent)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
    "$5::text[],"
    " $6::text[])",
    "outbox", false};
const WriteBuffer::RowKind kEffectRows{
    "e",
    "INSERT INTO effects (workflow_id, kind, step, attempt, payload, due_at)"
    " SELECT workflow_id, kind, step, attempt, payload, to_timestamp(due_ms / "
    "1000.0)"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::jsonb[], "
    "$6::bigint[])"
    " AS v(workflow_id, kind, step, attempt, payload, due_ms)",
    "effects", false};
// Leased to this daemon, their ids drawn ahead (EffectIdPool): nothing to return.
const WriteBuffer::RowKind kLeasedEffectRows{
    "l",
    "INSERT INTO effects (id, workflow_id, kind, step, attempt, payload, due_at, lease_owner,"
    " lease_until, tries)"
    " SELECT id, workflow_id, kind, step, attempt, payload, to_timestamp(due_ms / 1000.0),"
    " lease_owner, to_timestamp(lease_until_ms / 1000.0), 1"
    " FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::int[], $6::jsonb[],"
    " $7::bigint[], $8::text[], $9::bigint[])"
    " AS v(id, workflow_id, kind, step, attempt, payload, due_ms, lease_owner, lease_until_ms)",
    "effects", false};
const WriteBuffer::RowKind kNewWorkflowRows{
    "w",
    "INSERT INTO workflows (id, workflow, definition_hash, input, status, seq, "
    "created_at,"
    " updated_at, traceparent)"
    " SELECT id, workflow, definition_hash, input, status, seq, "
    "to_timestamp(created_ms / 1000.0),"
    " to_timestamp(updated_ms / 1000.0), traceparent"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::text[], "
    "$6::bigint[],"
    " $7::bigint[], $8::bigint[], $9::text[])"
    " AS v(id, workflow, definition_hash, input, status, seq, created_ms, "
    "updated_ms, traceparent)",
    "workflows", false};
const WriteBuffer::RowKind kNewStepRows{
    "s",
    "INSERT INTO steps (workflow_id, name, position, status, attempt, "
    "attempts_before_retry,"
    " run_id, run_page_url, handle, output, error, started_at, finished_at)"
    " SELECT workflow_id, name, position, status, attempt, "
    "attempts_before_retry, run_id,"
    " run_page_url, handle, output, error, to_timestamp(started_ms / 1000.0),"
    " to_timestamp(finished_ms / 1000.0)"
    " FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::int[], "
    "$6::int[],"
    " $7::bigint[], $8::text[], $9::jsonb[], $10::jsonb[], $11::jsonb[], "
    "$12::bigint[],"
    " $13::bigint[])"
    " AS v(workflow_id, name, position, status, attempt, "
    "attempts_before_retry, run_id,"
    " run_page_url, handle, output, error, started_ms, finished_ms)",
    "steps", false};
// Only polls no one holds (claim_query.hpp).
const WriteBuffer::RowKind kDroppedPollRows{"p", store_detail::kDropUnheldPolls, "effects", true};
const WriteBuffer::RowKind kInputOffsetRows{
    "i",
    "INSERT INTO input_offsets (topic, partition, next_offset)"
    " SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[])"
    " ON CONFLICT (topic, partition) DO UPDATE"
    " SET next_offset = EXCLUDED.next_offset, updated_at = now()",
    "input_offsets", true};
const WriteBuffer::RowKind kInputOffsetAdvanceRows{
    "f",
    "UPDATE input_offsets o SET updated_at = now(), next_offset ="
    " CASE WHEN o.next_offset = v.expected THEN v.next"
    " ELSE brickwork_input_offset_moved(o.topic, o.partition, v.expected, o.next_offset) END"
    " FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[])"
    " AS v(topic, partition, expected, next)"
    " WHERE o.topic = v.topic AND o.partition = v.partition",
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
    " run_page_url = v.run_page_url, handle = v.handle, output = v.output, "
    "error = v.error,"
    " started_at = to_timestamp(v.started_ms / 1000.0),"
    " finished_at = to_timestamp(v.finished_ms / 1000.0)"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[], "
    "$6::bigint[],"
    " $7::text[], $8::jsonb[], $9::jsonb[], $10::jsonb[], $11::bigint[], "
    "$12::bigint[])"
    " AS v(workflow_id, name, status, attempt, attempts_before_retry, run_id, "
    "run_page_url,"
    " handle, output, error, started_ms, finished_ms)"
    " WHERE s.workflow_id = v.workflow_id AND s.name = v.name",
    "steps", true};

// Signals and history (history_store.hpp).
const WriteBuffer::RowKind kWorkflowWithSignalsRows{"g", kUpdateWorkflowWithSignals, "workflows",
                                                    true};
const WriteBuffer::RowKind kAttemptRows{"a", kUpsertAttempts, "step_attempts", true};
const WriteBuffer::RowKind kHistoryNoteRows{"n", kInsertHistoryNotes, "workflow_history", false};

class PgStoreTx final : public StoreTx {
 public:
  PgStoreTx(DeferredBeginWork& work, const SecretBox* sealer, DefinitionCache& definitions,
            EffectIdPool& effect_ids)
      : work_(work), sealer_(sealer), definitions_(definitions), effect_ids_(effect_ids) {}

  // Sends the writes still buffered and commits, in one round trip.
  void commit() {
    const std::vector<PendingWrite> writes = writes_.take_for_commit();
    if (writes.empty()) {
      work_.commit();
    } else {
      work_.commit_with(writes);
    }
  }

  // Definitions this transaction inserted: known to be stored once it commits.
  const std::vector<std::string>& new_definitions() const { return new_definitions_; }

  Result<std::optional<WorkflowState>> load_workflow_for_update(const std::string& id) override {
    writes_.flush();
    // A row that does not decode is an Error; the database transaction is intact.
    return std::move(load_workflows_locked(work_, {id}, sealer_, definitions_).at(id));
  }

  LoadedWorkflows load_workflows_for_update(const std::vector<std::string>& ids) override {
    writes_.flush();
    return load_workflows_locked(work_, ids, sealer_, definitions_);
  }

  std::set<int64_t> delete_effects(const std::vector<HeldLease>& held, TimePoint now) override {
    writes_.flush();
    return delete_held_effects(work_.begun(), held, now);
  }

  LoadedWorkflows load_workflows_deleting_effects(const std::vector<std::string>& ids,
                                                  const std::vector<HeldLease>& held, TimePoint now,
                                                  std::set<int64_t>& deleted) override {
    writes_.flush();
    EffectDeletion deletion{held, now, {}};
    LoadedWorkflows loaded = load_workflows_locked(work_, ids, sealer_, definitions_, &deletion);
    deleted = std::move(deletion.deleted);
    return loaded;
  }

  std::optional<ForcedFailure> fail_unloadable_workflow(const std::string& id,
                                                        TimePoint now) override {
    writes_.flush();
    const pqxx::result r = work_.begun().exec_params(
        "UPDATE workflows SET status = 'failed', seq = seq + 1,"
        " updated_at = to_timestamp($2::bigint / 1000.0)"
        " WHERE id = $1 AND status = 'running' RETURNING workflow, seq",
        id, to_epoch_ms(now));
    work_.begun().exec_params("DELETE FROM effects WHERE workflow_id = $1", id);
    if (r.empty()) return std::nullopt;
    return ForcedFailure{r[0][0].as<std::string>(), r[0][1].as<int64_t>()};
  }

  void save_workflow(const WorkflowState& state, const WorkflowRows* loaded) override {
    if (loaded == nullptr) return save_whole_workflow(state);
    if (state.kept_signals != loaded->kept_signals) {
      update_with_signals(state);
    } else if (state.status != loaded->status || state.seq != loaded->seq ||
               state.updated_at != loaded->updated_at) {
      writes_.add_row(
          kWorkflowUpdateRows, state.id,
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
    const EffectRow row = encode_effect(effect);
    writes_.add_row(kEffectRows, "",
                    {workflow_id, row.kind, row.step, row.attempt, json::serialize(row.payload),
                     to_epoch_ms(due)});
  }

  void add_leased_effect(const std::string& workflow_id, const Effect& effect, TimePoint due,
                         const EffectLease& lease) override {
    const EffectRow row = encode_effect(effect);
    const int64_t id = effect_ids_.take(work_.begun());
    writes_.add_row(kLeasedEffectRows, "",
                    {id, workflow_id, row.kind, row.step, row.attempt, json::serialize(row.payload),
                     to_epoch_ms(due), lease.owner, to_epoch_ms(lease.until)});
    // As a claim returns it: claimed once (tries 1), none before.
    leased_.push_back(StoredEffect{id, workflow_id, effect, 0, lease.owner});
  }

  std::vector<StoredEffect> take_leased_effects() override { return std::exchange(leased_, {}); }

  void add_outbox(const std::string& topic, const std::string& key, const std::string& payload,
                  bool sensitive, const std::string& workflow_id, const std::string& step,
                  const std::string& traceparent) override {
    const auto or_null = [](const std::string& s) {
      return s.empty() ? NullableText() : NullableText(s);
    };
    const std::string stored = stored_outbox_payload(topic, key, payload, sensitive, sealer_);
    writes_.add_row(
        kOutboxRows, "",
        {topic, key, stored, or_null(workflow_id), or_null(step), or_null(traceparent)});
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
      for (const pqxx::row row :
           work_.begun().exec_prepared("select_input_offsets", topics, numbers)) {
        offsets[{row[0].as<std::string>(), row[1].as<int32_t>()}] = row[2].as<int64_t>();
      }
    };
    select();
    if (offsets.size() < std::set<TopicPartition>(partitions.begin(), partitions.end()).size()) {
      // A partition seen for the first time: its row is created, then locked
      // like any other, so two consumers of a new partition queue on it.
      work_.begun().exec_prepared("ensure_input_offsets", topics, numbers);
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

  void advance_input_offset(const std::string& topic, int32_t partition, int64_t expected,
                            int64_t next_offset) override {
    writes_.add_row(kInputOffsetAdvanceRows, topic + '\n' + std::to_string(partition),
                    {topic, partition, expected, next_offset});
  }

  void record_history(const std::string& workflow_id, const HistoryChanges& changes) override {
    for (const AttemptRecord& a : changes.attempts) {
      writes_.add_row(kAttemptRows, workflow_id + '\n' + a.step + '\n' + std::to_string(a.attempt),
                      {workflow_id, a.step, a.attempt, a.state,
                       a.run_id ? NullableText(*a.run_id) : NullableText(), a.run_page_url,
                       ms_param(a.started_at), ms_param(a.ended_at),
                       a.error ? NullableText(error_column(*a.error)) : NullableText(),
                       a.output_bytes ? NullableText(*a.output_bytes) : NullableText()});
    }
    for (const HistoryNote& n : changes.notes) {
      writes_.add_row(kHistoryNoteRows, "",
                      {workflow_id, to_epoch_ms(n.at), n.kind, n.step, n.signal, n.detail});
    }
  }

 private:
  // The definition's hash, its row queued unless this connection knows it
  // stored.
  std::string definition_hash(const WorkflowState& state) {
    const std::string definition = json::serialize(to_json(state.definition));
    std::string hash = sha256_hex(definition);
    if (!definitions_.stored(hash) && std::find(new_definitions_.begin(), new_definitions_.end(),
                                                hash) == new_definitions_.end()) {
      writes_.add(kInsertDefinition, {hash, definition});
      new_definitions_.push_back(hash);
    }
    return hash;
  }

  // A workflow whose loaded rows are unknown: every row, over what exists.
  void save_whole_workflow(const WorkflowState& state) {
    const std::string hash = definition_hash(state);
    writes_.add(kUpsertWorkflow, {state.id, state.workflow, hash, json::serialize(state.input),
                                  to_string(state.status), state.seq, to_epoch_ms(state.created_at),
                                  to_epoch_ms(state.updated_at), state.traceparent});
    update_with_signals(state);  // also clears those the row kept before
    save_all_steps(state);
  }

  // The workflow's row with its kept signals (rare: a signal kept or taken).
  void update_with_signals(const WorkflowState& state) {
    writes_.add_row(kWorkflowWithSignalsRows, state.id,
                    {state.id, to_string(state.status), state.seq, to_epoch_ms(state.updated_at),
                     optional_text(kept_signals_column(state.kept_signals))});
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
      c.output = NullableText(json::serialize(stored_output(state, s, *s.output, sealer_)));
    }
    if (s.run_id) c.run_id = NullableText(std::to_string(*s.run_id));
    if (s.error) {
      c.error = NullableText(
          json::serialize(json::object{{"code", s.error->code}, {"message", s.error->message}}));
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
    writes_.add_row(
        kNewWorkflowRows, state.id,
        {state.id, state.workflow, hash, json::serialize(state.input), to_string(state.status),
         state.seq, to_epoch_ms(state.created_at), to_epoch_ms(state.updated_at),
         state.traceparent.empty() ? NullableText() : NullableText(state.traceparent)});
    // Signals kept in the transaction that started it (start and signal in one
    // batch).
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
  DeferredBeginWork& work_;
  const SecretBox* sealer_;
  DefinitionCache& definitions_;
  EffectIdPool& effect_ids_;
  WriteBuffer writes_{[this]() -> pqxx::transaction_base& { return work_.begun(); }};
  std::vector<std::string> new_definitions_;
  std::vector<StoredEffect> leased_;  // written since the last take_leased_effects()
};

}  // namespace

const std::map<std::string, std::string>& store_tx_statements() {
  static const std::map<std::string, std::string> statements = {
      {"insert_definition", kInsertDefinition},
      {"ensure_input_offsets",
       "INSERT INTO input_offsets (topic, partition, next_offset)"
       " SELECT t, p, -1 FROM unnest($1::text[], $2::int[]) AS x(t, p)"
       " ON CONFLICT (topic, partition) DO NOTHING"},
      // In key order, so that two transactions lock overlapping sets alike.
      {"select_input_offsets",
       "SELECT topic, partition, next_offset FROM input_offsets"
       " WHERE (topic, partition) IN (SELECT t, p FROM unnest($1::text[], "
       "$2::int[]) AS x(t, p))"
       " ORDER BY topic, partition FOR UPDATE"},
  };
  return statements;
}

const std::vector<const std::map<std::string, std::string>*>& prepared_statement_sets() {
  static const std::vector<const std::map<std::string, std::string>*> sets = {
      &workflow_read_statements(), &store_tx_statements(), &effect_queue_statements(),
      &outbox_drain_statements()};
  return sets;
}

const std::vector<const WriteBuffer::RowKind*>& write_row_kinds() {
  static const std::vector<const WriteBuffer::RowKind*> kinds = {
      &kOutboxRows,       &kEffectRows,
      &kLeasedEffectRows, &kNewWorkflowRows,
      &kNewStepRows,      &kDroppedPollRows,
      &kInputOffsetRows,  &kInputOffsetAdvanceRows,
      &kWorkflowUpdateRows,
      &kStepUpdateRows,   &kWorkflowWithSignalsRows,
      &kAttemptRows,      &kHistoryNoteRows};
  return kinds;
}

std::vector<std::string> run_store_tx(DeferredBeginWork& tx, const SecretBox* sealer,
                                      DefinitionCache& definitions, EffectIdPool& effect_ids,
                                      const std::function<void(StoreTx&)>& body) {
  PgStoreTx store_tx(tx, sealer, definitions, effect_ids);
  body(store_tx);
  store_tx.commit();
  return store_tx.new_definitions();
}

}  // namespace brickwork::store_detail
