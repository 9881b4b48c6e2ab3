#pragma once
// The workflow writer's transaction: StoreTx over one DeferredBeginWork, its writes
// buffered (WriteBuffer) and sent before each read and at the end.
#include <functional>
#include <map>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "daemon/core/secret_box.hpp"
#include "daemon/store/deferred_begin.hpp"
#include "daemon/store/definition_cache.hpp"
#include "daemon/store/effect_ids.hpp"
#include "daemon/store/store.hpp"
#include "daemon/store/write_buffer.hpp"

namespace brickwork::store_detail {

// Runs `body` on a StoreTx over `tx`, then commits with what it left
// buffered. Returns the hashes of the definitions it inserted, stored now.
// Leased effects take their ids from `effect_ids`.
std::vector<std::string> run_store_tx(DeferredBeginWork& tx, const SecretBox* sealer,
                                      DefinitionCache& definitions, EffectIdPool& effect_ids,
                                      const std::function<void(StoreTx&)>& body);

// The statements above, prepared on every connection by name.
const std::map<std::string, std::string>& store_tx_statements();

// Every statement a store connection prepares by name, set by set
// (pg_store.cpp prepares them; a test checks their plans).
const std::vector<const std::map<std::string, std::string>*>& prepared_statement_sets();

// Every kind of row a transaction buffers: each is also a statement alone
// (a test checks their plans).
const std::vector<const WriteBuffer::RowKind*>& write_row_kinds();

}  // namespace brickwork::store_detail
