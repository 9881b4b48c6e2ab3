#!/usr/bin/env bash
# The Debian package as a user installs it, in a clean Debian 12 root
# (scripts/debian-root.sh: debootstrap --variant=minbase, cached under build/):
# `apt-get install ./brickwork_*.deb` inside it (chroot; the libraries come
# from the mirror by the package's Depends), then
#   - the system user exists (useradd; then, with systemd installed,
#     systemd-sysusers) and /etc/brickwork's files are conffiles;
#   - `brickwork check` accepts the installed configuration and the shipped
#     example;
#   - `systemd-analyze verify` (the root's systemd) accepts the installed unit, its
#     ExecStart binary and its Documentation= file exist;
#   - `dpkg --purge` removes it cleanly.
# Says so and exits 0 where no root can be made (not root, no debootstrap,
# mirror not reachable). Builds the package first unless it exists.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "test-package: $*"; }
fail() { say "$*" >&2; exit 1; }

ls build/package/brickwork_*.deb >/dev/null 2>&1 || scripts/package.sh deb
deb=$(ls build/package/brickwork_*.deb | head -n 1)
rc=0
tarball=$(scripts/debian-root.sh) || rc=$?
if [ "$rc" -eq 3 ]; then say "skipped: no clean Debian 12 root (above)"; exit 0; fi
[ "$rc" -eq 0 ] || fail "scripts/debian-root.sh failed"

root="$PWD/build/debian-root/install-test"
archives=build/debian-root/archives   # packages downloaded by earlier runs
cleanup() { rm -rf --one-file-system "$root"; }
trap cleanup EXIT
cleanup
mkdir -p "$root" "$archives"
tar -C "$root" --numeric-owner -xf "$tarball"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
find "$archives" -name '*.deb' -exec cp -t "$root/var/cache/apt/archives/" {} +
cp "$deb" "$root/tmp/"
inside() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }

log=build/debian-root/install-test.log
install() { inside apt-get install -y -q --no-install-recommends "/tmp/$(basename "$deb")" >"$log" 2>&1; }
if ! install; then
  # Lists older than the mirror's packages: fetch them again, once.
  inside apt-get update -qq >>"$log" 2>&1 || true
  if ! install; then
    if ! scripts/debian-root.sh --reachable; then say "skipped: the mirror is not reachable"; exit 0; fi
    tail -n 30 "$log"
    fail "apt-get install ./$(basename "$deb") failed in a clean Debian 12 root"
  fi
fi
find "$root/var/cache/apt/archives" -name '*.deb' -exec cp -t "$archives/" {} +
say "installed $(basename "$deb") with its dependencies in a clean Debian 12 root"

# The system user, made by the postinst (useradd here: the root has no systemd).
user=$(inside getent passwd brickwork) || fail "no brickwork user after installing"
uid=$(echo "$user" | cut -d: -f3)
[ "$uid" -lt 1000 ] || fail "brickwork is uid $uid, not a system user"
conffiles=$(inside dpkg-query -W -f='${Conffiles}' brickwork)
grep -q '^ /etc/brickwork/brickwork.yaml ' <<<"$conffiles" || fail "/etc/brickwork/brickwork.yaml is not a conffile"

# What an operator's environment (or /etc/brickwork/brickwork.env) supplies.
settings=(BRICKWORK_CALLBACK_SECRET=install-test-secret-of-at-least-32-characters
          DATABRICKS_HOST=https://adb-1234567890123456.7.azuredatabricks.net DATABRICKS_TOKEN=dapi-install-test)
for config in /etc/brickwork/brickwork.yaml /usr/share/doc/brickwork/examples/brickwork.yaml; do
  inside env "${settings[@]}" brickwork check -c "$config" >"$log" 2>&1 ||
    { cat "$log"; fail "brickwork check -c $config failed in the installed package"; }
done
say "brickwork check accepts /etc/brickwork/brickwork.yaml and the shipped example"

unit=/lib/systemd/system/brickwork.service
[ -f "$root$unit" ] || fail "no $unit"
exec_start=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$root$unit")
[ -x "$root$exec_start" ] || fail "the unit runs $exec_start, which the package does not install"
for doc in $(grep '^Documentation=' "$root$unit" | grep -o 'file://[^ ]*' | cut -c8-); do
  [ -f "$root$doc" ] || fail "the unit's Documentation= $doc does not exist"
done
# Verified with the root's own systemd (not part of a minimal root, nor a
# dependency: brickwork runs without it, in a container).
inside apt-get install -y -q --no-install-recommends systemd >"$log" 2>&1 ||
  { tail -n 30 "$log"; fail "apt-get install systemd failed in the root"; }
find "$root/var/cache/apt/archives" -name '*.deb' -exec cp -t "$archives/" {} +
warnings=$(inside systemd-analyze verify "$unit" 2>&1) || true
[ -z "$warnings" ] || { echo "$warnings"; fail "systemd-analyze verify: $unit has warnings"; }
say "systemd-analyze verify accepts the installed $unit ($exec_start, Documentation= present)"

# Again, now that systemd is there: the user comes from sysusers.d (useradd
# is made unusable, so the fallback would fail the postinst).
inside dpkg --purge brickwork >"$log" 2>&1 || { cat "$log"; fail "dpkg --purge brickwork failed"; }
inside userdel brickwork
chmod a-x "$root/usr/sbin/useradd"
inside dpkg -i "/tmp/$(basename "$deb")" >"$log" 2>&1 || { cat "$log"; fail "dpkg -i with systemd present failed"; }
chmod 0755 "$root/usr/sbin/useradd"
user=$(inside getent passwd brickwork) || fail "no brickwork user from systemd-sysusers"
[ "$(echo "$user" | cut -d: -f5-7)" = "brickwork daemon:/nonexistent:/usr/sbin/nologin" ] ||
  fail "the user is not /usr/lib/sysusers.d/brickwork.conf's: $user"
say "the postinst makes the system user with useradd, and with systemd-sysusers once systemd is installed"

inside dpkg --purge brickwork >"$log" 2>&1 || { cat "$log"; fail "dpkg --purge brickwork failed"; }
[ ! -e "$root/etc/brickwork/brickwork.yaml" ] || fail "purge left /etc/brickwork/brickwork.yaml"
[ ! -e "$root$exec_start" ] || fail "purge left $exec_start"
say "dpkg --purge removes it, conffiles included"
