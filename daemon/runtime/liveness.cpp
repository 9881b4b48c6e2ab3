#include "daemon/runtime/liveness.hpp"

namespace brickwork {

Liveness::Loop& Liveness::add(std::string name, Duration limit) {
  if (override_.load() > 0) limit = Duration(override_.load());
  std::lock_guard lock(mutex_);
  return loops_.emplace_back(std::move(name), limit);
}

Liveness::Verdict Liveness::check(Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  for (const Loop& loop : loops_) {
    if (loop.retired()) continue;
    const auto silent = std::chrono::duration_cast<Duration>(now - loop.last_beat());
    if (silent > loop.limit()) {
      return Verdict{false, loop.name(), "loop " + loop.name() + " stuck in one iteration for " +
                                format_duration(silent) + " (limit " +
                                format_duration(loop.limit()) + ")"};
    }
  }
  return Verdict{};
}

}  // namespace brickwork
