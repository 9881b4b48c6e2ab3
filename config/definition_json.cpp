// A workflow instance keeps the definition it started with; the store keeps it
// as JSON. Durations are integers of milliseconds so the round trip is exact.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "config/config.hpp"

namespace brickwork {
namespace {

const char* to_string(CompletionMode mode) {
  return mode == CompletionMode::kPoll ? "poll" : "event";
}

Error invalid(std::string message) {
  return Error{ErrorKind::kInvalidInput, "invalid_definition", std::move(message)};
}

// Reads an optional field of an object; a present field of the wrong type is an error.
class FieldReader {
 public:
  FieldReader(const json::object& object, std::string where)
      : object_(object), where_(std::move(where)) {}

  const std::optional<Error>& error() const { return error_; }

  const json::value* find(std::string_view key) const {
    const json::value* v = object_.if_contains(key);
    return v != nullptr && !v->is_null() ? v : nullptr;
  }

  void string(std::string_view key, std::string& out, bool required = false) {
    const json::value* v = find(key);
    if (v == nullptr) {
      if (required) fail(key, "is required");
      return;
    }
    if (!v->is_string()) return fail(key, "must be a string");
    out = std::string(v->as_string());
  }

  void integer(std::string_view key, int64_t& out) {
    const json::value* v = find(key);
    if (v == nullptr) return;
    if (v->is_int64()) {
      out = v->as_int64();
    } else if (v->is_uint64() && v->as_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
      out = static_cast<int64_t>(v->as_uint64());
    } else {
      fail(key, "must be an integer");
    }
  }

  void duration(std::string_view key, Duration& out) {
    int64_t ms = out.count();
    integer(key, ms);
    out = Duration(ms);
  }

  void fail(std::string_view key, std::string_view what) {
    if (!error_) error_ = invalid(where_ + "." + std::string(key) + " " + std::string(what));
  }

 private:
  const json::object& object_;
  std::string where_;
  std::optional<Error> error_;
};

json::value step_to_json(const StepDefinition& step) {
  json::object o;
  o["name"] = step.name;
  o["type"] = step.type;
  // Only when named: definitions of the default workspace stay as before.
  if (!step.workspace.empty()) o["workspace"] = step.workspace;
  o["action"] = step.action;
  json::array deps;
  for (const auto& d : step.depends_on) deps.emplace_back(d);
  o["depends_on"] = std::move(deps);
  o["completion"] = to_string(step.completion);
  o["poll_every_ms"] = step.poll_every.count();
  o["event_grace_ms"] = step.event_grace.count();
  o["timeout_ms"] = step.timeout ? json::value(step.timeout->count()) : json::value(nullptr);
  o["retry"] = json::object{{"max_attempts", step.retry.max_attempts},
                            {"backoff_ms", step.retry.backoff.count()}};
  o["source_location"] = step.source_location;
  json::object plan{{"kind", step.plan.kind == StepPlan::Kind::kAwaitSignal ? "await_signal"
                                                                            : "perform"},
                    {"timeout_code", step.plan.timeout_code}};
  if (!step.plan.signal.empty()) plan["signal"] = step.plan.signal;
  if (step.plan.sensitive_output) plan["sensitive_output"] = true;
  if (step.plan.completion_event) plan["completion_event"] = true;
  if (step.plan.repairs_runs) plan["repairs_runs"] = true;
  o["plan"] = std::move(plan);
  return o;
}

Result<StepDefinition> step_from_json(const json::value& v, const std::string& where) {
  if (!v.is_object()) return invalid(where + " must be an object");
  const json::object& o = v.as_object();
  FieldReader r(o, where);
  StepDefinition step;
  r.string("name", step.name, true);
  r.string("type", step.type, true);
  r.string("workspace", step.workspace);
  if (const json::value* action = r.find("action")) {
    if (action->is_object()) {
      step.action = action->as_object();
    } else {
      r.fail("action", "must be an object");
    }
  }
  if (const json::value* deps = r.find("depends_on")) {
    if (!deps->is_array()) {
      r.fail("depends_on", "must be an array of strings");
    } else {
      for (const auto& d : deps->as_array()) {
        if (!d.is_string()) {
          r.fail("depends_on", "must be an array of strings");
          break;
        }
        step.depends_on.emplace_back(d.as_string());
      }
    }
  }
  std::string completion = "event";
  r.string("completion", completion);
  if (completion == "poll") {
    step.completion = CompletionMode::kPoll;
  } else if (completion != "event") {
    r.fail("completion", "must be \"event\" or \"poll\"");
  }
  r.duration("poll_every_ms", step.poll_every);
  r.duration("event_grace_ms", step.event_grace);
  if (r.find("timeout_ms") != nullptr) {
    Duration timeout{0};
    r.duration("timeout_ms", timeout);
    step.timeout = timeout;
  }
  if (const json::value* retry = r.find("retry")) {
    if (!retry->is_object()) {
      r.fail("retry", "must be an object");
    } else {
      FieldReader rr(retry->as_object(), where + ".retry");
      int64_t max_attempts = step.retry.max_attempts;
      rr.integer("max_attempts", max_attempts);
      if (max_attempts < 0 || max_attempts > INT32_MAX) rr.fail("max_attempts", "is out of range");
      step.retry.max_attempts = static_cast<int32_t>(max_attempts);
      rr.duration("backoff_ms", step.retry.backoff);
      if (rr.error()) return *rr.error();
    }
  }
  r.string("source_location", step.source_location);
  // Definitions stored before plans existed were all performed by the runtime.
  if (const json::value* plan = r.find("plan")) {
    if (!plan->is_object()) {
      r.fail("plan", "must be an object");
    } else {
      FieldReader pr(plan->as_object(), where + ".plan");
      std::string kind = "perform";
      pr.string("kind", kind);
      if (kind == "await_signal") {
        step.plan.kind = StepPlan::Kind::kAwaitSignal;
      } else if (kind != "perform") {
        pr.fail("kind", "must be \"perform\" or \"await_signal\"");
      }
      pr.string("signal", step.plan.signal);
      pr.string("timeout_code", step.plan.timeout_code);
      // Absent: false (definitions stored before completion_event existed
      // never wait for an event).
      const std::pair<const char*, bool*> flags[] = {
          {"sensitive_output", &step.plan.sensitive_output},
          {"completion_event", &step.plan.completion_event},
          {"repairs_runs", &step.plan.repairs_runs}};
      for (const auto& [key, target] : flags) {
        if (const json::value* flag = plan->as_object().if_contains(key)) {
          if (!flag->is_bool()) return invalid(where + ".plan." + key + " must be a boolean");
          *target = flag->as_bool();
        }
      }
      if (pr.error()) return *pr.error();
    }
  }
  if (r.error()) return *r.error();
  return step;
}

json::array steps_to_json(const std::vector<StepDefinition>& steps) {
  json::array out;
  out.reserve(steps.size());
  for (const auto& step : steps) out.push_back(step_to_json(step));
  return out;
}

Result<std::vector<StepDefinition>> steps_from_json(const json::value* steps,
                                                    const std::string& where) {
  std::vector<StepDefinition> out;
  if (steps == nullptr) return out;
  if (!steps->is_array()) return invalid(where + " must be an array");
  size_t index = 0;
  for (const auto& s : steps->as_array()) {
    auto step = step_from_json(s, where + "[" + std::to_string(index++) + "]");
    if (!step) return step.error();
    out.push_back(std::move(*step));
  }
  return out;
}

}  // namespace

json::value to_json(const WorkflowDefinition& def) {
  json::object o{{"name", def.name}, {"steps", steps_to_json(def.steps)}};
  if (!def.on_failure.empty()) o["on_failure"] = steps_to_json(def.on_failure);
  return o;
}

Result<WorkflowDefinition> workflow_definition_from_json(const json::value& v) {
  if (!v.is_object()) return invalid("definition must be an object");
  const json::object& o = v.as_object();
  FieldReader r(o, "definition");
  WorkflowDefinition def;
  r.string("name", def.name, true);
  if (r.error()) return *r.error();
  auto steps = steps_from_json(r.find("steps"), "definition.steps");
  if (!steps) return steps.error();
  def.steps = std::move(*steps);
  auto on_failure = steps_from_json(r.find("on_failure"), "definition.on_failure");
  if (!on_failure) return on_failure.error();
  def.on_failure = std::move(*on_failure);
  return def;
}

}  // namespace brickwork
