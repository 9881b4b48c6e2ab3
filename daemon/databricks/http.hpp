#pragma once
// The HTTP transport under the Databricks client: a small synchronous client
// (HTTPS with verification, or plain HTTP to loopback). All Boost.Beast code
// lives in http.cpp; this header stays free of it so that including it costs
// nothing.
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/core/result.hpp"
#include "daemon/core/time.hpp"

namespace brickwork::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

// Value of the first header named `name` (case-insensitive), or "".
std::string find_header(const Headers& headers, std::string_view name);

struct Request {
  std::string method = "GET";  // GET, POST, PUT, DELETE, HEAD, PATCH
  std::string url;             // absolute: "https://host[:port]/path?query"
  Headers headers;             // Host, Content-Length and User-Agent are set by the client
  std::string body;
  Duration timeout{std::chrono::seconds(60)};  // deadline for the whole exchange, every stage
  // When longer than 0, a transfer: `timeout` bounds only resolve, connect
  // and handshake, and each read or write of the exchange gets this long
  // without progress instead (a large body may take as long as it moves).
  Duration idle_timeout{0};
  // When set, the body is streamed from this file (read in small pieces,
  // never held whole in memory; Content-Length from its size) and `body`
  // must be empty.
  std::string body_file;
  // Plain http:// also to the link-local metadata address 169.254.169.254
  // (Azure IMDS, GCE metadata), which serves nothing else.
  bool allow_link_local = false;
};

struct Response {
  int status = 0;
  std::string reason;  // reason phrase as sent (may be empty)
  Headers headers;
  std::string body;

  std::string header(std::string_view name) const { return find_header(headers, name); }
};

// Checks that `url` is usable: https://, or http:// to a loopback host. The
// error (kInvalidInput, code "insecure_url" / "bad_url") says what is wrong.
Status check_url(std::string_view url);

// Loads the TLS context every client shares (the system's trust store) now
// rather than at the first HTTPS connection: a daemon does it while it waits
// for its partitions.
void load_tls_trust_store();

// A synchronous HTTP/1.1 client. send() runs the request on the calling
// thread, on the I/O context of the connection it uses, until the response
// or error: no other thread takes part (but one that looks host names up,
// started at the first name). Thread-safe: any number of threads may call
// send() at once.
//
// TLS: peer verification against the default trust store (loaded once per
// process, shared by every client), SNI and host-name verification. Idle
// connections are kept per host for reuse (keep-alive), the most recently
// used first; a reused connection the server already closed is replaced
// transparently.
//
// cancel_all() (shutdown) ends every request in flight and refuses new ones,
// each with kTransient "canceled"; it is safe from any thread and returns at
// once.
//
// Errors (as values): kTransient "timeout" (a stage passed the deadline),
// kTransient "connection_error" (resolve/connect/reset/eof), kPermanent
// "tls_error" (handshake or verification failed), kInvalidInput for a bad URL.
// Any HTTP status, including 4xx/5xx, is a Response, not an Error.
class Client {
 public:
  // Up to `max_idle_per_host` idle connections are kept per host: as many as
  // the requests one may send at once, so that none is opened anew (for
  // HTTPS, a handshake) only because another was closed a moment before.
  explicit Client(size_t max_idle_per_host = 16);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Result<Response> send(const Request& request);
  void cancel_all();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace brickwork::http
