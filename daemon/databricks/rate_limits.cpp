#include "daemon/databricks/rate_limits.hpp"

#include <algorithm>

namespace brickwork {

namespace {

using Seconds = std::chrono::duration<double>;

// The calls a bucket lets go at once: a quarter second's. Whether a
// workspace's limit passes bursts is not published (docs/DATABRICKS.md), and
// other clients share it, so calls are spaced rather than sent together; the
// cost is at most a quarter second more for the last of a burst.
double burst_of(double rate) { return std::max(1.0, rate * ApiLimiter::kBurstSeconds); }

Duration to_duration(Seconds s) {
  return std::chrono::ceil<Duration>(std::max(Seconds(0), s));
}

}  // namespace

ApiLimiter::ApiLimiter(std::map<std::string, double> limits, Clock clock)
    : clock_(clock ? std::move(clock) : Clock([] { return std::chrono::steady_clock::now(); })) {
  const TimePoint now = clock_();
  for (const auto& [api, rate] : limits) {
    if (!(rate > 0)) continue;
    Bucket b;
    b.configured = rate;
    b.rate = rate;
    b.tokens = burst_of(rate);
    b.refilled = now;
    b.changed = now;
    b.decreased = now - kDecreaseSpacing;
    buckets_.emplace(api, b);
  }
}

ApiLimiter::Bucket* ApiLimiter::find(const std::string& api) {
  auto it = buckets_.find(api);
  if (it == buckets_.end() && !api.empty()) it = buckets_.find(std::string_view("other"));
  return it == buckets_.end() || api.empty() ? nullptr : &it->second;
}

const ApiLimiter::Bucket* ApiLimiter::find(const std::string& api) const {
  return const_cast<ApiLimiter*>(this)->find(api);
}

void ApiLimiter::refill(Bucket& bucket, TimePoint now) const {
  if (now <= bucket.refilled) return;  // paused, or nothing elapsed
  const double elapsed = Seconds(now - bucket.refilled).count();
  bucket.tokens = std::min(burst_of(bucket.rate), bucket.tokens + elapsed * bucket.rate);
  bucket.refilled = now;
}

ApiLimiter::Grant ApiLimiter::reserve(const std::string& api, CallPriority priority) {
  std::lock_guard lock(mutex_);
  Bucket* bucket = find(api);
  if (bucket == nullptr) return {};
  const TimePoint now = clock_();
  refill(*bucket, now);
  // The next whole token arrives at refilled + (1 - tokens) / rate.
  const Seconds until_token =
      Seconds(bucket->refilled - now) + Seconds(std::max(0.0, 1.0 - bucket->tokens) / bucket->rate);
  const Duration wait = to_duration(until_token);
  if (wait > (priority == CallPriority::kPoll ? kMaxPollWait : kMaxWorkWait)) {
    return Grant{false, wait};
  }
  bucket->tokens -= 1.0;
  return Grant{true, wait, bucket->pauses};
}

bool ApiLimiter::paused_since(const std::string& api, const Grant& grant) const {
  std::lock_guard lock(mutex_);
  const Bucket* bucket = find(api);
  return bucket != nullptr && bucket->pauses != grant.pauses;
}

void ApiLimiter::throttled(const std::string& api, Duration retry_after) {
  std::lock_guard lock(mutex_);
  Bucket* bucket = find(api);
  if (bucket == nullptr) return;
  const TimePoint now = clock_();
  refill(*bucket, now);
  if (now - bucket->decreased >= kDecreaseSpacing) {
    bucket->rate = std::max(bucket->configured * kFloorShare, bucket->rate / 2);
    bucket->decreased = now;
    bucket->changed = now;
  }
  // Nothing in hand, and nothing earned until the pause is over. Calls
  // reserved ahead at the old rate reserve again (paused_since), after it.
  bucket->tokens = 0.0;
  ++bucket->pauses;
  bucket->refilled = std::max(bucket->refilled, now + std::max(retry_after, kMinPause));
}

bool ApiLimiter::succeeded(const std::string& api) {
  std::lock_guard lock(mutex_);
  Bucket* bucket = find(api);
  if (bucket == nullptr || bucket->rate >= bucket->configured) return false;
  const TimePoint now = clock_();
  if (now <= bucket->changed) return false;
  const double elapsed = Seconds(now - bucket->changed).count();
  refill(*bucket, now);  // tokens earned so far at the old rate
  bucket->rate = std::min(bucket->configured,
                          bucket->rate + bucket->configured * kIncreasePerSecond * elapsed);
  bucket->changed = now;
  return true;
}

double ApiLimiter::rate(const std::string& api) const {
  std::lock_guard lock(mutex_);
  const Bucket* bucket = find(api);
  return bucket == nullptr ? 0 : bucket->rate;
}

}  // namespace brickwork
