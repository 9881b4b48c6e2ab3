#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install, build, and run every test,
# then the whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
#   BRICKWORK_TEST_QUICK=1 scripts/test.sh   skips the sanitizer pass
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

started=$(date +%s)
step() { echo; echo "=== $* ($(( $(date +%s) - started ))s)"; }

step "build (RelWithDebInfo, -Wall -Wextra -Werror)"
scripts/build.sh debug
step "tests"
# End-to-end tests mostly wait on timers and the network, so three at a time
# fit two cores.
ctest --test-dir build/debug --output-on-failure -j 3 --timeout 300

if [ "${BRICKWORK_TEST_QUICK:-0}" != "1" ]; then
  step "build with AddressSanitizer + UndefinedBehaviorSanitizer"
  scripts/build.sh asan
  step "tests under ASan + UBSan"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp" \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build/asan --output-on-failure -j 3 --timeout 600
fi
if [ "${BRICKWORK_TEST_QUICK:-0}" != "1" ]; then
  step "fuzzing every parser of outside bytes (${FUZZ_SECONDS:-20}s each)"
  FUZZ_SECONDS="${FUZZ_SECONDS:-20}" scripts/fuzz.sh
fi
step "all tests passed"
