#include <stdexcept>

#include "handlers/steps/builtin_step_types.hpp"
#include "handlers/steps/step_type.hpp"

namespace brickwork {

#define BRICKWORK_DECLARE_STEP_TYPE(name) std::unique_ptr<StepType> make_##name##_step();
BRICKWORK_BUILTIN_STEP_TYPES(BRICKWORK_DECLARE_STEP_TYPE)
#undef BRICKWORK_DECLARE_STEP_TYPE

StepRegistry StepRegistry::with_builtin_types() {
  StepRegistry r;
#define BRICKWORK_ADD_STEP_TYPE(name) r.add(make_##name##_step());
  BRICKWORK_BUILTIN_STEP_TYPES(BRICKWORK_ADD_STEP_TYPE)
#undef BRICKWORK_ADD_STEP_TYPE
  return r;
}

const StepRegistry& StepRegistry::builtin() {
  static const StepRegistry registry = with_builtin_types();
  return registry;
}

const StepType* StepRegistry::find(std::string_view action_key) const {
  auto it = types_.find(action_key);
  return it == types_.end() ? nullptr : it->second.get();
}

void StepRegistry::add(std::unique_ptr<StepType> type) {
  std::string key(type->action_key());
  if (types_.count(key) != 0) {
    // Two types claiming one key is a programming error, not a runtime condition.
    throw std::logic_error("step type registered twice: " + key);
  }
  types_.emplace(std::move(key), std::move(type));
}

std::vector<std::string> StepRegistry::keys() const {
  std::vector<std::string> out;
  for (const auto& [key, type] : types_) out.push_back(key);
  return out;
}

std::optional<std::string> StepRegistry::compile(StepDefinition& step) const {
  const StepType* type = find(step.type);
  if (type == nullptr) {
    return "step type '" + step.type + "' is not available in this version of brickwork";
  }
  step.plan = StepPlan{};
  return type->compile(step);
}

std::optional<std::string> StepRegistry::check_references(const StepDefinition& step,
                                                          const Config& config) const {
  const StepType* type = find(step.type);
  return type == nullptr ? std::nullopt : type->check_references(step, config);
}

}  // namespace brickwork
