#include "daemon/store/workflow_rows.hpp"

#include <algorithm>
#include <utility>

#include "daemon/store/history_store.hpp"
#include "daemon/store/pg_effect_queue.hpp"
#include "daemon/store/pg_errors.hpp"
#include "daemon/store/pg_params.hpp"
#include "daemon/store/row_fields.hpp"
#include "daemon/store/sealing.hpp"

namespace brickwork::store_detail {
namespace {

// The step columns step_from_row decodes, after the workflow id.
constexpr const char* kStepColumns =
    "SELECT workflow_id, name, status, attempt, "
    "attempts_before_retry, run_id, run_page_url,"
    " handle::text, output::text, error::text,"
    " (extract(epoch FROM started_at) * 1000)::bigint,"
    " (extract(epoch FROM finished_at) * 1000)::bigint";

// Prepared once per connection: a transition reads its workflows with them.
constexpr const char* kWorkflowsColumns =
    "SELECT id, workflow, definition_hash,"
    " CASE WHEN definition_hash IS NULL THEN definition::text END, "
    "input::text, status, seq,"
    " (extract(epoch FROM created_at) * 1000)::bigint,"
    " (extract(epoch FROM updated_at) * 1000)::bigint, signals::text, "
    "coalesce(traceparent, '')"
    " FROM workflows";

// The workflow ids of the effects a claim just leased ($1 owner, $2 lease end
// in epoch ms, as kClaimDueEffects wrote them), in the claim's transaction:
// found by effects_lease_idx, where every one of them has that lease end.
constexpr const char* kClaimedWorkflowIds =
    "ARRAY(SELECT workflow_id FROM effects WHERE lease_until IS NOT NULL"
    " AND coalesce(lease_until, 'infinity') = to_timestamp($2::bigint / 1000.0)"
    " AND lease_owner = $1)";

const WorkflowDefinition& definition_by_hash(pqxx::transaction_base& tx, const std::string& id,
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
WorkflowState workflow_from_row(pqxx::transaction_base& tx, const std::string& id,
                                const pqxx::row& row, int first, DefinitionCache& cache) {
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
  state.kept_signals = kept_signals_from_column(row[first + 8]);
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
      step.output = output_from_column(state, step.name, std::move(output.as_object()), sealer);
    }
  }
  step.error = step_error_field(s[first + 8]);
  step.started_at = time_field(s[first + 9]);
  step.finished_at = time_field(s[first + 10]);
  return step;
}

}  // namespace

const std::map<std::string, std::string>& workflow_read_statements() {
  static const std::map<std::string, std::string> statements = {
      {"select_workflows", std::string(kWorkflowsColumns) + " WHERE id = ANY($1::text[])"},
      {"select_workflows_locked",
       std::string(kWorkflowsColumns) + " WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE"},
      {"select_workflows_claimed",
       std::string(kWorkflowsColumns) + " WHERE id = ANY(" + kClaimedWorkflowIds + ")"},
      {"select_steps_claimed", std::string(kStepColumns) + " FROM steps WHERE workflow_id = ANY(" +
                                   kClaimedWorkflowIds + ") ORDER BY workflow_id, position"},
      {"select_steps_of",
       std::string(kStepColumns) +
           " FROM steps WHERE workflow_id = ANY($1::text[]) ORDER BY workflow_id, position"},
      // One row at least: with no step, the deleted ids and nulls.
      {"select_steps_of_deleting_effects",
       with_held_effects_deleted() + " " + kStepColumns +
           ", d.ids FROM (SELECT string_agg(id::text, ',') AS ids FROM deleted) d"
           " LEFT JOIN steps ON workflow_id = ANY($4::text[]) ORDER BY workflow_id, position"},
      {"select_definition", "SELECT definition::text FROM definitions WHERE hash = $1"},
  };
  return statements;
}

namespace {

}  // namespace

LoadedWorkflows decode_loaded(pqxx::transaction_base& tx, const std::vector<std::string>& ids,
                              const pqxx::result& workflows, const pqxx::result& steps,
                              const SecretBox* sealer, DefinitionCache& cache) {
  LoadedWorkflows out;
  std::map<std::string, WorkflowState> states;
  for (const pqxx::row row : workflows) {
    const std::string id = row[0].as<std::string>();
    try {
      states.emplace(id, workflow_from_row(tx, id, row, 1, cache));
    } catch (const CorruptRow& e) {
      out.emplace(id, Error{ErrorKind::kInternal, "unloadable", e.what()});
    }
  }
  for (const pqxx::row row : steps) {
    if (row[0].is_null()) continue;  // no step: only the deleted ids
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

namespace {

std::vector<std::string> sorted_unique(std::vector<std::string> ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

}  // namespace

LoadedWorkflows load_workflows(pqxx::transaction_base& tx, std::vector<std::string> ids,
                               const SecretBox* sealer, DefinitionCache& cache) {
  ids = sorted_unique(std::move(ids));
  if (ids.empty()) return {};
  const std::string array = text_array(ids);
  const pqxx::result workflows = tx.exec_prepared("select_workflows", array);
  const pqxx::result steps = tx.exec_prepared("select_steps_of", array);
  return decode_loaded(tx, ids, workflows, steps, sealer, cache);
}

LoadedWorkflows load_workflows_locked(DeferredBeginWork& work, std::vector<std::string> ids,
                                      const SecretBox* sealer, DefinitionCache& cache,
                                      EffectDeletion* deletion) {
  ids = sorted_unique(std::move(ids));
  if (deletion != nullptr && (ids.empty() || deletion->held.empty())) {
    deletion->deleted = delete_held_effects(work.begun(), deletion->held, deletion->now);
    deletion = nullptr;
  }
  if (ids.empty()) return {};
  const std::string array = work.quote(text_array(ids));
  std::vector<std::string> queries{work.execute("select_workflows_locked", {array})};
  if (deletion == nullptr) {
    queries.push_back(work.execute("select_steps_of", {array}));
  } else {
    const auto [effect_ids, owners] = lease_arrays(deletion->held);
    queries.push_back(work.execute("select_steps_of_deleting_effects",
                                   {work.quote(effect_ids), work.quote(owners),
                                    std::to_string(to_epoch_ms(deletion->now)), array}));
  }
  const std::vector<pqxx::result> results = work.exec_together(queries);
  if (deletion != nullptr) deletion->deleted = deleted_effect_ids(results[1][0][12]);
  return decode_loaded(work.begun(), ids, results[0], results[1], sealer, cache);
}

std::optional<WorkflowState> load_workflow(pqxx::transaction_base& tx, const std::string& id,
                                           const SecretBox* sealer, DefinitionCache& cache) {
  LoadedWorkflows loaded = load_workflows(tx, {id}, sealer, cache);
  auto& state = loaded.at(id);
  if (!state) throw CorruptRow(state.error().message);
  return std::move(*state);
}

}  // namespace brickwork::store_detail
