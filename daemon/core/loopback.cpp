#include "daemon/core/loopback.hpp"

#include <arpa/inet.h>

#include <cctype>
#include <cstring>
#include <string>

namespace brickwork {

bool is_loopback_host(std::string_view host) {
  std::string h(host);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  for (char& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (h == "localhost") return true;
  unsigned char addr[16];
  if (::inet_pton(AF_INET, h.c_str(), addr) == 1) return addr[0] == 127;
  if (::inet_pton(AF_INET6, h.c_str(), addr) == 1) {
    static constexpr unsigned char kLoopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                                     0, 0, 0, 0, 0, 0, 0, 1};
    return std::memcmp(addr, kLoopback6, sizeof addr) == 0;
  }
  return false;
}

}  // namespace brickwork
