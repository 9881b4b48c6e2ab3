#!/usr/bin/env bash
# A clean Debian 12 root, made once with `debootstrap --variant=minbase
# bookworm` from the mirror this machine's apt uses, its package lists
# fetched, and kept as build/debian-root/bookworm-minbase.tar so later runs
# (the install test, scripts/docker-test.sh's base image) take seconds.
# Prints the tarball's path. Exits 3, saying why, where it cannot be made:
# not root, no debootstrap, or the mirror not reachable.
#   scripts/debian-root.sh               make it if missing, print its path
#   scripts/debian-root.sh --reachable   exit 0 if the mirror answers, else 3
#   BRICKWORK_DEBIAN_MIRROR=http://... scripts/debian-root.sh   another mirror
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "debian-root: $*" >&2; }

# BRICKWORK_DEBIAN_MIRROR, else the first deb822 source (Debian 12's default),
# else sources.list, else Debian's CDN.
mirror="${BRICKWORK_DEBIAN_MIRROR:-}"
[ -n "$mirror" ] || mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
mirror="${mirror:-http://deb.debian.org/debian}"
reachable() {
  /usr/bin/python3 -c 'import sys, urllib.request
urllib.request.urlopen(sys.argv[1].rstrip("/") + "/dists/bookworm/Release", timeout=15)' "$mirror" 2>/dev/null
}
case "${1:-}" in
  --reachable) reachable && exit 0; say "the mirror $mirror is not reachable"; exit 3 ;;
esac

dir=build/debian-root
tarball="$dir/bookworm-minbase.tar"
mkdir -p "$dir"
# One maker at a time: a second caller waits for the first one's root.
exec 9>"$dir/.lock"
flock 9
if [ -s "$tarball" ]; then echo "$tarball"; exit 0; fi

[ "$(id -u)" -eq 0 ] || { say "not root: debootstrap and chroot need root"; exit 3; }
command -v debootstrap >/dev/null || { say "no debootstrap (scripts/install-deps.sh installs it)"; exit 3; }
if ! reachable; then
  say "the mirror $mirror is not reachable"
  exit 3
fi

rootfs=$(mktemp -d "$PWD/$dir/rootfs.XXXXXX")
chmod 0755 "$rootfs"   # the root directory: mktemp makes it private
# debootstrap mounts /proc (and more) inside while it works: unmount before
# removing, and never cross into another file system.
cleanup() {
  grep -o " $rootfs/[^ ]*" /proc/mounts | sort -r | xargs -r -n 1 umount -l 2>/dev/null || true
  rm -rf --one-file-system "$rootfs"
}
trap cleanup EXIT
say "making a Debian 12 root with debootstrap from $mirror (once; log in $dir/debootstrap.log)"
if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$dir/debootstrap.log" 2>&1; then
  tail -n 20 "$dir/debootstrap.log" >&2
  if grep -qiE "couldn't download|failed to resolve|connection (refused|timed out)|temporary failure" "$dir/debootstrap.log"; then
    say "the mirror $mirror is not reachable"
    exit 3
  fi
  exit 1
fi
# Package lists as of now, so `apt-get install ./x.deb` inside needs no update.
cp /etc/resolv.conf "$rootfs/etc/resolv.conf" 2>/dev/null || true
chroot "$rootfs" apt-get update -qq >>"$dir/debootstrap.log" 2>&1 || say "apt-get update inside failed (the test updates again)"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb
tar -C "$rootfs" -cf "$tarball.tmp" .
mv "$tarball.tmp" "$tarball"
echo "$tarball"
