// Databricks responses are outside bytes too (a proxy, a gateway, a new API version):
// runs/get and runs/get-output bodies.
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
  // The same bytes as a runs/get-output body: its notebook result is parsed
  // a second time, as JSON text inside a JSON string.
  if (body.is_object()) (void)brickwork::output_from_run_output(body.get_object());
  return 0;
}
