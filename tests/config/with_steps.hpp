#pragma once
// The configuration tests load workflows with the real step types.
#include "config/config.hpp"
#include "handlers/steps/step_type.hpp"

namespace brickwork {

inline LoadOptions with_steps(LoadOptions options = {}) {
  options.steps = &StepRegistry::builtin();
  return options;
}

inline bool text_has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace brickwork
