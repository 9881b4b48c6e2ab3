// Configuration files are written by people: any text must give a config or a message.
#include <cstdint>
#include <string>

#include "config/config.hpp"
#include "config/templates.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = brickwork::load_config_from_string(text, "fuzz.yaml");
  if (!config && config.error().message.empty()) __builtin_trap();
  if (config) {
    for (const auto& [name, def] : config->workflows) {
      for (const auto& step : def.steps) {
        (void)brickwork::render_templates(boost::json::value(step.action), {});
      }
    }
  }
  return 0;
}
