#include "daemon/store/pg_effect_queue.hpp"

#include <algorithm>
#include <charconv>
#include <string_view>
#include <utility>

#include "daemon/store/claim_query.hpp"
#include "daemon/store/deferred_begin.hpp"
#include "daemon/store/effect_codec.hpp"
#include "daemon/store/pg_errors.hpp"
#include "daemon/store/pg_params.hpp"
#include "daemon/store/row_fields.hpp"
#include "daemon/store/workflow_rows.hpp"

namespace brickwork::store_detail {
namespace {

// The effects of (id, lease owner) pairs $1, $2 that still hold their lease,
// locked in id order: `held` in a WITH clause, closed by kInIdOrder (after
// any further condition on e). A lease check there is written through
// coalesce(lease_until, ...): `lease_until >= x` implies the predicate of
// effects_lease_idx, whose second column is the id, and with statistics that
// say few effects are leased the planner looked each pair up in that index,
// walking all of it every time (0.2 s for 87 effects in the bench), instead
// of by the primary key.
constexpr const char* kHeldEffects =
    "WITH held AS (SELECT e.id FROM effects e"
    " JOIN unnest($1::bigint[], $2::text[]) AS c(id, owner)"
    " ON e.id = c.id AND e.lease_owner = c.owner WHERE true";
constexpr const char* kInIdOrder = " ORDER BY e.id FOR UPDATE OF e)";

}  // namespace

std::pair<std::string, std::string> lease_arrays(const std::vector<HeldLease>& held) {
  std::vector<int64_t> ids;
  std::vector<std::string> owners;
  for (const HeldLease& h : held) {
    ids.push_back(h.effect_id);
    owners.push_back(h.owner);
  }
  return {number_array(ids), text_array(owners)};
}

std::set<int64_t> deleted_effect_ids(const pqxx::field& ids) {
  std::set<int64_t> deleted;
  if (ids.is_null()) return deleted;  // string_agg of no rows
  std::string_view rest(ids.c_str(), ids.size());
  while (!rest.empty()) {
    int64_t id = 0;
    const auto [end, error] = std::from_chars(rest.data(), rest.data() + rest.size(), id);
    if (error != std::errc()) throw CorruptRow("deleted effect ids: " + std::string(rest));
    deleted.insert(id);
    rest.remove_prefix(static_cast<size_t>(end - rest.data()));
    if (!rest.empty() && rest.front() == ',') rest.remove_prefix(1);
  }
  return deleted;
}

std::string with_held_effects_deleted() {
  return std::string(kHeldEffects) +
         " AND coalesce(e.lease_until, '-infinity') >= to_timestamp($3::bigint / 1000.0)" +
         kInIdOrder +
         ", deleted AS (DELETE FROM effects e USING held WHERE e.id = held.id RETURNING e.id)";
}

const std::map<std::string, std::string>& effect_queue_statements() {
  static const std::map<std::string, std::string> statements = {
      {"delete_effects", with_held_effects_deleted() + " SELECT id FROM deleted"},
      {"claim_due_effects", kClaimDueEffects},
  };
  return statements;
}

StoredEffect stored_effect_of(const pqxx::row& row) {
  EffectRow effect_row{row[2].as<std::string>(), row[3].as<std::string>(), row[4].as<int32_t>(),
                       object_field(row[5])};
  auto effect = decode_effect(effect_row);
  if (!effect) throw CorruptRow(effect.error().message);
  // `tries` counts claims including this one; StoredEffect wants the ones
  // before.
  return StoredEffect{row[0].as<int64_t>(),
                      row[1].as<std::string>(),
                      std::move(*effect),
                      row[6].as<int32_t>() - 1,
                      {}};
}

// BEGIN, the claim and the reads of its workflows and their steps go in one
// round trip, and the commit in a second: a claim used to take three, and
// the read of its workflows after it four more, while the call slots the
// claim was for stood empty.
Result<ClaimedEffects> PgEffectQueue::claim_due_effects(const std::string& owner, int32_t limit,
                                                        TimePoint now, Duration lease) {
  return session_.run<ClaimedEffects>("claim_due_effects", [&](pqxx::connection& c) {
    DeferredBeginWork work(c);
    const std::string quoted_owner = work.quote(owner);
    const std::string lease_end = std::to_string(to_epoch_ms(now + lease));
    const std::vector<pqxx::result> results = work.exec_together(
        {work.execute("claim_due_effects", {quoted_owner, std::to_string(to_epoch_ms(now)),
                                            lease_end, std::to_string(std::max(limit, 0))}),
         work.execute("select_workflows_claimed", {quoted_owner, lease_end}),
         work.execute("select_steps_claimed", {quoted_owner, lease_end})});
    ClaimedEffects claimed;
    claimed.effects.reserve(results[0].size());
    std::vector<std::string> workflow_ids;
    for (const pqxx::row row : results[0]) {
      claimed.effects.push_back(stored_effect_of(row));
      claimed.effects.back().lease_owner = owner;
      workflow_ids.push_back(claimed.effects.back().workflow_id);
    }
    claimed.workflows = decode_loaded(work.begun(), workflow_ids, results[1], results[2], sealer_,
                                      definitions_);
    work.commit();
    return claimed;
  });
}

Status PgEffectQueue::reschedule_effect(int64_t effect_id, const std::string& owner,
                                        TimePoint due) {
  return session_.run<Done>("reschedule_effect", [&](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec_params(
        "UPDATE effects SET due_at = to_timestamp($2::bigint / 1000.0),"
        " lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner "
        "= $3",
        effect_id, to_epoch_ms(due), owner);
    tx.commit();
    return Done{};
  });
}

Status PgEffectQueue::renew_leases(const std::vector<HeldLease>& held, TimePoint now,
                                   Duration lease) {
  if (held.empty()) return ok_status();
  const auto [ids, owners] = lease_arrays(held);
  return session_.run<Done>("renew_leases", [&](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec_params(
        std::string(kHeldEffects) +
            " AND coalesce(e.lease_until, '-infinity') >= to_timestamp($4::bigint / 1000.0)" +
            kInIdOrder +
            " UPDATE effects e SET lease_until = to_timestamp($3::bigint / "
            "1000.0)"
            " FROM held WHERE e.id = held.id",
        ids, owners, to_epoch_ms(now + lease), to_epoch_ms(now));
    tx.commit();
    return Done{};
  });
}

Status PgEffectQueue::release_leases(const std::vector<HeldLease>& held) {
  if (held.empty()) return ok_status();
  const auto [ids, owners] = lease_arrays(held);
  return session_.run<Done>("release_leases", [&](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec_params(std::string(kHeldEffects) + kInIdOrder +
                       " UPDATE effects e SET lease_owner = NULL, lease_until = NULL"
                       " FROM held WHERE e.id = held.id",
                   ids, owners);
    tx.commit();
    return Done{};
  });
}

std::set<int64_t> delete_held_effects(pqxx::transaction_base& tx,
                                      const std::vector<HeldLease>& held, TimePoint now) {
  std::set<int64_t> deleted;
  if (held.empty()) return deleted;
  const auto [ids, owners] = lease_arrays(held);
  for (const pqxx::row row : tx.exec_prepared("delete_effects", ids, owners, to_epoch_ms(now))) {
    deleted.insert(row[0].as<int64_t>());
  }
  return deleted;
}

}  // namespace brickwork::store_detail
