// A real workspace's pace in the simulator: per-call latency, per-API rate
// limits (a token bucket each) and slow Files API uploads. The delays are
// handed to the HTTP server as ServerResponse::delay, a timer on its I/O
// thread, so a slow answer never holds up another connection.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>
#include <string_view>

#include "devstack/simulator_impl.hpp"

namespace brickwork {

namespace {

constexpr const char* kApiNames[] = {
    "jobs/run-now",        "jobs/runs/submit",     "jobs/runs/get",        "jobs/runs/get-output",
    "jobs/runs/cancel",    "jobs/runs/repair",     "jobs/list",            "fs/files",             "sql/statements",
    "database/credentials", "postgres/credentials", "unity-catalog/shares", "unity-catalog/recipients",
    "oidc/token"};

Error invalid(const std::string& message) {
  return Error{ErrorKind::kInvalidInput, "bad_simulator_pace", message};
}

// A non-negative number filling all of `text`.
std::optional<double> number(std::string_view text) {
  double v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || !(v >= 0) || std::isinf(v)) {
    return std::nullopt;
  }
  return v;
}

}  // namespace

std::string simulator_api_name(const std::string& path) {
  if (path == "/oidc/v1/token") return "oidc/token";
  // /api/2.x/<name...>: the longest known name the rest starts with.
  if (path.rfind("/api/2.", 0) != 0) return "other";
  const auto slash = path.find('/', 5);
  if (slash == std::string::npos) return "other";
  const std::string rest = path.substr(slash + 1);
  std::string best = "other";
  for (const char* name : kApiNames) {
    const std::string n = name;
    const bool prefix = rest == n || (rest.rfind(n + "/", 0) == 0 && n.rfind("jobs/", 0) != 0);
    if (prefix && (best == "other" || n.size() > best.size())) best = n;
  }
  return best;
}

bool is_simulator_api_name(const std::string& name) {
  for (const char* n : kApiNames) {
    if (name == n) return true;
  }
  return false;
}

Status parse_simulator_latency(const std::string& text, SimulatorPace& pace) {
  const auto dots = text.find("..");
  const auto low = parse_duration(text.substr(0, dots));
  const auto high = dots == std::string::npos ? low : parse_duration(text.substr(dots + 2));
  if (!low || !high || *high < *low) {
    return invalid("latency \"" + text + "\": expected a duration like 200ms, or a range like 100ms..500ms");
  }
  pace.latency_min = *low;
  pace.latency_max = *high;
  return ok_status();
}

Result<double> parse_simulator_rate(const std::string& text) {
  const std::string_view t(text);
  const auto per = t.rfind("/s");
  const auto v = per == std::string_view::npos || per + 2 != t.size() ? std::nullopt
                                                                      : number(t.substr(0, per));
  if (!v || *v <= 0) return invalid("rate \"" + text + "\": expected calls per second like 20/s");
  return *v;
}

Status parse_simulator_limit(const std::string& text, SimulatorPace& pace) {
  const auto eq = text.find('=');
  const std::string api = text.substr(0, eq);
  if (eq == std::string::npos || !is_simulator_api_name(api)) {
    std::string known;
    for (const char* n : kApiNames) known += std::string(known.empty() ? "" : ", ") + n;
    return invalid("limit \"" + text + "\": expected API=N/s with API one of " + known);
  }
  auto rate = parse_simulator_rate(text.substr(eq + 1));
  if (!rate) return rate.error();
  pace.limits[api] = *rate;
  return ok_status();
}

Result<double> parse_simulator_transfer_rate(const std::string& text) {
  static const std::pair<const char*, double> kUnits[] = {
      {"GiB", 1024.0 * 1024 * 1024}, {"MiB", 1024.0 * 1024}, {"KiB", 1024.0}, {"GB", 1e9},
      {"MB", 1e6},                   {"KB", 1e3},            {"B", 1.0}};
  const std::string_view t(text);
  if (t.size() > 2 && t.substr(t.size() - 2) == "/s") {
    const std::string_view amount = t.substr(0, t.size() - 2);
    for (const auto& [unit, factor] : kUnits) {
      const std::string_view u(unit);
      if (amount.size() > u.size() && amount.substr(amount.size() - u.size()) == u) {
        const auto v = number(amount.substr(0, amount.size() - u.size()));
        if (v && *v > 0) return *v * factor;
        break;
      }
    }
  }
  return invalid("transfer rate \"" + text + "\": expected bytes per second like 1MiB/s or 500KB/s");
}

// ------------------------------------------------------------- in the simulator

std::optional<http::ServerResponse> DatabricksSimulator::Impl::rate_limit(const std::string& api) {
  const auto limit = options.pace.limits.find(api);
  if (limit == options.pace.limits.end()) return std::nullopt;
  const double rate = limit->second;
  const double capacity = std::max(1.0, rate);  // up to one second's calls at once
  const auto now = SteadyClock::now();
  Bucket& bucket = buckets.try_emplace(api, Bucket{capacity, now}).first->second;
  const double elapsed = std::chrono::duration<double>(now - bucket.refilled).count();
  bucket.tokens = std::min(capacity, bucket.tokens + elapsed * rate);
  bucket.refilled = now;
  if (bucket.tokens >= 1.0) {
    bucket.tokens -= 1.0;
    return std::nullopt;
  }
  ++stats.apis[api].rate_limited;
  const auto wait = static_cast<int64_t>(std::ceil((1.0 - bucket.tokens) / rate));
  auto r = simulator_detail::api_error(429, "REQUEST_LIMIT_EXCEEDED",
                                       "Too many requests for " + api + " (simulated limit).");
  r.headers.emplace_back("Retry-After", std::to_string(std::max<int64_t>(1, wait)));
  return r;
}

std::chrono::milliseconds DatabricksSimulator::Impl::pace_delay(const http::ServerRequest& req,
                                                                const std::string& api) {
  const SimulatorPace& pace = options.pace;
  // Held until the simulator stops: a day is longer than any test.
  if (pace.never_answer.count(api) != 0) return std::chrono::hours(24);
  Duration delay = pace.latency_min;
  if (pace.latency_max > pace.latency_min) {
    std::uniform_int_distribution<int64_t> pick(pace.latency_min.count(), pace.latency_max.count());
    delay = Duration(pick(pace_rng));
  }
  if (api == "fs/files" && req.method == "PUT") {
    delay += pace.transfer_time;
    if (pace.transfer_bytes_per_second > 0) {
      delay += Duration(static_cast<int64_t>(
          1000.0 * static_cast<double>(req.body.size()) / pace.transfer_bytes_per_second));
    }
  }
  return delay;
}

}  // namespace brickwork
