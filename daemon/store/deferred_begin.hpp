#pragma once
// A transaction whose BEGIN travels with its first statements. libpqxx's
// transactions send BEGIN alone when they are made, a round trip of its own;
// a round trip is a wake-up on each side, and on a busy host or a database
// across a network (Lakebase) it costs more than the hot statements do
// (docs/PERFORMANCE.md, "BEGIN with the first read").
//
// The transaction is reached only through begun(), which sends BEGIN first
// if nothing has been sent yet, or exec_together() and commit_with(), which
// send it with their statements: no statement can run outside the
// transaction.
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/store/pg_params.hpp"

namespace brickwork::store_detail {

// A write sent by commit_with(): a statement prepared on the connection
// under `name` (unnamed when empty) and its parameters.
struct PendingWrite {
  std::string name;
  std::string sql;
  std::vector<NullableText> params;
};

class DeferredBeginWork {
 public:
  explicit DeferredBeginWork(pqxx::connection_base& connection);
  ~DeferredBeginWork();  // rolls back what was not committed
  DeferredBeginWork(const DeferredBeginWork&) = delete;
  DeferredBeginWork& operator=(const DeferredBeginWork&) = delete;

  // The transaction, begun on the server.
  pqxx::transaction_base& begun();
  // `queries` in one round trip, BEGIN first if nothing was sent yet. Each
  // is a statement of its own, with its own snapshot (READ COMMITTED), as if
  // sent one after the other: a read after a locking read sees what was
  // committed while the lock was awaited. Their values are quoted literals
  // (quote()): only identifiers go this way, never inputs or outputs.
  std::vector<pqxx::result> exec_together(const std::vector<std::string>& queries);
  // `value` as a quoted SQL literal.
  std::string quote(std::string_view value);
  // "EXECUTE name(arguments)", for exec_together: the statement prepared on
  // the connection by `name`, its plan kept as for exec_prepared (prepared
  // on the server now if it was not yet); `arguments` are literals.
  std::string execute(const std::string& name, const std::vector<std::string>& arguments);
  // Commits; with nothing sent, there is nothing to commit. A connection lost
  // during the commit throws pqxx::in_doubt_error, as pqxx::work does.
  void commit();
  // Rows as text, a null as nullopt.
  using TextRows = std::vector<std::vector<std::optional<std::string>>>;
  // `writes`, then COMMIT, in one round trip (libpq's pipeline mode; BEGIN
  // first if nothing was sent yet): a commit used to be a round trip of its
  // own after the last write. Returns each write's rows (for small results:
  // they are copied); nothing can be sent after. A statement's error is
  // thrown as libpqxx throws it, the transaction then rolled back like any
  // other; a connection lost before COMMIT answered throws
  // pqxx::in_doubt_error, as commit() does.
  std::vector<TextRows> commit_with(const std::vector<PendingWrite>& writes);

 private:
  class Transaction;
  bool begun_ = false;
  bool committed_ = false;  // by commit_with: commit() sends nothing more
  std::unique_ptr<Transaction> tx_;
};

}  // namespace brickwork::store_detail
