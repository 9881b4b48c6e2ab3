// The product's only translation unit with Boost.Beast/Asio templates, so the
// rest of the project compiles quickly (the development tools' HTTP server has
// its own).
#include "daemon/databricks/http.hpp"

#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <atomic>
#include <cctype>
#include <charconv>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "daemon/core/loopback.hpp"
#include "daemon/core/thread_name.hpp"

#ifndef BRICKWORK_VERSION
#define BRICKWORK_VERSION "dev"
#endif

namespace brickwork::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using boost::system::error_code;
using SteadyTime = std::chrono::steady_clock::time_point;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

struct Target {
  bool tls = false;
  std::string host;         // without brackets
  std::string port;
  std::string host_header;  // host[:port] as it goes on the wire
  std::string target;       // path?query
  std::string key;          // pool key
};

Result<Target> parse_target(std::string_view url, bool allow_link_local = false) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) {
    return Error{ErrorKind::kInvalidInput, "bad_url",
                 "not an absolute URL: '" + std::string(url) + "'"};
  }
  Target t;
  const std::string scheme = lower(parsed->scheme());
  if (scheme == "https") {
    t.tls = true;
  } else if (scheme != "http") {
    return Error{ErrorKind::kInvalidInput, "bad_url",
                 "unsupported URL scheme '" + scheme + "' (use https://)"};
  }
  t.host = parsed->host_address();
  if (t.host.empty()) {
    return Error{ErrorKind::kInvalidInput, "bad_url", "URL has no host: '" + std::string(url) + "'"};
  }
  if (!t.tls && !is_loopback_host(t.host) &&
      !(allow_link_local && t.host == "169.254.169.254")) {
    return Error{ErrorKind::kInvalidInput, "insecure_url",
                 "http:// is allowed only for a loopback host (the local simulator); host '" +
                     t.host + "' needs https://"};
  }
  t.port = parsed->has_port() ? std::string(parsed->port()) : (t.tls ? "443" : "80");
  const std::string bracketed =
      t.host.find(':') != std::string::npos ? "[" + t.host + "]" : t.host;
  t.host_header = parsed->has_port() ? bracketed + ":" + t.port : bracketed;
  t.target = std::string(parsed->encoded_path());
  if (t.target.empty()) t.target = "/";
  if (parsed->has_query()) t.target += "?" + std::string(parsed->encoded_query());
  t.key = (t.tls ? "https://" : "http://") + bracketed + ":" + t.port;
  return t;
}

bool is_timeout(const error_code& ec) {
  return ec == beast::error::timeout || ec == asio::error::timed_out;
}

Error transport_error(const error_code& ec, std::string_view stage, const Target& t) {
  const std::string where = std::string(stage) + " " + t.key;
  if (is_timeout(ec)) {
    return Error{ErrorKind::kTransient, "timeout", where + ": deadline passed"};
  }
  if (stage == "handshake" && ec.category() == asio::error::get_ssl_category()) {
    return Error{ErrorKind::kPermanent, "tls_error", where + ": " + ec.message()};
  }
  return Error{ErrorKind::kTransient, "connection_error", where + ": " + ec.message()};
}

// A server closing an idle keep-alive connection shows up like this on reuse.
bool is_stale_connection(const error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == ssl::error::stream_truncated;
}

struct Connection {
  // The connection's own I/O context, run by the thread that sends a
  // request on it for as long as the exchange takes: the request needs no
  // other thread, where handing it to one I/O thread and its response back
  // cost two wake-ups per call (docs/PERFORMANCE.md). Declared first, so it
  // outlives the streams bound to it.
  asio::io_context ioc{1};
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  SteadyTime idle_since{};

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
};

constexpr auto kIdleLimit = std::chrono::seconds(30);
constexpr uint64_t kBodyLimit = 64ull << 20;

// How long each stage of an exchange may take: one deadline for the whole
// exchange, or (a transfer) a fresh `idle` span for every piece read or written.
struct Pace {
  SteadyTime deadline;
  Duration idle{0};

  void arm(beast::tcp_stream& lowest) const {
    if (idle.count() > 0) {
      lowest.expires_after(idle);
    } else {
      lowest.expires_at(deadline);
    }
  }
};

template <class Stream, class Body>
asio::awaitable<error_code> exchange(Stream& stream, beast::tcp_stream& lowest,
                                     beast::flat_buffer& buffer, bhttp::request<Body>& request,
                                     bhttp::response_parser<bhttp::string_body>& parser,
                                     const Pace& pace, std::string& stage) {
  error_code ec;
  stage = "write";
  // Piece by piece, so that a transfer's idle timer restarts with each one.
  bhttp::request_serializer<Body> serializer{request};
  while (!ec && !serializer.is_done()) {
    pace.arm(lowest);
    co_await bhttp::async_write_some(stream, serializer,
                                     asio::redirect_error(asio::use_awaitable, ec));
  }
  if (ec) co_return ec;
  stage = "read";
  while (!ec && !parser.is_done()) {
    pace.arm(lowest);
    co_await bhttp::async_read_some(stream, buffer, parser,
                                    asio::redirect_error(asio::use_awaitable, ec));
  }
  if (ec == ssl::error::stream_truncated && parser.is_header_done() && parser.need_eof()) {
    // A body delimited by end of stream whose peer skipped close_notify: the
    // short read is how it ends, not a failure.
    ec = {};
    parser.put_eof(ec);
  }
  co_return ec;
}

// Runs `work` to its end on `ioc`, on the calling thread.
void run_here(asio::io_context& ioc, asio::awaitable<void> work) {
  std::exception_ptr failure;
  asio::co_spawn(ioc, std::move(work), [&failure](std::exception_ptr e) { failure = e; });
  ioc.restart();
  ioc.run();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace

std::string find_header(const Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return {};
}

Status check_url(std::string_view url) {
  auto t = parse_target(url);
  if (!t) return t.error();
  return ok_status();
}

// ---------------------------------------------------------------- client

// One TLS context for every client of the process, built on first use:
// loading the system's trust store costs tens of milliseconds per context,
// and each client loading its own made up most of a restart (0.1 s for the
// three a daemon builds). Once configured, a context is only read, by any
// number of connections on any thread.
namespace {
ssl::context& shared_tls_context() {
  static ssl::context context = [] {
    ssl::context c{ssl::context::tls_client};
    c.set_default_verify_paths();
    c.set_verify_mode(ssl::verify_peer);
    SSL_CTX_set_min_proto_version(c.native_handle(), TLS1_2_VERSION);
    return c;
  }();
  return context;
}
}  // namespace

void load_tls_trust_store() { shared_tls_context(); }

struct Client::Impl {
  explicit Impl(size_t max_idle_per_host) : max_idle_per_host(max_idle_per_host) {}

  ~Impl() {
    if (resolver_thread.joinable()) {
      resolver_work.reset();
      resolver_ioc.stop();
      resolver_thread.join();
    }
  }

  const size_t max_idle_per_host;
  std::atomic<bool> canceled{false};

  // Idle connections by host, the most recently used last: a connection is
  // taken by one sending thread at a time and given back after its exchange.
  std::mutex idle_mutex;
  std::map<std::string, std::vector<std::unique_ptr<Connection>>> idle;

  // How to stop each stage in progress (a connection's I/O), by a number
  // unique to it. Checked and filled under one mutex with cancel_all(), so
  // a stage that begins after it is stopped at once.
  std::mutex stages_mutex;
  std::map<uint64_t, std::function<void()>> in_progress;
  uint64_t next_stage = 0;

  // Host names are looked up on a thread of their own (getaddrinfo blocks,
  // and a lookup must end at its deadline or at cancel_all()), started at the
  // first one: an address, as the simulator's, needs none.
  std::once_flag resolver_started;
  asio::io_context resolver_ioc{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> resolver_work;
  std::thread resolver_thread;

  // Keeps a way to close `c` in in_progress while it lives; with the client
  // canceled already, closes it at once. Closing is posted to the
  // connection's own context, where its I/O runs.
  class Cancelable {
   public:
    Cancelable(Impl& impl, Connection& c) : impl_(impl) {
      std::function<void()> stop = [&c] {
        asio::post(c.ioc, [&c] { c.lowest().close(); });
      };
      std::lock_guard lock(impl_.stages_mutex);
      if (impl_.canceled) {
        stop();
        return;
      }
      id_ = ++impl_.next_stage;
      impl_.in_progress.emplace(id_, std::move(stop));
    }
    ~Cancelable() {
      std::lock_guard lock(impl_.stages_mutex);
      impl_.in_progress.erase(id_);
    }
    Cancelable(const Cancelable&) = delete;
    Cancelable& operator=(const Cancelable&) = delete;

   private:
    Impl& impl_;
    uint64_t id_ = 0;
  };

  static Error canceled_error(const Target& t) {
    return Error{ErrorKind::kTransient, "canceled", "request to " + t.key + " canceled: stopping"};
  }

  void cancel_all() {
    std::lock_guard lock(stages_mutex);
    canceled = true;
    for (auto& [id, stop] : in_progress) stop();
  }

  std::unique_ptr<Connection> take_idle(const std::string& key) {
    std::vector<std::unique_ptr<Connection>> stale;  // closed outside the lock
    std::lock_guard lock(idle_mutex);
    auto it = idle.find(key);
    if (it == idle.end()) return nullptr;
    const auto now = std::chrono::steady_clock::now();
    while (!it->second.empty()) {
      auto conn = std::move(it->second.back());
      it->second.pop_back();
      if (now - conn->idle_since < kIdleLimit && conn->lowest().socket().is_open()) return conn;
      stale.push_back(std::move(conn));
    }
    return nullptr;
  }

  // Kept for the next request to `key`, or closed when enough are kept. A
  // connection is closed without TLS's close_notify, as one idle too long
  // is: waiting for the server's answer would hold the sending thread.
  void give_back(const std::string& key, std::unique_ptr<Connection> conn) {
    conn->idle_since = std::chrono::steady_clock::now();
    conn->lowest().expires_never();
    std::lock_guard lock(idle_mutex);
    auto& list = idle[key];
    if (list.size() < max_idle_per_host) list.push_back(std::move(conn));
  }

  // The addresses of `t`: its host if it is one, else looked up by the
  // resolver thread within the deadline.
  Result<std::vector<tcp::endpoint>> resolve(const Target& t, SteadyTime deadline) {
    uint16_t port = 0;
    const auto [end, parse_error] =
        std::from_chars(t.port.data(), t.port.data() + t.port.size(), port);
    if (parse_error != std::errc{} || end != t.port.data() + t.port.size()) {
      return Error{ErrorKind::kInvalidInput, "bad_url", "bad port '" + t.port + "'"};
    }
    error_code not_ip;
    const asio::ip::address address = asio::ip::make_address(t.host, not_ip);
    if (!not_ip) return std::vector<tcp::endpoint>{tcp::endpoint(address, port)};

    std::call_once(resolver_started, [this] {
      resolver_work.emplace(resolver_ioc.get_executor());
      resolver_thread = std::thread([this] {
        name_this_thread("bw-http-io");
        resolver_ioc.run();
      });
    });
    using Answer = std::pair<error_code, std::vector<tcp::endpoint>>;
    auto answer = std::make_shared<std::promise<Answer>>();
    std::future<Answer> answered = answer->get_future();
    auto resolver = std::make_shared<tcp::resolver>(resolver_ioc);
    asio::post(resolver_ioc, [resolver, answer, host = t.host, service = t.port] {
      resolver->async_resolve(
          host, service, [resolver, answer](error_code ec, tcp::resolver::results_type found) {
            std::vector<tcp::endpoint> endpoints;
            for (const auto& entry : found) endpoints.push_back(entry.endpoint());
            answer->set_value({ec, std::move(endpoints)});
          });
    });
    // In short waits, so that cancel_all() ends a slow lookup too.
    for (;;) {
      const auto slice = std::min(deadline, std::chrono::steady_clock::now() +
                                                std::chrono::milliseconds(50));
      if (answered.wait_until(slice) == std::future_status::ready) break;
      if (canceled || std::chrono::steady_clock::now() >= deadline) {
        asio::post(resolver_ioc, [resolver] { resolver->cancel(); });
        if (canceled) return canceled_error(t);
        return transport_error(beast::error::timeout, "resolve", t);
      }
    }
    auto [ec, endpoints] = answered.get();
    if (ec) return transport_error(ec, "resolve", t);
    return std::move(endpoints);
  }

  // Connects and, for HTTPS, shakes hands, on the connection's own context.
  static asio::awaitable<void> open(Connection& c, const Target& t,
                                    const std::vector<tcp::endpoint>& endpoints,
                                    SteadyTime deadline, std::optional<Error>& failed) {
    error_code ec;
    auto& lowest = c.lowest();
    lowest.expires_at(deadline);
    co_await lowest.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      failed = transport_error(ec, "connect", t);
      co_return;
    }
    if (!t.tls) co_return;
    error_code not_ip;
    asio::ip::make_address(t.host, not_ip);
    if (not_ip && !SSL_set_tlsext_host_name(c.tls->native_handle(), t.host.c_str())) {
      failed = Error{ErrorKind::kPermanent, "tls_error", "cannot set SNI for " + t.host};
      co_return;
    }
    c.tls->set_verify_mode(ssl::verify_peer);
    c.tls->set_verify_callback(ssl::host_name_verification(t.host));
    lowest.expires_at(deadline);
    co_await c.tls->async_handshake(ssl::stream_base::client,
                                    asio::redirect_error(asio::use_awaitable, ec));
    if (ec) failed = transport_error(ec, "handshake", t);
  }

  Result<std::unique_ptr<Connection>> connect(const Target& t, SteadyTime deadline) {
    auto endpoints = resolve(t, deadline);
    if (!endpoints) return endpoints.error();
    auto conn = std::make_unique<Connection>();
    if (t.tls) {
      conn->tls =
          std::make_unique<beast::ssl_stream<beast::tcp_stream>>(conn->ioc, shared_tls_context());
    } else {
      conn->plain = std::make_unique<beast::tcp_stream>(conn->ioc);
    }
    std::optional<Error> failed;
    {
      const Cancelable cancel_connect(*this, *conn);
      run_here(conn->ioc, open(*conn, t, *endpoints, deadline, failed));
    }
    if (failed) return *failed;
    return conn;
  }

  Result<Response> perform(const Request& request) {
    auto target = parse_target(request.url, request.allow_link_local);
    if (!target) return target.error();
    const auto verb = bhttp::string_to_verb(request.method);
    if (verb == bhttp::verb::unknown) {
      return Error{ErrorKind::kInvalidInput, "bad_method", "unknown HTTP method " + request.method};
    }
    const SteadyTime deadline = std::chrono::steady_clock::now() + request.timeout;
    const Pace pace{deadline, request.idle_timeout};
    Result<Response> response =
        request.body_file.empty() ? perform_with<bhttp::string_body>(*target, verb, request, pace)
                                  : perform_with<bhttp::file_body>(*target, verb, request, pace);
    if (!response && canceled) return canceled_error(*target);
    return response;
  }

  // The request with its body: text as given, or a file opened anew for each
  // try (a file body is consumed by sending it).
  template <class Body>
  static Result<bhttp::request<Body>> build(const Target& t, bhttp::verb verb,
                                            const Request& request) {
    bhttp::request<Body> req{verb, t.target, 11};
    req.set(bhttp::field::host, t.host_header);
    req.set(bhttp::field::user_agent, "brickwork/" BRICKWORK_VERSION);
    for (const auto& [name, value] : request.headers) req.set(name, value);
    if constexpr (std::is_same_v<Body, bhttp::file_body>) {
      error_code ec;
      req.body().open(request.body_file.c_str(), beast::file_mode::scan, ec);
      if (ec) {
        return Error{ErrorKind::kPermanent, "file_error",
                     "cannot read " + request.body_file + ": " + ec.message()};
      }
    } else {
      req.body() = request.body;
    }
    req.keep_alive(true);
    req.prepare_payload();
    return req;
  }

  template <class Body>
  static asio::awaitable<void> exchange_on(Connection& c, bhttp::request<Body>& req,
                                           bhttp::response_parser<bhttp::string_body>& parser,
                                           const Pace& pace, std::string& stage,
                                           error_code& ec) {
    if (c.tls) {
      ec = co_await exchange(*c.tls, c.lowest(), c.buffer, req, parser, pace, stage);
    } else {
      ec = co_await exchange(*c.plain, c.lowest(), c.buffer, req, parser, pace, stage);
    }
  }

  template <class Body>
  Result<Response> perform_with(const Target& t, bhttp::verb verb, const Request& request,
                                const Pace& pace) {
    // At most one retry, and only when a reused idle connection turns out to be
    // closed before any response byte arrived.
    for (int round = 0; round < 2; ++round) {
      auto req = build<Body>(t, verb, request);
      if (!req) return req.error();
      if (canceled) return canceled_error(t);
      auto conn = take_idle(t.key);
      const bool reused = conn != nullptr;
      if (!conn) {
        auto fresh = connect(t, pace.deadline);
        if (!fresh) return fresh.error();
        conn = std::move(*fresh);
      }
      bhttp::response_parser<bhttp::string_body> parser;
      parser.body_limit(kBodyLimit);
      parser.header_limit(64 * 1024);
      if (verb == bhttp::verb::head) parser.skip(true);
      std::string stage;
      error_code ec;
      {
        const Cancelable cancel_exchange(*this, *conn);
        run_here(conn->ioc, exchange_on(*conn, *req, parser, pace, stage, ec));
      }
      if (ec) {
        const bool retry_fresh = reused && !parser.is_header_done() && is_stale_connection(ec);
        conn.reset();
        if (retry_fresh) continue;
        return transport_error(ec, stage, t);
      }
      auto msg = parser.release();
      Response response;
      response.status = static_cast<int>(msg.result_int());
      response.reason = std::string(msg.reason());
      for (const auto& field : msg) {
        response.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
      }
      response.body = std::move(msg.body());
      if (msg.keep_alive()) give_back(t.key, std::move(conn));
      return response;
    }
    return Error{ErrorKind::kTransient, "connection_error", "connection to " + t.key + " lost"};
  }
};

Client::Client(size_t max_idle_per_host) : impl_(std::make_unique<Impl>(max_idle_per_host)) {}
Client::~Client() = default;

Result<Response> Client::send(const Request& request) {
  if (impl_->canceled) {
    return Error{ErrorKind::kTransient, "canceled", "request to " + request.url + " canceled: stopping"};
  }
  try {
    return impl_->perform(request);
  } catch (const std::exception& e) {
    return Error{ErrorKind::kInternal, "http_exception", e.what()};
  }
}

void Client::cancel_all() { impl_->cancel_all(); }

}  // namespace brickwork::http
