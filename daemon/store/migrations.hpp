#pragma once
// The schema, as an ordered list of migrations. A migration, once released, is
// never edited: a change to the schema is a new entry at the end.
#include <cstdint>
#include <span>

namespace brickwork::store_detail {

struct Migration {
  int32_t version;
  const char* description;
  const char* sql;  // one or more statements, run in the migration's transaction
};

std::span<const Migration> migrations();

// Advisory lock keys (pg_advisory_xact_lock), constants shared by all daemons.
inline constexpr int64_t kMigrateLockKey = 0x6272'6963'6b00'0001;  // "brick" + 1
inline constexpr int64_t kOutboxLockKey = 0x6272'6963'6b00'0002;

}  // namespace brickwork::store_detail
