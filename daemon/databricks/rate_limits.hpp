#pragma once
// Client-side limits of one workspace (one client is one workspace): a
// token bucket per API, so brickwork stays under the workspace's published
// per-API rates instead of learning them from 429s. Each bucket's rate is
// lowered when Databricks answers 429 (halved: multiplicative decrease),
// paused for the answer's Retry-After, and raised back slowly while calls
// succeed (additive increase), never above the configured rate.
//
// Priority: what starts, ends or cancels work (run-now, submit, cancel,
// uploads...) waits its turn in the bucket up to kMaxWorkWait; a safety-net
// poll (runs/get, a statement's status) up to kMaxPollWait. Past that a call
// is refused, nothing reserved, so it holds no caller (a call thread) while
// it waits: its effect is given back to Postgres and tried again later.
// docs/DATABRICKS.md "Client-side limits".
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/core/databricks_apis.hpp"
#include "daemon/core/time.hpp"

namespace brickwork {

class ApiLimiter {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // `limits`: calls per second by API name (databricks_limits_with); an API
  // without an entry falls under "other", and is not limited without one.
  // `clock` is for tests (default: the steady clock).
  explicit ApiLimiter(std::map<std::string, double> limits, Clock clock = {});

  struct Grant {
    bool granted = true;  // false: a poll refused, nothing reserved
    Duration wait{0};     // granted: sleep this long, then send; refused: when to try again
    uint64_t pauses = 0;  // the API's pauses so far: one more by the send means reserve again
  };
  // Reserves the next call of `api`. Refused when it would wait longer than
  // kMaxPollWait (a poll) or kMaxWorkWait (work).
  Grant reserve(const std::string& api, CallPriority priority);
  // Whether a 429 paused `api` since `grant` was reserved: its turn was
  // counted at the old rate, so the caller reserves again.
  bool paused_since(const std::string& api, const Grant& grant) const;
  // A 429 for `api`: halves its rate (once per kDecreaseSpacing, however many
  // calls in flight come back 429) and holds every call of it for
  // `retry_after` (whatever Databricks said; at least kMinPause).
  void throttled(const std::string& api, Duration retry_after);
  // A call of `api` answered without 429: its rate grows back by
  // kIncreasePerSecond of the configured rate per second since it last
  // changed. Returns whether the rate changed.
  bool succeeded(const std::string& api);

  // The bucket's current rate (calls per second); 0 when not limited.
  double rate(const std::string& api) const;

  static constexpr Duration kMaxPollWait{std::chrono::milliseconds(1000)};
  static constexpr Duration kMaxWorkWait{std::chrono::milliseconds(5000)};
  static constexpr Duration kMinPause{std::chrono::milliseconds(100)};
  static constexpr Duration kDecreaseSpacing{std::chrono::milliseconds(1000)};
  static constexpr double kIncreasePerSecond = 0.05;  // of the configured rate
  static constexpr double kFloorShare = 1.0 / 16;     // lowest rate, of the configured
  static constexpr double kBurstSeconds = 0.25;       // a bucket holds this long's calls

 private:
  using TimePoint = std::chrono::steady_clock::time_point;
  struct Bucket {
    double configured = 0;
    double rate = 0;
    double tokens = 0;    // may go below zero: calls reserved ahead
    TimePoint refilled{}; // may lie ahead: a pause (Retry-After)
    TimePoint changed{};  // the rate's last change
    TimePoint decreased{};
    uint64_t pauses = 0;
  };
  Bucket* find(const std::string& api);
  const Bucket* find(const std::string& api) const;
  void refill(Bucket& bucket, TimePoint now) const;

  Clock clock_;
  mutable std::mutex mutex_;
  std::map<std::string, Bucket, std::less<>> buckets_;
};

}  // namespace brickwork
