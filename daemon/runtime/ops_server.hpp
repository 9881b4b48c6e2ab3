#pragma once
// The operator's HTTP endpoint (daemon.metrics_listen): GET /metrics,
// /healthz and /readyz on one listener. What each answers is the caller's
// (a Handler); this part only speaks HTTP. All Boost.Beast code lives in
// ops_server.cpp; this header stays free of it.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "daemon/core/listen_address.hpp"
#include "daemon/core/result.hpp"

namespace brickwork {

struct OpsResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// What one listener holds at most, and how long it waits. A health check must
// get through whatever else connects: idle connections are closed after
// `request_timeout`, and at `max_connections` the one that has waited longest
// for a request is closed for a new one (while every connection is mid-request,
// new ones wait in the listen backlog). A failed accept (EMFILE: out of file
// descriptors) leaves the listener readable, so the next attempt waits a pause
// (doubling from `accept_pause` to `accept_pause_max`) instead of spinning.
struct OpsServerLimits {
  size_t max_connections = 64;
  std::chrono::milliseconds request_timeout{10'000};   // to read a request, idle time included
  std::chrono::milliseconds response_timeout{10'000};  // to write an answer
  std::chrono::milliseconds accept_pause{100};
  std::chrono::milliseconds accept_pause_max{1'000};
};

// Called on the server's own thread, one request at a time, with the
// request's method and path (query removed). Must not block long.
using OpsHandler = std::function<OpsResponse(std::string_view method, std::string_view path)>;

class OpsServer {
 public:
  // Listens on `address` (a host name is resolved; its first address is
  // used). An Error (kInvalidInput) when it cannot: address in use, no such
  // host, not allowed.
  static Result<std::unique_ptr<OpsServer>> start(const ListenAddress& address, OpsHandler handler,
                                                  OpsServerLimits limits = {});
  ~OpsServer();  // stops: closes the listener and every connection
  OpsServer(const OpsServer&) = delete;
  OpsServer& operator=(const OpsServer&) = delete;

  // The port listened on (the system's choice when the address gave 0).
  uint16_t port() const;
  // Connections open now, and accepts that failed since the start.
  size_t connections() const;
  uint64_t failed_accepts() const;

 private:
  struct Impl;
  explicit OpsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace brickwork
