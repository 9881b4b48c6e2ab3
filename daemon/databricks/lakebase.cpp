#include "daemon/databricks/lakebase.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "daemon/core/thread_name.hpp"

namespace brickwork {
namespace {

std::string random_uuid() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) out += '-';
    int v = static_cast<int>(rng() & 15);
    if (i == 12) v = 4;                 // version 4
    if (i == 16) v = 8 | (v & 3);       // variant 10xx
    out += kHex[v];
  }
  return out;
}

class LakebaseCredentials final : public PasswordSource {
 public:
  LakebaseCredentials(DatabricksApi& api, LakebaseConfig config, std::string name)
      : api_(api), config_(std::move(config)), name_(std::move(name)) {
    renewer_ = std::thread([this] {
      name_this_thread("bw-lakebase");
      renew_loop();
    });
  }

  ~LakebaseCredentials() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    renewer_.join();
  }

  Result<std::string> password() override {
    std::unique_lock lock(mutex_);
    // A valid token is used while a renewal is under way elsewhere.
    if (!token_.empty() && now_ms() < expires_ && (now_ms() < refresh_at_ || fetching_)) {
      return token_;
    }
    Status fetched = fetch(lock);
    if (!fetched && (token_.empty() || now_ms() >= expires_)) return fetched.error();
    return token_;
  }

  void refused() override {
    {
      std::lock_guard lock(mutex_);
      refresh_at_ = TimePoint{};  // the next password() fetches
    }
    wake_.notify_all();
  }

  std::optional<TimePoint> expires_at() const override {
    std::lock_guard lock(mutex_);
    if (token_.empty()) return std::nullopt;
    return expires_;
  }

 private:
  // One request at a time: callers that find one under way wait for it. The
  // lock is released during the request, so a valid token stays available.
  Status fetch(std::unique_lock<std::mutex>& lock) {
    if (fetching_) {
      done_.wait(lock, [&] { return !fetching_; });
      return token_.empty() ? Status(Error{ErrorKind::kTransient, "lakebase_credentials",
                                           "no database credential yet"})
                            : ok_status();
    }
    fetching_ = true;
    lock.unlock();
    auto answer = request();
    lock.lock();
    fetching_ = false;
    done_.notify_all();
    if (!answer) return answer.error();
    const TimePoint now = now_ms();
    token_ = std::move(answer->first);
    expires_ = answer->second;
    // About half its lifetime, as the SDKs do; never in the past.
    refresh_at_ = now + std::max<Duration>((expires_ - now) / 2, Duration(1000));
    spdlog::info("lakebase ({}): new database credential, valid until {}", name_,
                 format_iso8601(expires_));
    return ok_status();
  }

  // The credentials call itself: the token and its expiry.
  Result<std::pair<std::string, TimePoint>> request() {
    const bool provisioned = !config_.instance.empty();
    const json::value body =
        provisioned ? json::value(json::object{{"instance_names", json::array{config_.instance}},
                                               {"request_id", random_uuid()}})
                    : json::value(json::object{{"endpoint", config_.endpoint}});
    // One attempt, not the client's retries over its whole budget (minutes):
    // the renewal loop and the store's reconnects retry with their own
    // backoff, and both stop at once on shutdown, where a retrying call
    // would hold the destructor until its budget ran out.
    auto response = api_.call(
        "POST", provisioned ? "/api/2.0/database/credentials" : "/api/2.0/postgres/credentials",
        &body, false);
    if (!response) {
      spdlog::warn("lakebase ({}): cannot get a database credential: {}", name_,
                   response.error().message);
      return Error{ErrorKind::kTransient, "lakebase_credentials", response.error().message};
    }
    const json::value* token = response->is_object() ? response->as_object().if_contains("token")
                                                      : nullptr;
    const json::value* expiry =
        response->is_object()
            ? response->as_object().if_contains(provisioned ? "expiration_time" : "expire_time")
            : nullptr;
    const auto at = expiry != nullptr && expiry->is_string()
                        ? parse_iso8601(std::string_view(expiry->as_string()))
                        : std::nullopt;
    if (token == nullptr || !token->is_string() || token->as_string().empty() || !at) {
      return Error{ErrorKind::kTransient, "lakebase_credentials",
                   "the credentials answer has no token or expiry"};
    }
    return std::make_pair(std::string(token->as_string()), *at);
  }

  // Renews before expiry even while no connection opens, backing off after a
  // failure (1 s doubling to 60 s, never past the old token's expiry).
  void renew_loop() {
    Duration backoff{1000};
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      // At most a second asleep: the first token arrives through password().
      const Duration until_due = token_.empty() ? Duration(1000) : refresh_at_ - now_ms();
      wake_.wait_for(lock, std::clamp(until_due, Duration(10), Duration(1000)));
      if (stopping_) break;
      if (token_.empty() || now_ms() < refresh_at_) continue;
      if (fetch(lock)) {
        backoff = Duration(1000);
      } else {
        refresh_at_ = now_ms() + backoff;
        backoff = std::min(backoff * 2, Duration(60'000));
      }
    }
  }

  DatabricksApi& api_;
  const LakebaseConfig config_;
  const std::string name_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;  // a request under way has ended
  bool fetching_ = false;
  bool stopping_ = false;
  std::string token_;
  TimePoint expires_{};
  TimePoint refresh_at_{};
  std::thread renewer_;
};

}  // namespace

std::shared_ptr<PasswordSource> make_lakebase_credentials(DatabricksApi& api,
                                                          const LakebaseConfig& lakebase,
                                                          std::string name) {
  return std::make_shared<LakebaseCredentials>(api, lakebase, std::move(name));
}

}  // namespace brickwork
