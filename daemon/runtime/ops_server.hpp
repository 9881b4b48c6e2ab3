#pragma once
// The operator's HTTP endpoint (daemon.metrics_listen): GET /metrics,
// /healthz and /readyz on one listener. What each answers is the caller's
// (a Handler); this part only speaks HTTP. All Boost.Beast code lives in
// ops_server.cpp; this header stays free of it.
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

// Called on the server's own thread, one request at a time, with the
// request's method and path (query removed). Must not block long.
using OpsHandler = std::function<OpsResponse(std::string_view method, std::string_view path)>;

class OpsServer {
 public:
  // Listens on `address` (a host name is resolved; its first address is
  // used). An Error (kInvalidInput) when it cannot: address in use, no such
  // host, not allowed.
  static Result<std::unique_ptr<OpsServer>> start(const ListenAddress& address,
                                                  OpsHandler handler);
  ~OpsServer();  // stops: closes the listener and every connection
  OpsServer(const OpsServer&) = delete;
  OpsServer& operator=(const OpsServer&) = delete;

  // The port listened on (the system's choice when the address gave 0).
  uint16_t port() const;

 private:
  struct Impl;
  explicit OpsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace brickwork
