#pragma once
#include <algorithm>
#include <cstdint>
#include <deque>
#include <vector>

namespace brickwork::store_detail {

// Where the outbox drain starts reading, so that it does not walk the rows
// it deleted since the last vacuum (every drain would, from the smallest id).
//
// A row's id is taken after its transaction has a transaction id (the
// column's default, migration 5). A round that read rows up to id m takes a
// transaction id of its own after its read: every transaction that could
// have taken an id up to m before that read has a smaller one. Once a later
// read's snapshot has an xmin at or past it, all those transactions have
// ended and that read sees every row they committed: the rows up to m are
// then all known, and once that later round is committed, the cursor moves
// past them. The cursor stays while streams wait aside or rows stay
// unpublished (their rows must be read again).
class DrainCursor {
 public:
  struct Read {
    int64_t xmin = 0;       // the read snapshot's
    int64_t xid_after = 0;  // a transaction id taken after the read (rounds with rows)
    int64_t last_id = 0;    // the id sequence's last value
  };

  int64_t after() const { return after_; }

  // After a round's commit (or a read of nothing): `ids` read in order, `full`
  // when the read stopped at its limit, `held` when rows stayed behind.
  void advance(const Read& read, const std::vector<int64_t>& ids, bool full, bool held) {
    if (read.last_id < after_) {  // the sequence was reset: read from the start
      *this = DrainCursor();
      return;
    }
    if (held) {
      candidates_.clear();
      return;
    }
    // Everything after the cursor up to `covered` was read in this round.
    const int64_t covered = full && !ids.empty() ? ids.back() : INT64_MAX;
    while (!candidates_.empty() && candidates_.front().xid <= read.xmin) {
      if (candidates_.front().up_to > covered) {  // the rest at a later read
        after_ = std::max(after_, covered);
        break;
      }
      after_ = std::max(after_, candidates_.front().up_to);
      candidates_.pop_front();
    }
    if (ids.empty()) return;
    Candidate next{ids.back(), read.xid_after};
    if (!candidates_.empty()) {
      next.up_to = std::max(next.up_to, candidates_.back().up_to);
      next.xid = std::max(next.xid, candidates_.back().xid);
      if (candidates_.size() >= kMaxCandidates) candidates_.pop_back();  // keep the newest
    }
    candidates_.push_back(next);
  }

 private:
  struct Candidate {
    int64_t up_to = 0;  // every row up to this id was visible or in progress...
    int64_t xid = 0;    // ...in transactions below this id
  };
  static constexpr size_t kMaxCandidates = 64;
  int64_t after_ = 0;  // every row up to this id was published (or is gone)
  std::deque<Candidate> candidates_;
};

}  // namespace brickwork::store_detail
