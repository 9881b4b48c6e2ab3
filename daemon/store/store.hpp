#pragma once
// Durable state in Postgres (libpqxx): workflows, steps, pending effects
// (including timers and polls), the status/dead-letter outbox, and the input
// offsets already applied. One Store per thread: a connection is not shared.
// Each consumer sees only its own interface of it (WorkflowWriter,
// WorkflowReader, EffectQueue, OutboxDrain, QueueGauges, below).
#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "daemon/core/password_source.hpp"
#include "daemon/core/result.hpp"
#include "daemon/core/secret_box.hpp"
#include "daemon/core/time.hpp"
#include "daemon/engine/engine.hpp"
#include "daemon/store/history.hpp"

namespace brickwork {

// An effect waiting in the effects table.
struct StoredEffect {
  int64_t id = 0;
  std::string workflow_id;
  Effect effect;
  int32_t tries = 0;  // how often it was claimed before
  // Who holds the lease: unique per claim, so only the claim that still
  // holds an effect can record its result or give it back.
  std::string lease_owner;
};

// A lease given to an effect as it is written, for the daemon that wrote it
// to perform it at once without claiming it (see EffectHandoff).
struct EffectLease {
  std::string owner;
  TimePoint until{};
};

// A claimed effect whose lease is kept alive while its work takes long.
struct HeldLease {
  int64_t effect_id = 0;
  std::string owner;
};

struct OutboxMessage {
  int64_t id = 0;
  std::string topic;
  std::string key;
  std::string payload;
  // Made from a sensitive step output (contract 6.3): sealed at rest, and a
  // dead letter about it must not repeat it.
  bool sensitive = false;
  // The workflow and step whose `emit` made the record; empty for status
  // events and dead letters. A refusal of the record is reported to them.
  std::string workflow_id;
  std::string step;
  // The W3C traceparent header the record goes out with (empty: none).
  std::string traceparent = {};
};

// Records of one topic and key: their order is kept, whatever happens to
// the records of others.
struct OutboxStream {
  std::string topic;
  std::string key;
  auto operator<=>(const OutboxStream&) const = default;
};

// What one publishing round did with the rows it was given.
struct OutboxRound {
  // Rows the broker neither acknowledged nor refused: they stay, in order.
  // Every other row is deleted.
  std::vector<int64_t> unpublished;
  // Messages queued in place of rows the broker refused for good.
  std::vector<OutboxMessage> replacements;
};

// A workflow's next seq, taken for an event that no transition made.
struct WorkflowSequence {
  std::string workflow;  // its definition's name
  int64_t seq = 0;
  WorkflowStatus status = WorkflowStatus::kRunning;
};

// The drain's transaction, to the publisher.
class OutboxTx {
 public:
  virtual ~OutboxTx() = default;
  // Advances the workflow's seq by one and returns it (nullopt: no such workflow).
  virtual std::optional<WorkflowSequence> take_next_seq(const std::string& workflow_id) = 0;
};

// What a workflow's rows held when it was loaded, so that saving it writes
// only the rows and columns a transition changed. (Name, definition and input
// are fixed when a workflow starts: only a new workflow writes them.)
struct WorkflowRows {
  WorkflowStatus status = WorkflowStatus::kRunning;
  int64_t seq = 0;
  TimePoint updated_at{};
  std::vector<StepState> steps;
  std::vector<KeptSignal> kept_signals;

  static WorkflowRows of(const WorkflowState& state) {
    return WorkflowRows{state.status, state.seq, state.updated_at, state.steps,
                        state.kept_signals};
  }
};

// Operations valid inside WorkflowWriter::transact. They throw on database
// errors; transact converts those to an Error and rolls back.
class StoreTx {
 public:
  virtual ~StoreTx() = default;
  // Loads a workflow with its steps and locks its row until commit. A row
  // that cannot be read back (corrupt, or from an incompatible version) is
  // an Error of code "unloadable"; the transaction stays usable.
  virtual Result<std::optional<WorkflowState>> load_workflow_for_update(const std::string& id) = 0;
  // Ends a running workflow that cannot be loaded as failed, without reading
  // it: bumps its seq and drops its pending effects. Returns the workflow's
  // name and new seq, or nothing when it was not running.
  struct ForcedFailure {
    std::string workflow;
    int64_t seq = 0;
  };
  // Several workflows at once (two queries), their rows locked until commit
  // in id order. Every id is in the result: a workflow, nothing, or the
  // "unloadable" Error of that id alone.
  virtual std::map<std::string, Result<std::optional<WorkflowState>>> load_workflows_for_update(
      const std::vector<std::string>& ids) = 0;
  virtual std::optional<ForcedFailure> fail_unloadable_workflow(const std::string& id,
                                                                TimePoint now) = 0;
  // Writes a workflow: with `loaded` (its rows as loaded in this
  // transaction), only what differs from them; without, every row (a new
  // workflow). Its definition is stored once per distinct definition.
  virtual void save_workflow(const WorkflowState& state, const WorkflowRows* loaded = nullptr) = 0;
  // Writes a workflow this transaction found absent: plain inserts, many
  // workflows per statement. One created meanwhile by another transaction
  // is a unique violation, not an overwrite.
  virtual void create_workflow(const WorkflowState& state) = 0;
  // Queues an effect to be performed at `due`.
  virtual void add_effect(const std::string& workflow_id, const Effect& effect, TimePoint due) = 0;
  // Queues an effect already leased to `lease.owner`: no claim will take it
  // before the lease ends. take_leased_effects() gives it back with its id.
  virtual void add_leased_effect(const std::string& workflow_id, const Effect& effect,
                                 TimePoint due, const EffectLease& lease) = 0;
  // The leased effects added since the last call, with their ids, as a
  // claim would return them. They exist once the transaction commits.
  virtual std::vector<StoredEffect> take_leased_effects() = 0;
  // Removes effects that have been performed (their results are applied in
  // the same transaction), but only those whose claim still holds its lease
  // at `now`; returns the ids deleted. One not deleted lost its lease:
  // another worker owns it now and will record it.
  virtual std::set<int64_t> delete_effects(const std::vector<HeldLease>& held, TimePoint now) = 0;
  // load_workflows_for_update(ids), then delete_effects(held, now) into
  // `deleted`, in one round trip fewer; the locks are taken in the same order.
  virtual std::map<std::string, Result<std::optional<WorkflowState>>>
  load_workflows_deleting_effects(const std::vector<std::string>& ids,
                                  const std::vector<HeldLease>& held, TimePoint now,
                                  std::set<int64_t>& deleted) = 0;
  // Queues a message for the outbox publisher (status events, dead letters,
  // emitted records). A sensitive payload is stored sealed. An emitted
  // record names its workflow and step (OutboxMessage).
  virtual void add_outbox(const std::string& topic, const std::string& key,
                          const std::string& payload, bool sensitive = false,
                          const std::string& workflow_id = "", const std::string& step = "",
                          const std::string& traceparent = "") = 0;
  // The next input offset to apply for a topic-partition (-1 if none yet),
  // locked until commit so two consumers never apply the same input.
  virtual int64_t input_offset_for_update(const std::string& topic, int32_t partition) = 0;
  // The same for several topic-partitions, locked in (topic, partition)
  // order (one statement once their rows exist).
  using TopicPartition = std::pair<std::string, int32_t>;
  virtual std::map<TopicPartition, int64_t> input_offsets_for_update(
      const std::vector<TopicPartition>& partitions) = 0;
  virtual void set_input_offset(const std::string& topic, int32_t partition, int64_t next_offset) = 0;
  // Sets the next offset of a partition whose row exists and holds
  // `expected` (this member wrote it last), without reading or locking it
  // first. If another member has moved it since, the transaction fails with
  // code 40001 (serialization_failure) once its writes are sent.
  virtual void advance_input_offset(const std::string& topic, int32_t partition, int64_t expected,
                                    int64_t next_offset) = 0;
  // Adds to a workflow's history (written with the transition that made it):
  // attempts that ended and the timeline's other entries.
  virtual void record_history(const std::string& workflow_id, const HistoryChanges& changes) = 0;
};

// What waits in Postgres (metrics: brickwork_outbox_backlog, brickwork_effects_due).
struct QueueDepths {
  int64_t outbox = 0;       // rows not yet published
  int64_t effects_due = 0;  // effects due and not claimed by anyone
};

struct WorkflowSummary {
  std::string id;
  std::string workflow;
  WorkflowStatus status = WorkflowStatus::kRunning;
  TimePoint created_at{};
  TimePoint updated_at{};
};

// Which workflows list_workflows returns: newest first (created_at, then id),
// every filter that is set applying.
struct WorkflowQuery {
  std::optional<WorkflowStatus> state;
  std::string workflow;              // the definition's name; empty: any
  std::optional<TimePoint> since;    // created at or after
  std::optional<TimePoint> until;    // created before
  std::string after;                 // a workflow id: only those listed after it
  int32_t limit = 0;                 // 0: all
};

// A workflow's history: its attempts (ended, and the ones still going) and
// the other entries of its timeline.
struct WorkflowHistory {
  WorkflowSummary workflow;
  std::vector<AttemptRecord> attempts;  // by start time
  std::vector<HistoryNote> notes;       // in the order they happened
};

// One narrow interface per consumer; PgStore (pg_store.cpp) is all of them,
// composed of a part for each (pg_workflows, pg_effect_queue, pg_outbox_drain).
// Every call is one transaction of its own on the store's connection.

// The workflow writer: the input processor's and the effect runner's
// transitions, each a transaction of StoreTx operations.
class WorkflowWriter {
 public:
  virtual ~WorkflowWriter() = default;
  // Runs `body` in one transaction and commits. A lost connection or a
  // serialization failure comes back as a transient Error (the caller may
  // retry), a connection lost during the commit too: whether it committed
  // is unknown, and every writer transaction is safe to repeat (inputs are
  // skipped by their offsets, results by their effects' leases).
  virtual Status transact(const std::function<void(StoreTx&)>& body) = 0;
};

// The workflow reader: the CLI's status, list and history, the effect
// runner's loads of the workflows its effects belong to.
class WorkflowReader {
 public:
  virtual ~WorkflowReader() = default;
  virtual Result<std::optional<WorkflowState>> get_workflow(const std::string& id) = 0;
  // Several workflows read in one transaction; a row that cannot be decoded
  // is an Error of its own id only.
  using LoadedWorkflows = std::map<std::string, Result<std::optional<WorkflowState>>>;
  virtual Result<LoadedWorkflows> get_workflows(const std::vector<std::string>& ids) = 0;
  // Newest first. An `after` id that names no workflow is an Error of code
  // "unknown_cursor".
  virtual Result<std::vector<WorkflowSummary>> list_workflows(const WorkflowQuery& query) = 0;
  // The workflow's history; nothing when there is no such workflow.
  virtual Result<std::optional<WorkflowHistory>> get_history(const std::string& id) = 0;
};

// Effects claimed, with the workflows they belong to as the claim's
// transaction read them: every workflow id of `effects` is a key of
// `workflows`.
struct ClaimedEffects {
  std::vector<StoredEffect> effects;
  WorkflowReader::LoadedWorkflows workflows;
};

// The effect queue as the effect runner takes from it (results are recorded
// with WorkflowWriter: StoreTx::delete_effects in the transaction that
// applies them).
class EffectQueue {
 public:
  virtual ~EffectQueue() = default;
  // Claims up to `limit` effects due at `now` that no one holds, leasing them
  // to `owner` until now + lease (FOR UPDATE SKIP LOCKED), and reads their
  // workflows in the same round trip.
  virtual Result<ClaimedEffects> claim_due_effects(const std::string& owner, int32_t limit,
                                                   TimePoint now, Duration lease) = 0;
  // Gives a claimed effect back to be tried again at `due` (after a transient
  // failure); a no-op when `owner` no longer holds it.
  virtual Status reschedule_effect(int64_t effect_id, const std::string& owner, TimePoint due) = 0;
  // Extends the leases still held (lease_until >= now) to now + lease.
  virtual Status renew_leases(const std::vector<HeldLease>& held, TimePoint now,
                              Duration lease) = 0;
  // Gives effects back unperformed: any claim may take them at once.
  virtual Status release_leases(const std::vector<HeldLease>& held) = 0;
};

// The outbox as the outbox publisher drains it.
class OutboxDrain {
 public:
  virtual ~OutboxDrain() = default;
  // Publishes the oldest outbox messages (at most `limit`, fewer when their
  // payloads are large: PgStore stops a round at 4 MiB), in id order,
  // skipping the streams in `skip` (their rows stay, in order), all in one
  // transaction: `publish` says which rows it could not publish (they stay)
  // and what to queue in place of rows the broker refused for good; every
  // other row is deleted, so a row the broker acknowledged is never
  // published again, whatever happened to the others. Only one publisher at
  // a time across all daemons (a transaction-level advisory lock), so
  // per-stream order holds. Returns how many rows were deleted (0 when
  // another publisher holds the lock).
  using OutboxPublish =
      std::function<Result<OutboxRound>(const std::vector<OutboxMessage>&, OutboxTx&)>;
  virtual Result<int32_t> drain_outbox(int32_t limit, const std::vector<OutboxStream>& skip,
                                       const OutboxPublish& publish) = 0;
};

// What the ops monitor gauges.
class QueueGauges {
 public:
  virtual ~QueueGauges() = default;
  // Cheap liveness check (SELECT 1), reconnecting if needed.
  virtual Status ping() = 0;
  // Outbox rows and effects due at `now`, in one statement. It counts, so it
  // walks the rows deleted since the tables' last vacuum: 40-50 ms with 100k
  // of them on a 2-core machine.
  virtual Result<QueueDepths> queue_depths(TimePoint now) = 0;
};

// All of them on one connection, with the schema's upkeep: what the daemon
// opens per thread, and the CLI.
class Store : public WorkflowWriter,
              public WorkflowReader,
              public EffectQueue,
              public OutboxDrain,
              public QueueGauges {
 public:
  // Connects lazily: construction never touches the network. Connections get
  // connect_timeout and statement_timeout unless `url` sets them
  // (store_conninfo); a `url` libpq cannot read makes every call fail with an
  // kInvalidInput Error. No Error message holds the URL's password.
  // With `password`, every new connection uses the password it gives now (a
  // Lakebase credential), and a refused one (28P01) is reported back to it
  // and comes back as a transient Error.
  // `sealer` encrypts sensitive step outputs and outbox records at rest
  // (contract 6.3). Without it, writing one is an internal Error, and reading
  // one leaves it sealed (enough for `brickwork status`, which redacts it).
  static std::unique_ptr<Store> open(const std::string& url,
                                     std::shared_ptr<PasswordSource> password = nullptr,
                                     std::shared_ptr<const SecretBox> sealer = nullptr);

  // Creates or upgrades the schema. Safe to run twice and concurrently
  // (an advisory lock serialises migrators).
  virtual Status migrate() = 0;
};

}  // namespace brickwork
