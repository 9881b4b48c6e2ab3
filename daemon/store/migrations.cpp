#include "daemon/store/migrations.hpp"

#include <array>

namespace brickwork::store_detail {
namespace {

// Times are timestamptz; the store reads and writes them as epoch milliseconds.
constexpr const char* kV1 = R"sql(
CREATE TABLE workflows (
  id          text PRIMARY KEY,
  workflow    text NOT NULL,
  definition  jsonb NOT NULL,
  input       jsonb NOT NULL DEFAULT '{}',
  status      text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'canceled')),
  seq         bigint NOT NULL DEFAULT 0,
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL
);
CREATE INDEX workflows_status_created_idx ON workflows (status, created_at DESC);
CREATE INDEX workflows_created_idx ON workflows (created_at DESC);

CREATE TABLE steps (
  workflow_id            text NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
  name                   text NOT NULL,
  position               int NOT NULL,
  status                 text NOT NULL,
  attempt                int NOT NULL DEFAULT 0,
  attempts_before_retry  int NOT NULL DEFAULT 0,
  run_id                 bigint,
  run_page_url           text NOT NULL DEFAULT '',
  handle                 jsonb,
  output                 jsonb,
  error                  jsonb,
  started_at             timestamptz,
  finished_at            timestamptz,
  PRIMARY KEY (workflow_id, name)
);

-- Pending effects, timers and polls. A claimed effect carries a lease; when
-- the lease passes without the effect being deleted, it is claimed again.
CREATE TABLE effects (
  id           bigserial PRIMARY KEY,
  workflow_id  text NOT NULL,
  kind         text NOT NULL CHECK (kind IN ('execute', 'poll', 'cancel', 'timer')),
  step         text NOT NULL,
  attempt      int NOT NULL,
  payload      jsonb NOT NULL DEFAULT '{}',
  due_at       timestamptz NOT NULL,
  lease_owner  text,
  lease_until  timestamptz,
  tries        int NOT NULL DEFAULT 0,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX effects_due_idx ON effects (due_at, id);
CREATE INDEX effects_workflow_idx ON effects (workflow_id);

-- Status events and dead letters, published in id order by one drainer at a time.
CREATE TABLE outbox (
  id          bigserial PRIMARY KEY,
  topic       text NOT NULL,
  key         text NOT NULL,
  payload     text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- The next Kafka offset to apply per topic-partition; -1 until one was applied.
CREATE TABLE input_offsets (
  topic        text NOT NULL,
  partition    int NOT NULL,
  next_offset  bigint NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (topic, partition)
);
)sql";

// A definition is stored once however many workflows run it: rows written
// before this keep theirs inline in workflows.definition.
constexpr const char* kV2 = R"sql(
CREATE TABLE definitions (
  hash        text PRIMARY KEY,
  definition  jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE workflows ADD COLUMN definition_hash text REFERENCES definitions (hash);
ALTER TABLE workflows ALTER COLUMN definition DROP NOT NULL;
)sql";

// effects and outbox are queues: rows come and go by the thousand while few
// are live, and every claim or drain walks past the dead ones until a vacuum.
// Vacuum them after a fixed number of dead rows, not a fraction of a table
// that is mostly empty, and without the cost delay.
constexpr const char* kV3 = R"sql(
ALTER TABLE effects SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
                         autovacuum_vacuum_cost_delay = 0);
ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
                        autovacuum_vacuum_cost_delay = 0);
)sql";

// An emitted record names the workflow and step that made it, so that a
// broker's refusal of it can be reported to that workflow.
constexpr const char* kV4 = R"sql(
ALTER TABLE outbox ADD COLUMN workflow_id text, ADD COLUMN step text;
)sql";

// Signals kept until a step waits for them (NULL: none), and a workflow's
// history: every attempt of every step once it ended, and the other entries
// of its timeline. Both go with their workflow when it is deleted.
constexpr const char* kV5 = R"sql(
ALTER TABLE workflows ADD COLUMN signals jsonb;
CREATE TABLE step_attempts (
  workflow_id   text NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
  step          text NOT NULL,
  attempt       int NOT NULL,
  state         text NOT NULL,
  run_id        bigint,
  run_page_url  text NOT NULL DEFAULT '',
  started_at    timestamptz,
  ended_at      timestamptz,
  error         jsonb,
  output_bytes  bigint,
  PRIMARY KEY (workflow_id, step, attempt)
);
CREATE TABLE workflow_history (
  id           bigserial PRIMARY KEY,
  workflow_id  text NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
  at           timestamptz NOT NULL,
  kind         text NOT NULL,
  step         text,
  signal       text,
  detail       text
);
CREATE INDEX workflow_history_workflow_idx ON workflow_history (workflow_id, id);
CREATE INDEX workflows_workflow_created_idx ON workflows (workflow, created_at DESC);
)sql";

// The W3C traceparent of the command that started a workflow, carried as a
// Kafka header on its status events and emitted records.
constexpr const char* kV6 = R"sql(
ALTER TABLE workflows ADD COLUMN traceparent text;
ALTER TABLE outbox ADD COLUMN traceparent text;
)sql";


// The hot reads must not walk rows deleted since the last vacuum, whenever
// the server's autovacuum gets to them (docs/PERFORMANCE.md).
// - Claims: an effect handed over at once is written leased and deleted
//   leased, so it never enters the index of unleased effects; expired leases
//   are found by their own index. effects_due_idx held both, live and dead.
//   The lease index is on an expression only the claim uses: on lease_until
//   itself, the planner (its statistics a minute old) chose it for the
//   recorder's `lease_until >= now` and walked every leased effect.
// - The outbox drain reads from a cursor (PgStore::drain_outbox) that is
//   only sound if a row's id is taken after its transaction has an id: the
//   default takes the transaction id first.
constexpr const char* kV7 = R"sql(
CREATE INDEX effects_unleased_due_idx ON effects (due_at, id) WHERE lease_until IS NULL;
CREATE INDEX effects_lease_idx ON effects ((coalesce(lease_until, 'infinity')), id)
  WHERE lease_until IS NOT NULL;
DROP INDEX effects_due_idx;
CREATE FUNCTION outbox_next_id() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM pg_current_xact_id();
  RETURN nextval('outbox_id_seq');
END
$$;
ALTER TABLE outbox ALTER COLUMN id SET DEFAULT outbox_next_id();
)sql";

// A foreign key is a trigger per row: every step, attempt and history entry
// written ran a query that locked its workflow's row (500 workflows with two
// steps and a history entry: 29 ms with the keys, 12 ms without, measured),
// and every workflow purged ran one delete per child table. A workflow's rows
// are written in its own transactions, with its row locked, and the purge
// deletes them by the list in retention.cpp.
constexpr const char* kV8 = R"sql(
ALTER TABLE steps DROP CONSTRAINT IF EXISTS steps_workflow_id_fkey;
ALTER TABLE step_attempts DROP CONSTRAINT IF EXISTS step_attempts_workflow_id_fkey;
ALTER TABLE workflow_history DROP CONSTRAINT IF EXISTS workflow_history_workflow_id_fkey;
)sql";

// outbox.id's default still takes the transaction's id before the
// sequence's (migration 7), by a CASE, which evaluates its condition first,
// instead of a PL/pgSQL function: a function call per row took 9-10 ms of
// every 1,000 outbox rows written, the CASE 5-6 ms (measured on a quiet
// server).
constexpr const char* kV9 = R"sql(
ALTER TABLE outbox ALTER COLUMN id SET DEFAULT
  (CASE WHEN pg_current_xact_id() IS NOT NULL THEN nextval('outbox_id_seq'::regclass) END);
DROP FUNCTION IF EXISTS outbox_next_id();
)sql";

// The intake advances a partition's offset without reading it first when it
// knows the value from its own last commit (one round trip fewer per batch).
// If another member moved it meanwhile (a rebalance), the update calls this
// function, which fails the transaction as a serialization failure; the
// intake then applies the batch again, reading the offset under its lock.
constexpr const char* kV10 = R"sql(
CREATE OR REPLACE FUNCTION brickwork_input_offset_moved(
  topic text, part int, expected bigint, found bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the input offset of %[%] is %, not % as this member last wrote it',
    topic, part, found, expected USING ERRCODE = 'serialization_failure';
END
$$;
)sql";

// A step's row is updated at each state change and a workflow's at each
// input; steps has no index but its primary key, so an update that finds
// room on its page is heap-only (no new index entry, fewer pages dirtied
// and logged). Full pages left 38% of step updates heap-only under load,
// these 53% (docs/PERFORMANCE.md). A workflow's status change updates an
// index and is never heap-only; its other updates can be. Per-table
// settings: a managed Postgres lets the table owner set them. New pages
// only: rows already stored move as they are updated.
constexpr const char* kV11 = R"sql(
ALTER TABLE steps SET (fillfactor = 80);
ALTER TABLE workflows SET (fillfactor = 85);
)sql";

constexpr std::array<Migration, 11> kMigrations{{
    {1, "workflows, steps, effects, outbox, input offsets", kV1},
    {2, "definitions stored once, by hash", kV2},
    {3, "queue tables vacuumed by dead rows", kV3},
    {4, "outbox rows name the workflow and step that emitted them", kV4},
    {5, "kept signals, step attempts and workflow history", kV5},
    {6, "workflows and outbox rows keep a trace context", kV6},
    {7, "claims and drains that do not walk dead rows", kV7},
    {8, "a workflow's rows without per-row foreign-key triggers", kV8},
    {9, "outbox ids without a function call per row", kV9},
    {10, "input offsets advanced without a read", kV10},
    {11, "room on steps' and workflows' pages for heap-only updates", kV11},
}};

}  // namespace

std::span<const Migration> migrations() { return kMigrations; }

}  // namespace brickwork::store_detail
