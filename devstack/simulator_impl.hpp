#pragma once
// Inside the simulator: its state and the methods that change it, shared by
// simulator.cpp (the runs' state machine, the gate every request passes:
// faults and authentication, the token endpoint, the public class) and
// simulator_routes.cpp (the Jobs API routes). Every method runs under `mu`,
// except handle() and timer_loop(), which take it, and emit(), which must
// run without it (the sink may call back).
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "devstack/http_server.hpp"
#include "devstack/simulator.hpp"
#include "devstack/simulator_views.hpp"

namespace brickwork {

namespace simulator_detail {

// A completion event waiting to be handed to the sink, outside the lock.
struct Event {
  std::string key;
  std::string payload;
};

// An int64 request field: an integer, or a string holding one (the real API
// accepts numeric strings for int64 fields); nullopt otherwise.
std::optional<int64_t> request_int64(const json::value* v);
http::ServerResponse json_response(int status, const json::value& body);
// %XX decoded; '+' as a space only in a query string.
std::string percent_decode(std::string_view s, bool plus_is_space);
// A query string or form body, decoded.
std::map<std::string, std::string> parse_query(std::string_view q);
// A Databricks error body {"error_code", "message"}.
http::ServerResponse api_error(int status, const std::string& code, const std::string& message);

}  // namespace simulator_detail

namespace simulator_detail {
// A SQL statement as the simulator keeps it.
struct Statement {
  SimulatedStatement spec;
  std::chrono::steady_clock::time_point ends;
  std::vector<std::string> columns;
  json::array rows;
  int64_t row_limit = -1;  // -1: none
  bool canceled = false;
};
}  // namespace simulator_detail

struct DatabricksSimulator::Impl {
  using SteadyClock = std::chrono::steady_clock;
  using Event = simulator_detail::Event;
  using Run = simulator_detail::Run;

  SimulatorOptions options;

  mutable std::mutex mu;  // everything below
  std::condition_variable wake;
  bool stopping = false;
  SimulatorFaults faults;
  std::mt19937_64 fault_rng;
  std::mt19937_64 token_rng{std::random_device{}()};
  std::map<int64_t, Run> runs;
  std::map<int64_t, int64_t> run_of_task;  // task run id → run id
  // Each run's pending transitions (PENDING→RUNNING, end) by when they are
  // due, so advancing costs the runs that change, not every run in flight
  // (a benchmark keeps 100k runs waiting). Stale entries are harmless:
  // set_state on a run that has nothing due does nothing.
  std::set<std::pair<SteadyClock::time_point, int64_t>> due;
  RunObserver run_observer;
  std::map<std::string, size_t> page_offsets;  // page tokens issued → where the page starts
  std::map<std::string, int64_t> run_by_token;
  std::map<std::string, SteadyClock::time_point> issued_tokens;
  SimulatorStats stats;
  int64_t next_run_id = 1001;
  std::string base_url;

  std::mutex sink_mu;
  CompletionSink sink;

  std::unique_ptr<http::Server> server;
  std::thread timer;

  explicit Impl(SimulatorOptions o)
      : options(std::move(o)),
        faults(options.faults),
        fault_rng(options.faults.seed),
        pace_rng(options.faults.seed) {}

  // The runs' state machine (simulator.cpp).
  void set_state(Run& run, SteadyClock::time_point now, std::vector<Event>& events);
  void finish(Run& run, std::vector<Event>& events);
  std::vector<Event> advance_locked(SteadyClock::time_point now);
  void emit(std::vector<Event> events);
  void timer_loop();
  int64_t create_run(const SimulatedJob& job, int64_t job_id, bool submit, std::string run_name,
                     std::map<std::string, std::string> params, const std::string& token,
                     std::vector<std::string> task_keys);

  // A real workspace's pace (simulator_pace.cpp): the 429 of an API past its
  // rate limit, and how long an answer is held back.
  struct Bucket {
    double tokens = 0;
    SteadyClock::time_point refilled;
  };
  std::map<std::string, Bucket> buckets;  // by API name
  std::mt19937_64 pace_rng;
  std::optional<http::ServerResponse> rate_limit(const std::string& api);
  std::chrono::milliseconds pace_delay(const http::ServerRequest& req, const std::string& api);

  // The gate and the token endpoint (simulator.cpp).
  http::ServerResponse handle(const http::ServerRequest& req);
  std::optional<http::ServerResponse> maybe_fault();
  bool authorized(const http::ServerRequest& req);
  http::ServerResponse route(const http::ServerRequest& req, std::vector<Event>& events);
  http::ServerResponse token(const http::ServerRequest& req);

  // Identity providers (simulator_identity.cpp): their routes, the token
  // exchange at /oidc/v1/token, and the check of Azure's and Google's extra
  // headers on API calls. Tokens they issue for the workspace go into
  // issued_tokens; the others (management, Google access, GCE) into side_tokens.
  std::optional<http::ServerResponse> identity_route(const http::ServerRequest& req,
                                                     const std::string& path,
                                                     const std::map<std::string, std::string>& query);
  http::ServerResponse token_exchange(const std::map<std::string, std::string>& form);
  bool identity_headers_ok(const http::ServerRequest& req);
  // A new opaque token of `kind`, valid for identity.token_ttl.
  std::pair<std::string, int64_t> issue(const std::string& kind, bool for_workspace);
  std::string sign_jwt(const json::object& claims);
  std::optional<json::object> verify_jwt(const std::string& jwt);
  std::map<std::string, std::pair<std::string, SteadyClock::time_point>> side_tokens;
  std::string jwt_key;          // HMAC key of the ID tokens the simulator issues
  std::string google_key_pem;   // the simulated service account's RSA key
  std::string google_public_pem;

  // Jobs API routes (simulator_routes.cpp).
  std::optional<http::ServerResponse> check_token(const json::object& o, std::string& token);
  http::ServerResponse run_now(const json::object& o);
  http::ServerResponse submit(const json::object& o);
  // run_id of a GET: the id, or the 400 the API answers.
  std::variant<int64_t, http::ServerResponse> query_run_id(
      const std::map<std::string, std::string>& query);
  // A page token names where its page starts; only tokens this simulator
  // issued for the same listing are accepted.
  std::string page_token(const std::string& listing, size_t offset);
  std::optional<size_t> page_offset(const std::map<std::string, std::string>& query,
                                    const std::string& listing);
  http::ServerResponse get(const std::map<std::string, std::string>& query, bool v22);
  http::ServerResponse get_output(const std::map<std::string, std::string>& query);
  http::ServerResponse list(const std::map<std::string, std::string>& query);
  http::ServerResponse cancel(const json::object& o);
  // runs/repair (simulator_repair.cpp): the run's failed (or named) tasks
  // run again under the same run id.
  http::ServerResponse repair(const json::object& o);
  int64_t next_repair_id = 734650698524001;
  // Statement Execution API routes (simulator_sql.cpp): path below
  // /api/2.0/sql/statements, authorized already.
  http::ServerResponse sql(const http::ServerRequest& req, const std::string& path);
  http::ServerResponse execute_statement(const json::object& o);
  json::object statement_json(const std::string& id, const simulator_detail::Statement& s,
                              SteadyClock::time_point now) const;
  std::map<std::string, simulator_detail::Statement> statements;
  // Lakebase credentials (simulator_lakebase.cpp): POST database/credentials
  // or postgres/credentials.
  http::ServerResponse lakebase_credentials(const http::ServerRequest& req, bool autoscaling);
  // Files API routes (simulator_files.cpp): path below /api/2.0/fs/files.
  http::ServerResponse files(const http::ServerRequest& req, const std::string& path,
                             const std::map<std::string, std::string>& query);
  int64_t next_statement = 1;
  // Delta Sharing routes (simulator_sharing.cpp): path below
  // /api/2.1/unity-catalog/, authorized already, except the public
  // activation link (public/data_sharing_activation/{code}), which needs no token.
  http::ServerResponse unity_catalog_sharing(const http::ServerRequest& req, const std::string& path,
                                             const std::map<std::string, std::string>& query);
  SimulatedSharing sharing;
  std::mt19937_64 sharing_rng{std::random_device{}()};
};

}  // namespace brickwork
