// wait_for_signal: waits for a `signal` command with a matching name.
//
//   wait_for_signal: {name: approved, timeout: 24h}
//
// The engine resolves it (plan kAwaitSignal): the step waits from the moment
// it starts, so a signal sent right after is not missed. Output: the
// signal's value (an object as it is, nothing as {}, anything else as
// {"value": ...}). `timeout` fails the step with code `timeout`. A signal
// sent before the step waits is kept by the engine, and the step takes the
// oldest kept one of its name as it starts (docs/STEPS.md).
#include "daemon/core/time.hpp"
#include "handlers/steps/action_fields.hpp"

namespace brickwork {
namespace {

class WaitForSignalStep final : public StepType {
 public:
  std::string_view action_key() const override { return "wait_for_signal"; }

  Result<BoundActionPtr> compile(StepDefinition& step) const override {
    const json::object& action = step.action;
    if (auto e = unknown_action_key(action, "wait_for_signal", {"name", "timeout"})) {
      return compile_error(*e);
    }
    step.plan.kind = StepPlan::Kind::kAwaitSignal;
    step.plan.signal = step.name;
    step.plan.timeout_code = "timeout";
    if (const json::value* name = action.if_contains("name")) {
      if (!name->is_string() || name->as_string().empty() || name->as_string().size() > 200 ||
          holds_template(*name)) {
        return compile_error(
            "wait_for_signal.name must be a plain, non-empty name of at most 200 bytes");
      }
      step.plan.signal = std::string(name->as_string());
    }
    if (const json::value* timeout = action.if_contains("timeout")) {
      const auto d =
          timeout->is_string() ? parse_duration(std::string_view(timeout->as_string())) : std::nullopt;
      if (!d || d->count() <= 0) {
        return compile_error("wait_for_signal.timeout must be a duration such as \"24h\"");
      }
      step.timeout = *d;
    }
    return bind_nothing();  // the engine resolves it from the plan
  }

  Result<StepOutcome> execute(const StepContext&, StepServices&) const override {
    return not_performed("wait_for_signal");
  }
};

}  // namespace

std::unique_ptr<StepType> make_wait_for_signal_step() {
  return std::make_unique<WaitForSignalStep>();
}

}  // namespace brickwork
