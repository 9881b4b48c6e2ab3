#!/usr/bin/env bash
# Checks systemd/brickwork.service without a running systemd: every directive
# is known to this systemd (`systemd-analyze verify`), and its exposure score
# (`systemd-analyze security --offline`) stays at or below 1.5.
# Skips with a message where systemd-analyze is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
unit=systemd/brickwork.service
max_exposure=15   # tenths: 1.5

if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "check-systemd: skipped (no systemd-analyze on this machine)"
  exit 0
fi

# verify also insists that ExecStart's binary exists; check the directives
# against a copy that runs /bin/true instead, and fail on any warning (an
# unknown or misspelt key is only a warning to systemd, then ignored).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed 's#/usr/bin/brickwork#/bin/true#g' "$unit" >"$tmp/brickwork.service"
warnings=$(systemd-analyze verify "$tmp/brickwork.service" 2>&1 || true)
if [ -n "$warnings" ]; then
  echo "$warnings" >&2
  echo "check-systemd: $unit has warnings" >&2
  exit 1
fi

if ! report=$(systemd-analyze security --offline=yes --threshold="$max_exposure" "$unit" 2>&1); then
  echo "$report" | grep -v '✓' >&2
  echo "check-systemd: exposure of $unit is above 1.5" >&2
  exit 1
fi
echo "check-systemd: $unit verified; $(echo "$report" | grep -o 'Overall exposure level.*')"
