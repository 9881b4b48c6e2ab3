#!/usr/bin/env bash
# Builds what brickwork ships into build/package/:
#   scripts/package.sh          both of the below
#   scripts/package.sh deb      brickwork_<version>_<arch>.deb from the optimised
#                               build (build/release, prefix /usr), checked by
#                               lintian where it is installed: any error fails
#   scripts/package.sh wheel    the job helper, brickwork_job-<version>-py3-none-any.whl,
#                               built offline with Debian's setuptools (no download)
#   PACKAGE_LINT=0 scripts/package.sh deb    without lintian
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
out=build/package
mkdir -p "$out"
say() { echo "package: $*"; }

deb() {
  # Debian's prefix: the binary in /usr/bin, the configuration in /etc/brickwork,
  # the unit in /lib/systemd/system (packaging/install.cmake).
  BUILD_TARGETS=brickwork scripts/build.sh release -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
  rm -rf "$out"/brickwork_*.deb "$out/cpack"
  if ! cpack --config build/release/CPackConfig.cmake -B "$PWD/$out/cpack" >"$out/cpack.log" 2>&1; then
    cat "$out/cpack.log" >&2
    exit 1
  fi
  mv "$out"/cpack/brickwork_*.deb "$out/"
  rm -rf "$out/cpack"
  local deb
  deb=$(ls "$out"/brickwork_*.deb)
  say "$deb ($(dpkg-deb -f "$deb" Depends))"
  if [ "${PACKAGE_LINT:-1}" = 0 ]; then return; fi
  if ! command -v lintian >/dev/null; then
    say "lintian skipped: not installed (scripts/install-deps.sh installs it)"
    return
  fi
  # Errors fail; warnings are shown. Running as root is lintian's own warning.
  if ! lintian --fail-on error --allow-root --tag-display-limit 0 "$deb" >"$out/lintian.log" 2>&1; then
    cat "$out/lintian.log" >&2
    say "lintian found errors in $deb" >&2
    exit 1
  fi
  say "lintian: no errors ($(grep -c '^W:' "$out/lintian.log" || true) warnings, in $out/lintian.log)"
}

wheel() {
  # Built from a copy: setuptools writes build/ and *.egg-info next to its input.
  local src="$out/wheel-src"
  rm -rf "$src" "$out"/brickwork_job-*.whl
  cp -r integrations/databricks "$src"
  if ! /usr/bin/python3 -m pip wheel --quiet --no-deps --no-build-isolation --no-index \
       --wheel-dir "$out" "$src" >"$out/wheel.log" 2>&1; then
    cat "$out/wheel.log" >&2
    exit 1
  fi
  rm -rf "$src"
  say "$(ls "$out"/brickwork_job-*.whl)"
}

case "$what" in
  deb) deb ;;
  wheel) wheel ;;
  all) deb; wheel ;;
  *) echo "usage: scripts/package.sh [deb|wheel]" >&2; exit 2 ;;
esac
