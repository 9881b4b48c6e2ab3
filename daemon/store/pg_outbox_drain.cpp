#include "daemon/store/pg_outbox_drain.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <utility>

#include "daemon/store/claim_query.hpp"
#include "daemon/store/deferred_begin.hpp"
#include "daemon/store/migrations.hpp"
#include "daemon/store/pg_params.hpp"
#include "daemon/store/sealing.hpp"

namespace brickwork::store_detail {
namespace {

// The drain's transaction as the publisher sees it.
class PgOutboxTx final : public OutboxTx {
 public:
  explicit PgOutboxTx(pqxx::transaction_base& tx) : tx_(tx) {}
  std::optional<WorkflowSequence> take_next_seq(const std::string& workflow_id) override {
    // The row lock is taken as any transition takes it, so seq stays gap-free.
    const pqxx::result r = tx_.exec_params(
        "UPDATE workflows SET seq = seq + 1 WHERE id = $1 "
        "RETURNING workflow, seq, status",
        workflow_id);
    if (r.empty()) return std::nullopt;
    auto status = workflow_status_from_string(r[0][2].as<std::string>());
    return WorkflowSequence{r[0][0].as<std::string>(), r[0][1].as<int64_t>(),
                            status.value_or(WorkflowStatus::kRunning)};
  }

 private:
  pqxx::transaction_base& tx_;
};

}  // namespace

const std::map<std::string, std::string>& outbox_drain_statements() {
  static const std::map<std::string, std::string> statements = {
      {"drain_outbox", kDrainOutbox},
  };
  return statements;
}

Result<int32_t> PgOutboxDrain::drain_outbox(int32_t limit, const std::vector<OutboxStream>& skip,
                                            const OutboxPublish& publish) {
  std::optional<Error> publish_error;
  auto drained = session_.run<int32_t>("drain_outbox", [&](pqxx::connection& c) -> int32_t {
    std::vector<std::string> skip_topics, skip_keys;
    for (const OutboxStream& s : skip) {
      skip_topics.push_back(s.topic);
      skip_keys.push_back(s.key);
    }
    // BEGIN, the drainers' lock and the read in one round trip. Without the
    // lock the read is only discarded: it changes nothing.
    DeferredBeginWork work(c);
    const std::vector<pqxx::result> first = work.exec_together(
        {"SELECT pg_try_advisory_xact_lock(" + std::to_string(kOutboxLockKey) + ")",
         work.execute("drain_outbox",
                      {std::to_string(std::max(limit, 0)), work.quote(text_array(skip_topics)),
                       work.quote(text_array(skip_keys)), std::to_string(cursor_.after()),
                       std::to_string(kOutboxRoundBytes)})});
    if (!first[0][0][0].as<bool>()) return 0;  // another publisher is draining
    const pqxx::result& r = first[1];
    pqxx::transaction_base& tx = work.begun();
    DrainCursor::Read read{r[0][0].as<int64_t>(), 0, r[0][2].as<int64_t>()};
    std::vector<int64_t> ids;
    std::vector<OutboxMessage> messages;
    messages.reserve(r.size());
    int64_t read_rows = 0;  // before the byte bound
    for (const pqxx::row row : r) {
      if (row[3].is_null()) continue;  // no rows: the snapshot's columns only
      read_rows = row[10].as<int64_t>();
      ids.push_back(row[3].as<int64_t>());
      OutboxMessage message{row[3].as<int64_t>(),
                            row[4].as<std::string>(),
                            row[5].as<std::string>(),
                            row[6].as<std::string>(),
                            false,
                            row[7].as<std::string>(),
                            row[8].as<std::string>(),
                            row[9].as<std::string>()};
      if (SecretBox::is_sealed(message.payload)) {
        auto plain = opened_outbox_payload(message.topic, message.key, message.payload, sealer_);
        if (!plain) {
          // Sealed under another key: nothing can ever publish it (deleted
          // below).
          spdlog::error(
              "outbox: record {} for {} is sealed under a key no longer "
              "configured "
              "(was callbacks.secret changed without its old value in "
              "callbacks.previous_secrets?); dropping it",
              message.id, message.topic);
          continue;
        }
        message.payload = std::move(*plain);
        message.sensitive = true;
      }
      messages.push_back(std::move(message));
    }
    if (ids.empty()) {
      cursor_.advance(read, {}, false, !skip.empty());
      return 0;
    }
    PgOutboxTx outbox_tx(tx);
    auto round = publish(messages, outbox_tx);
    if (!round) {
      publish_error = round.error();
      return 0;  // the work's destructor rolls back; the rows stay
    }
    // By id, never by range: a row with a smaller id may commit after we
    // read.
    const std::set<int64_t> kept(round->unpublished.begin(), round->unpublished.end());
    std::vector<int64_t> done;
    for (int64_t id : ids) {
      if (kept.count(id) == 0) done.push_back(id);
    }
    for (const OutboxMessage& m : round->replacements) {
      tx.exec_params(
          "INSERT INTO outbox (topic, key, payload, "
          "workflow_id, step, traceparent)"
          " VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), "
          "NULLIF($6, ''))",
          m.topic, m.key, m.payload, m.workflow_id, m.step, m.traceparent);
    }
    // One statement, one round trip, for three things. The deletes. The
    // transaction's id, taken after the read: above every transaction that
    // could have taken an outbox id before it (a snapshot's xmax is not: a
    // transaction may hold an xid above it and be running already). And for
    // deletes alone, a commit that need not wait for the disk: lost in a
    // crash, they only republish records the broker has, which consumers
    // drop by seq, and the server's next durable commit flushes them anyway.
    // A round that took a workflow's seq for a replacement waits: its event
    // may be published before a crash could take the seq back.
    // With the COMMIT, in one round trip.
    const std::vector<DeferredBeginWork::TextRows> deleted = work.commit_with(
        {PendingWrite{"",
                      "WITH deleted AS (DELETE FROM outbox WHERE id = ANY($1::bigint[]))"
                      " SELECT pg_current_xact_id()::text::bigint,"
                      " CASE WHEN $2 THEN set_config('synchronous_commit', 'off', true) END",
                      {number_array(done), round->replacements.empty() ? "true" : "false"}}});
    read.xid_after = std::stoll(deleted.at(0).at(0).at(0).value());
    // Stopped early: at the row limit, or at the byte bound before it.
    const bool stopped_early = read_rows >= std::max(limit, 0) ||
                               static_cast<int64_t>(ids.size()) < read_rows;
    cursor_.advance(read, ids, stopped_early, !skip.empty() || !kept.empty());
    return static_cast<int32_t>(done.size());
  });
  if (publish_error) return *publish_error;
  return drained;
}

}  // namespace brickwork::store_detail
