#pragma once
// The hot reads of the queues, shared with the tests that check their plans
// and `brickwork bench --pg-stats`, which shows them.
//
// The claim of due effects: it
// must read only claimable effects, however many wait and however many were
// deleted since the last vacuum. Unleased effects come from
// effects_unleased_due_idx, which effects handed over leased (most of them)
// never enter; expired leases from effects_lease_idx, after them.
namespace brickwork::store_detail {

// The planner settings of every store connection (pg_store.cpp says why),
// as SET statements; the tests that check plans make them too.
inline constexpr const char* kStoreSessionSettings =
    "SET enable_hashjoin = off; SET enable_mergejoin = off; SET enable_seqscan = off;"
    " SET plan_cache_mode = force_generic_plan; SET jit = off;"
    " SET max_parallel_workers_per_gather = 0";

// $1 owner, $2 now (epoch ms), $3 lease end (epoch ms), $4 limit.
inline constexpr const char* kClaimDueEffects =
    "WITH unleased AS ("
    " SELECT id FROM effects"
    " WHERE lease_until IS NULL AND due_at <= to_timestamp($2::bigint / 1000.0)"
    " ORDER BY due_at, id LIMIT $4 FOR UPDATE SKIP LOCKED),"
    " expired AS ("
    " SELECT id FROM effects"
    " WHERE lease_until IS NOT NULL"
    "   AND coalesce(lease_until, 'infinity') < to_timestamp($2::bigint / 1000.0)"
    "   AND due_at <= to_timestamp($2::bigint / 1000.0)"
    " ORDER BY coalesce(lease_until, 'infinity'), id"
    " LIMIT greatest($4 - (SELECT count(*) FROM unleased), 0)"
    " FOR UPDATE SKIP LOCKED),"
    " claimed AS ("
    " UPDATE effects SET lease_owner = $1, lease_until = to_timestamp($3::bigint / 1000.0),"
    "   tries = tries + 1"
    " WHERE id = ANY(ARRAY(SELECT id FROM unleased UNION ALL SELECT id FROM expired))"
    " RETURNING id, workflow_id, kind, step, attempt, payload, tries, due_at)"
    " SELECT id, workflow_id, kind, step, attempt, payload::text, tries FROM claimed"
    " ORDER BY due_at, id";

// Deletes the safety-net polls of steps that ended ($1 workflow ids, $2
// steps, $3 attempts): only polls no one holds (a claimed one is its
// holder's to record). Each step's polls are looked up by its workflow
// (effects_workflow_idx), one lookup per step: the subquery behind OFFSET 0
// is not flattened into a join, which with statistics older than the rows
// (20k polls written since the last ANALYZE) was planned as one walk of the
// whole index, materialized and compared with every step (7M comparisons,
// 4 s, for 500 steps). The lease test is one no index answers: as
// `lease_until IS NULL OR lease_until < now()` it was planned as a scan of
// both partial indexes of effects (every unleased and leased effect).
inline constexpr const char* kDropUnheldPolls =
    "DELETE FROM effects e USING ("
    " SELECT p.id FROM unnest($1::text[], $2::text[], $3::int[]) AS v(workflow_id, step, attempt)"
    " CROSS JOIN LATERAL (SELECT d.id FROM effects d"
    "   WHERE d.workflow_id = v.workflow_id AND d.step = v.step AND d.attempt = v.attempt"
    "   AND d.kind = 'poll' AND coalesce(d.lease_until, '-infinity') < now() OFFSET 0) p) dropped"
    " WHERE e.id = dropped.id";

// The outbox drain's read: the oldest rows after the cursor ($4, see
// DrainCursor in drain_cursor.hpp) outside the skipped streams ($2 topics, $3
// keys), at most $1, and of those the first whose payloads before them are
// under $5 bytes (so at least one), with the statement's own snapshot and the
// id sequence's last value (one row of those alone when there are no rows).
// read_rows counts the rows read before the byte bound: a round that
// returns fewer stopped early. octet_length of a stored payload reads its
// size from the TOAST pointer, not the value.
inline constexpr const char* kDrainOutbox =
    "SELECT s.xmin, s.xmax, s.last_id, o.id, o.topic, o.key, o.payload,"
    " coalesce(o.workflow_id, ''), coalesce(o.step, ''), coalesce(o.traceparent, ''),"
    " o.read_rows"
    " FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin,"
    "   pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax,"
    "   coalesce(pg_sequence_last_value('outbox_id_seq'), 0) AS last_id) s"
    " LEFT JOIN LATERAL (SELECT * FROM (SELECT r.*,"
    "     sum(octet_length(r.payload)) OVER (ORDER BY r.id) - octet_length(r.payload)"
    "       AS bytes_before,"
    "     count(*) OVER () AS read_rows"
    "   FROM (SELECT * FROM outbox o WHERE o.id > $4"
    "     AND NOT EXISTS (SELECT 1 FROM unnest($2::text[], $3::text[]) AS k(topic, key)"
    "       WHERE k.topic = o.topic AND k.key = o.key)"
    "     ORDER BY o.id LIMIT $1) r) w"
    "   WHERE w.bytes_before < $5) o ON true"
    " ORDER BY o.id";

}  // namespace brickwork::store_detail
