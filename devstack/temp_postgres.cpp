#include "devstack/temp_postgres.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

namespace brickwork {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr auto kReadyTimeout = 30s;
constexpr auto kStopTimeout = 30s;
constexpr auto kToolTimeout = 120s;
constexpr int kPortAttempts = 5;

Error fail(std::string message) {
  return Error{ErrorKind::kInternal, "temp_postgres", std::move(message)};
}

Error fail_errno(const std::string& what) { return fail(what + ": " + std::strerror(errno)); }

// The last `bytes` of a log, to put the server's own words into an error.
std::string tail_of(const std::string& path, std::streamoff bytes = 1500) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  in.seekg(std::max<std::streamoff>(0, size - bytes));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool has_server_binaries(const fs::path& bindir) {
  return ::access((bindir / "initdb").c_str(), X_OK) == 0 &&
         ::access((bindir / "postgres").c_str(), X_OK) == 0 &&
         ::access((bindir / "createdb").c_str(), X_OK) == 0;
}

Result<std::string> find_bindir() {
  if (const char* env = std::getenv("BRICKWORK_PG_BINDIR"); env != nullptr && *env != '\0') {
    if (has_server_binaries(env)) return std::string(env);
    return fail(std::string("BRICKWORK_PG_BINDIR=") + env + " lacks initdb, postgres or createdb");
  }
  std::optional<std::pair<int, fs::path>> best;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string name = entry.path().filename().string();
    char* end = nullptr;
    const long version = std::strtol(name.c_str(), &end, 10);
    if (end == name.c_str() || !has_server_binaries(entry.path() / "bin")) continue;
    if (!best || version > best->first) best = {static_cast<int>(version), entry.path() / "bin"};
  }
  if (best) return best->second.string();
  for (const char* dir : {"/usr/local/pgsql/bin", "/usr/pgsql/bin", "/usr/bin"}) {
    if (has_server_binaries(dir)) return std::string(dir);
  }
  return fail(
      "PostgreSQL server binaries not found in /usr/lib/postgresql/<version>/bin "
      "(install postgresql, or set BRICKWORK_PG_BINDIR)");
}

// A port the kernel just handed out; a race with another process is possible,
// so the caller retries with a new port when the server cannot bind it.
Result<uint16_t> free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail_errno("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    Error e = fail_errno("bind 127.0.0.1:0");
    ::close(fd);
    return e;
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Whether every directory on the way to `path` lets others pass (the server
// runs as another user when we are root).
bool traversable_by_others(const fs::path& path) {
  fs::path p;
  for (const auto& part : fs::absolute(path)) {
    p /= part;
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0 || (st.st_mode & S_IXOTH) == 0) return false;
  }
  return true;
}

struct SpawnOptions {
  int output_fd = -1;  // stdout and stderr; /dev/null when negative
  bool new_process_group = false;
  bool drop_privileges = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string cwd;
};

// fork + exec. Everything the child needs is prepared before fork(): between
// fork and exec the child only makes async-signal-safe calls.
Result<pid_t> spawn(const std::vector<std::string>& args, const SpawnOptions& options) {
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const char* cwd = options.cwd.empty() ? nullptr : options.cwd.c_str();

  const pid_t pid = ::fork();
  if (pid < 0) return fail_errno("fork");
  if (pid == 0) {
    if (options.new_process_group) ::setpgid(0, 0);
    const int null_fd = ::open("/dev/null", O_RDWR);
    const int out = options.output_fd >= 0 ? options.output_fd : null_fd;
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(out, STDERR_FILENO);
    ::close_range(3, ~0U, 0);  // no test's sockets or files leak into the server
    if (options.drop_privileges) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(options.gid) != 0 ||
          ::setuid(options.uid) != 0) {
        ::_exit(126);
      }
    }
    if (cwd != nullptr && ::chdir(cwd) != 0) ::_exit(126);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

// Waits for `pid` to exit; nullopt when it is still running after `timeout`.
std::optional<int> wait_exit(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return -1;  // not our child (any more)
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(10ms);
  }
}

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// Runs a tool to completion with its output appended to `log_path`.
Status run_tool(const std::vector<std::string>& args, const std::string& log_path,
                SpawnOptions options) {
  const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return fail_errno("open " + log_path);
  options.output_fd = fd;
  auto pid = spawn(args, options);
  ::close(fd);
  if (!pid) return pid.error();
  const std::optional<int> status = wait_exit(*pid, kToolTimeout);
  if (!status) {
    ::kill(*pid, SIGKILL);
    (void)wait_exit(*pid, 5s);
    return fail(args[0] + " did not finish in time; see " + log_path);
  }
  if (*status != 0) {
    return fail(args[0] + " failed (" + describe_exit(*status) + "); see " + log_path + ":\n" +
                tail_of(log_path));
  }
  return ok_status();
}

// Whether postmaster.pid names `pid` and its status line says "ready" (as
// pg_ctl checks). The pid matters: a killed server leaves its file behind.
bool postmaster_ready(const std::string& data_dir, pid_t pid) {
  std::ifstream in(data_dir + "/postmaster.pid");
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (n == 1 && line != std::to_string(pid)) return false;
    if (n == 8) return line.rfind("ready", 0) == 0;
  }
  return false;
}

bool bind_failed(const std::string& log) {
  return log.find("could not bind") != std::string::npos ||
         log.find("Address already in use") != std::string::npos;
}

}  // namespace

Result<std::unique_ptr<TempPostgres>> TempPostgres::start() { return start({}); }

Result<std::unique_ptr<TempPostgres>> TempPostgres::start(std::vector<std::string> settings) {
  std::unique_ptr<TempPostgres> pg(new TempPostgres());
  pg->settings_ = std::move(settings);
  Status s = pg->init_cluster();
  if (!s) return s.error();
  for (int attempt = 1;; ++attempt) {
    auto port = free_loopback_port();
    if (!port) return port.error();
    pg->port_ = *port;
    s = pg->launch();
    if (s) break;
    if (attempt >= kPortAttempts || !bind_failed(tail_of(pg->log_path_))) return s.error();
  }
  s = run_tool({pg->bindir_ + "/createdb", "-h", "127.0.0.1", "-p", std::to_string(pg->port_), "-U",
                kUser, kDatabase},
               pg->dir_ + "/createdb.log", {});
  if (!s) return s.error();
  return pg;
}

namespace {

// initdb takes about a second, a copy of what it wrote a third of that, and
// the tests start a server hundreds of times. The first server of a user
// keeps a copy of initdb's output beside the servers' directories, named by
// the tools and arguments that made it; later ones copy it. It appears under
// its name whole or not at all (a rename), and is used only when the user
// the server runs as owns it and no one else may read it.
Status create_data_dir(const std::string& bindir, const std::string& dir,
                       const std::string& data_dir, const std::string& base, uid_t owner,
                       const SpawnOptions& options) {
  const std::vector<std::string> initdb{
      bindir + "/initdb", "-D",         data_dir,   "-U", TempPostgres::kUser, "--auth=trust",
      "--encoding=UTF8",  "--locale=C", "--no-sync"};
  std::string recipe;
  for (size_t i = 0; i < initdb.size(); ++i)
    recipe += (i == 2 ? std::string("-") : initdb[i]) + " ";
  std::ostringstream name;
  name << base << "/brickwork-pg-initdb-" << owner << "-" << std::hex
       << std::hash<std::string>{}(recipe);
  const std::string kept = name.str();
  struct stat st {};
  if (::lstat(kept.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == owner &&
      (st.st_mode & 077) == 0 && fs::exists(kept + "/PG_VERSION")) {
    if (run_tool({"/bin/cp", "-a", kept, data_dir}, dir + "/initdb.log", options))
      return ok_status();
    std::error_code ignored;
    fs::remove_all(data_dir, ignored);  // a partial copy: initdb instead
  }
  Status initialised = run_tool(initdb, dir + "/initdb.log", options);
  if (!initialised) return initialised;
  // Keep a copy for the next server; a failure here costs only time.
  const std::string copy = dir + "/initdb-copy";
  if (run_tool({"/bin/cp", "-a", data_dir, copy}, dir + "/initdb.log", options) &&
      ::rename(copy.c_str(), kept.c_str()) != 0) {
    std::error_code ignored;  // another server kept one first
    fs::remove_all(copy, ignored);
  }
  return ok_status();
}

}  // namespace

Status TempPostgres::init_cluster() {
  auto bindir = find_bindir();
  if (!bindir) return bindir.error();
  bindir_ = *bindir;

  if (::geteuid() == 0) {
    // initdb and postgres refuse to run as root.
    const passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr)
      return fail("running as root, but there is no 'postgres' user to run the server as");
    drop_privileges_ = true;
    run_uid_ = pw->pw_uid;
    run_gid_ = pw->pw_gid;
  }

  std::string base = "/tmp";
  if (const char* tmp = std::getenv("TMPDIR"); tmp != nullptr && *tmp != '\0') base = tmp;
  // The socket path ("<dir>/.s.PGSQL.<port>") must fit in sun_path (108 bytes).
  if (base.size() > 60 || (drop_privileges_ && !traversable_by_others(base))) base = "/tmp";
  std::string pattern = base + "/brickwork-pg-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return fail_errno("mkdtemp " + pattern);
  dir_ = pattern;
  data_dir_ = dir_ + "/data";
  log_path_ = dir_ + "/postgres.log";
  if (drop_privileges_ && ::chown(dir_.c_str(), run_uid_, run_gid_) != 0) {
    return fail_errno("chown " + dir_);
  }

  SpawnOptions options;
  options.drop_privileges = drop_privileges_;
  options.uid = run_uid_;
  options.gid = run_gid_;
  options.cwd = dir_;
  Status initialised = create_data_dir(bindir_, dir_, data_dir_, base,
                                       drop_privileges_ ? run_uid_ : ::geteuid(), options);
  if (!initialised) return initialised;
  return require_passwords_for_group();
}

// Members of kPasswordGroup must log in with a password (the stand-in for
// Lakebase, whose password is a credential that expires); everyone else is
// trusted. The first matching line of pg_hba.conf wins.
Status TempPostgres::require_passwords_for_group() {
  const std::string path = data_dir_ + "/pg_hba.conf";
  std::ifstream in(path);
  std::string rest((std::istreambuf_iterator<char>(in)), {});
  const std::string group = std::string("+") + kPasswordGroup;
  std::ofstream out(path, std::ios::trunc);
  out << "local all " << group << " scram-sha-256\n"
      << "host all " << group << " 127.0.0.1/32 scram-sha-256\n"
      << "host all " << group << " ::1/128 scram-sha-256\n"
      << rest;
  if (!out) return fail("cannot write " + path);
  return ok_status();
}

Status TempPostgres::launch() {
  const int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return fail_errno("open " + log_path_);
  SpawnOptions options;
  options.output_fd = fd;
  options.new_process_group = true;  // kill_hard() and cleanup reach every backend
  options.drop_privileges = drop_privileges_;
  options.uid = run_uid_;
  options.gid = run_gid_;
  options.cwd = dir_;
  std::vector<std::string> args{bindir_ + "/postgres", "-D", data_dir_, "-p", std::to_string(port_), "-c",
                    "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + dir_, "-c",
                    "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c",
                    "max_connections=300", "-c", "shared_buffers=32MB", "-c",
                    // As recommended for brickwork's server (docs/PERFORMANCE.md):
                    // the queue tables need vacuuming within seconds, not a minute.
                    "autovacuum_naptime=5s"};
  for (const std::string& setting : settings_) {  // a later -c wins
    args.push_back("-c");
    args.push_back(setting);
  }
  // Extra server settings for profiling, e.g.
  // BRICKWORK_TEMP_PG_SETTINGS="shared_preload_libraries=pg_stat_statements".
  if (const char* extra = std::getenv("BRICKWORK_TEMP_PG_SETTINGS"); extra != nullptr) {
    std::istringstream words(extra);
    for (std::string setting; words >> setting;) {
      args.push_back("-c");
      args.push_back(setting);
    }
  }
  auto pid = spawn(args, options);
  ::close(fd);
  if (!pid) return pid.error();
  pid_ = *pid;

  const auto deadline = std::chrono::steady_clock::now() + kReadyTimeout;
  for (;;) {
    if (std::optional<int> exited = wait_exit(pid_, 0ms)) {
      pid_ = -1;
      return fail("postgres exited during start-up (" + describe_exit(*exited) + "); see " +
                  log_path_ + ":\n" + tail_of(log_path_));
    }
    if (postmaster_ready(data_dir_, pid_)) return ok_status();
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(-pid_, SIGKILL);
      (void)wait_exit(pid_, 5s);
      pid_ = -1;
      return fail("postgres did not accept connections within 30 s; see " + log_path_ + ":\n" +
                  tail_of(log_path_));
    }
    std::this_thread::sleep_for(10ms);
  }
}

std::string TempPostgres::url(std::string_view database) const {
  return "postgresql://" + std::string(kUser) + "@127.0.0.1:" + std::to_string(port_) + "/" +
         std::string(database);
}

Status TempPostgres::stop() {
  if (pid_ <= 0) return ok_status();
  ::kill(pid_, SIGINT);  // fast shutdown: disconnect clients, checkpoint, exit
  std::optional<int> exited = wait_exit(pid_, kStopTimeout);
  if (!exited) {
    ::kill(-pid_, SIGKILL);
    (void)wait_exit(pid_, 5s);
    pid_ = -1;
    return fail("postgres did not stop within 30 s and was killed; see " + log_path_);
  }
  pid_ = -1;
  return ok_status();
}

Status TempPostgres::start_again() {
  if (pid_ > 0) return ok_status();
  if (port_ == 0) return fail("start_again() before start()");
  // The port was free while the server was down, and on a loaded machine a
  // server killed a moment ago may still be letting go of its lock file or
  // shared memory: a start that fails at once is tried twice more.
  Status started = launch();
  for (int attempt = 2; !started && attempt <= 3; ++attempt) {
    spdlog::warn("temp postgres: start {} of 3 failed: {}", attempt - 1, started.error().message);
    std::this_thread::sleep_for(1s);
    started = launch();
  }
  return started;
}

Status TempPostgres::kill_hard() {
  if (pid_ <= 0) return ok_status();
  const pid_t group = pid_;
  ::kill(-group, SIGKILL);
  (void)wait_exit(pid_, 5s);
  pid_ = -1;
  // The backends were the postmaster's children; wait until they are gone so
  // that a restart does not find the old shared memory still attached.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (::kill(-group, 0) == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  return ok_status();
}

TempPostgres::~TempPostgres() {
  if (pid_ > 0) (void)stop();
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

}  // namespace brickwork
