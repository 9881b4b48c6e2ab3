// Commands come from any producer on the commands topic.
#include <cstdint>
#include <string_view>

#include "handlers/inbound/messages.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto command = brickwork::parse_command(bytes);
  if (!command) {
    // The dead-letter record must be valid JSON whatever the bytes were.
    const std::string record = brickwork::dead_letter_json(
        command.error().code, command.error().message, "t", 0, 0, std::string(bytes), bytes,
        brickwork::from_epoch_ms(0));
    boost::system::error_code ec;
    (void)boost::json::parse(record, ec);
    if (ec) __builtin_trap();
    (void)brickwork::extract_id(bytes);
  }
  return 0;
}
