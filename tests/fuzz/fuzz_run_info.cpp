// Databricks responses are outside bytes too (a proxy, a gateway, a new API version).
#include <cstdint>
#include <string_view>

#include "daemon/databricks/api.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  boost::system::error_code ec;
  boost::json::parse_options options;
  options.max_depth = 64;
  const auto body = boost::json::parse(
      std::string_view(reinterpret_cast<const char*>(data), size), ec, {}, options);
  if (ec) return 0;
  auto run = brickwork::parse_run_info(body);
  if (run) {
    (void)run->terminal();
    (void)run->succeeded();
  }
  return 0;
}
