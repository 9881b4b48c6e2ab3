#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install, build, run `brickwork demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
echo "demo: building (first build takes a few minutes)..."
BUILD_TARGETS=brickwork scripts/build.sh release
exec build/release/brickwork demo
