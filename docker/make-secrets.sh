#!/usr/bin/env bash
# Creates the compose stack's secrets (docker/compose.yaml) as random values in
# docker/secrets/, keeping any that exist. The directory is private (0700);
# the files are 0644 because Compose (outside Swarm) bind-mounts them as they
# are and the container's user (uid 10001) must read them.
#   docker/make-secrets.sh                 create the missing ones
#   DATABRICKS_TOKEN=dapi... docker/make-secrets.sh   a real workspace's PAT
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
mkdir -p "$dir"
chmod 0700 "$dir"
random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
write() {  # name value
  if [ ! -s "$dir/$1" ]; then
    (umask 022; printf '%s\n' "$2" >"$dir/$1")
    echo "make-secrets: wrote $dir/$1"
  fi
}
write callback_secret "$(random_hex 32)"
write postgres_password "$(random_hex 16)"
# The simulator accepts any token; a real workspace needs a real one.
write databricks_token "${DATABRICKS_TOKEN:-local-simulator}"
