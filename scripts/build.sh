#!/usr/bin/env bash
# Configures and builds one flavour of brickwork into build/<flavour>.
#   scripts/build.sh release            optimised, for the demo and benchmarks
#   scripts/build.sh debug              RelWithDebInfo, for the main test run
#   scripts/build.sh asan               AddressSanitizer + UndefinedBehaviorSanitizer
#   scripts/build.sh tsan               ThreadSanitizer
set -euo pipefail
cd "$(dirname "$0")/.."
flavour="${1:-debug}"
shift || true
case "$flavour" in
  release) args=(-DCMAKE_BUILD_TYPE=Release) ;;
  debug)   args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan)    args=(-DCMAKE_BUILD_TYPE=Debug "-DBRICKWORK_SANITIZE=address,undefined") ;;
  # -O1 -g1: a third faster to compile than -O2 -g, still fast enough to run
  # and with line numbers in every report.
  tsan)    args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1"
                 "-DBRICKWORK_SANITIZE=thread") ;;
  *) echo "unknown flavour: $flavour" >&2; exit 2 ;;
esac
dir="build/$flavour"
cmake -S . -B "$dir" -G Ninja "${args[@]}" "$@" >/dev/null
# Two cores: two jobs. Compiler memory is not the limit here.
# BUILD_TARGETS="a b" builds only those targets (and what they need).
read -ra targets <<< "${BUILD_TARGETS:-all}"
ninja -C "$dir" -j "$(nproc)" "${targets[@]}"
