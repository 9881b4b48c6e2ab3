#!/usr/bin/env bash
# `cmake --install --prefix P` of a built tree (default build/release), for
# P = /usr, /usr/local and /opt/brickwork, into a scratch DESTDIR: the unit
# names the binary, configuration and documentation where they were put, and
# /usr's configuration is /etc/brickwork (not /usr/etc), its unit in
# /lib/systemd/system (Debian 12).
set -euo pipefail
cd "$(dirname "$0")/../.."
tree="${1:-build/release}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "install_layout_test: $*" >&2; exit 1; }

check_prefix() {  # prefix expected-config-dir expected-unit-dir
  local dest
  dest="$work/$(echo "$1" | tr / _)"
  DESTDIR="$dest" cmake --install "$tree" --prefix "$1" >"$work/log" 2>&1 || { cat "$work/log"; fail "cmake --install --prefix $1 failed"; }
  local unit="$dest$3/brickwork.service"
  [ -f "$unit" ] || fail "prefix $1: no unit in $3"
  [ -f "$dest$2/brickwork.yaml" ] || fail "prefix $1: no configuration in $2"
  local path
  for path in $(sed -n 's/^ExecStart\(Pre\)\{0,1\}=\([^ ]*\) .* -c \([^ ]*\)$/\2 \3/p' "$unit") \
              $(grep '^Documentation=' "$unit" | grep -o 'file://[^ ]*' | cut -c8-); do
    [ -e "$dest$path" ] || fail "prefix $1: the unit names $path, which was not installed"
  done
  grep -q "^ExecStart=$1/bin/brickwork daemon -c $2/brickwork.yaml$" "$unit" ||
    fail "prefix $1: $(grep '^ExecStart=' "$unit")"
}
check_prefix /usr /etc/brickwork /lib/systemd/system
check_prefix /usr/local /usr/local/etc/brickwork /usr/local/lib/systemd/system
check_prefix /opt/brickwork /etc/opt/brickwork/brickwork /opt/brickwork/lib/systemd/system
echo "install_layout_test: the unit, binary and configuration agree for prefixes /usr, /usr/local and /opt/brickwork"
