#!/bin/bash
# Docker HEALTHCHECK: GET /healthz on the daemon's metrics listener (contract
# section 10: 200 while its loops are alive). Only bash's /dev/tcp, timeout,
# head and grep: all in Debian's minimal base, so the image needs no curl.
#   BRICKWORK_HEALTH_ADDRESS=HOST:PORT   default 127.0.0.1:9464; it must match
#   daemon.metrics_listen (the image's configuration listens on 0.0.0.0:9464).
#   BRICKWORK_HEALTH_PATH                default /healthz (/readyz for readiness)
set -u
address="${BRICKWORK_HEALTH_ADDRESS:-127.0.0.1:9464}"
path="${BRICKWORK_HEALTH_PATH:-/healthz}"
host="${address%:*}"
port="${address##*:}"
exec timeout 4 bash -c '
  exec 3<>"/dev/tcp/$1/$2" || exit 1
  printf "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" "$3" "$1" >&3
  head -n 1 <&3 | grep -q "^HTTP/1\.[01] 200"
' healthcheck "$host" "$port" "$path"
