#pragma once
// libpq's notices and warnings ("NOTICE:  relation ... already exists,
// skipping", a statement's RAISE WARNING) and libpqxx's own, through the
// daemon's logger rather than straight to stderr.
#include <pqxx/connection>
#include <pqxx/errorhandler>
#include <string>

namespace brickwork {

// Registers itself on `connection` for its lifetime. Declare it after the
// connection it watches, so that it goes first.
class PgNoticeLogger final : public pqxx::errorhandler {
 public:
  explicit PgNoticeLogger(pqxx::connection_base& connection) : pqxx::errorhandler(connection) {}
  bool operator()(const char message[]) noexcept override;
};

// A connection whose notices go to the logger. Own it by this type (libpqxx's
// connection has no virtual destructor); use it as a pqxx::connection.
class LoggedConnection final : public pqxx::connection {
 public:
  explicit LoggedConnection(const std::string& conninfo)
      : pqxx::connection(conninfo), notices_(*this) {}

 private:
  PgNoticeLogger notices_;
};

}  // namespace brickwork
