// librdkafka's mock brokers accept connections with Nagle's algorithm on.
// When a broker answers two requests of one connection back to back (two
// produce requests, a fetch and an offset commit), the second answer waits
// in the kernel until the client acknowledges the first, and the client
// delays that acknowledgement by up to 40 ms on Linux: every such pair costs
// ~40 ms on loopback that no real broker charges (Kafka's brokers set
// TCP_NODELAY on every connection they accept). This accept() takes
// precedence over libc's for every library in the process, as
// tsan_c11_threads.cpp's definitions do, and turns Nagle off on connections
// accepted by a mock broker's listener; any other accept is only forwarded.
#include "devstack/mock_kafka_no_delay.hpp"

#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <vector>

namespace brickwork::devstack_detail {
namespace {

std::mutex g_ports_mutex;
std::vector<uint16_t> g_ports;  // of the mock brokers' listeners

}  // namespace

bool is_mock_listener(int listener) {
  {
    // The daemon's process never starts a mock broker: nothing more to ask.
    std::lock_guard lock(g_ports_mutex);
    if (g_ports.empty()) return false;
  }
  sockaddr_storage address{};
  socklen_t size = sizeof address;
  if (getsockname(listener, reinterpret_cast<sockaddr*>(&address), &size) != 0) return false;
  uint16_t port = 0;
  if (address.ss_family == AF_INET) {
    port = ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
  } else if (address.ss_family == AF_INET6) {
    port = ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
  } else {
    return false;
  }
  std::lock_guard lock(g_ports_mutex);
  return std::find(g_ports.begin(), g_ports.end(), port) != g_ports.end();
}

void answer_at_once_on(uint16_t port) {
  std::lock_guard lock(g_ports_mutex);
  g_ports.push_back(port);
}

void forget_listener(uint16_t port) {
  std::lock_guard lock(g_ports_mutex);
  if (auto it = std::find(g_ports.begin(), g_ports.end(), port); it != g_ports.end()) {
    g_ports.erase(it);
  }
}

}  // namespace brickwork::devstack_detail

extern "C" int accept(int listener, sockaddr* address, socklen_t* size) {
  using Accept = int (*)(int, sockaddr*, socklen_t*);
  // The next definition: libc's, or a sanitizer's interceptor in front of it.
  static const auto next = reinterpret_cast<Accept>(dlsym(RTLD_NEXT, "accept"));
  if (next == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  const int connection = next(listener, address, size);
  if (connection >= 0 && brickwork::devstack_detail::is_mock_listener(listener)) {
    const int on = 1;
    (void)setsockopt(connection, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  }
  return connection;
}
