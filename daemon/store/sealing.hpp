#pragma once
// Sensitive values at rest (contract 6.3): a step output marked sensitive is
// stored as {"$sealed": ...}, bound to its workflow and step; an outbox record
// made from one is stored sealed, bound to its topic and key. A sealed value
// copied to another row does not open there.
#include <optional>
#include <string>

#include "daemon/core/json_limits.hpp"
#include "daemon/core/secret_box.hpp"
#include "daemon/engine/workflow_state.hpp"

namespace brickwork::store_detail {

// Whether the definition marks `step`'s output sensitive.
bool output_is_sensitive(const WorkflowState& state, const std::string& step);

// A step's output as its column stores it: sealed when sensitive. A
// sensitive output and no sealer is a std::logic_error (nothing is written).
json::object stored_output(const WorkflowState& state, const StepState& step,
                           const json::object& output, const SecretBox* sealer);
// The inverse, from the column: opened when sensitive. Without a sealer a
// sealed output stays sealed (enough for `brickwork status`, which redacts
// it); one that does not open with any key throws CorruptRow.
json::object output_from_column(const WorkflowState& state, const std::string& step,
                                json::object stored, const SecretBox* sealer);

// An outbox record's payload as stored: sealed when sensitive (then without
// a sealer a std::logic_error).
std::string stored_outbox_payload(const std::string& topic, const std::string& key,
                                  const std::string& payload, bool sensitive,
                                  const SecretBox* sealer);
// A sealed payload opened; nothing when no sealer or none of its keys opens it.
std::optional<std::string> opened_outbox_payload(const std::string& topic, const std::string& key,
                                                 const std::string& sealed,
                                                 const SecretBox* sealer);

}  // namespace brickwork::store_detail
