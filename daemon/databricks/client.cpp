// The Databricks REST client: auth header, retries by kind of error, and the
// jobs calls. Transport (and every Beast template) is in http.cpp.
#include "daemon/databricks/client.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <random>
#include <thread>

#include "daemon/core/base64.hpp"
#include "daemon/core/metrics.hpp"
#include "daemon/databricks/http.hpp"
#include "daemon/databricks/parsing.hpp"

namespace brickwork {

namespace {

using databricks_parsing::as_int64;
using databricks_parsing::kMaxPages;
using databricks_parsing::next_page_token;
using databricks_parsing::percent_encode;
using databricks_parsing::trim;

using SteadyClock = std::chrono::steady_clock;

Result<json::value> parse_json_body(const std::string& body, std::string_view what) {
  if (trim(body).empty()) return json::value(json::object());
  boost::system::error_code ec;
  json::value v = parse_json(body, ec);
  if (ec) {
    return Error{ErrorKind::kInvalidInput, "bad_response",
                 std::string(what) + ": response is not JSON: " + ec.message()};
  }
  // A run's message, a notebook's result or a SQL cell may hold U+0000,
  // which Postgres cannot store: it becomes U+FFFD here, for every answer.
  replace_nul(v);
  return v;
}

Error endless_paging(std::string_view what) {
  return Error{ErrorKind::kInvalidInput, "bad_response",
               std::string(what) + ": paging did not end (a repeated next_page_token, or more " +
                   "than " + std::to_string(kMaxPages) + " pages)"};
}

// A transfer that keeps failing ends after this many tries (transfer_failed).
constexpr int kTransferTries = 3;

struct Call {
  std::string method;
  std::string path_and_query;  // "/api/..."
  std::optional<std::string> body;
  std::string body_file;  // streamed instead of `body`
  std::string content_type = "application/json";
  bool retry = true;
  // A large body (an upload): each read or write gets request_timeout without
  // progress, not the whole exchange; kTransferTries tries, not the budget.
  bool transfer = false;
  bool with_auth = true;
  std::string basic_auth;  // for the token endpoint
};

// Jittered exponential backoff, shared by the call retries and token refresh.
class Backoff {
 public:
  Backoff(Duration initial, Duration max) : initial_(initial), max_(max), rng_(std::random_device{}()) {}

  Duration delay(int attempt) {
    int64_t d = std::max<int64_t>(initial_.count(), 1);
    for (int i = 1; i < attempt && d < max_.count(); ++i) d *= 2;
    d = std::min<int64_t>(d, std::max<int64_t>(max_.count(), 1));
    std::lock_guard lock(mu_);
    std::uniform_int_distribution<int64_t> half(0, d / 2);
    return Duration(d - d / 2 + half(rng_));
  }

 private:
  Duration initial_;
  Duration max_;
  std::mutex mu_;
  std::mt19937_64 rng_;
};

class DatabricksClient;

// OAuth M2M access token, cached and renewed when its remaining life drops
// below min(TTL/2, 20 min). A failed renewal keeps the still-valid token and
// is retried after a growing pause; an expired token makes the call fail
// (transiently, if the failure was) so the caller's retry loop backs off.
class OAuthTokenSource {
 public:
  OAuthTokenSource(DatabricksClient& client, std::string client_id, std::string client_secret,
                   Backoff& backoff)
      : client_(client),
        basic_("Basic " + base64(client_id + ":" + client_secret)),
        backoff_(backoff) {}

  Result<std::string> authorization(const std::shared_ptr<DatabricksClientCounters>& counters);
  void invalidate() {
    std::lock_guard lock(mu_);
    have_ = false;
  }

 private:
  Result<std::string> fetch();

  DatabricksClient& client_;
  const std::string basic_;  // never logged
  Backoff& backoff_;
  std::mutex mu_;
  bool have_ = false;
  std::string header_;
  SteadyClock::time_point expires_{};
  SteadyClock::time_point renew_at_{};
  SteadyClock::time_point next_try_{};
  int failures_ = 0;
};

class DatabricksClient final : public DatabricksApi {
 public:
  DatabricksClient(ResolvedDatabricksConfig config, const DatabricksClientOptions& options)
      : config_(std::move(config)),
        counters_(options.counters ? options.counters : std::make_shared<DatabricksClientCounters>()),
        backoff_(options.backoff_initial, options.backoff_max) {
    if (config_.auth == DatabricksAuth::kOAuthM2M) {
      oauth_ = std::make_unique<OAuthTokenSource>(*this, config_.client_id, config_.client_secret,
                                                  backoff_);
    }
  }

  Result<int64_t> run_now(const RunNowRequest& request) override {
    if (request.idempotency_token.size() > 64) {
      return Error{ErrorKind::kInvalidInput, "bad_idempotency_token",
                   "idempotency_token is longer than 64 characters"};
    }
    json::object body = request.extra;
    body["job_id"] = request.job_id;
    if (!request.job_parameters.empty()) {
      json::object params;
      for (const auto& [k, v] : request.job_parameters) params[k] = v;
      body["job_parameters"] = std::move(params);
    }
    if (!request.idempotency_token.empty()) body["idempotency_token"] = request.idempotency_token;
    return run_id_of(json_call("POST", "/api/2.2/jobs/run-now", json::value(std::move(body)), true),
                     "jobs/run-now");
  }

  Result<int64_t> submit_run(const json::object& body) override {
    return run_id_of(json_call("POST", "/api/2.2/jobs/runs/submit", json::value(body), true),
                     "jobs/runs/submit");
  }

  Result<RunInfo> get_run(int64_t run_id) override {
    const std::string path = "/api/2.2/jobs/runs/get?run_id=" + std::to_string(run_id);
    auto r = json_call("GET", path, std::nullopt, true);
    if (!r) return r.error();
    auto info = parse_run_info(*r);
    if (!info) return info;
    // API 2.2 lists at most 100 task runs per response. The state read from
    // the first page stands; later pages only add task runs.
    auto token = next_page_token(*r, "jobs/runs/get");
    if (!token) return token.error();
    for (int page = 1; !token->empty(); ++page) {
      if (page == kMaxPages) return endless_paging("jobs/runs/get");
      auto more =
          json_call("GET", path + "&page_token=" + percent_encode(*token), std::nullopt, true);
      if (!more) return more.error();
      auto tasks = parse_run_tasks(*more);
      if (!tasks) return tasks.error();
      info->tasks.insert(info->tasks.end(), tasks->begin(), tasks->end());
      auto following = next_page_token(*more, "jobs/runs/get");
      if (!following) return following.error();
      if (*following == *token) return endless_paging("jobs/runs/get");
      token = std::move(following);
    }
    return info;
  }

  Result<std::vector<int64_t>> find_jobs_by_name(const std::string& name) override {
    if (name.empty()) {
      return Error{ErrorKind::kInvalidInput, "bad_job_name",
                   "job name is empty (jobs/list would not filter)"};
    }
    // limit=100, the API's maximum: a name usually matches one page.
    const std::string path = "/api/2.2/jobs/list?limit=100&name=" + percent_encode(name);
    std::vector<int64_t> ids;
    std::string token;
    for (int page = 0;; ++page) {
      if (page == kMaxPages) return endless_paging("jobs/list");
      const std::string query =
          token.empty() ? path : path + "&page_token=" + percent_encode(token);
      auto r = json_call("GET", query, std::nullopt, true);
      if (!r) return r.error();
      auto parsed = parse_jobs_list_page(*r, name);
      if (!parsed) return parsed.error();
      for (int64_t id : parsed->matching_job_ids) {
        // A job listed on two pages (the list moved under us) is one job.
        if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
      }
      if (parsed->next_page_token.empty()) return ids;
      if (parsed->next_page_token == token) return endless_paging("jobs/list");
      token = std::move(parsed->next_page_token);
    }
  }

  Result<json::object> get_run_output(int64_t task_run_id) override {
    auto r = json_call("GET", "/api/2.2/jobs/runs/get-output?run_id=" + std::to_string(task_run_id),
                       std::nullopt, true);
    if (!r) return r.error();
    if (!r->is_object()) {
      return Error{ErrorKind::kInvalidInput, "bad_response",
                   "jobs/runs/get-output: response is not a JSON object"};
    }
    return std::move(r->get_object());
  }

  Status cancel_run(int64_t run_id) override {
    json::object body;
    body["run_id"] = run_id;
    auto r = json_call("POST", "/api/2.2/jobs/runs/cancel", json::value(std::move(body)), true);
    if (!r) return r.error();
    return ok_status();
  }

  Result<json::value> call(const std::string& method, const std::string& path_and_query,
                           const json::value* body, bool idempotent) override {
    if (path_and_query.empty() || path_and_query.front() != '/') {
      return Error{ErrorKind::kInvalidInput, "bad_path", "path must start with '/'"};
    }
    std::optional<json::value> b;
    if (body != nullptr) b = *body;
    return json_call(method, path_and_query, std::move(b), idempotent);
  }

  Status upload_file(const FileUpload& upload) override {
    if (upload.volume_path.rfind("/Volumes/", 0) != 0) {
      return Error{ErrorKind::kInvalidInput, "bad_path", "a volume path starts with /Volumes/"};
    }
    Call call;
    call.method = "PUT";
    // Each segment escaped, '/' kept (as the SDKs do).
    std::string path;
    for (size_t from = 1; from <= upload.volume_path.size();) {
      const size_t slash = upload.volume_path.find('/', from);
      const size_t end = slash == std::string::npos ? upload.volume_path.size() : slash;
      path += "/" + percent_encode(upload.volume_path.substr(from, end - from));
      from = end + 1;
    }
    call.path_and_query =
        "/api/2.0/fs/files" + path + "?overwrite=" + (upload.overwrite ? "true" : "false");
    call.content_type = "application/octet-stream";
    if (upload.content) {
      call.body = *upload.content;
    } else {
      call.body_file = upload.local_file;
    }
    call.transfer = true;
    auto response = execute(call);
    if (!response) return response.error();
    return ok_status();
  }

  std::string host() const override { return config_.host; }
  void set_metrics(Metrics* metrics) override { metrics_ = metrics; }

  void cancel_calls() override {
    {
      std::lock_guard lock(cancel_mu_);
      canceled_ = true;
    }
    cancel_cv_.notify_all();
    http_.cancel_all();
  }

  // One logical call: attempts with backoff until success, a non-transient
  // error, or the retry budget is spent. Returns only 2xx responses.
  Result<http::Response> execute(const Call& call) {
    const auto start = SteadyClock::now();
    const auto budget_end = start + config_.retry_budget;
    bool reauthorized = false;
    for (int attempt = 1;; ++attempt) {
      std::optional<Duration> retry_after;
      Error error;
      auto outcome = attempt_once(call, budget_end);
      if (outcome.ok()) {
        const http::Response& response = *outcome;
        if (response.status >= 200 && response.status < 300) return std::move(*outcome);
        error = error_from_http(response.status, response.reason, response.body);
        if (response.status == 429 || response.status == 503) {
          retry_after = parse_retry_after(response.header("Retry-After"));
        }
        if (response.status == 401 && oauth_ && call.with_auth && !reauthorized) {
          // The cached token may have been revoked: fetch a new one once.
          reauthorized = true;
          oauth_->invalidate();
          spdlog::warn("databricks {} {}: 401, renewing the OAuth token", call.method,
                       path_only(call.path_and_query));
          continue;
        }
      } else {
        error = outcome.error();
      }
      if (!error.transient() || error.code == "canceled") return error;
      counters_->transient_errors.fetch_add(1);
      if (!call.retry) return error;
      const Duration wait =
          retry_after && retry_after->count() > 0 ? *retry_after : backoff_.delay(attempt);
      if (call.transfer && attempt >= kTransferTries) {
        spdlog::warn("databricks {} {}: transfer failed {} times: {} {}", call.method,
                     path_only(call.path_and_query), attempt, error.code, error.message);
        return Error{ErrorKind::kInternal, "transfer_failed",
                     "transfer failed " + std::to_string(attempt) + " times; the last: " +
                         error.code + ": " + error.message};
      }
      if (!call.transfer && SteadyClock::now() + wait >= budget_end) {
        spdlog::warn("databricks {} {}: giving up after {} attempt(s): {} {}", call.method,
                     path_only(call.path_and_query), attempt, error.code, error.message);
        error.message += " (retry budget of " + format_duration(config_.retry_budget) +
                         " spent after " + std::to_string(attempt) + " attempt(s))";
        return error;
      }
      spdlog::warn("databricks {} {}: {} ({}), retry {} in {} ms", call.method,
                   path_only(call.path_and_query), error.code, error.message, attempt,
                   wait.count());
      counters_->retries.fetch_add(1);
      std::unique_lock lock(cancel_mu_);
      if (cancel_cv_.wait_for(lock, wait, [&] { return canceled_; })) {
        return Error{ErrorKind::kTransient, "canceled", error.message + " (canceled: stopping)"};
      }
    }
  }

 private:
  static std::string path_only(const std::string& path_and_query) {
    return path_and_query.substr(0, path_and_query.find('?'));
  }

  Result<http::Response> attempt_once(const Call& call, SteadyClock::time_point budget_end) {
    http::Request request;
    request.method = call.method;
    request.url = config_.host + call.path_and_query;
    request.headers.emplace_back("Accept", "application/json");
    if (call.body) {
      request.headers.emplace_back("Content-Type", call.content_type);
      request.body = *call.body;
    } else if (!call.body_file.empty()) {
      request.headers.emplace_back("Content-Type", call.content_type);
      request.body_file = call.body_file;
    }
    if (!call.basic_auth.empty()) {
      request.headers.emplace_back("Authorization", call.basic_auth);
    } else if (call.with_auth) {
      if (config_.auth == DatabricksAuth::kPat) {
        request.headers.emplace_back("Authorization", "Bearer " + config_.token);
      } else if (oauth_) {
        auto header = oauth_->authorization(counters_);
        if (!header) return header.error();
        request.headers.emplace_back("Authorization", std::move(*header));
      }
    }
    // Each attempt gets the request timeout, cut to what is left of the budget.
    const auto left = std::chrono::duration_cast<Duration>(budget_end - SteadyClock::now());
    request.timeout = config_.request_timeout;
    if (call.transfer) {
      request.idle_timeout = config_.request_timeout;
    } else {
      if (left.count() > 0 && left < request.timeout) request.timeout = left;
      if (request.timeout.count() <= 0) request.timeout = Duration(1);
    }
    counters_->requests.fetch_add(1);
    const auto sent = SteadyClock::now();
    auto response = http_.send(request);
    if (Metrics* metrics = metrics_.load()) {
      const std::chrono::duration<double> took = SteadyClock::now() - sent;
      metrics->observe_databricks_request(
          databricks_endpoint_label(call.path_and_query),
          response ? std::to_string(response->status) : response.error().code, took.count());
    }
    return response;
  }

  Result<json::value> json_call(const std::string& method, const std::string& path,
                                std::optional<json::value> body, bool retry) {
    Call call;
    call.method = method;
    call.path_and_query = path;
    if (body) call.body = json::serialize(*body);
    call.retry = retry;
    auto response = execute(call);
    if (!response) return response.error();
    return parse_json_body(response->body, path_only(path));
  }

  static Result<int64_t> run_id_of(const Result<json::value>& r, std::string_view what) {
    if (!r) return r.error();
    const json::value* id = r->is_object() ? r->get_object().if_contains("run_id") : nullptr;
    auto v = id != nullptr ? as_int64(*id) : std::nullopt;
    if (!v) {
      return Error{ErrorKind::kInvalidInput, "bad_response",
                   std::string(what) + ": response has no integer run_id"};
    }
    return *v;
  }

  friend class OAuthTokenSource;

  const ResolvedDatabricksConfig config_;
  std::shared_ptr<DatabricksClientCounters> counters_;
  std::atomic<Metrics*> metrics_{nullptr};
  Backoff backoff_;
  std::mutex cancel_mu_;
  std::condition_variable cancel_cv_;
  bool canceled_ = false;  // a retry's pause ends at once once set
  http::Client http_;
  std::unique_ptr<OAuthTokenSource> oauth_;
};

Result<std::string> OAuthTokenSource::authorization(
    const std::shared_ptr<DatabricksClientCounters>& counters) {
  std::lock_guard lock(mu_);
  const auto now = SteadyClock::now();
  if (have_ && now < renew_at_) return header_;
  if (have_ && now < expires_ && now < next_try_) return header_;
  auto fetched = fetch();
  if (fetched) {
    counters->token_fetches.fetch_add(1);
    failures_ = 0;
    return header_;
  }
  counters->token_failures.fetch_add(1);
  const Error& e = fetched.error();
  if (have_ && now < expires_) {
    const Duration pause = backoff_.delay(++failures_);
    next_try_ = now + pause;
    spdlog::warn("databricks OAuth token renewal failed ({}: {}); keeping the current token, "
                 "next try in {} ms",
                 e.code, e.message, pause.count());
    return header_;
  }
  spdlog::warn("databricks OAuth token request failed: {}: {}", e.code, e.message);
  return e;
}

Result<std::string> OAuthTokenSource::fetch() {
  Call call;
  call.method = "POST";
  call.path_and_query = "/oidc/v1/token";
  call.body = "grant_type=client_credentials&scope=all-apis";
  call.content_type = "application/x-www-form-urlencoded";
  call.retry = false;  // the caller's loop retries; a nested loop would double the budget
  call.with_auth = false;
  call.basic_auth = basic_;
  auto response = client_.execute(call);
  if (!response) {
    Error e = response.error();
    e.message = "OAuth token request: " + e.message;
    return e;
  }
  auto body = parse_json_body(response->body, "oidc/v1/token");
  if (!body) return body.error();
  const json::object* o = body->if_object();
  const json::value* token = o != nullptr ? o->if_contains("access_token") : nullptr;
  if (token == nullptr || !token->is_string() || token->get_string().empty()) {
    return Error{ErrorKind::kInvalidInput, "bad_token_response",
                 "OAuth token response has no access_token"};
  }
  std::string type = "Bearer";
  if (const json::value* t = o->if_contains("token_type"); t != nullptr && t->is_string() &&
                                                           !t->get_string().empty()) {
    type = std::string(t->get_string());
    if (type == "bearer") type = "Bearer";
  }
  int64_t expires_in = 3600;
  if (const json::value* ei = o->if_contains("expires_in")) {
    if (auto v = as_int64(*ei)) {
      expires_in = *v;
    } else if (ei->is_string()) {
      const std::string s(ei->get_string());
      int64_t parsed = 0;
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), parsed);
      if (ec == std::errc() && p == s.data() + s.size()) expires_in = parsed;
    }
  }
  const auto now = SteadyClock::now();
  const auto ttl = std::chrono::seconds(std::max<int64_t>(expires_in, 1));
  const auto margin = std::min<SteadyClock::duration>(ttl / 2, std::chrono::minutes(20));
  header_ = type + " " + std::string(token->get_string());
  have_ = true;
  expires_ = now + ttl;
  renew_at_ = expires_ - margin;
  next_try_ = {};
  return header_;
}

}  // namespace

Result<std::unique_ptr<DatabricksApi>> make_databricks_api(const DatabricksConfig& config,
                                                           const DatabricksClientOptions& options) {
  auto resolved = resolve_databricks_config(config, options.env);
  if (!resolved) return resolved.error();
  return std::unique_ptr<DatabricksApi>(
      std::make_unique<DatabricksClient>(std::move(*resolved), options));
}

Result<std::unique_ptr<DatabricksApi>> make_databricks_api(const DatabricksConfig& config) {
  return make_databricks_api(config, DatabricksClientOptions{});
}

}  // namespace brickwork
