#pragma once
// Workflows read and written: the workflow writer's transactions (StoreTx,
// pg_store_tx) and the reader's queries, sharing one DefinitionCache (a
// definition is read, parsed and written once per connection).
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "daemon/core/secret_box.hpp"
#include "daemon/store/definition_cache.hpp"
#include "daemon/store/effect_ids.hpp"
#include "daemon/store/pg_session.hpp"
#include "daemon/store/store.hpp"

namespace brickwork::store_detail {

class PgWorkflows final : public WorkflowWriter, public WorkflowReader {
 public:
  // `sealer` seals sensitive outputs and outbox records as they are written
  // and opens them as they are read (sealing.hpp).
  PgWorkflows(PgSession& session, const SecretBox* sealer) : session_(session), sealer_(sealer) {}

  Status transact(const std::function<void(StoreTx&)>& body) override;

  Result<std::optional<WorkflowState>> get_workflow(const std::string& id) override;
  Result<LoadedWorkflows> get_workflows(const std::vector<std::string>& ids) override;
  Result<std::vector<WorkflowSummary>> list_workflows(const WorkflowQuery& query) override;
  Result<std::optional<WorkflowHistory>> get_history(const std::string& id) override;
  // The definitions this connection knows, for other reads of workflows on it.
  DefinitionCache& definitions() { return definitions_; }
  // A new connection: the effect ids drawn on the one before are not used.
  void forget_effect_ids() { effect_ids_.forget(); }

 private:
  PgSession& session_;
  const SecretBox* sealer_;
  DefinitionCache definitions_;
  EffectIdPool effect_ids_;
};

}  // namespace brickwork::store_detail
