#!/usr/bin/env bash
# The machine-readable contract (schemas/): the AsyncAPI document parses with
# the AsyncAPI parser, the JSON Schemas compile and refuse what brickwork
# refuses, every shipped configuration validates, the README's command table
# matches `brickwork --help`, and (given a capture file) every message the
# end-to-end tests saw agrees with the schemas.
#   scripts/check-contract.sh [--binary build/debug/brickwork] [--capture FILE]
# The end-to-end tests write FILE when BRICKWORK_CONTRACT_CAPTURE=FILE is set.
set -euo pipefail
cd "$(dirname "$0")/.."
binary="" capture=""
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$(realpath "$2")"; shift 2 ;;
    --capture) capture="$(realpath "$2")"; shift 2 ;;
    *) echo "usage: $0 [--binary PATH] [--capture FILE]" >&2; exit 2 ;;
  esac
done
cd tools/contract
# The locked packages from the npm registry (from npm's cache when there),
# again whenever package-lock.json changed since.
if ! cmp -s package-lock.json node_modules/.installed-lock.json 2>/dev/null; then
  npm ci --ignore-scripts --no-audit --no-fund --prefer-offline
  cp package-lock.json node_modules/.installed-lock.json
fi
BRICKWORK_BINARY="$binary" BRICKWORK_CONTRACT_CAPTURE="$capture" node --test contract.test.mjs
