#!/bin/bash
# Initialises a throwaway cluster (password from $POSTGRES_PASSWORD_FILE,
# scram-sha-256 over TCP) with database $POSTGRES_DB, then runs the server.
set -euo pipefail
data=/tmp/pgdata
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
if [ ! -s "$data/PG_VERSION" ]; then
  pw=$(mktemp)
  head -n 1 "${POSTGRES_PASSWORD_FILE:?}" >"$pw"
  initdb -D "$data" --username="$user" --pwfile="$pw" --auth-host=scram-sha-256 \
    --auth-local=trust >/dev/null
  rm -f "$pw"
  pg_ctl -D "$data" -o "-c listen_addresses='' -k /tmp" -w start >/dev/null
  [ "$db" = postgres ] || createdb -h /tmp -U "$user" "$db"
  pg_ctl -D "$data" -w stop >/dev/null
fi
exec postgres -D "$data" -c listen_addresses=127.0.0.1 -k /tmp -p "$PGPORT"
