#pragma once
// The outbox drained by the publisher: one round a transaction, under a
// transaction-level advisory lock so that one publisher at a time across all
// daemons publishes (per-stream order holds), read from a DrainCursor, sealed
// records opened, and the rows the round published deleted by id.
#include <map>
#include <string>
#include <vector>

#include "daemon/core/secret_box.hpp"
#include "daemon/store/drain_cursor.hpp"
#include "daemon/store/pg_session.hpp"
#include "daemon/store/store.hpp"

namespace brickwork::store_detail {

// A round reads rows until their payloads reach this many bytes (and at
// least one): rows carry emitted records of up to 1 MiB, and a round's
// payloads are held about four times over (the read, the messages, the
// producer's records and librdkafka's copies) until the broker answers.
inline constexpr int64_t kOutboxRoundBytes = 4 * 1024 * 1024;

class PgOutboxDrain final : public OutboxDrain {
 public:
  // `sealer` opens sealed records; without it (or under a key no longer
  // configured) one is dropped.
  PgOutboxDrain(PgSession& session, const SecretBox* sealer) : session_(session), sealer_(sealer) {}

  Result<int32_t> drain_outbox(int32_t limit, const std::vector<OutboxStream>& skip,
                               const OutboxPublish& publish) override;

  // A new connection may be to a server that lost or restored rows (crash
  // recovery, a fail-over): the next round reads the outbox from its start.
  void restart() { cursor_ = DrainCursor(); }

 private:
  PgSession& session_;
  const SecretBox* sealer_;
  DrainCursor cursor_;
};

// The statements above, prepared on every connection by name.
const std::map<std::string, std::string>& outbox_drain_statements();

}  // namespace brickwork::store_detail
