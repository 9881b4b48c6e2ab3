// The Databricks REST client: auth header, retries by kind of error, and the
// jobs calls. Transport (and every Beast template) is in http.cpp.
#include "daemon/databricks/client.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <random>
#include <thread>

#include "daemon/core/base64.hpp"
#include "daemon/core/metrics.hpp"
#include "daemon/databricks/http.hpp"
#include "daemon/databricks/parsing.hpp"
#include "daemon/databricks/rate_limits.hpp"

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

class DatabricksClient final : public DatabricksApi {
 public:
  DatabricksClient(ResolvedDatabricksConfig config, const DatabricksClientOptions& options)
      : config_(std::move(config)),
        workspace_(options.workspace.empty() ? kDefaultWorkspace : options.workspace),
        log_name_(workspace_ == kDefaultWorkspace ? "databricks"
                                                  : "databricks (workspace " + workspace_ + ")"),
        counters_(options.counters ? options.counters : std::make_shared<DatabricksClientCounters>()),
        backoff_(options.backoff_initial, options.backoff_max),
        limiter_(config_.limits),
        http_(config_.max_concurrent_requests) {
    if (const CredentialsStrategy* s = find_credentials_strategy(config_.auth_type)) {
      AuthContext ctx;
      ctx.host = config_.host;
      ctx.auth_type = config_.auth_type;
      ctx.attributes = config_.attributes;
      ctx.env = config_.env;
      ctx.http = &http_;
      ctx.timeout = std::min<Duration>(config_.request_timeout, std::chrono::seconds(30));
      ctx.counters = counters_;
      ctx.observe = [this](const std::string& endpoint, const std::string& code, double seconds) {
        if (Metrics* metrics = metrics_.load()) {
          metrics->observe_databricks_request(workspace_, endpoint, code, seconds);
        }
      };
      credentials_ = s->make(ctx);
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
  std::string auth_type() const override { return config_.auth_type; }
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
    const std::string api = databricks_api_name(call.path_and_query);
    const CallPriority priority = priority_of(call.method, api, call.path_and_query);
    bool reauthorized = false;
    std::optional<Error> previous;  // the last attempt's error, once retried
    for (int attempt = 1;; ++attempt) {
      if (Status turn = wait_for_turn(api, priority, budget_end); !turn) return turn.error();
      std::optional<Duration> retry_after;
      Error error;
      bool paused_by_limit = false;
      auto outcome = attempt_once(call, budget_end);
      if (outcome.ok()) {
        const http::Response& response = *outcome;
        if (response.status == 429 || response.status == 503) {
          retry_after = parse_retry_after(response.header("Retry-After"));
        }
        if (response.status == 429) {
          // Every call of this API waits out the pause, not only this one.
          paused_by_limit = note_throttled(api, retry_after.value_or(backoff_.delay(attempt)));
        } else if (limiter_.succeeded(api)) {
          if (Metrics* metrics = metrics_.load()) {
            metrics->set_databricks_limit_rate(workspace_, api, limiter_.rate(api));
          }
        }
        if (response.status >= 200 && response.status < 300) return std::move(*outcome);
        error = error_from_http(response.status, response.reason, response.body);
        if (response.status == 401 && credentials_ && config_.auth_type != "pat" &&
            !reauthorized) {
          // The cached token may have been revoked: fetch a new one once.
          reauthorized = true;
          credentials_->invalidate();
          spdlog::warn("{} {} {}: 401, renewing the {} token", log_name_, call.method,
                       path_only(call.path_and_query), config_.auth_type);
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
        spdlog::warn("{} {} {}: transfer failed {} times: {} {}", log_name_, call.method,
                     path_only(call.path_and_query), attempt, error.code, error.message);
        return Error{ErrorKind::kInternal, "transfer_failed",
                     "transfer failed " + std::to_string(attempt) + " times; the last: " +
                         error.code + ": " + error.message};
      }
      if (!call.transfer && SteadyClock::now() + wait >= budget_end) {
        // An attempt the budget's end cut short says less than what failed
        // the attempts before it (a refused connection, a 503).
        if (error.code == "timeout" && previous && previous->code != "timeout" &&
            SteadyClock::now() >= budget_end) {
          error = *previous;
        }
        spdlog::warn("{} {} {}: giving up after {} attempt(s): {} {}", log_name_, call.method,
                     path_only(call.path_and_query), attempt, error.code, error.message);
        error.message += " (retry budget of " + format_duration(config_.retry_budget) +
                         " spent after " + std::to_string(attempt) + " attempt(s))";
        return error;
      }
      // A long wait holds no call thread: the effect is given back to
      // Postgres with a later due time instead (after a 429, the API's pause
      // decides, in wait_for_turn).
      if (!paused_by_limit && wait > ApiLimiter::kMaxWorkWait) {
        error.message += " (tried again later: the wait of " + format_duration(wait) +
                         " is longer than a call waits)";
        return error;
      }
      spdlog::warn("{} {} {}: {} ({}), retry {} in {} ms", log_name_, call.method,
                   path_only(call.path_and_query), error.code, error.message, attempt,
                   wait.count());
      counters_->retries.fetch_add(1);
      previous = error;
      if (!paused_by_limit && !sleep_unless_canceled(wait)) {
        return Error{ErrorKind::kTransient, "canceled", error.message + " (canceled: stopping)"};
      }
    }
  }

 private:
  static std::string path_only(const std::string& path_and_query) {
    return path_and_query.substr(0, path_and_query.find('?'));
  }

  // Waits until the API's client-side limit lets the call go. A call that
  // would wait long (ApiLimiter::kMaxWorkWait, kMaxPollWait for a poll) is
  // refused (transient "throttled"): it holds no call thread while it waits,
  // its effect is given back to Postgres and tried again later.
  Status wait_for_turn(const std::string& api, CallPriority priority,
                       SteadyClock::time_point budget_end) {
    for (;;) {
      const ApiLimiter::Grant grant = limiter_.reserve(api, priority);
      Metrics* metrics = metrics_.load();
      if (!grant.granted) {
        if (priority == CallPriority::kPoll) {
          counters_->polls_deferred.fetch_add(1);
          if (metrics != nullptr) metrics->count_databricks_poll_deferred(workspace_, api);
        }
        return Error{ErrorKind::kTransient, "throttled",
                     api + ": the client-side limit of " + format_rate(limiter_.rate(api)) +
                         " is busy for " + std::to_string(grant.wait.count()) +
                         " ms; the call is tried again later"};
      }
      if (grant.wait.count() <= 0) return ok_status();
      if (SteadyClock::now() + grant.wait >= budget_end) {
        return Error{ErrorKind::kTransient, "throttled",
                     api + ": waiting for its turn under the client-side limit of " +
                         format_rate(limiter_.rate(api)) + " would pass the retry budget of " +
                         format_duration(config_.retry_budget)};
      }
      if (!sleep_unless_canceled(grant.wait)) {
        return Error{ErrorKind::kTransient, "canceled",
                     api + ": waiting for its turn (canceled: stopping)"};
      }
      counters_->limit_wait_ms.fetch_add(grant.wait.count());
      if (metrics != nullptr) {
        metrics->observe_databricks_limit_wait(workspace_, api,
                                               std::chrono::duration<double>(grant.wait).count());
      }
      // A 429 meanwhile lowered the rate: this turn was counted at the old one.
      if (!limiter_.paused_since(api, grant)) return ok_status();
    }
  }

  // False when the client was canceled (stopping) before `wait` passed.
  bool sleep_unless_canceled(Duration wait) {
    std::unique_lock lock(cancel_mu_);
    return !cancel_cv_.wait_for(lock, wait, [&] { return canceled_; });
  }

  // A 429: the API's limit is lowered and paused. False when the API has no
  // client-side limit (then the retry sleeps the pause itself).
  bool note_throttled(const std::string& api, Duration pause) {
    counters_->throttled.fetch_add(1);
    const bool limited = limiter_.rate(api) > 0;
    limiter_.throttled(api, pause);
    if (Metrics* metrics = metrics_.load()) {
      metrics->count_databricks_throttled(workspace_, api);
      if (limited) metrics->set_databricks_limit_rate(workspace_, api, limiter_.rate(api));
    }
    return limited;
  }

  static std::string format_rate(double rate) {
    char text[32];
    std::snprintf(text, sizeof text, "%.3g/s", rate);
    return text;
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
    if (credentials_) {
      auto headers = credentials_->headers();
      if (!headers) return headers.error();
      for (auto& h : *headers) request.headers.push_back(std::move(h));
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
          workspace_,
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

  const ResolvedDatabricksConfig config_;
  const std::string workspace_;  // the metrics' workspace label
  const std::string log_name_;   // how log lines name the client: the workspace unless default
  std::shared_ptr<DatabricksClientCounters> counters_;
  std::atomic<Metrics*> metrics_{nullptr};
  Backoff backoff_;
  ApiLimiter limiter_;
  std::mutex cancel_mu_;
  std::condition_variable cancel_cv_;
  bool canceled_ = false;  // a retry's pause ends at once once set
  http::Client http_;
  std::unique_ptr<CredentialsProvider> credentials_;  // none for auth_type "none"
};

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
