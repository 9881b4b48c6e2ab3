#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a bounded time
# (FUZZ_SECONDS, default 30) from the seed corpus in tests/fuzz/corpus.
# A crash leaves its input in build/fuzz/artifacts/: add it to the unit tests.
#   scripts/fuzz.sh --build-only    build the targets, run nothing
#   scripts/fuzz.sh --no-build      run targets built before
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-30}"
mode="${1:-}"
if [ "$mode" != "--no-build" ]; then
  CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBRICKWORK_FUZZ=ON -DBRICKWORK_WERROR=OFF >/dev/null
  ninja -C build/fuzz -j "$(nproc)" fuzz_targets
fi
[ "$mode" = "--build-only" ] && exit 0
mkdir -p build/fuzz/artifacts
for target in command completion config run_info; do
  work="build/fuzz/corpus/$target"
  mkdir -p "$work"
  cp -n tests/fuzz/corpus/$target/* "$work/" 2>/dev/null || true
  echo "fuzz: $target for ${seconds}s"
  "build/fuzz/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -max_len=65536 \
    -artifact_prefix=build/fuzz/artifacts/ -print_final_stats=1 "$work" 2>&1 |
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|SUMMARY|crash-" || true
  if ls build/fuzz/artifacts/crash-* build/fuzz/artifacts/leak-* build/fuzz/artifacts/timeout-* >/dev/null 2>&1; then
    echo "fuzz: $target found a failing input:" build/fuzz/artifacts/*
    exit 1
  fi
done
echo "fuzz: no crashes"
