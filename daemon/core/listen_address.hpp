#pragma once
// "HOST:PORT" as daemon.metrics_listen gives it.
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/core/result.hpp"

namespace brickwork {

struct ListenAddress {
  std::string host;   // an IPv4 or IPv6 literal (without brackets) or a host name
  uint16_t port = 0;  // 0: a free port chosen by the system (tests)
};

// Reads "127.0.0.1:9464", "0.0.0.0:9464", "[::1]:9464", "localhost:9464".
// An Error (kInvalidInput) says what is wrong: no port, a port that is not
// 0..65535, an empty host, an IPv6 literal without brackets, a host name with
// characters no name has.
Result<ListenAddress> parse_listen_address(std::string_view text);

}  // namespace brickwork
