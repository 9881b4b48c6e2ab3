#pragma once
// `brickwork bench` (docs/PERFORMANCE.md): measures one daemon from outside,
// through the external contract only (commands in, status events out, the
// Databricks simulator's view of runs), so it runs unchanged on any version of
// the daemon. Starts a throwaway Postgres, librdkafka's mock cluster and the
// simulator in this process, and the daemon as a child process
// (`<daemon_binary> daemon -c <generated yaml>`) so its memory and restart can
// be measured. Prints one table; exits 0 when every measure ran, whatever the
// numbers (no verdict fails it), 1 when one could not run.
#include <cstdint>
#include <string>
#include <vector>

namespace brickwork {

struct BenchOptions {
  // Every measure once at a small size, in well under a minute: replaces the
  // sizes below (200 workflows, 500 waiting, 2 s of latency and pgbench).
  bool smoke = false;
  // The brickwork binary to run as the daemon; empty: this program.
  std::string daemon_binary;
  int64_t workflows = 20000;             // throughput: start commands queued before the start
  std::vector<int64_t> waiting{20000};   // in-flight sizes for intake, memory and restart
  int64_t intake = 20000;                // one-step workflows per intake measure (~8 s each)
  // Finished workflows seeded and purged beside an intake measure; 0: not
  // measured. The figure is 1M (--purge 1000000); the default is
  // smaller so the full run stays in minutes.
  int64_t purge = 100000;
  double latency_rate = 333;             // two-step workflows/s (3 inputs each)
  int32_t latency_seconds = 10;
  // Partitions of the commands and events topics; the status and
  // dead-letter topics have 4. The mock cluster finds a fetch's offset by
  // walking the partition's produce batches from the oldest, so more
  // partitions (shorter logs) cost it less per fetch, but a restarted daemon
  // more to take over (docs/PERFORMANCE.md).
  int32_t partitions = 4;
  int32_t pgbench_seconds = 10;
  // poll_every of the waiting workflows' step: their polling safety net costs
  // W / poll_every runs/get per second, a separate cost from holding W.
  std::string waiting_poll_every = "1h";
  // Extra keys of the daemon's `daemon:` section, as a YAML flow-mapping body
  // ("batch_max_wait: 5ms, effect_workers: 16"); empty: the defaults.
  std::string daemon_settings;
  bool keep = false;  // keep the working directory (config, daemon logs)
  // The throwaway server's settings: "stock" (fsync, synchronous commit,
  // autovacuum as a default PostgreSQL 15 has them) or "tuned" (fsync off,
  // synchronous_commit off, autovacuum_naptime 5 s: what the tests use).
  std::string postgres_profile = "stock";
  // pg_stat_statements in the server; prints where Postgres spent its time
  // and the plans of the hot queries after the load.
  bool pg_stats = false;
  // Minutes of one-step workflows at half the throughput measure's rate,
  // reporting per minute the workflows finished and the dead rows of the
  // hot tables (0: not run).
  int32_t long_run_minutes = 0;
};

int run_bench(const BenchOptions& options);

}  // namespace brickwork
