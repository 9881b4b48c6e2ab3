#pragma once
// The effects table as a queue: effects claimed under a lease, renewed,
// released or rescheduled (PgEffectQueue, a transaction per call), and
// deleted with the transition that applies their result (delete_held_effects,
// inside a workflow transaction). Every statement that writes several effect
// rows locks them in id order, so two of them never wait for each other in a
// cycle; a transaction locks its workflows before their effects.
#include <map>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <vector>

#include "daemon/core/secret_box.hpp"
#include "daemon/store/definition_cache.hpp"
#include "daemon/store/pg_session.hpp"
#include "daemon/store/store.hpp"

namespace brickwork::store_detail {

class PgEffectQueue final : public EffectQueue {
 public:
  // `sealer` and `definitions` decode the workflows a claim reads.
  PgEffectQueue(PgSession& session, const SecretBox* sealer, DefinitionCache& definitions)
      : session_(session), sealer_(sealer), definitions_(definitions) {}

  Result<ClaimedEffects> claim_due_effects(const std::string& owner, int32_t limit, TimePoint now,
                                           Duration lease) override;
  Status reschedule_effect(int64_t effect_id, const std::string& owner, TimePoint due) override;
  Status renew_leases(const std::vector<HeldLease>& held, TimePoint now, Duration lease) override;
  Status release_leases(const std::vector<HeldLease>& held) override;

 private:
  PgSession& session_;
  const SecretBox* sealer_;
  DefinitionCache& definitions_;
};

// Deletes the effects whose claims still hold their lease at `now`; returns
// the ids deleted. Inside the transaction that applies their results.
std::set<int64_t> delete_held_effects(pqxx::transaction_base& tx,
                                      const std::vector<HeldLease>& held, TimePoint now);

// "WITH held AS (...), deleted AS (DELETE ... RETURNING e.id)", for a
// statement to go on with a SELECT: the effects $1 (ids) held by $2
// (owners) whose leases hold at $3 (epoch ms), locked in id order and
// deleted. delete_held_effects, alone or with a read (workflow_rows.cpp).
std::string with_held_effects_deleted();
// The ids of that deletion, from its SELECT's column `string_agg(id::text, ',')`.
std::set<int64_t> deleted_effect_ids(const pqxx::field& ids);
// Leases as two Postgres array literals (ids, owners), for unnest().
std::pair<std::string, std::string> lease_arrays(const std::vector<HeldLease>& held);

// A claimed effect from the columns id, workflow_id, kind, step, attempt,
// payload, tries (lease owner left to the caller). A row that does not
// decode throws CorruptRow.
StoredEffect stored_effect_of(const pqxx::row& row);

// The statements above, prepared on every connection by name.
const std::map<std::string, std::string>& effect_queue_statements();

}  // namespace brickwork::store_detail
