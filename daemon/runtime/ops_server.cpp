// bw_runtime's only translation unit with Boost.Beast/Asio templates; kept
// out of its unity file so that it compiles in parallel with it.
#include "daemon/runtime/ops_server.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <list>
#include <thread>

#include "daemon/core/thread_name.hpp"

namespace brickwork {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using boost::system::error_code;

struct OpsServer::Impl {
  // One accepted connection, owned by its serve() coroutine.
  struct Connection {
    explicit Connection(tcp::socket socket) : stream(std::move(socket)) {}
    beast::tcp_stream stream;
    bool counted = true;   // in `open` until released
    bool waiting = false;  // for a request; then `waiting_at` is its place in Impl::waiting
    std::list<Connection*>::iterator waiting_at;
  };

  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  // Cancelled when a connection is released or starts waiting for a request:
  // wakes a listener that waits for room at the cap.
  asio::steady_timer room{ioc};
  asio::steady_timer accept_pause{ioc};
  OpsHandler handler;
  OpsServerLimits limits;
  std::thread thread;
  uint16_t port = 0;
  std::atomic<size_t> open{0};
  std::atomic<uint64_t> failed_accepts{0};
  std::list<Connection*> waiting;  // oldest first; touched only on the server's thread
  std::chrono::steady_clock::time_point last_accept_warning;

  ~Impl() {
    ioc.stop();
    if (thread.joinable()) thread.join();
    error_code ignored;
    acceptor.close(ignored);
  }

  OpsResponse answer(const bhttp::request<bhttp::string_body>& request) {
    const std::string_view target = request.target();
    const std::string_view path = target.substr(0, target.find('?'));
    try {
      return handler(request.method_string(), path);
    } catch (const std::exception& e) {
      return OpsResponse{500, "text/plain; charset=utf-8", std::string("internal error: ") + e.what() + "\n"};
    }
  }

  void start_waiting(Connection& c) {
    c.waiting_at = waiting.insert(waiting.end(), &c);
    c.waiting = true;
    room.cancel();
  }
  void stop_waiting(Connection& c) {
    if (!c.waiting) return;
    waiting.erase(c.waiting_at);
    c.waiting = false;
  }
  void release(Connection& c) {
    stop_waiting(c);
    if (!c.counted) return;
    c.counted = false;
    --open;
    room.cancel();
  }
  // Closes the connection that has waited longest for a request (its read
  // ends with an error), making room for a new one. False if none waits.
  bool close_longest_waiting() {
    if (waiting.empty()) return false;
    Connection& c = *waiting.front();
    release(c);
    c.stream.close();
    return true;
  }

  // A scraper keeps its connection; each stage has a deadline, so an idle or
  // slow client cannot hold a connection for ever.
  static asio::awaitable<void> serve(Impl* impl, tcp::socket socket) {
    Connection c(std::move(socket));
    beast::flat_buffer buffer;
    error_code ec;
    for (;;) {
      c.stream.expires_after(impl->limits.request_timeout);
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(64 * 1024);  // no endpoint takes a body
      impl->start_waiting(c);
      co_await bhttp::async_read(c.stream, buffer, parser,
                                 asio::redirect_error(asio::use_awaitable, ec));
      impl->stop_waiting(c);
      if (ec || !c.counted) break;
      const auto request = parser.release();
      const OpsResponse out = impl->answer(request);
      bhttp::response<bhttp::string_body> response;
      response.version(request.version());
      response.result(static_cast<unsigned>(out.status));
      response.set(bhttp::field::server, "brickwork");
      response.set(bhttp::field::content_type, out.content_type);
      response.set(bhttp::field::cache_control, "no-store");
      if (request.method() != bhttp::verb::head) response.body() = out.body;
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
      c.stream.expires_after(impl->limits.response_timeout);
      co_await bhttp::async_write(c.stream, response,
                                  asio::redirect_error(asio::use_awaitable, ec));
      if (ec || !response.keep_alive()) break;
    }
    if (c.counted) c.stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    impl->release(c);
  }

  // Until there is room for one more connection: below the cap, or one
  // waiting for a request that can be closed for it.
  asio::awaitable<void> wait_for_room() {
    while (open >= limits.max_connections && waiting.empty() && acceptor.is_open()) {
      room.expires_at(asio::steady_timer::time_point::max());
      error_code ec;
      co_await room.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  // After a failed accept: the listening socket is still readable, so
  // accepting again at once would spin. Out of descriptors, an idle
  // connection gives its own back for the client waiting.
  asio::awaitable<void> pause_after(const error_code& failure, std::chrono::milliseconds pause) {
    const uint64_t failed = ++failed_accepts;
    const auto now = std::chrono::steady_clock::now();
    if (failed == 1 || now - last_accept_warning >= std::chrono::minutes(1)) {
      last_accept_warning = now;  // one line a minute at most, however often it fails
      spdlog::warn("ops listener: cannot accept a connection ({}; {} failed so far); "
                   "pausing {} ms before the next attempt",
                   failure.message(), failed, pause.count());
    }
    if (failure == asio::error::no_descriptors ||
        failure == boost::system::errc::too_many_files_open_in_system) {
      close_longest_waiting();
    }
    accept_pause.expires_after(pause);
    error_code ec;
    co_await accept_pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }

  static asio::awaitable<void> listen(Impl* impl) {
    std::chrono::milliseconds pause = impl->limits.accept_pause;
    for (;;) {
      co_await impl->wait_for_room();
      error_code ec;
      tcp::socket socket =
          co_await impl->acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec == asio::error::operation_aborted || !impl->acceptor.is_open()) co_return;
      if (ec) {
        co_await impl->pause_after(ec, pause);
        pause = std::min(pause * 2, impl->limits.accept_pause_max);
        continue;
      }
      pause = impl->limits.accept_pause;
      // At the cap: the longest idle connection gives way, or (all of them
      // mid-request since the wait) the new one is refused.
      if (impl->open >= impl->limits.max_connections && !impl->close_longest_waiting()) {
        socket.close(ec);
        continue;
      }
      ++impl->open;
      asio::co_spawn(impl->ioc, serve(impl, std::move(socket)), asio::detached);
    }
  }
};

OpsServer::OpsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OpsServer::~OpsServer() = default;

Result<std::unique_ptr<OpsServer>> OpsServer::start(const ListenAddress& address,
                                                    OpsHandler handler, OpsServerLimits limits) {
  auto impl = std::make_unique<Impl>();
  impl->handler = std::move(handler);
  impl->limits = limits;
  const std::string where = address.host + ":" + std::to_string(address.port);
  error_code ec;
  tcp::resolver resolver(impl->ioc);
  const auto resolved = resolver.resolve(address.host, std::to_string(address.port),
                                         tcp::resolver::passive | tcp::resolver::numeric_service,
                                         ec);
  if (ec || resolved.empty()) {
    return Error{ErrorKind::kInvalidInput, "listen_failed",
                 "daemon.metrics_listen: cannot resolve " + where + ": " + ec.message()};
  }
  const tcp::endpoint endpoint = resolved.begin()->endpoint();
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Error{ErrorKind::kInvalidInput, "listen_failed",
                 "daemon.metrics_listen: cannot listen on " + where + ": " + ec.message()};
  }
  impl->port = impl->acceptor.local_endpoint().port();
  asio::co_spawn(impl->ioc, Impl::listen(impl.get()), asio::detached);
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] {
    name_this_thread("bw-ops-http");
    raw->ioc.run();
  });
  return std::unique_ptr<OpsServer>(new OpsServer(std::move(impl)));
}

uint16_t OpsServer::port() const { return impl_->port; }
size_t OpsServer::connections() const { return impl_->open; }
uint64_t OpsServer::failed_accepts() const { return impl_->failed_accepts; }

}  // namespace brickwork
