// sleep: a durable timer.
//
//   sleep: {for: 10m}                          # from the moment the step started
//   sleep: {until: "{{ input.not_before }}"}   # an RFC 3339 time, templated
//
// Output: {}. The wake-up is an effect row with a due time, so it fires after
// any restart; a time in the past wakes at once.
#include "daemon/core/time.hpp"
#include "handlers/steps/action_fields.hpp"

namespace brickwork {
namespace {

Error invalid_time(std::string message) {
  return Error{ErrorKind::kPermanent, "invalid_time", std::move(message)};
}

// sleep's action, checked: one of the two.
struct SleepAction final : BoundAction {
  std::optional<Duration> for_duration;
  json::value until;  // an RFC 3339 time, or a template of one
};

class SleepStep final : public StepType {
 public:
  std::string_view action_key() const override { return "sleep"; }

  Result<BoundActionPtr> compile(StepDefinition& step) const override {
    const json::object& action = step.action;
    if (auto e = unknown_action_key(action, "sleep", {"for", "until"})) return compile_error(*e);
    const json::value* for_value = action.if_contains("for");
    const json::value* until = action.if_contains("until");
    if ((for_value == nullptr) == (until == nullptr)) {
      return compile_error(
          "sleep needs exactly one of for (a duration such as 10m) or until (an RFC 3339 time)");
    }
    auto bound = std::make_shared<SleepAction>();
    if (for_value != nullptr) {
      const auto d = for_value->is_string() ? parse_duration(std::string_view(for_value->as_string()))
                                            : std::nullopt;
      if (!d || d->count() < 0) return compile_error("sleep.for must be a duration such as \"30s\" or \"10m\"");
      bound->for_duration = *d;
    } else if (!until->is_string()) {
      return compile_error(
          "sleep.until must be an RFC 3339 time (e.g. \"2026-12-01T08:00:00Z\") or a template");
    } else if (!holds_template(*until) && !parse_iso8601(std::string_view(until->as_string()))) {
      return compile_error("sleep.until must be an RFC 3339 time such as \"2026-12-01T08:00:00Z\"");
    } else {
      bound->until = *until;
    }
    return BoundActionPtr(std::move(bound));
  }

  Result<StepOutcome> execute(const StepContext& context, StepServices&) const override {
    const auto& action = context.action<SleepAction>();
    StepOutcome outcome;
    outcome.kind = StepOutcome::Kind::kWaitUntil;
    if (action.for_duration) {
      // From the start of the attempt, so performing this again after a
      // crash wakes at the same moment.
      const TimePoint started = context.step.started_at.value_or(now_ms());
      outcome.wake_at = started + *action.for_duration;
    } else {
      auto until = render_value(action.until, context);
      if (!until) return until.error();
      const auto at = until->is_string() ? parse_iso8601(std::string_view(until->as_string()))
                                         : std::nullopt;
      if (!at) {
        return invalid_time("sleep.until rendered to " + json::serialize(*until).substr(0, 80) +
                            ", not an RFC 3339 time");
      }
      outcome.wake_at = *at;
    }
    outcome.handle = json::object{{"wake_at", format_iso8601(outcome.wake_at)}};
    return outcome;
  }
};

}  // namespace

std::unique_ptr<StepType> make_sleep_step() { return std::make_unique<SleepStep>(); }

}  // namespace brickwork
