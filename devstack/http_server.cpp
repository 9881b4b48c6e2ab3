// The development tools' only translation unit with Boost.Beast/Asio
// templates; it is kept out of bw_devstack's unity file so that it compiles in
// parallel with it.
#include "devstack/http_server.hpp"

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>

namespace brickwork::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using boost::system::error_code;

struct Server::Impl {
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  Handler handler;
  std::thread thread;
  std::atomic<bool> stopped{false};
  std::atomic<int64_t> accepted{0};
  uint16_t port = 0;

  ~Impl() { stop(); }

  void stop() {
    if (stopped.exchange(true)) return;
    ioc.stop();
    if (thread.joinable()) thread.join();
    error_code ignored;
    acceptor.close(ignored);
  }

  static asio::awaitable<void> serve(Impl* impl, tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    error_code ec;
    for (;;) {
      stream.expires_after(std::chrono::seconds(120));
      bhttp::request_parser<bhttp::string_body> parser;
      // Large enough for the uploads the Files API simulation receives.
      parser.body_limit(256u << 20);
      co_await bhttp::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      auto msg = parser.release();
      ServerRequest request;
      request.method = std::string(msg.method_string());
      request.target = std::string(msg.target());
      for (const auto& field : msg) {
        request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
      }
      request.body = std::move(msg.body());
      ServerResponse out;
      try {
        out = impl->handler(request);
      } catch (const std::exception&) {
        out = ServerResponse{500, {}, R"({"error_code":"INTERNAL_ERROR","message":"handler failed"})"};
      }
      bhttp::response<bhttp::string_body> res;
      res.version(msg.version());
      res.result(static_cast<unsigned>(out.status));
      res.set(bhttp::field::server, "brickwork-simulator");
      bool has_type = false;
      for (const auto& [name, value] : out.headers) {
        res.set(name, value);
        has_type = has_type || beast::iequals(name, "content-type");
      }
      if (!has_type) res.set(bhttp::field::content_type, "application/json");
      res.body() = std::move(out.body);
      res.keep_alive(msg.keep_alive());
      res.prepare_payload();
      if (out.delay.count() > 0) {
        stream.expires_never();  // the read's deadline must not run out during the pause
        asio::steady_timer pause(impl->ioc, out.delay);
        co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      stream.expires_after(std::chrono::seconds(30));
      co_await bhttp::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
      if (out.on_sent) out.on_sent();
      if (ec || !res.keep_alive()) break;
    }
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  static asio::awaitable<void> listen(Impl* impl) {
    for (;;) {
      error_code ec;
      tcp::socket socket = co_await impl->acceptor.async_accept(
          asio::redirect_error(asio::use_awaitable, ec));
      if (ec == asio::error::operation_aborted || !impl->acceptor.is_open()) co_return;
      if (ec) continue;
      ++impl->accepted;
      asio::co_spawn(impl->ioc, serve(impl, std::move(socket)), asio::detached);
    }
  }
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;

Result<std::unique_ptr<Server>> Server::start(const std::string& address, uint16_t port,
                                              Handler handler) {
  auto impl = std::make_unique<Impl>();
  impl->handler = std::move(handler);
  error_code ec;
  const auto addr = asio::ip::make_address(address, ec);
  if (ec) return Error{ErrorKind::kInvalidInput, "bad_address", "bad listen address " + address};
  const tcp::endpoint endpoint(addr, port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Error{ErrorKind::kTransient, "listen_failed",
                 "cannot listen on " + address + ":" + std::to_string(port) + ": " + ec.message()};
  }
  impl->port = impl->acceptor.local_endpoint().port();
  asio::co_spawn(impl->ioc, Impl::listen(impl.get()), asio::detached);
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->ioc.run(); });
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

uint16_t Server::port() const { return impl_->port; }

int64_t Server::connections_accepted() const { return impl_->accepted.load(); }

void Server::stop() { impl_->stop(); }

}  // namespace brickwork::http
