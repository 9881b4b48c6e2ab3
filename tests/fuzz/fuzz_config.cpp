// Configuration files are written by people: any text must give a config or a message.
#include <cstdint>
#include <string>

#include "config/config.hpp"
#include "config/templates.hpp"
#include "handlers/steps/builtin_step_types.hpp"

namespace {

// The loader's side of the step seam without the step types (which pull in
// the HTTP client): every action key is known and every action accepted, so
// the fuzzer reaches everything past the action check.
class AnyActionCatalog final : public brickwork::StepCatalog {
 public:
  std::vector<std::string> action_keys() const override {
#define BRICKWORK_STEP_TYPE_KEY(name) #name,
    return {BRICKWORK_BUILTIN_STEP_TYPES(BRICKWORK_STEP_TYPE_KEY)};
#undef BRICKWORK_STEP_TYPE_KEY
  }
  std::optional<std::string> compile(brickwork::StepDefinition&) const override {
    return std::nullopt;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const AnyActionCatalog catalog;
  const std::string text(reinterpret_cast<const char*>(data), size);
  brickwork::LoadOptions options;
  options.steps = &catalog;
  auto config = brickwork::load_config_from_string(text, "fuzz.yaml", options);
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
