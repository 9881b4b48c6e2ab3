#pragma once
// Reading workflows back: their rows and steps decoded into WorkflowState (a
// sensitive output opened, the definition from the DefinitionCache or its
// row), for the reads of the workflow reader and the loads of a transaction.
#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <vector>

#include "daemon/core/secret_box.hpp"
#include "daemon/store/deferred_begin.hpp"
#include "daemon/store/definition_cache.hpp"
#include "daemon/store/store.hpp"

namespace brickwork::store_detail {

using LoadedWorkflows = WorkflowReader::LoadedWorkflows;

// Several workflows as they are, for the workflow reader: every id is in
// the result; a workflow whose rows do not decode is an Error of its own
// ("unloadable").
LoadedWorkflows load_workflows(pqxx::transaction_base& tx, std::vector<std::string> ids,
                               const SecretBox* sealer, DefinitionCache& cache);
// One workflow, by the same queries; rows that do not decode throw CorruptRow.
std::optional<WorkflowState> load_workflow(pqxx::transaction_base& tx, const std::string& id,
                                           const SecretBox* sealer, DefinitionCache& cache);

// For a transition: the same, their rows locked in id order (so two
// transactions locking overlapping sets cannot deadlock), and their steps
// read after the locks are held, in one round trip with the transaction's
// BEGIN if it is its first (DeferredBeginWork; the ids travel as quoted
// literals).
//
// With `deletion`, its effects are deleted (as delete_held_effects does) by
// the statement that reads the steps: after the workflows' locks, in the
// order every transaction takes them. Its snapshot is taken before any wait
// for an effect's lock, which is safe for the steps: only a holder of their
// workflow's lock changes them.
struct EffectDeletion {
  std::vector<HeldLease> held;
  TimePoint now;
  std::set<int64_t> deleted;  // out: the ids deleted
};
LoadedWorkflows load_workflows_locked(DeferredBeginWork& work, std::vector<std::string> ids,
                                      const SecretBox* sealer, DefinitionCache& cache,
                                      EffectDeletion* deletion = nullptr);

// The workflows `ids` as read by a statement of the workflows' columns
// (select_workflows) and one of their steps' (select_steps_of), decoded;
// `tx` reads the definitions not cached. Every id is in the result.
LoadedWorkflows decode_loaded(pqxx::transaction_base& tx, const std::vector<std::string>& ids,
                              const pqxx::result& workflows, const pqxx::result& steps,
                              const SecretBox* sealer, DefinitionCache& cache);

// The statements above, and select_workflows_claimed and
// select_steps_claimed ($1 a claim's owner, $2 its lease end in epoch ms:
// the workflows of the effects it leased, in its transaction), prepared on
// every connection by name.
const std::map<std::string, std::string>& workflow_read_statements();

}  // namespace brickwork::store_detail
