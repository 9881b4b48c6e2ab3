#pragma once
// Writes of one transaction, sent together: just before the next read and at
// commit. Nothing in a transaction reads what it has just written except
// through those reads, so a flush needs only keep the order of writes that
// touch the same rows. Values travel only as statement parameters
// (pg_params.hpp).
#include <functional>
#include <initializer_list>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/store/deferred_begin.hpp"
#include "daemon/store/pg_params.hpp"

namespace brickwork::store_detail {

class WriteBuffer {
 public:
  // A hot write: its rows sent as ONE statement, each column's values one
  // array parameter ($1 the first column, ...) that the statement unnests.
  struct RowKind {
    const char* id;  // one letter, unique: names the prepared statements
    const char* statement;
    const char* table;  // the table it writes
    // It reads rows of `table` (UPDATE, DELETE, ON CONFLICT), so it must see
    // what kinds queued before it wrote there: it never shares a statement
    // with them (parts of one statement see the same snapshot).
    bool reads_table;
  };

  explicit WriteBuffer(pqxx::transaction_base& tx)
      : tx_([&tx]() -> pqxx::transaction_base& { return tx; }) {}
  // The transaction as `tx` gives it when there is something to send (a
  // DeferredBeginWork begun only then).
  explicit WriteBuffer(std::function<pqxx::transaction_base&()> tx) : tx_(std::move(tx)) {}

  // A statement of its own, sent before the kinds' rows.
  void add(const std::string& statement, std::initializer_list<NullableText> params);

  // A row whose key is already queued sends what is queued first (one
  // statement must not update or upsert a row twice).
  void add_row(const RowKind& kind, const std::string& key,
               std::initializer_list<NullableText> params);

  void flush();
  // What is queued, as the statements flush() would send, to go with the
  // commit (DeferredBeginWork::commit_with); the buffer is emptied.
  std::vector<PendingWrite> take_for_commit();

  // `statement` with each $n as $(n + offset).
  static std::string renumbered(std::string_view statement, size_t offset);

 private:
  struct Single {
    std::string statement;
    std::vector<NullableText> params;
  };
  struct Rows {
    const RowKind* kind;
    std::vector<std::string> columns;  // array literals, each still to be closed
    std::set<std::string> keys;
  };
  using Statement = std::vector<Rows*>;

  Rows* find(const RowKind& kind);
  std::vector<Statement> statements();
  // One statement's name, text and parameters (its rows' columns moved out).
  static PendingWrite compose(const Statement& statement);
  void send(const Statement& statement);

  std::function<pqxx::transaction_base&()> tx_;
  std::vector<Single> singles_;
  std::vector<Rows> rows_;  // in order of first use
};

}  // namespace brickwork::store_detail
