#include "daemon/store/databases.hpp"

#include <condition_variable>
#include <mutex>
#include <pqxx/pqxx>

#include "daemon/core/json_limits.hpp"
#include "daemon/store/conninfo.hpp"
#include "daemon/store/pg_errors.hpp"
#include "daemon/store/pg_notices.hpp"

namespace brickwork {
namespace {

// Postgres type OIDs (pg_type.dat) whose text has a JSON form of its own.
constexpr pqxx::oid kBool = 16, kInt8 = 20, kInt2 = 21, kInt4 = 23, kOid = 26, kJson = 114,
                    kFloat4 = 700, kFloat8 = 701, kNumeric = 1700, kJsonb = 3802;

json::value field_json(const pqxx::field& f) {
  if (f.is_null()) return nullptr;
  const std::string_view text(f.c_str(), f.size());
  switch (f.type()) {
    case kBool:
      return text == "t";
    case kInt2:
    case kInt4:
    case kInt8:
    case kOid:
      if (auto n = int64_from_text(text)) return *n;
      break;
    case kFloat4:
    case kFloat8:
    case kNumeric: {
      // Integral values stay integers; NaN and Infinity have no JSON number.
      if (auto n = int64_from_text(text)) return *n;
      boost::system::error_code ec;
      json::value v = parse_json(text, ec);
      if (!ec && v.is_number()) return v;
      break;
    }
    case kJson:
    case kJsonb: {
      boost::system::error_code ec;
      json::value v = parse_json(text, ec);
      if (!ec) return v;
      break;
    }
    default:
      break;
  }
  return json::string(text);
}

class Pool {
 public:
  Pool(std::string conninfo, const std::string& url, int32_t max,
       std::shared_ptr<PasswordSource> password)
      : conninfo_(std::move(conninfo)), passwords_(url), max_(max), password_(std::move(password)) {}

  // A connection for one statement, returned by the guard.
  struct Lease {
    Pool* pool;
    std::unique_ptr<LoggedConnection> connection;
    ~Lease() { pool->give_back(std::move(connection)); }
  };

  Lease acquire() {
    std::unique_lock lock(mutex_);
    freed_.wait(lock, [&] { return !idle_.empty() || open_ < max_; });
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return Lease{this, std::move(c)};
    }
    ++open_;
    return Lease{this, nullptr};  // opened by the caller, outside the lock
  }

  const std::string& conninfo() const { return conninfo_; }
  const PasswordRedactor& passwords() const { return passwords_; }
  PasswordSource* password() const { return password_.get(); }

 private:
  void give_back(std::unique_ptr<LoggedConnection> c) {
    {
      std::lock_guard lock(mutex_);
      if (c && c->is_open()) {
        idle_.push_back(std::move(c));
      } else {
        --open_;  // dropped: a new one may be opened
      }
    }
    freed_.notify_one();
  }

  std::string conninfo_;
  PasswordRedactor passwords_;
  int32_t max_;
  std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<LoggedConnection>> idle_;
  int32_t open_ = 0;
  std::shared_ptr<PasswordSource> password_;
};

class PgNamedDatabases final : public NamedDatabases {
 public:
  PgNamedDatabases(std::map<std::string, DatabaseConfig> databases, int32_t max,
                   PasswordFor password_for)
      : databases_(std::move(databases)), max_(max), password_for_(std::move(password_for)) {}

  Result<json::object> query(const std::string& database, const std::string& statement,
                             const std::vector<std::optional<std::string>>& parameters,
                             int64_t row_limit) override {
    auto pool = pool_of(database);
    if (!pool) return pool.error();
    Pool::Lease lease = (*pool)->acquire();
    try {
      if (!lease.connection) {
        auto conninfo = with_password((*pool)->conninfo(), (*pool)->password());
        if (!conninfo) return conninfo.error();
        lease.connection = std::make_unique<LoggedConnection>(*conninfo);
      }
      std::vector<const char*> values;
      values.reserve(parameters.size());
      for (const auto& p : parameters) values.push_back(p ? p->c_str() : nullptr);
      pqxx::work tx(*lease.connection);
      const pqxx::result r = tx.exec_params(statement, pqxx::prepare::make_dynamic_params(values));
      tx.commit();
      json::array rows;
      for (const pqxx::row row : r) {
        if (static_cast<int64_t>(rows.size()) >= row_limit) break;
        json::object o;
        for (const pqxx::field f : row) o[f.name()] = field_json(f);
        rows.push_back(std::move(o));
      }
      const int64_t count = r.columns() > 0 ? static_cast<int64_t>(r.size())
                                            : static_cast<int64_t>(r.affected_rows());
      return json::object{{"rows", std::move(rows)}, {"row_count", count}};
    } catch (...) {
      store_detail::PgFailure failure =
          store_detail::classify_current_exception(("databases." + database).c_str(),
                                                   (*pool)->passwords());
      if ((*pool)->password() != nullptr && is_password_refusal(failure.error.message)) {
        (*pool)->password()->refused();  // a new credential for the next connection
        failure.error.kind = ErrorKind::kTransient;
        failure.error.code = "28P01";
        failure.drop_connection = true;
      }
      if (failure.drop_connection) lease.connection.reset();
      return failure.error;
    }
  }

 private:
  Result<Pool*> pool_of(const std::string& database) {
    std::lock_guard lock(mutex_);
    if (auto it = pools_.find(database); it != pools_.end()) return it->second.get();
    auto config = databases_.find(database);
    if (config == databases_.end()) {
      return Error{ErrorKind::kNotFound, "unknown_database",
                   "no database named '" + database + "' under databases:"};
    }
    auto conninfo = store_conninfo(config->second.url);
    if (!conninfo) return conninfo.error();
    auto& pool = pools_[database];
    pool = std::make_unique<Pool>(*conninfo, config->second.url, max_,
                                  password_for_ ? password_for_(database, config->second) : nullptr);
    return pool.get();
  }

  std::map<std::string, DatabaseConfig> databases_;
  int32_t max_;
  PasswordFor password_for_;
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Pool>> pools_;
};

}  // namespace

std::unique_ptr<NamedDatabases> NamedDatabases::create(std::map<std::string, DatabaseConfig> databases,
                                                       int32_t max_connections,
                                                       PasswordFor password_for) {
  return std::make_unique<PgNamedDatabases>(std::move(databases), max_connections,
                                            std::move(password_for));
}

}  // namespace brickwork
