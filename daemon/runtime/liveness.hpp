#pragma once
// Whether the daemon's loops (intake, effect workers, outbox publisher) are
// alive: each records a heartbeat when it completes an iteration or is about
// to wait idle; a loop whose last heartbeat is older than its stall limit is
// stuck inside one iteration. /healthz answers from this, and the systemd
// watchdog is fed only while every loop is alive, so a stuck loop gets the
// service restarted.
#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <string>

#include "daemon/core/time.hpp"

namespace brickwork {

// How long a loop that only talks to Postgres and Kafka may spend in one
// iteration: well past every deadline it sets (statements, produce, poll).
inline constexpr Duration kLoopStallLimit{std::chrono::minutes(2)};

class Liveness {
 public:
  using Clock = std::chrono::steady_clock;

  // One loop's heartbeat. Owned by the Liveness; valid until it is destroyed.
  class Loop {
   public:
    Loop(std::string name, Duration limit) : name_(std::move(name)), limit_(limit) { beat(); }
    // The loop completed an iteration or is about to wait idle.
    void beat() { last_.store(Clock::now().time_since_epoch().count()); }
    // The loop ended for good (shutdown): no longer counted.
    void retire() { retired_ = true; }

    const std::string& name() const { return name_; }
    Duration limit() const { return limit_; }
    bool retired() const { return retired_; }
    Clock::time_point last_beat() const { return Clock::time_point(Clock::duration(last_.load())); }

   private:
    std::string name_;
    Duration limit_;
    std::atomic<Clock::rep> last_{0};
    std::atomic<bool> retired_{false};
  };

  // Registers a loop that may spend at most `limit` in one iteration (the
  // override, when one is set, replaces every limit). Thread-safe.
  Loop& add(std::string name, Duration limit);
  // Tests: one limit for every loop registered from now on.
  void override_limit(Duration limit) { override_ = limit.count(); }

  struct Verdict {
    bool alive = true;
    std::string loop;    // the stuck loop's name; "" when alive
    std::string reason;  // which loop is stuck and for how long; "" when alive
  };
  Verdict check(Clock::time_point now = Clock::now()) const;

 private:
  mutable std::mutex mutex_;
  std::deque<Loop> loops_;  // stable addresses
  std::atomic<Duration::rep> override_{0};
};

}  // namespace brickwork
