#!/usr/bin/env bash
# The performance benchmark (docs/PERFORMANCE.md): one daemon, a throwaway
# Postgres, librdkafka's mock cluster and the Databricks simulator on this
# machine, and pgbench on the same Postgres as the yardstick. Prints one table.
#
#   scripts/bench.sh            the full run (builds build/release if missing)
#   scripts/bench.sh --smoke    every measure once at a small size (< 1 min)
#   scripts/bench.sh --workspace          only the real-workspace profile (a few minutes)
#   scripts/bench.sh --workspace --smoke  the same, small
#
# Sizes (environment):
#   BENCH_WORKFLOWS=20000        throughput: start commands queued before the daemon starts
#   BENCH_WAITING=20000          in-flight sizes, comma-separated (e.g. 20000,100000)
#   BENCH_INTAKE=20000           workflows per intake measure
#   BENCH_PURGE=100000           finished workflows purged beside an intake measure
#                                (the issue's 1M: BENCH_PURGE=1000000; 0 skips it)
#   BENCH_LATENCY_RATE=333       two-step workflows/s (3 input events each)
#   BENCH_LATENCY_SECONDS=10
#   BENCH_PGBENCH_SECONDS=10
#   BENCH_PARTITIONS=4           partitions of the commands and events topics (the
#                                mock's fetch cost grows with a partition's log:
#                                docs/PERFORMANCE.md); status and dead letters have 4
#   BENCH_WAITING_POLL_EVERY=1h  poll_every of the waiting workflows' step
#   BENCH_DAEMON_SETTINGS=       extra keys of the daemon's `daemon:` section,
#                                e.g. "batch_max_wait: 5ms, effect_workers: 16"
#   BENCH_BINARY=build/release/brickwork   the binary (bench driver and daemon)
#   BENCH_KEEP=1                 keep the working directory (config, daemon logs)
#   BENCH_WORKSPACE=0            skip the real-workspace profile after the others
#   BENCH_POSTGRES=stock         the server's settings: stock (durable: fsync and
#                                synchronous_commit on, autovacuum as shipped) or tuned
#                                (fsync off, synchronous_commit off, autovacuum_naptime 5s)
#   BENCH_PG_STATS=1             pg_stat_statements and the hot queries' plans, after the load
#   BENCH_LONG_RUN_MINUTES=0     minutes at half the peak rate (10 for the long-run measure)
set -euo pipefail
cd "$(dirname "$0")/.."
binary="${BENCH_BINARY:-build/release/brickwork}"
if [[ ! -x "$binary" ]]; then
  if [[ -n "${BENCH_BINARY:-}" ]]; then
    echo "bench: $binary is not an executable" >&2
    exit 2
  fi
  BUILD_TARGETS=brickwork scripts/build.sh release
fi
# The real-workspace profile (docs/PERFORMANCE.md "A real workspace"): its
# own subcommand, run after the other measures or alone with --workspace.
workspace_args=()
[[ -n "${BENCH_KEEP:-}" ]] && workspace_args+=(--keep)
if [[ "${1:-}" == "--workspace" ]]; then
  shift
  exec "$binary" bench-workspace "${workspace_args[@]}" "$@"
fi
args=()
[[ -n "${BENCH_WORKFLOWS:-}" ]] && args+=(--workflows "$BENCH_WORKFLOWS")
[[ -n "${BENCH_WAITING:-}" ]] && args+=(--waiting "$BENCH_WAITING")
[[ -n "${BENCH_INTAKE:-}" ]] && args+=(--intake "$BENCH_INTAKE")
[[ -n "${BENCH_PURGE:-}" ]] && args+=(--purge "$BENCH_PURGE")
[[ -n "${BENCH_LATENCY_RATE:-}" ]] && args+=(--latency-rate "$BENCH_LATENCY_RATE")
[[ -n "${BENCH_LATENCY_SECONDS:-}" ]] && args+=(--latency-seconds "$BENCH_LATENCY_SECONDS")
[[ -n "${BENCH_PGBENCH_SECONDS:-}" ]] && args+=(--pgbench-seconds "$BENCH_PGBENCH_SECONDS")
[[ -n "${BENCH_PARTITIONS:-}" ]] && args+=(--partitions "$BENCH_PARTITIONS")
[[ -n "${BENCH_WAITING_POLL_EVERY:-}" ]] && args+=(--waiting-poll-every "$BENCH_WAITING_POLL_EVERY")
[[ -n "${BENCH_DAEMON_SETTINGS:-}" ]] && args+=(--daemon-settings "$BENCH_DAEMON_SETTINGS")
[[ -n "${BENCH_KEEP:-}" ]] && args+=(--keep)
[[ -n "${BENCH_POSTGRES:-}" ]] && args+=(--postgres "$BENCH_POSTGRES")
[[ -n "${BENCH_PG_STATS:-}" ]] && args+=(--pg-stats)
[[ -n "${BENCH_LONG_RUN_MINUTES:-}" ]] && args+=(--long-run-minutes "$BENCH_LONG_RUN_MINUTES")
"$binary" bench "${args[@]}" "$@"
[[ "${BENCH_WORKSPACE:-1}" == 0 ]] || "$binary" bench-workspace "${workspace_args[@]}" "$@"
