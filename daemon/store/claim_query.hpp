#pragma once
// The claim of due effects, shared with the test that checks its plan: it
// must read only due effects (effects_due_idx), however many wait.
namespace brickwork::store_detail {

// $1 owner, $2 now (epoch ms), $3 lease end (epoch ms), $4 limit.
inline constexpr const char* kClaimDueEffects =
    "WITH claimed AS ("
    " UPDATE effects SET lease_owner = $1, lease_until = to_timestamp($3::bigint / 1000.0),"
    "   tries = tries + 1"
    " WHERE id IN (SELECT id FROM effects"
    "   WHERE due_at <= to_timestamp($2::bigint / 1000.0)"
    "     AND (lease_until IS NULL OR lease_until < to_timestamp($2::bigint / 1000.0))"
    "   ORDER BY due_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)"
    " RETURNING id, workflow_id, kind, step, attempt, payload, tries, due_at)"
    " SELECT id, workflow_id, kind, step, attempt, payload::text, tries FROM claimed"
    " ORDER BY due_at, id";

}  // namespace brickwork::store_detail
