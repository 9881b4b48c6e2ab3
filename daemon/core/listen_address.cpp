#include "daemon/core/listen_address.hpp"

#include <arpa/inet.h>

#include <charconv>

namespace brickwork {

Result<ListenAddress> parse_listen_address(std::string_view text) {
  auto invalid = [&](const std::string& why) -> Error {
    return Error{ErrorKind::kInvalidInput, "bad_listen_address",
                 "\"" + std::string(text) + "\" is not HOST:PORT: " + why};
  };
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return invalid("no port");
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  uint32_t port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return invalid("the port must be a number from 0 to 65535");
  }
  ListenAddress address;
  address.port = static_cast<uint16_t>(port);
  if (host.starts_with('[')) {
    if (!host.ends_with(']')) return invalid("an IPv6 address needs a closing ]");
    host = host.substr(1, host.size() - 2);
    in6_addr v6{};
    if (inet_pton(AF_INET6, std::string(host).c_str(), &v6) != 1) {
      return invalid("not an IPv6 address");
    }
    address.host = std::string(host);
    return address;
  }
  if (host.empty()) return invalid("no host (use 0.0.0.0 for every interface)");
  if (host.find(':') != std::string_view::npos) return invalid("write an IPv6 address as [addr]");
  if (host.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
      std::string_view::npos) {
    return invalid("not an IP address or host name");
  }
  address.host = std::string(host);
  return address;
}

}  // namespace brickwork
