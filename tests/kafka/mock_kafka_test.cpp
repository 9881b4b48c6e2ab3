// The mock brokers answer as a real broker does: without Nagle's algorithm
// on the connections they accept (devstack/mock_kafka_no_delay.cpp), and
// other listeners in the process are left as they are.
#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "devstack/mock_kafka.hpp"
#include "devstack/mock_kafka_no_delay.hpp"

namespace brickwork {
namespace {

using namespace std::chrono_literals;

uint16_t local_port(int fd) {
  sockaddr_in address{};
  socklen_t size = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  return ntohs(address.sin_port);
}

std::optional<uint16_t> peer_port(int fd) {
  sockaddr_in address{};
  socklen_t size = sizeof address;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) return std::nullopt;
  if (address.sin_family != AF_INET) return std::nullopt;
  return ntohs(address.sin_port);
}

bool no_delay(int fd) {
  int on = 0;
  socklen_t size = sizeof on;
  EXPECT_EQ(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &size), 0);
  return on != 0;
}

// A TCP connection from this process to 127.0.0.1:port.
int connect_to(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  return fd;
}

// The socket of this process whose local port is `port` and whose peer is
// `peer`: the server's end of a loopback connection.
std::optional<int> server_end(uint16_t port, uint16_t peer) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  std::optional<int> found;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    const int fd = std::stoi(entry->d_name);
    if (fd == dirfd(dir)) continue;
    if (peer_port(fd) == peer && local_port(fd) == port) found = fd;
  }
  closedir(dir);
  return found;
}

uint16_t first_port(const std::string& bootstraps) {
  const std::string first = bootstraps.substr(0, bootstraps.find(','));
  return static_cast<uint16_t>(std::stoi(first.substr(first.rfind(':') + 1)));
}

TEST(MockKafka, ABrokersConnectionsAnswerWithoutNagle) {
  auto cluster = MockKafkaCluster::create(1);
  ASSERT_TRUE(cluster) << cluster.error().message;
  const uint16_t port = first_port((*cluster)->bootstrap_servers());
  const int client = connect_to(port);
  std::optional<int> server;
  for (auto until = std::chrono::steady_clock::now() + 10s;
       !server && std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(10ms)) {
    server = server_end(port, local_port(client));  // the mock's thread accepts it
  }
  ASSERT_TRUE(server) << "the mock broker did not accept the connection";
  EXPECT_TRUE(no_delay(*server));
  close(client);
}

TEST(MockKafka, OtherListenersKeepTheirSocketOptions) {
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  const uint16_t port = local_port(listener);
  EXPECT_FALSE(devstack_detail::is_mock_listener(listener));

  const int plain_client = connect_to(port);
  const int plain = accept(listener, nullptr, nullptr);
  ASSERT_GE(plain, 0);
  EXPECT_FALSE(no_delay(plain));

  // The same accept() on a port registered as a mock broker's.
  devstack_detail::answer_at_once_on(port);
  const int mock_client = connect_to(port);
  const int answered = accept(listener, nullptr, nullptr);
  ASSERT_GE(answered, 0);
  EXPECT_TRUE(no_delay(answered));
  devstack_detail::forget_listener(port);

  for (int fd : {plain_client, plain, mock_client, answered, listener}) close(fd);
}

}  // namespace
}  // namespace brickwork
