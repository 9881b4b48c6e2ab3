// The store's prepared statements run with one generic plan per connection
// (kStoreSessionSettings): planning each call anew cost as much as running
// it. A generic plan is made without the call's values, so each must reach
// its rows by an index condition whatever the tables' statistics say: on a
// fresh schema never analyzed and on tables analyzed full.
#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/store/claim_query.hpp"
#include "daemon/store/pg_store_tx.hpp"
#include "tests/store/store_fixture.hpp"

namespace brickwork {
namespace {

using testing::StoreTest;

struct Statement {
  std::string name;
  std::string sql;
};

std::vector<Statement> hot_statements() {
  std::vector<Statement> out;
  for (const auto* statements : store_detail::prepared_statement_sets()) {
    for (const auto& [name, sql] : *statements) out.push_back({name, sql});
  }
  for (const auto* kind : store_detail::write_row_kinds()) {
    out.push_back({std::string("rows_") + kind->id, kind->statement});
  }
  return out;
}

// What in `plan` reads a table other than by an index condition: a
// sequential scan, or an index walked whole (an index scan without one).
std::vector<std::string> unindexed_reads(const std::vector<std::string>& plan) {
  std::vector<std::string> found;
  for (size_t i = 0; i < plan.size(); ++i) {
    const std::string& line = plan[i];
    if (line.find("Seq Scan") != std::string::npos) found.push_back(line);
    const bool index_scan = (line.find("Index Scan using") != std::string::npos ||
                             line.find("Index Only Scan using") != std::string::npos) &&
                            line.find("Bitmap") == std::string::npos;
    if (!index_scan) continue;
    bool has_condition = false;
    for (size_t j = i + 1; j < plan.size() && plan[j].find("->") == std::string::npos; ++j) {
      if (plan[j].find("Index Cond") != std::string::npos) has_condition = true;
    }
    if (!has_condition) found.push_back(line);
  }
  return found;
}

class GenericPlansTest : public StoreTest {
 protected:
  // Each hot statement's generic plan on the tables as they are now.
  void expect_indexed_plans(const std::string& tables) {
    pqxx::connection c(pg_->url());
    pqxx::nontransaction(c).exec(store_detail::kStoreSessionSettings);
    size_t checked = 0;
    for (const Statement& statement : hot_statements()) {
      pqxx::work tx(c);
      tx.exec("PREPARE checked AS " + statement.sql);
      const int params = tx.exec1(
                               "SELECT cardinality(parameter_types) FROM pg_prepared_statements"
                               " WHERE name = 'checked'")[0]
                             .as<int>();
      std::string nulls;
      for (int i = 0; i < params; ++i) nulls += (i == 0 ? "NULL" : ", NULL");
      std::vector<std::string> plan;
      std::ostringstream text;
      for (const auto& row :
           tx.exec("EXPLAIN EXECUTE checked" + (params > 0 ? "(" + nulls + ")" : std::string()))) {
        plan.push_back(row[0].as<std::string>());
        text << "  " << plan.back() << "\n";
      }
      tx.exec("DEALLOCATE checked");  // not undone by a rollback
      tx.abort();
      for (const std::string& read : unindexed_reads(plan)) {
        ADD_FAILURE() << statement.name << " on " << tables
                      << " reads without an index condition: " << read << "\nits plan:\n"
                      << text.str();
      }
      ++checked;
    }
    EXPECT_GT(checked, 20u);
  }
};

TEST_F(GenericPlansTest, ReachRowsByIndexOnAFreshSchema) {
  // The fixture's TRUNCATE leaves the tables as a new daemon finds them.
  expect_indexed_plans("fresh, unanalyzed tables");
}

TEST_F(GenericPlansTest, ReachRowsByIndexOnFullAnalyzedTables) {
  sql("INSERT INTO definitions (hash, definition) VALUES ('h', '{}')");
  sql("INSERT INTO workflows (id, workflow, definition_hash, status, seq, created_at,"
      " updated_at) SELECT 'wf-' || i, 'etl', 'h',"
      " CASE WHEN i % 10 = 0 THEN 'running' ELSE 'succeeded' END, 3, now(), now()"
      " FROM generate_series(1, 30000) i");
  sql("INSERT INTO steps (workflow_id, name, position, status)"
      " SELECT 'wf-' || i, 's' || p, p, 'succeeded'"
      " FROM generate_series(1, 30000) i, generate_series(0, 2) p");
  sql("INSERT INTO step_attempts (workflow_id, step, attempt, state)"
      " SELECT 'wf-' || i, 's' || p, 1, 'succeeded'"
      " FROM generate_series(1, 30000) i, generate_series(0, 2) p");
  sql("INSERT INTO workflow_history (workflow_id, at, kind)"
      " SELECT 'wf-' || i, now(), 'started' FROM generate_series(1, 30000) i");
  // Queues: mostly taken, a few live.
  sql("INSERT INTO effects (workflow_id, kind, step, attempt, due_at, lease_owner, lease_until)"
      " SELECT 'wf-' || i, 'poll', 's0', 1, now(), CASE WHEN i % 2 = 0 THEN 'd' END,"
      " CASE WHEN i % 2 = 0 THEN now() + interval '1 minute' END"
      " FROM generate_series(1, 20000) i");
  sql("DELETE FROM effects WHERE id % 10 <> 0");
  sql("INSERT INTO outbox (topic, key, payload) SELECT 'status', 'wf-' || i, '{}'"
      " FROM generate_series(1, 20000) i");
  sql("DELETE FROM outbox WHERE id % 10 <> 0");
  sql("INSERT INTO input_offsets (topic, partition, next_offset)"
      " SELECT 'commands', p, 100 FROM generate_series(0, 31) p");
  sql("ANALYZE");
  expect_indexed_plans("full, analyzed tables");
}

}  // namespace
}  // namespace brickwork
