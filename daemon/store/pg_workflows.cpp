#include "daemon/store/pg_workflows.hpp"

#include <pqxx/pqxx>
#include <string_view>
#include <utility>

#include "daemon/store/history_store.hpp"
#include "daemon/store/pg_store_tx.hpp"
#include "daemon/store/workflow_rows.hpp"

namespace brickwork::store_detail {

Status PgWorkflows::transact(const std::function<void(StoreTx&)>& body) {
  return session_.run<Done>("transact", [&](pqxx::connection& c) {
    DeferredBeginWork tx(c);
    std::vector<std::string> new_definitions;
    try {
      new_definitions = run_store_tx(tx, sealer_, definitions_, effect_ids_, body);
    } catch (const pqxx::in_doubt_error& e) {
      // The last writes travel with COMMIT, so a connection lost anywhere
      // near the end leaves the outcome unknown; repeating the transaction
      // is safe (WorkflowWriter), so it is a lost connection like any other.
      throw pqxx::broken_connection(e.what());
    } catch (const pqxx::foreign_key_violation& e) {
      if (std::string_view(e.what()).find("definition_hash") == std::string_view::npos) throw;
      // A definition this connection knew stored was purged meanwhile
      // (retention): the transaction is worth trying again, storing it anew.
      definitions_.forget_stored();
      throw pqxx::transaction_rollback(std::string("a definition was purged meanwhile: ") +
                                       e.what());
    }
    for (const std::string& hash : new_definitions) definitions_.mark_stored(hash);
    return Done{};
  });
}

Result<std::optional<WorkflowState>> PgWorkflows::get_workflow(const std::string& id) {
  return session_.run<std::optional<WorkflowState>>("get_workflow", [&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto state = load_workflow(tx, id, sealer_, definitions_);
    tx.commit();
    return state;
  });
}

Result<LoadedWorkflows> PgWorkflows::get_workflows(const std::vector<std::string>& ids) {
  return session_.run<LoadedWorkflows>("get_workflows", [&](pqxx::connection& c) {
    pqxx::work tx(c);
    LoadedWorkflows loaded = load_workflows(tx, ids, sealer_, definitions_);
    tx.commit();
    return loaded;
  });
}

Result<std::vector<WorkflowSummary>> PgWorkflows::list_workflows(const WorkflowQuery& query) {
  std::optional<Error> refused;
  auto listed =
      session_.run<std::vector<WorkflowSummary>>("list_workflows", [&](pqxx::connection& c) {
        pqxx::work tx(c);
        auto summaries = query_workflows(tx, query);
        tx.commit();
        if (!summaries) refused = summaries.error();
        return summaries ? std::move(*summaries) : std::vector<WorkflowSummary>{};
      });
  if (refused) return *refused;
  return listed;
}

Result<std::optional<WorkflowHistory>> PgWorkflows::get_history(const std::string& id) {
  return session_.run<std::optional<WorkflowHistory>>("get_history", [&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto history = read_history(tx, id);
    tx.commit();
    return history;
  });
}

}  // namespace brickwork::store_detail
