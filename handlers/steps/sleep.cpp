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

class SleepStep final : public StepType {
 public:
  std::string_view action_key() const override { return "sleep"; }

  std::optional<std::string> compile(StepDefinition& step) const override {
    const json::object& action = step.action;
    if (auto e = unknown_action_key(action, "sleep", {"for", "until"})) return e;
    const json::value* for_value = action.if_contains("for");
    const json::value* until = action.if_contains("until");
    if ((for_value == nullptr) == (until == nullptr)) {
      return "sleep needs exactly one of for (a duration such as 10m) or until (an RFC 3339 time)";
    }
    if (for_value != nullptr) {
      const auto d = for_value->is_string() ? parse_duration(std::string_view(for_value->as_string()))
                                            : std::nullopt;
      if (!d || d->count() < 0) return "sleep.for must be a duration such as \"30s\" or \"10m\"";
    } else if (!until->is_string()) {
      return "sleep.until must be an RFC 3339 time (e.g. \"2026-12-01T08:00:00Z\") or a template";
    } else if (!holds_template(*until) && !parse_iso8601(std::string_view(until->as_string()))) {
      return "sleep.until must be an RFC 3339 time such as \"2026-12-01T08:00:00Z\"";
    }
    return std::nullopt;
  }

  Result<StepOutcome> execute(const StepContext& context, StepServices&) const override {
    auto action = rendered_action(context);
    if (!action) return action.error();
    StepOutcome outcome;
    outcome.kind = StepOutcome::Kind::kWaitUntil;
    if (const json::value* for_value = action->if_contains("for")) {
      // From the start of the attempt, so performing this again after a
      // crash wakes at the same moment.
      const TimePoint started = context.step.started_at.value_or(now_ms());
      outcome.wake_at = started + *parse_duration(std::string_view(for_value->as_string()));
    } else {
      const json::value& until = action->at("until");
      const auto at = until.is_string() ? parse_iso8601(std::string_view(until.as_string()))
                                        : std::nullopt;
      if (!at) {
        return invalid_time("sleep.until rendered to " + json::serialize(until).substr(0, 80) +
                            ", not an RFC 3339 time");
      }
      outcome.wake_at = *at;
    }
    outcome.handle = json::object{{"wake_at", format_iso8601(outcome.wake_at)}};
    return outcome;
  }

  Result<StepOutcome> poll(const StepContext&, StepServices&) const override {
    return not_performed("sleep");
  }

  Status cancel(const StepContext&, StepServices&) const override { return ok_status(); }
};

}  // namespace

std::unique_ptr<StepType> make_sleep_step() { return std::make_unique<SleepStep>(); }

}  // namespace brickwork
