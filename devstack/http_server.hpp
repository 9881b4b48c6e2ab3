#pragma once
// A small plain-HTTP/1.1 server for the Databricks simulator and tests: the
// other end of the client in daemon/databricks/http.hpp, whose Headers it
// shares. All Boost.Beast code lives in http_server.cpp; this header stays
// free of it so that including it costs nothing.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "daemon/core/result.hpp"
#include "daemon/databricks/http.hpp"

namespace brickwork::http {

struct ServerRequest {
  std::string method;
  std::string target;  // path and query as sent
  Headers headers;
  std::string body;

  std::string header(std::string_view name) const { return find_header(headers, name); }
};

struct ServerResponse {
  // A constructor, not an aggregate: {status, headers, body} stays the way to
  // write one while the fields below are left out.
  ServerResponse(int status_ = 200, Headers headers_ = {}, std::string body_ = {})  // NOLINT
      : status(status_), headers(std::move(headers_)), body(std::move(body_)) {}

  int status = 200;
  Headers headers;  // Content-Type defaults to application/json unless given here
  std::string body;
  // Sent this long after the handler returned, on a timer of the I/O thread,
  // so other connections are served meanwhile (a simulated slow API).
  std::chrono::milliseconds delay{0};
  // Called on the I/O thread once the response is written or the write failed
  // (not when the server stops first).
  std::function<void()> on_sent;
};

// Called on the server's I/O thread, one request at a time; must not block
// long: a slow answer is a ServerResponse::delay, never a sleep.
using Handler = std::function<ServerResponse(const ServerRequest&)>;

// A plain-HTTP/1.1 server with keep-alive.
class Server {
 public:
  // Listens on `address`:`port` (0 = a free port chosen by the system).
  static Result<std::unique_ptr<Server>> start(const std::string& address, uint16_t port,
                                               Handler handler);
  ~Server();  // stops
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  uint16_t port() const;
  // Connections accepted so far: with keep-alive, far fewer than requests.
  int64_t connections_accepted() const;
  // Closes the listener and every connection; idempotent.
  void stop();

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace brickwork::http
