// The token cache and the token-request helpers every auth type shares.
#include "daemon/databricks/credentials.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

#include "daemon/core/base64.hpp"
#include "daemon/databricks/client.hpp"
#include "daemon/databricks/parsing.hpp"

namespace brickwork {

namespace {

using SteadyClock = std::chrono::steady_clock;
using databricks_parsing::percent_encode;

std::optional<int64_t> int_field(const json::value* v) {
  if (v == nullptr) return std::nullopt;
  if (auto i = as_int64(*v)) return i;
  if (v->is_double()) return static_cast<int64_t>(v->get_double());
  if (!v->is_string()) return std::nullopt;
  const std::string_view s = v->get_string();
  int64_t out = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return out;
}

// Seconds from now until an epoch time, on the steady clock.
SteadyClock::time_point steady_at_epoch(int64_t epoch_seconds) {
  const auto now_epoch = std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::system_clock::now().time_since_epoch());
  return SteadyClock::now() + (std::chrono::seconds(epoch_seconds) - now_epoch);
}

}  // namespace

std::optional<std::string> jwt_payload(std::string_view jwt) {
  const auto first = jwt.find('.');
  if (first == std::string_view::npos) return std::nullopt;
  const auto second = jwt.find('.', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  return base64_decode(jwt.substr(first + 1, second - first - 1));
}

CachedToken::CachedToken(std::string what, Fetch fetch,
                         std::shared_ptr<DatabricksClientCounters> counters)
    : what_(std::move(what)), fetch_(std::move(fetch)), counters_(std::move(counters)) {}

void CachedToken::invalidate() {
  std::lock_guard lock(mu_);
  token_.reset();
}

Result<AccessToken> CachedToken::get() {
  std::lock_guard lock(mu_);
  const auto now = SteadyClock::now();
  if (token_ && now < renew_at_) return *token_;
  if (token_ && now < token_->expires && now < next_try_) return *token_;
  auto fetched = fetch_();
  if (fetched) {
    if (counters_) counters_->token_fetches.fetch_add(1);
    const auto ttl = std::max<SteadyClock::duration>(fetched->expires - now, std::chrono::seconds(1));
    fetched->expires = now + ttl;
    renew_at_ = fetched->expires - std::min<SteadyClock::duration>(ttl / 2, std::chrono::minutes(20));
    next_try_ = {};
    failures_ = 0;
    token_ = std::move(*fetched);
    return *token_;
  }
  if (counters_) counters_->token_failures.fetch_add(1);
  const Error& e = fetched.error();
  if (token_ && now < token_->expires) {
    const auto pause = std::chrono::seconds(std::min(60, 1 << std::min(++failures_ - 1, 6)));
    next_try_ = now + pause;
    spdlog::warn("databricks: renewing the {} failed ({}: {}); keeping the current one, next try "
                 "in {} s",
                 what_, e.code, e.message, pause.count());
    return *token_;
  }
  spdlog::warn("databricks: {} request failed: {}: {}", what_, e.code, e.message);
  return e;
}

BearerProvider::BearerProvider(const AuthContext& ctx, std::string what, CachedToken::Fetch fetch)
    : token_(std::move(what), std::move(fetch), ctx.counters) {}

Result<http::Headers> BearerProvider::headers() {
  auto token = token_.get();
  if (!token) return token.error();
  return http::Headers{{"Authorization", token->header()}};
}

Result<http::Response> send_token_request(const AuthContext& ctx, http::Request request,
                                          bool link_local) {
  if (link_local) request.allow_link_local = true;
  request.timeout = ctx.timeout;
  if (ctx.counters) ctx.counters->requests.fetch_add(1);
  const bool workspace = request.url.rfind(ctx.host + "/oidc/", 0) == 0;
  const auto sent = SteadyClock::now();
  auto response = ctx.http->send(request);
  if (ctx.observe) {
    const std::chrono::duration<double> took = SteadyClock::now() - sent;
    ctx.observe(workspace ? "oidc/v1/token" : "identity/" + ctx.auth_type,
                response ? std::to_string(response->status) : response.error().code, took.count());
  }
  return response;
}

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (const auto& [k, v] : fields) {
    if (!out.empty()) out += '&';
    out += percent_encode(k) + "=" + percent_encode(v);
  }
  return out;
}

Result<AccessToken> parse_token_answer(const http::Response& response, std::string_view what,
                                       std::string_view field) {
  if (response.status < 200 || response.status >= 300) {
    Error e = error_from_http(response.status, response.reason, response.body);
    e.message = std::string(what) + ": " + e.message;
    return e;
  }
  boost::system::error_code ec;
  const json::value body = parse_json(response.body, ec);
  const json::object* o = ec ? nullptr : body.if_object();
  const json::value* token = o != nullptr ? o->if_contains(field) : nullptr;
  if (token == nullptr || !token->is_string() || token->get_string().empty()) {
    return Error{ErrorKind::kTransient, "bad_token_response",
                 std::string(what) + ": the answer has no " + std::string(field)};
  }
  AccessToken out;
  out.value = std::string(token->get_string());
  if (const json::value* t = o->if_contains("token_type");
      t != nullptr && t->is_string() && !t->get_string().empty()) {
    out.type = std::string(t->get_string());
    if (out.type == "bearer") out.type = "Bearer";
  }
  out.expires = SteadyClock::now() + std::chrono::hours(1);
  if (auto in = int_field(o->if_contains("expires_in"))) {
    out.expires = SteadyClock::now() + std::chrono::seconds(*in);
  } else if (auto on = int_field(o->if_contains("expires_on"))) {
    out.expires = steady_at_epoch(*on);
  } else if (const json::value* et = o->if_contains("expireTime"); et != nullptr && et->is_string()) {
    if (auto at = parse_iso8601(std::string_view(et->get_string()))) {
      out.expires = SteadyClock::now() + (*at - now_ms());
    }
  } else if (auto payload = jwt_payload(out.value)) {
    const json::value claims = parse_json(*payload, ec);
    if (!ec && claims.is_object()) {
      if (auto exp = int_field(claims.get_object().if_contains("exp"))) {
        out.expires = steady_at_epoch(*exp);
      }
    }
  }
  return out;
}

}  // namespace brickwork
