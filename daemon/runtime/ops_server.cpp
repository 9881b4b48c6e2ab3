// bw_runtime's only translation unit with Boost.Beast/Asio templates; kept
// out of its unity file so that it compiles in parallel with it.
#include "daemon/runtime/ops_server.hpp"

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>

namespace brickwork {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using boost::system::error_code;

struct OpsServer::Impl {
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  OpsHandler handler;
  std::thread thread;
  uint16_t port = 0;

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

  // A scraper keeps its connection; each stage has a deadline, so an idle or
  // slow client cannot hold a connection for ever.
  static asio::awaitable<void> serve(Impl* impl, tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    error_code ec;
    for (;;) {
      stream.expires_after(std::chrono::seconds(60));
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(64 * 1024);  // no endpoint takes a body
      co_await bhttp::async_read(stream, buffer, parser,
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
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
      stream.expires_after(std::chrono::seconds(30));
      co_await bhttp::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
      if (ec || !response.keep_alive()) break;
    }
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  static asio::awaitable<void> listen(Impl* impl) {
    for (;;) {
      error_code ec;
      tcp::socket socket =
          co_await impl->acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec == asio::error::operation_aborted || !impl->acceptor.is_open()) co_return;
      if (ec) continue;  // e.g. out of file descriptors for a moment
      asio::co_spawn(impl->ioc, serve(impl, std::move(socket)), asio::detached);
    }
  }
};

OpsServer::OpsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OpsServer::~OpsServer() = default;

Result<std::unique_ptr<OpsServer>> OpsServer::start(const ListenAddress& address,
                                                    OpsHandler handler) {
  auto impl = std::make_unique<Impl>();
  impl->handler = std::move(handler);
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
  impl->thread = std::thread([raw] { raw->ioc.run(); });
  return std::unique_ptr<OpsServer>(new OpsServer(std::move(impl)));
}

uint16_t OpsServer::port() const { return impl_->port; }

}  // namespace brickwork
