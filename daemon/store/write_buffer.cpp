#include "daemon/store/write_buffer.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <utility>

namespace brickwork::store_detail {

void WriteBuffer::add(const std::string& statement, std::initializer_list<NullableText> params) {
  singles_.push_back(Single{statement, params});
}

void WriteBuffer::add_row(const RowKind& kind, const std::string& key,
                          std::initializer_list<NullableText> params) {
  Rows* rows = find(kind);
  if (rows != nullptr && !key.empty() && rows->keys.count(key) != 0) {
    flush();
    rows = nullptr;
  }
  if (rows == nullptr) {
    rows = &rows_.emplace_back(Rows{&kind, std::vector<std::string>(params.size(), "{"), {}});
  }
  if (rows->columns.size() != params.size()) throw std::logic_error("row of the wrong width");
  size_t column = 0;
  for (const NullableText& p : params) {
    std::string& array = rows->columns[column++];
    if (p.null()) {
      append_array_null(array);
    } else {
      append_array_element(array, p.text());
    }
  }
  if (!key.empty()) rows->keys.insert(key);
}

void WriteBuffer::flush() {
  for (const Single& single : singles_) {
    const std::vector<const char*> params = param_pointers(single.params);
    tx_().exec_params(single.statement, pqxx::prepare::make_dynamic_params(params));
  }
  singles_.clear();
  for (const Statement& statement : statements()) send(statement);
  rows_.clear();
}

WriteBuffer::Rows* WriteBuffer::find(const RowKind& kind) {
  for (Rows& r : rows_) {
    if (r.kind == &kind) return &r;
  }
  return nullptr;
}

// The queued kinds in order of first use, as few statements as keep that
// order where it matters: a kind that reads its table starts a new statement
// after one that writes it.
std::vector<WriteBuffer::Statement> WriteBuffer::statements() {
  std::vector<Statement> out;
  for (Rows& row_kind : rows_) {
    Rows* r = &row_kind;
    const bool must_see_earlier =
        !out.empty() && r->kind->reads_table &&
        std::any_of(out.back().begin(), out.back().end(), [&](const Rows* earlier) {
          return std::string_view(earlier->kind->table) == r->kind->table;
        });
    if (out.empty() || must_see_earlier) out.emplace_back();
    out.back().push_back(r);
  }
  return out;
}

// Several kinds go as one statement of data-modifying CTEs, the last kind
// its main statement; each kind's parameters numbered after the ones before.
PendingWrite WriteBuffer::compose(const Statement& statement) {
  PendingWrite write{"write_", "", {}};
  for (size_t i = 0; i < statement.size(); ++i) {
    Rows& rows = *statement[i];
    write.name += rows.kind->id;
    const std::string part = renumbered(rows.kind->statement, write.params.size());
    if (i + 1 < statement.size()) {
      write.sql += (i == 0 ? "WITH " : ", ");
      write.sql += std::string("w") + rows.kind->id + " AS (" + part + ")";
    } else {
      write.sql += (i == 0 ? "" : " ") + part;
    }
    for (std::string& column : rows.columns) {
      column += '}';
      write.params.emplace_back(std::move(column));
    }
  }
  return write;
}

void WriteBuffer::send(const Statement& statement) {
  const PendingWrite write = compose(statement);
  const std::vector<const char*> params = param_pointers(write.params);
  // Prepared once per connection (libpqxx ignores a repeated definition).
  pqxx::transaction_base& tx = tx_();
  tx.conn().prepare(write.name, write.sql);
  tx.exec_prepared(write.name, pqxx::prepare::make_dynamic_params(params));
}

std::vector<PendingWrite> WriteBuffer::take_for_commit() {
  std::vector<PendingWrite> writes;
  for (Single& single : singles_) {
    writes.push_back(PendingWrite{"", std::move(single.statement), std::move(single.params)});
  }
  singles_.clear();
  for (const Statement& statement : statements()) writes.push_back(compose(statement));
  rows_.clear();
  return writes;
}

std::string WriteBuffer::renumbered(std::string_view statement, size_t offset) {
  std::string out;
  out.reserve(statement.size() + 16);
  size_t i = 0;
  while (i < statement.size()) {
    if (statement[i] == '$') {
      size_t j = i + 1;
      size_t n = 0;
      while (j < statement.size() && std::isdigit(static_cast<unsigned char>(statement[j]))) {
        n = n * 10 + static_cast<size_t>(statement[j] - '0');
        ++j;
      }
      if (j > i + 1) {
        out += '$' + std::to_string(n + offset);
        i = j;
        continue;
      }
    }
    out += statement[i++];
  }
  return out;
}

}  // namespace brickwork::store_detail
