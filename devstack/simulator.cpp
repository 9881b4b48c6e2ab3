// The simulator's runs, the gate every request passes and the public class;
// the Jobs API routes are in simulator_routes.cpp. Runs are evaluated lazily
// (each request advances them to "now") and by a timer thread that wakes at
// the next due change, so events go out on time even with nobody polling.
#include <spdlog/spdlog.h>

#include <charconv>

#include "daemon/core/base64.hpp"
#include "daemon/core/json_limits.hpp"
#include "devstack/simulator_impl.hpp"

namespace brickwork {

namespace simulator_detail {

std::string percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+' && plus_is_space) {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size()) {
      int v = 0;
      auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (ec == std::errc() && p == s.data() + i + 3) {
        out += static_cast<char>(v);
        i += 2;
      } else {
        out += s[i];
      }
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace simulator_detail

namespace {

using SteadyClock = std::chrono::steady_clock;
using simulator_detail::percent_decode;
using simulator_detail::api_error;
using simulator_detail::Event;
using simulator_detail::json_response;
using simulator_detail::Run;
using simulator_detail::parse_query;


}  // namespace

namespace simulator_detail {
std::map<std::string, std::string> parse_query(std::string_view q) {
  std::map<std::string, std::string> out;
  while (!q.empty()) {
    const auto amp = q.find('&');
    const std::string_view part = q.substr(0, amp);
    const auto eq = part.find('=');
    out[percent_decode(part.substr(0, eq), true)] =
        eq == std::string_view::npos ? std::string() : percent_decode(part.substr(eq + 1), true);
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return out;
}

std::optional<int64_t> request_int64(const json::value* v) {
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->get_uint64());
  if (v->is_string()) {
    const auto s = v->get_string();
    int64_t out = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec == std::errc() && p == s.data() + s.size()) return out;
  }
  return std::nullopt;
}

http::ServerResponse json_response(int status, const json::value& body) {
  return http::ServerResponse{status, {}, json::serialize(body)};
}

http::ServerResponse api_error(int status, const std::string& code, const std::string& message) {
  return json_response(status, json::object{{"error_code", code}, {"message", message}});
}

}  // namespace simulator_detail

// ---------------------------------------------------------------- runs

void DatabricksSimulator::Impl::set_state(Run& run, SteadyClock::time_point now,
                                          std::vector<Event>& events) {
  if (run.done) return;
  if (now >= run.ends_at) {
    finish(run, events);
  } else if (run.view.cancel_requested) {
    run.view.life_cycle_state = "TERMINATING";
    run.state_message = "Run is being cancelled.";
  } else if (now >= run.running_at) {
    run.view.life_cycle_state = "RUNNING";
    run.state_message = "In run";
  }
}

// With task_failures, each task that ran in this round gets its own result
// (a run of a task fails while it has failed fewer times than asked), and
// the run's is FAILED if any task's is; otherwise the job's outcome.
static std::string settle_tasks(Run& run) {
  if (run.job.task_failures.empty()) return run.job.outcome;
  bool failed = false;
  for (SimulatedTaskRun& task : run.view.tasks) {
    if (task.result_state.empty()) {
      const auto limit = run.job.task_failures.find(task.task_key);
      const bool fails = limit != run.job.task_failures.end() &&
                         run.task_runs[task.task_key] <= limit->second;
      task.result_state = fails ? "FAILED" : "SUCCESS";
    }
    failed = failed || task.result_state != "SUCCESS";
  }
  return failed ? "FAILED" : "SUCCESS";
}

void DatabricksSimulator::Impl::finish(Run& run, std::vector<Event>& events) {
  run.done = true;
  run.end_ms = to_epoch_ms(now_ms());
  const std::string outcome = run.view.cancel_requested ? "CANCELED" : settle_tasks(run);
  run.view.life_cycle_state = "TERMINATED";
  run.view.result_state = outcome;
  if (run.view.cancel_requested) {
    run.term_code = "USER_CANCELED";
    run.term_type = "SUCCESS";
    run.state_message = "Run cancelled.";
  } else if (outcome == "SUCCESS") {
    run.term_code = "SUCCESS";
    run.term_type = "SUCCESS";
    run.state_message = run.job.message;
  } else if (outcome == "CANCELED") {
    run.term_code = "CANCELED";
    run.term_type = "SUCCESS";
    run.state_message = run.job.message.empty() ? "Run cancelled." : run.job.message;
  } else if (outcome == "INTERNAL_ERROR") {
    run.view.life_cycle_state = "INTERNAL_ERROR";
    run.view.result_state = "FAILED";
    run.term_code = "INTERNAL_ERROR";
    run.term_type = "INTERNAL_ERROR";
    run.state_message = run.job.message.empty() ? "Internal error (simulated)." : run.job.message;
  } else {  // FAILED, TIMEDOUT
    run.term_code = "RUN_EXECUTION_ERROR";
    run.term_type = "CLIENT_ERROR";
    run.state_message = !run.job.message.empty() ? run.job.message
                        : outcome == "TIMEDOUT"  ? "Run timed out (simulated)."
                                                 : "Task failed (simulated).";
  }
  const auto& p = run.view.parameters;
  const auto wf = p.find("brickwork_workflow_id");
  const auto step = p.find("brickwork_step");
  const auto token = p.find("brickwork_token");
  if (run.job.emit_event && !run.view.cancel_requested && outcome != "INTERNAL_ERROR" &&
      wf != p.end() && step != p.end() && token != p.end()) {
    json::object event{{"type", "job_completed"}, {"workflow_id", wf->second},
                       {"step", step->second},    {"token", token->second},
                       {"state", outcome},        {"run_id", run.view.run_id},
                       {"output", run.job.output}};
    if (!run.state_message.empty()) event["message"] = run.state_message;
    events.push_back(Event{wf->second, json::serialize(event)});
    run.view.event_emitted = true;
    ++stats.events_emitted;
  }
}

std::vector<Event> DatabricksSimulator::Impl::advance_locked(SteadyClock::time_point now) {
  std::vector<Event> events;
  while (!due.empty() && due.begin()->first <= now) {
    const int64_t id = due.begin()->second;
    due.erase(due.begin());
    set_state(runs.at(id), now, events);
  }
  return events;
}

void DatabricksSimulator::Impl::emit(std::vector<Event> events) {
  if (events.empty()) return;
  CompletionSink s;
  {
    std::lock_guard lock(sink_mu);
    s = sink;
  }
  if (!s) return;
  for (const auto& e : events) {
    try {
      s(e.key, e.payload);
    } catch (const std::exception& ex) {
      spdlog::warn("simulator: completion sink failed: {}", ex.what());
    }
  }
}

void DatabricksSimulator::Impl::timer_loop() {
  std::unique_lock lock(mu);
  while (!stopping) {
    auto events = advance_locked(SteadyClock::now());
    if (!events.empty()) {
      lock.unlock();
      emit(std::move(events));
      lock.lock();
      continue;
    }
    if (!due.empty()) {
      // A copy: wait_until reads it after releasing the lock, while a request
      // may erase the entry it came from.
      const auto next = due.begin()->first;
      wake.wait_until(lock, next);
    } else {
      wake.wait(lock);
    }
  }
}

int64_t DatabricksSimulator::Impl::create_run(const SimulatedJob& job, int64_t job_id, bool submit,
                                              std::string run_name,
                                              std::map<std::string, std::string> params,
                                              const std::string& token,
                                              std::vector<std::string> task_keys) {
  Run run;
  run.view.run_id = next_run_id++;
  if (task_keys.empty()) {
    for (int32_t i = 1; i <= std::max<int32_t>(job.tasks, 1); ++i) {
      task_keys.push_back("task_" + std::to_string(i));
    }
  }
  for (auto& key : task_keys) {
    ++run.task_runs[key];
    run.view.tasks.push_back(SimulatedTaskRun{next_run_id++, std::move(key), ""});
    run_of_task[run.view.tasks.back().run_id] = run.view.run_id;
    run.view.original_task_run_ids.push_back(run.view.tasks.back().run_id);
  }
  run.view.job_id = job_id;
  run.view.life_cycle_state = "PENDING";
  run.view.idempotency_token = token;
  run.view.parameters = std::move(params);
  run.submit = submit;
  run.run_name = run_name.empty() ? job.name : std::move(run_name);
  run.job = job;
  const auto now = SteadyClock::now();
  run.running_at = now + std::min(options.pending_for, job.duration);
  run.ends_at = now + job.duration;
  run.start_ms = to_epoch_ms(now_ms());
  run.state_message = "Waiting for cluster";
  const int64_t id = run.view.run_id;
  due.emplace(run.running_at, id);
  due.emplace(run.ends_at, id);
  const Run& created = runs.emplace(id, std::move(run)).first->second;
  ++stats.runs_created;
  if (run_observer) run_observer(created.view);
  if (!token.empty()) {
    run_by_token[token] = id;
    ++stats.runs_per_token[token];
  }
  wake.notify_all();
  return id;
}

// ---------------------------------------------------------------- gate

http::ServerResponse DatabricksSimulator::Impl::handle(const http::ServerRequest& req) {
  std::vector<Event> events;
  http::ServerResponse response;
  {
    std::lock_guard lock(mu);
    ++stats.requests;
    const std::string api = simulator_api_name(req.target.substr(0, req.target.find('?')));
    SimulatedApiCounts& counts = stats.apis[api];
    ++counts.calls;
    auto limited = rate_limit(api);
    response = limited ? std::move(*limited) : route(req, events);
    if (response.status == 429) ++counts.answered_429;
    response.delay = pace_delay(req, api);
    stats.max_in_flight = std::max(stats.max_in_flight, ++stats.in_flight);
  }
  response.on_sent = [this] {
    std::lock_guard lock(mu);
    --stats.in_flight;
  };
  emit(std::move(events));
  return response;
}

std::optional<http::ServerResponse> DatabricksSimulator::Impl::maybe_fault() {
  if (faults.error_rate <= 0.0 || faults.statuses.empty()) return std::nullopt;
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  if (coin(fault_rng) >= faults.error_rate) return std::nullopt;
  std::uniform_int_distribution<size_t> pick(0, faults.statuses.size() - 1);
  const int status = faults.statuses[pick(fault_rng)];
  ++stats.faults_injected;
  ++stats.faults_by_status[status];
  http::ServerResponse r;
  if (status == 429) {
    r = api_error(429, "REQUEST_LIMIT_EXCEEDED", "Too many requests (simulated fault).");
  } else if (status == 503) {
    r = api_error(503, "TEMPORARILY_UNAVAILABLE",
                  "The service is temporarily unavailable (simulated fault).");
  } else if (status == 502) {
    r = http::ServerResponse{502,
                             {{"Content-Type", "text/html"}},
                             "<html><body><pre>Bad Gateway (simulated fault)</pre></body></html>"};
  } else {
    r = api_error(status, status >= 500 ? "INTERNAL_ERROR" : "BAD_REQUEST",
                  "Simulated fault " + std::to_string(status) + ".");
  }
  if ((status == 429 || status == 503) && faults.retry_after) {
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(*faults.retry_after);
    r.headers.emplace_back("Retry-After", std::to_string(secs.count()));
  }
  return r;
}

bool DatabricksSimulator::Impl::authorized(const http::ServerRequest& req) {
  const bool required = !options.bearer_token.empty() || !options.oauth_client_id.empty() ||
                        options.identity.enabled;
  if (!required) return true;
  if (!identity_headers_ok(req)) return false;
  const std::string auth = req.header("Authorization");
  if (auth.rfind("Bearer ", 0) != 0) return false;
  const std::string token = auth.substr(7);
  if (!options.bearer_token.empty() && token == options.bearer_token) return true;
  auto it = issued_tokens.find(token);
  return it != issued_tokens.end() && SteadyClock::now() < it->second;
}

http::ServerResponse DatabricksSimulator::Impl::route(const http::ServerRequest& req,
                                                      std::vector<Event>& events) {
  if (auto fault = maybe_fault()) return *fault;
  events = advance_locked(SteadyClock::now());

  const auto qpos = req.target.find('?');
  const std::string path = req.target.substr(0, qpos);
  const auto query =
      parse_query(qpos == std::string::npos ? std::string_view()
                                            : std::string_view(req.target).substr(qpos + 1));

  if (auto identity = identity_route(req, path, query)) return *identity;
  if (path == "/oidc/v1/token") {
    if (req.method != "POST") {
      return api_error(404, "ENDPOINT_NOT_FOUND",
                       "No API found for '" + req.method + " " + path + "'");
    }
    return token(req);
  }
  if ((path == "/api/2.0/database/credentials" || path == "/api/2.0/postgres/credentials") &&
      req.method == "POST") {
    if (!authorized(req)) {
      ++stats.unauthorized;
      return api_error(401, "UNAUTHENTICATED", "Invalid access token.");
    }
    return lakebase_credentials(req, path == "/api/2.0/postgres/credentials");
  }
  if (path.rfind("/api/2.0/fs/files/", 0) == 0) {
    if (!authorized(req)) {
      ++stats.unauthorized;
      return api_error(401, "UNAUTHENTICATED", "Invalid access token.");
    }
    return files(req, path, query);
  }
  if (path.rfind("/api/2.1/unity-catalog/public/data_sharing_activation/", 0) == 0) {
    return unity_catalog_sharing(req, path, query);  // public: the link is the credential
  }
  if (path.rfind("/api/2.1/unity-catalog/shares", 0) == 0 ||
      path.rfind("/api/2.1/unity-catalog/recipients", 0) == 0) {
    if (!authorized(req)) {
      ++stats.unauthorized;
      return api_error(401, "UNAUTHENTICATED", "Invalid access token.");
    }
    return unity_catalog_sharing(req, path, query);
  }
  if (path.rfind("/api/2.0/sql/statements", 0) == 0) {
    if (!authorized(req)) {
      ++stats.unauthorized;
      return api_error(401, "UNAUTHENTICATED", "Invalid access token.");
    }
    return sql(req, path);
  }
  std::string op;
  for (const char* prefix : {"/api/2.1/jobs/", "/api/2.2/jobs/"}) {
    if (path.rfind(prefix, 0) == 0) op = path.substr(std::string_view(prefix).size());
  }
  const bool known =
      (op == "run-now" && req.method == "POST") || (op == "runs/submit" && req.method == "POST") ||
      (op == "runs/get" && req.method == "GET") ||
      (op == "runs/get-output" && req.method == "GET") || (op == "list" && req.method == "GET") ||
      (op == "runs/cancel" && req.method == "POST") || (op == "runs/repair" && req.method == "POST");
  if (!known) {
    return api_error(404, "ENDPOINT_NOT_FOUND",
                     "No API found for '" + req.method + " " + path + "'");
  }
  if (!authorized(req)) {
    ++stats.unauthorized;
    return api_error(401, "UNAUTHENTICATED", "Invalid access token.");
  }
  const bool v22 = path.rfind("/api/2.2/", 0) == 0;
  if (op == "runs/get") return get(query, v22);
  if (op == "runs/get-output") return get_output(query);
  if (op == "list") return list(query);

  json::value body;
  if (!req.body.empty()) {
    boost::system::error_code ec;
    body = parse_json(req.body, ec);
    if (ec) {
      return api_error(400, "MALFORMED_REQUEST",
                       "Invalid JSON given in the body of the request - failed to parse");
    }
  } else {
    body = json::object();
  }
  if (!body.is_object()) {
    return api_error(400, "MALFORMED_REQUEST",
                     "Invalid JSON given in the body of the request - expected a map");
  }
  const json::object& o = body.get_object();
  if (op == "run-now") return run_now(o);
  if (op == "runs/submit") return submit(o);
  if (op == "runs/repair") return repair(o);
  return cancel(o);
}

http::ServerResponse DatabricksSimulator::Impl::token(const http::ServerRequest& req) {
  const auto form = parse_query(req.body);
  auto gt = form.find("grant_type");
  if (gt != form.end() && gt->second == "urn:ietf:params:oauth:grant-type:token-exchange") {
    return token_exchange(form);
  }
  if (gt == form.end() || gt->second != "client_credentials") {
    return json_response(
        400, json::object{{"error", "unsupported_grant_type"},
                          {"error_description", "grant_type must be client_credentials"}});
  }
  if (!options.oauth_client_id.empty()) {
    const std::string expected =
        "Basic " + base64(options.oauth_client_id + ":" + options.oauth_client_secret);
    if (req.header("Authorization") != expected) {
      ++stats.unauthorized;
      return json_response(401,
                           json::object{{"error", "invalid_client"},
                                        {"error_description", "Client authentication failed"}});
    }
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token = "dsim-";
  for (int i = 0; i < 32; ++i) token += kHex[token_rng() % 16];
  const auto ttl = std::max<int64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(options.oauth_token_ttl).count(), 1);
  issued_tokens[token] = SteadyClock::now() + std::chrono::seconds(ttl);
  ++stats.token_calls;
  return json_response(200, json::object{{"access_token", token},
                                         {"token_type", "Bearer"},
                                         {"expires_in", ttl},
                                         {"scope", "all-apis"}});
}

DatabricksSimulator::DatabricksSimulator(SimulatorOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

DatabricksSimulator::~DatabricksSimulator() { stop(); }

Status DatabricksSimulator::start() {
  if (impl_->server) return ok_status();
  auto server = http::Server::start(
      impl_->options.address, impl_->options.port,
      [impl = impl_.get()](const http::ServerRequest& r) { return impl->handle(r); });
  if (!server) return server.error();
  {
    std::lock_guard lock(impl_->mu);
    const std::string host = impl_->options.address.find(':') != std::string::npos
                                 ? "[" + impl_->options.address + "]"
                                 : impl_->options.address;
    impl_->base_url = "http://" + host + ":" + std::to_string((*server)->port());
    impl_->stopping = false;
  }
  impl_->server = std::move(*server);
  impl_->timer = std::thread([impl = impl_.get()] { impl->timer_loop(); });
  return ok_status();
}

void DatabricksSimulator::stop() {
  if (impl_->server) impl_->server->stop();
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->timer.joinable()) impl_->timer.join();
  impl_->server.reset();
}

uint16_t DatabricksSimulator::port() const { return impl_->server ? impl_->server->port() : 0; }

std::string DatabricksSimulator::base_url() const {
  std::lock_guard lock(impl_->mu);
  return impl_->base_url;
}

void DatabricksSimulator::set_sink(CompletionSink sink) {
  std::lock_guard lock(impl_->sink_mu);
  impl_->sink = std::move(sink);
}

void DatabricksSimulator::set_run_observer(RunObserver observer) {
  std::lock_guard lock(impl_->mu);
  impl_->run_observer = std::move(observer);
}

void DatabricksSimulator::set_never_answer(std::set<std::string> apis) {
  std::lock_guard lock(impl_->mu);
  impl_->options.pace.never_answer = std::move(apis);
}

void DatabricksSimulator::set_faults(SimulatorFaults faults) {
  std::lock_guard lock(impl_->mu);
  impl_->fault_rng.seed(faults.seed);
  impl_->faults = std::move(faults);
}

void DatabricksSimulator::set_job(int64_t job_id, SimulatedJob job) {
  std::lock_guard lock(impl_->mu);
  impl_->options.jobs[job_id] = std::move(job);
}

SimulatorStats DatabricksSimulator::stats() const {
  std::lock_guard lock(impl_->mu);
  SimulatorStats s = impl_->stats;
  if (impl_->server) s.connections = impl_->server->connections_accepted();
  for (const auto& [id, run] : impl_->runs) s.runs.emplace(id, run.view);
  return s;
}

std::optional<SimulatedRun> DatabricksSimulator::run(int64_t run_id) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->runs.find(run_id);
  if (it == impl_->runs.end()) return std::nullopt;
  return it->second.view;
}

SimulatedSharing DatabricksSimulator::sharing() const {
  std::lock_guard lock(impl_->mu);
  return impl_->sharing;
}

void DatabricksSimulator::edit_sharing(const std::function<void(SimulatedSharing&)>& edit) {
  std::lock_guard lock(impl_->mu);
  edit(impl_->sharing);
}

}  // namespace brickwork
