#pragma once
// Ids of effects drawn from their sequence ahead of use, a block at a time.
// A transaction that writes an effect leased to this daemon needs its id to
// hand it over; with the id known before the write, the write returns
// nothing and travels with the COMMIT (DeferredBeginWork::commit_with)
// instead of a round trip of its own for RETURNING.
//
// nextval() is never rolled back, so an id drawn is never given out again,
// whatever becomes of the transaction that drew it. A new connection forgets
// the ids it holds: the server may be one restored or failed over to, whose
// sequence has not seen them.
#include <cstdint>
#include <pqxx/pqxx>
#include <vector>

namespace brickwork::store_detail {

class EffectIdPool {
 public:
  // An id no effect has; draws a block in `tx` (one round trip) when none is left.
  int64_t take(pqxx::transaction_base& tx) {
    if (ids_.empty()) {
      const pqxx::result drawn = tx.exec_params(
          "SELECT nextval(pg_get_serial_sequence('effects', 'id'))"
          " FROM generate_series(1, $1) ORDER BY 1 DESC",
          kBlock);
      for (const pqxx::row row : drawn) ids_.push_back(row[0].as<int64_t>());
    }
    const int64_t id = ids_.back();
    ids_.pop_back();
    return id;
  }
  void forget() { ids_.clear(); }

 private:
  static constexpr int32_t kBlock = 256;
  std::vector<int64_t> ids_;  // the next one last
};

}  // namespace brickwork::store_detail
