#!/usr/bin/env bash
# scripts/install-deps.sh against stand-ins for dpkg-query, apt-get and
# PostgreSQL's cluster tools (first on PATH): a cluster that was up before it
# ran is never stopped; one that installing postgresql started is.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/bin"
stub() { printf '#!/usr/bin/env bash\n%s\n' "$2" >"$work/bin/$1"; chmod +x "$work/bin/$1"; }
# One package missing (postgresql), everything else installed.
stub dpkg-query '[ "${@: -1}" = postgresql ] || echo "install ok installed"'
# Installing starts the clusters listed in $STARTS (as postgresql's postinst does).
stub apt-get '[ "$1" = install ] && cat "$STATE/starts" >>"$STATE/online"; exit 0'
stub pg_lsclusters 'while read -r c; do echo "${c%%/*} ${c#*/} 5432 online postgres /x /y"; done <"$STATE/online"'
stub pg_ctlcluster 'shift; echo "$1/$2" >>"$STATE/stopped"'
stub sudo 'exec "$@"'
export STATE="$work"

run() {  # online-before starts -> prints the clusters stopped
  for c in $1; do echo "$c"; done >"$work/online"
  for c in $2; do echo "$c"; done >"$work/starts"
  : >"$work/stopped"
  PATH="$work/bin:$PATH" scripts/install-deps.sh >"$work/log" 2>&1 || { cat "$work/log"; exit 1; }
  tr '\n' ' ' <"$work/stopped" | sed 's/ $//'
}
expect() {  # description expected actual
  if [ "$2" != "$3" ]; then
    echo "install_deps_test: $1: stopped '$3', expected '$2'" >&2
    exit 1
  fi
}
expect "a developer's running cluster" "" "$(run "15/main" "")"
expect "a cluster the install started, beside a developer's" "15/main" "$(run "14/dev" "15/main")"
expect "no cluster at all" "" "$(run "" "")"
echo "install_deps_test: only clusters that installing postgresql started are stopped"
