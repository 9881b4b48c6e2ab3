#include <cassert>
#include <stdexcept>

#include "handlers/steps/run_job.hpp"
#include "handlers/steps/step_type.hpp"

namespace brickwork {

// Every built-in step type, in one place a reader can step through. Adding a
// type: its own file, its test, and one line here.
const StepRegistry& StepRegistry::builtin() {
  static const StepRegistry registry = [] {
    StepRegistry r;
    r.add(make_run_job_step());
    return r;
  }();
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

}  // namespace brickwork
