#pragma once
// Workflow definitions are stored once per distinct definition, keyed by the
// SHA-256 of their JSON. This cache keeps, per store (one per connection),
// the definitions already parsed and the hashes known to be stored, so that
// a transition neither reads and parses its definition again nor writes it.
#include <cstddef>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace brickwork::store_detail {

// Lower-case hex SHA-256 of `text`: a definition's key in the definitions table.
std::string sha256_hex(std::string_view text);

class DefinitionCache {
 public:
  // Parsed definitions by hash.
  const WorkflowDefinition* find(const std::string& hash) const;
  void add(const std::string& hash, WorkflowDefinition definition);
  // Hashes known to be in the definitions table (committed).
  bool stored(const std::string& hash) const { return stored_.count(hash) != 0; }
  void mark_stored(const std::string& hash);
  // Retention deletes definitions no workflow uses: one known stored may be gone.
  void forget_stored() { stored_.clear(); }

  // Each set is emptied when it would grow past this (rare: many distinct definitions).
  static constexpr size_t kMaxEntries = 1024;

 private:
  std::map<std::string, WorkflowDefinition, std::less<>> parsed_;
  std::set<std::string, std::less<>> stored_;
};

}  // namespace brickwork::store_detail
