#pragma once
// A throwaway PostgreSQL server for tests and `brickwork demo`: its own
// cluster in a temporary directory, listening on a free loopback port, with
// durability switched off for speed. Uses the server binaries installed by the
// set-up script (/usr/lib/postgresql/<highest version>/bin, or
// $BRICKWORK_PG_BINDIR). When run as root (CI), initdb and postgres run as the
// `postgres` system user, since both refuse to run as root.
//
// Not thread-safe: one thread owns it. Clients may use it from any thread.
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/core/result.hpp"

namespace brickwork {

class TempPostgres {
 public:
  // Creates the cluster, starts the server, waits until it accepts
  // connections and creates the database `brickwork` (owner: the superuser
  // `brickwork`, trust authentication). Takes about 1-2 s. The error names
  // the log file to read when the server does not come up.
  static Result<std::unique_ptr<TempPostgres>> start();
  // The same with server settings ("name=value") over the defaults above,
  // e.g. a durable server: {"fsync=on", "synchronous_commit=on", ...}.
  static Result<std::unique_ptr<TempPostgres>> start(std::vector<std::string> settings);

  // Stops the server (if running) and removes the directory.
  ~TempPostgres();
  TempPostgres(const TempPostgres&) = delete;
  TempPostgres& operator=(const TempPostgres&) = delete;

  // "postgresql://brickwork@127.0.0.1:<port>/brickwork"
  std::string url() const { return url(kDatabase); }
  // The same server, another database (create it first, e.g. CREATE DATABASE).
  std::string url(std::string_view database) const;
  uint16_t port() const { return port_; }
  const std::string& directory() const { return dir_; }
  const std::string& log_path() const { return log_path_; }
  // The server binaries' directory (pgbench and psql live there too).
  const std::string& bindir() const { return bindir_; }
  bool running() const { return pid_ > 0; }

  // Fast shutdown (clients are disconnected); the data stays for start_again().
  Status stop();
  // Starts the server again on the same directory and port; waits until ready.
  Status start_again();
  // SIGKILL to the server and all its processes, as in a crash; start_again()
  // then runs crash recovery. The server commits asynchronously
  // (synchronous_commit=off), so a crash loses commits of the last few hundred
  // ms unless a transaction with `SET LOCAL synchronous_commit = on` that
  // writes something committed after them.
  Status kill_hard();

  static constexpr const char* kUser = "brickwork";
  // Roles in this group (create it, then `CREATE ROLE r LOGIN IN ROLE
  // brickwork_password_login`) must log in with a password; everyone else
  // is trusted.
  static constexpr const char* kPasswordGroup = "brickwork_password_login";
  static constexpr const char* kDatabase = "brickwork";

 private:
  TempPostgres() = default;
  Status init_cluster();
  Status require_passwords_for_group();
  Status launch();  // starts postgres and waits until it is ready

  std::string bindir_;
  std::vector<std::string> settings_;  // over the defaults, before BRICKWORK_TEMP_PG_SETTINGS
  std::string dir_;  // the temporary directory (socket, logs, data/)
  std::string data_dir_;
  std::string log_path_;  // the server's log
  uint16_t port_ = 0;
  pid_t pid_ = -1;  // the postmaster, leader of its own process group
  // When root: run the server as this user.
  bool drop_privileges_ = false;
  uid_t run_uid_ = 0;
  gid_t run_gid_ = 0;
};

}  // namespace brickwork
