#include "daemon/store/deferred_begin.hpp"

#include <libpq-fe.h>

#include <optional>
#include <stdexcept>

namespace brickwork::store_detail {
namespace {

// libpqxx 6.4 has no pipeline mode; the connection's PGconn is reached
// through the one accessor it exports, a protected member of largeobject.
class RawConnection : pqxx::largeobject {
 public:
  static PGconn* of(const pqxx::dbtransaction& tx) { return raw_connection(tx); }
};

// An error Postgres returned, thrown as libpqxx throws it, so callers and
// classify_current_exception see what they would have seen from exec.
[[noreturn]] void throw_as_libpqxx(const std::string& message, const std::string& query,
                                   const std::string& sqlstate) {
  const char* state = sqlstate.c_str();
  if (sqlstate == "40001") throw pqxx::serialization_failure(message);
  if (sqlstate == "40P01") throw pqxx::deadlock_detected(message);
  if (sqlstate.rfind("40", 0) == 0) throw pqxx::transaction_rollback(message);
  if (sqlstate == "23503") throw pqxx::foreign_key_violation(message, query, state);
  if (sqlstate == "23505") throw pqxx::unique_violation(message, query, state);
  if (sqlstate == "23502") throw pqxx::not_null_violation(message, query, state);
  if (sqlstate == "23514") throw pqxx::check_violation(message, query, state);
  if (sqlstate.rfind("23", 0) == 0) {
    throw pqxx::integrity_constraint_violation(message, query, state);
  }
  throw pqxx::sql_error(message, query, state);
}

}  // namespace

// libpqxx's transaction bookkeeping (one open transaction per connection,
// commit and abort, in-doubt commits) without its eager BEGIN.
class DeferredBeginWork::Transaction final : public pqxx::dbtransaction {
 public:
  Transaction(pqxx::connection_base& connection, const bool& begun, const bool& committed)
      : pqxx::internal::namedclass("DeferredBeginWork"),
        pqxx::dbtransaction(connection, "READ COMMITTED", pqxx::read_write),
        begun_(begun),
        committed_(committed) {
    Begin();  // marks it active; do_begin sends nothing
  }
  ~Transaction() override { End(); }

 private:
  void do_begin() override {}
  void do_commit() override {
    if (!begun_ || committed_) return;
    try {
      direct_exec("COMMIT");
    } catch (const std::exception& e) {
      if (!conn().is_open()) {
        process_notice(std::string(e.what()) + "\n");
        throw pqxx::in_doubt_error(
            "connection lost while committing: the transaction may or may not have been "
            "committed");
      }
      throw;
    }
  }
  void do_abort() override {
    if (begun_) {
      dbtransaction::do_abort();
    } else {
      reactivation_avoidance_clear();
    }
  }

  const bool& begun_;
  const bool& committed_;
};

DeferredBeginWork::DeferredBeginWork(pqxx::connection_base& connection)
    : tx_(std::make_unique<Transaction>(connection, begun_, committed_)) {}

DeferredBeginWork::~DeferredBeginWork() = default;

pqxx::transaction_base& DeferredBeginWork::begun() {
  if (!begun_) {
    begun_ = true;  // before sending: a failed BEGIN is rolled back too
    tx_->exec("BEGIN");
  }
  return *tx_;
}

std::vector<pqxx::result> DeferredBeginWork::exec_together(
    const std::vector<std::string>& queries) {
  pqxx::pipeline pipeline(*tx_);
  pipeline.retain(static_cast<int>(queries.size()) + 1);  // sent together, below
  if (!begun_) {
    begun_ = true;
    pipeline.insert("BEGIN");
  }
  std::vector<pqxx::pipeline::query_id> ids;
  ids.reserve(queries.size());
  for (const std::string& query : queries) ids.push_back(pipeline.insert(query));
  std::vector<pqxx::result> results;
  results.reserve(ids.size());
  try {
    pipeline.resume();
    for (const pqxx::pipeline::query_id id : ids) results.push_back(pipeline.retrieve(id));
    pipeline.complete();
  } catch (...) {
    // Read what is still coming: otherwise the pipeline cancels it as it is
    // destroyed, by a request on a connection of its own that may arrive
    // when the server is already running something else.
    try {
      pipeline.flush();
    } catch (const std::exception&) {  // the error being thrown says more
    }
    throw;
  }
  return results;
}

std::string DeferredBeginWork::quote(std::string_view value) {
  return tx_->quote(std::string(value));
}

std::string DeferredBeginWork::execute(const std::string& name,
                                       const std::vector<std::string>& arguments) {
  tx_->conn().prepare_now(name);
  std::string sql = "EXECUTE " + name + "(";
  for (size_t i = 0; i < arguments.size(); ++i) sql += (i == 0 ? "" : ", ") + arguments[i];
  return sql + ")";
}

void DeferredBeginWork::commit() { tx_->commit(); }

std::vector<DeferredBeginWork::TextRows> DeferredBeginWork::commit_with(
    const std::vector<PendingWrite>& writes) {
  pqxx::connection_base& connection = tx_->conn();
  for (const PendingWrite& write : writes) {
    if (write.name.empty()) continue;
    connection.prepare(write.name, write.sql);  // libpqxx ignores a repeated definition
    connection.prepare_now(write.name);         // a round trip only the first time
  }
  PGconn* conn = RawConnection::of(*tx_);
  if (PQenterPipelineMode(conn) != 1) {
    throw pqxx::failure(std::string("cannot enter pipeline mode: ") + PQerrorMessage(conn));
  }
  // What is sent, in order: its statements' texts, for errors.
  std::vector<const std::string*> sent;
  static const std::string kBegin = "BEGIN";
  static const std::string kCommit = "COMMIT";
  bool sending = true;
  const auto send_plain = [&](const std::string& sql) {
    sending = sending &&
              PQsendQueryParams(conn, sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
    sent.push_back(&sql);
  };
  if (!begun_) {
    begun_ = true;  // before sending: a failed BEGIN is rolled back too
    send_plain(kBegin);
  }
  const size_t first_write = sent.size();
  for (const PendingWrite& write : writes) {
    const std::vector<const char*> params = param_pointers(write.params);
    const int count = static_cast<int>(params.size());
    sending = sending &&
              (write.name.empty() ? PQsendQueryParams(conn, write.sql.c_str(), count, nullptr,
                                                      params.data(), nullptr, nullptr, 0)
                                  : PQsendQueryPrepared(conn, write.name.c_str(), count,
                                                        params.data(), nullptr, nullptr, 0)) == 1;
    sent.push_back(&write.sql);
  }
  send_plain(kCommit);
  sending = sending && PQpipelineSync(conn) == 1;

  // Each statement's results end with a null; the sync's result ends the pipeline.
  struct Failure {
    std::string message;
    std::string sqlstate;
    const std::string* query;
  };
  std::optional<Failure> failure;
  std::vector<TextRows> rows(writes.size());
  bool committed = false;
  bool synced = false;
  for (size_t next = 0; sending && !synced && PQstatus(conn) == CONNECTION_OK;) {
    PGresult* r = PQgetResult(conn);
    if (r == nullptr) {
      ++next;  // the end of one statement's results
      continue;
    }
    const ExecStatusType status = PQresultStatus(r);
    if (status == PGRES_PIPELINE_SYNC) {
      synced = true;
    } else if (status == PGRES_FATAL_ERROR && !failure && next < sent.size()) {
      const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      failure = Failure{PQresultErrorMessage(r), state != nullptr ? state : "", sent[next]};
    } else if (next + 1 == sent.size() && status == PGRES_COMMAND_OK) {
      committed = std::string_view(PQcmdStatus(r)) == "COMMIT";
    } else if (status == PGRES_TUPLES_OK && next >= first_write && next + 1 < sent.size()) {
      TextRows& into = rows[next - first_write];
      for (int row = 0; row < PQntuples(r); ++row) {
        auto& values = into.emplace_back();
        for (int column = 0; column < PQnfields(r); ++column) {
          values.push_back(PQgetisnull(r, row, column) != 0
                               ? std::nullopt
                               : std::optional<std::string>(PQgetvalue(r, row, column)));
        }
      }
    }
    PQclear(r);
  }
  if (!synced) {
    // The connection is lost (or a send failed): whether COMMIT took effect
    // is unknown, as when it is sent alone.
    throw pqxx::in_doubt_error(
        "connection lost while committing: the transaction may or may not have been committed (" +
        std::string(PQerrorMessage(conn)) + ")");
  }
  if (PQexitPipelineMode(conn) != 1) {
    throw pqxx::in_doubt_error(std::string("cannot leave pipeline mode after COMMIT: ") +
                               PQerrorMessage(conn));
  }
  if (failure) throw_as_libpqxx(failure->message, *failure->query, failure->sqlstate);
  if (!committed) throw pqxx::failure("COMMIT did not commit the transaction");
  committed_ = true;
  tx_->commit();  // libpqxx's bookkeeping; sends nothing more
  return rows;
}

}  // namespace brickwork::store_detail
