#include <stdexcept>

#include "handlers/steps/builtin_step_types.hpp"
#include "handlers/steps/databricks_run.hpp"
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
  if (!step.workspace.empty() && !type->calls_databricks()) {
    return "workspace applies only to steps that call Databricks; " + step.type + " does not";
  }
  step.plan = StepPlan{};
  step.bound = nullptr;
  auto bound = type->compile(step);
  if (!bound) return bound.error().message;
  step.bound = std::move(*bound);
  return std::nullopt;
}

// ------------------------------------------------------------ the seam

Result<StepOutcome> StepType::poll(const StepContext& context, StepServices&) const {
  return Error{ErrorKind::kInternal, "not_polled",
               std::string(action_key()) + " never waits, so it is never polled (step " +
                   context.definition.name + ")"};
}

Status StepType::cancel(const StepContext&, StepServices&) const { return ok_status(); }

BoundActionPtr bind_nothing() {
  static const BoundActionPtr kNothing = std::make_shared<const BoundAction>();
  return kNothing;
}

Error compile_error(std::string message) {
  return Error{ErrorKind::kInvalidInput, "invalid_step", std::move(message)};
}

namespace {

// The definition's bound action; one read back from the store is bound
// again (its plan and defaults are already in the definition: only the
// action is taken from a copy).
Result<BoundActionPtr> bound_action(const StepType& type, const StepDefinition& definition) {
  if (definition.bound) return definition.bound;
  StepDefinition copy = definition;
  auto bound = type.compile(copy);
  if (!bound) {
    return Error{ErrorKind::kPermanent, "invalid_step",
                 "step " + definition.name + ": " + bound.error().message};
  }
  return bound;
}

// Binds and checks what every call of `type` needs; the bound action lives
// in `hold` while the call runs.
Status prepare_call(const StepType& type, StepContext& context, const StepServices& services,
                    BoundActionPtr& hold) {
  if (type.calls_databricks() && services.databricks == nullptr) {
    // A stored definition may name a workspace this daemon no longer has.
    return no_workspace(type.action_key(), context.definition.workspace);
  }
  auto bound = bound_action(type, context.definition);
  if (!bound) return bound.error();
  hold = std::move(*bound);
  context.bound = hold.get();
  return ok_status();
}

}  // namespace

Result<StepOutcome> execute_step(const StepType& type, StepContext context, StepServices& services) {
  BoundActionPtr hold;
  if (Status ready = prepare_call(type, context, services, hold); !ready) return ready.error();
  return type.execute(context, services);
}

Result<StepOutcome> poll_step(const StepType& type, StepContext context, StepServices& services) {
  BoundActionPtr hold;
  if (Status ready = prepare_call(type, context, services, hold); !ready) return ready.error();
  return type.poll(context, services);
}

Status cancel_step(const StepType& type, StepContext context, StepServices& services) {
  BoundActionPtr hold;
  if (!prepare_call(type, context, services, hold)) return ok_status();
  return type.cancel(context, services);
}

std::optional<std::string> StepRegistry::check_references(const StepDefinition& step,
                                                          const Config& config) const {
  const StepType* type = find(step.type);
  if (type == nullptr) return std::nullopt;
  if (type->calls_databricks()) {
    if (auto problem = workspace_problem(config, step.workspace)) return "workspace: " + *problem;
  }
  return type->check_references(step, config);
}

}  // namespace brickwork
