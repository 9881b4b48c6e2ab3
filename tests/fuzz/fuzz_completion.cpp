// Completion events come from Databricks jobs, or from anyone who can write to the topic.
#include <cstdint>
#include <string_view>

#include "handlers/inbound/messages.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto event = brickwork::parse_completion(bytes);
  if (event && event->workflow_id.empty()) __builtin_trap();  // a valid event names a workflow
  (void)brickwork::is_valid_utf8(bytes);
  return 0;
}
