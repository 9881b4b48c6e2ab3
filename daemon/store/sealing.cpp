#include "daemon/store/sealing.hpp"

#include <stdexcept>
#include <string_view>
#include <utility>

#include "daemon/store/pg_errors.hpp"

namespace brickwork::store_detail {
namespace {

constexpr std::string_view kSealedKey = "$sealed";

std::string output_context(const std::string& workflow_id, const std::string& step) {
  return "output\n" + workflow_id + "\n" + step;
}

std::string outbox_context(const std::string& topic, const std::string& key) {
  return "outbox\n" + topic + "\n" + key;
}

}  // namespace

bool output_is_sensitive(const WorkflowState& state, const std::string& step) {
  const StepDefinition* def = state.definition.find_step(step);
  return def != nullptr && def->plan.sensitive_output;
}

json::object stored_output(const WorkflowState& state, const StepState& step,
                           const json::object& output, const SecretBox* sealer) {
  if (!output_is_sensitive(state, step.name)) return output;
  if (sealer == nullptr) {
    throw std::logic_error("step " + step.name +
                           " has a sensitive output and the store has no key");
  }
  return json::object{
      {kSealedKey, sealer->seal(json::serialize(output), output_context(state.id, step.name))}};
}

json::object output_from_column(const WorkflowState& state, const std::string& step,
                                json::object stored, const SecretBox* sealer) {
  if (!output_is_sensitive(state, step)) return stored;
  const json::value* sealed = stored.if_contains(kSealedKey);
  if (sealer == nullptr || sealed == nullptr || !sealed->is_string()) return stored;
  auto plain = sealer->open(sealed->as_string(), output_context(state.id, step));
  if (!plain) {
    throw CorruptRow("the sealed output of step " + step +
                     " does not open with any configured key (was callbacks.secret changed"
                     " without its old value in callbacks.previous_secrets?)");
  }
  boost::system::error_code ec;
  json::value v = parse_json(*plain, ec);
  if (ec || !v.is_object()) throw CorruptRow("the sealed output of step " + step + " is not JSON");
  return std::move(v.as_object());
}

std::string stored_outbox_payload(const std::string& topic, const std::string& key,
                                  const std::string& payload, bool sensitive,
                                  const SecretBox* sealer) {
  if (!sensitive) return payload;
  if (sealer == nullptr) {
    throw std::logic_error("a sensitive outbox record and the store has no key");
  }
  return sealer->seal(payload, outbox_context(topic, key));
}

std::optional<std::string> opened_outbox_payload(const std::string& topic, const std::string& key,
                                                 const std::string& sealed,
                                                 const SecretBox* sealer) {
  if (sealer == nullptr) return std::nullopt;
  return sealer->open(sealed, outbox_context(topic, key));
}

}  // namespace brickwork::store_detail
