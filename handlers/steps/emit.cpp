// emit: publishes a JSON object to a Kafka topic, exactly once.
//
//   emit:
//     topic: "clients.{{ input.client_id }}.events"
//     key: "{{ input.client_id }}"      # default: the workflow id
//     value: {event: onboarded, url: "{{ steps.provision.output.activation_url }}"}
//
// The record goes into the outbox in the same transaction that records the
// step's success, so a crash before it publishes it later, once, and a crash
// after it does not publish it again. Output: {"topic", "key"}. A value over
// 512 KiB fails the step with code too_large, like any output.
#include "daemon/engine/engine.hpp"
#include "handlers/steps/action_fields.hpp"

namespace brickwork {
namespace {

// Kafka's rule for topic names: 1-249 of [A-Za-z0-9._-].
bool is_valid_topic(std::string_view topic) {
  if (topic.empty() || topic.size() > 249 || topic == "." || topic == "..") return false;
  for (char c : topic) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// emit's action, checked (each may hold templates).
struct EmitAction final : BoundAction {
  json::value topic;
  std::optional<json::value> key;  // default: the workflow id
  json::value value;
};

class EmitStep final : public StepType {
 public:
  std::string_view action_key() const override { return "emit"; }

  Result<BoundActionPtr> compile(StepDefinition& step) const override {
    const json::object& action = step.action;
    if (auto e = unknown_action_key(action, "emit", {"topic", "key", "value"})) return compile_error(*e);
    const json::value* topic = action.if_contains("topic");
    if (topic == nullptr || !topic->is_string()) return compile_error("emit.topic is required (a Kafka topic)");
    if (!holds_template(*topic) && !is_valid_topic(std::string_view(topic->as_string()))) {
      return compile_error("emit.topic must be 1-249 characters of [A-Za-z0-9._-]");
    }
    auto bound = std::make_shared<EmitAction>();
    bound->topic = *topic;
    if (const json::value* key = action.if_contains("key")) {
      if (!key->is_string()) return compile_error("emit.key must be a string");
      bound->key = *key;
    }
    const json::value* value = action.if_contains("value");
    if (value == nullptr || !(value->is_object() || holds_template(*value))) {
      return compile_error("emit.value is required: a mapping (its strings may hold templates)");
    }
    bound->value = *value;
    return BoundActionPtr(std::move(bound));
  }

  Result<StepOutcome> execute(const StepContext& context, StepServices&) const override {
    const auto& action = context.action<EmitAction>();
    auto rendered_topic = render_value(action.topic, context);
    if (!rendered_topic) return rendered_topic.error();
    if (!rendered_topic->is_string()) return invalid_action("emit.topic must render to a string");
    const std::string topic(rendered_topic->as_string());
    if (!is_valid_topic(topic)) {
      return invalid_action("emit.topic rendered to '" + topic.substr(0, 80) +
                     "', not a Kafka topic name");
    }
    std::string key = context.workflow.id;
    if (action.key) {
      auto k = render_value(*action.key, context);
      if (!k) return k.error();
      if (!k->is_string()) return invalid_action("emit.key must render to a string");
      key = std::string(k->as_string());
    }
    auto value = render_value(action.value, context);
    if (!value) return value.error();
    if (!value->is_object()) return invalid_action("emit.value must render to a JSON object");
    std::string payload = json::serialize(*value);
    if (payload.size() > kMaxStepOutputBytes || key.size() > 1024) {
      return Error{ErrorKind::kPermanent, "too_large",
                   "emit.value is " + std::to_string(payload.size()) + " bytes and key " +
                       std::to_string(key.size()) + "; the limits are " +
                       std::to_string(kMaxStepOutputBytes) + " and 1024"};
    }
    StepOutcome outcome;
    outcome.kind = StepOutcome::Kind::kSucceeded;
    outcome.output = json::object{{"topic", topic}, {"key", key}};
    outcome.publish.push_back(OutboxRecord{topic, key, std::move(payload), ""});
    return outcome;
  }
};

}  // namespace

std::unique_ptr<StepType> make_emit_step() { return std::make_unique<EmitStep>(); }

}  // namespace brickwork
