#include "daemon/store/deferred_begin.hpp"

#include <stdexcept>

namespace brickwork::store_detail {

// libpqxx's transaction bookkeeping (one open transaction per connection,
// commit and abort, in-doubt commits) without its eager BEGIN.
class DeferredBeginWork::Transaction final : public pqxx::dbtransaction {
 public:
  Transaction(pqxx::connection_base& connection, const bool& begun)
      : pqxx::internal::namedclass("DeferredBeginWork"),
        pqxx::dbtransaction(connection, "READ COMMITTED", pqxx::read_write),
        begun_(begun) {
    Begin();  // marks it active; do_begin sends nothing
  }
  ~Transaction() override { End(); }

 private:
  void do_begin() override {}
  void do_commit() override {
    if (!begun_) return;
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
};

DeferredBeginWork::DeferredBeginWork(pqxx::connection_base& connection)
    : tx_(std::make_unique<Transaction>(connection, begun_)) {}

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

}  // namespace brickwork::store_detail
