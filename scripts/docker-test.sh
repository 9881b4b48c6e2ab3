#!/usr/bin/env bash
# Builds the image and runs docker/compose.yaml for real on a Docker engine:
# the stack starts in order (health checks, the one-shot migrate), both
# daemons report healthy on /healthz, and a workflow submitted inside a
# container succeeds. Needs a reachable engine (`docker info`) and Compose
# (`docker compose` or docker-compose). scripts/test.sh runs it when an
# engine is reachable or BRICKWORK_DOCKER_TEST=1.
#
# Where no image registry is reachable (as on the build machines), it
# `docker import`s the Debian 12 root of scripts/debian-root.sh (debootstrap
# --variant=minbase bookworm from the apt mirror this machine uses; once, kept
# as brickwork-test/debian:12), and docker/compose.test.yaml swaps Apache
# Kafka for librdkafka's mock cluster and postgres:15 for Debian's PostgreSQL.
# The image is the shipped Dockerfile's, installing the .deb that
# scripts/package.sh built on this host (its host-package stage), so nothing
# is compiled twice.
#   BRICKWORK_DEBIAN_IMAGE=debian:12-slim scripts/docker-test.sh   a base of your own
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "docker-test: $*"; }

if ! docker info >/dev/null 2>&1; then
  say "no Docker engine reachable (docker info failed)" >&2
  exit 1
fi
if docker compose version >/dev/null 2>&1; then
  compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose_cmd=(docker-compose)
else
  say "neither 'docker compose' nor docker-compose is installed" >&2
  exit 1
fi

# ---- a Debian 12 base image
base="${BRICKWORK_DEBIAN_IMAGE:-}"
if [ -z "$base" ]; then
  if docker image inspect debian:12-slim >/dev/null 2>&1 ||
     timeout 60 docker pull -q debian:12-slim >/dev/null 2>&1; then
    base=debian:12-slim
  else
    base=brickwork-test/debian:12
  fi
fi
if [ "$base" = brickwork-test/debian:12 ] && ! docker image inspect "$base" >/dev/null 2>&1; then
  tarball=$(scripts/debian-root.sh) || { say "no registry and no Debian 12 root (above)" >&2; exit 1; }
  docker import - "$base" <"$tarball" >/dev/null
fi
say "base image $base"

# ---- images
mkdir -p build
PACKAGE_LINT=0 scripts/package.sh deb >build/docker-build.log 2>&1 ||
  { tail -n 30 build/docker-build.log; exit 1; }
build() {
  docker build --network host "$@" >>build/docker-build.log 2>&1 ||
    { tail -n 30 build/docker-build.log; say "docker build $* failed" >&2; exit 1; }
}
build --build-arg DEBIAN_IMAGE="$base" --build-arg PACKAGE_STAGE=host-package \
  -t brickwork:local -f docker/Dockerfile .
build --build-arg DEBIAN_IMAGE="$base" -f docker/test/postgres.Dockerfile -t brickwork-test/postgres:15 .

uid=$(docker run --rm --entrypoint id brickwork:local -u)
[ "$uid" = 10001 ] || { say "the image runs as uid $uid, not 10001" >&2; exit 1; }
docker inspect --format '{{json .Config.Healthcheck.Test}}' brickwork:local | grep -q healthcheck ||
  { say "the image has no HEALTHCHECK" >&2; exit 1; }
deb=$(ls build/package/brickwork_*.deb | head -n 1)
installed=$(docker run --rm --entrypoint dpkg-query brickwork:local -W -f '${Version}' brickwork) ||
  { say "the image has no brickwork package installed" >&2; exit 1; }
[ "$installed" = "$(dpkg-deb -f "$deb" Version)" ] ||
  { say "the image holds brickwork $installed, not $deb" >&2; exit 1; }
say "image brickwork:local: package brickwork $installed, uid 10001, HEALTHCHECK set"

# ---- the stack
docker/make-secrets.sh >/dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
TEST_SHARED_DIR=$(mktemp -d /tmp/brickwork-docker-test.XXXXXX)
chmod 0777 "$TEST_SHARED_DIR"   # the mock cluster (uid 10001) writes its address here
export TEST_SHARED_DIR
TEST_PG_PORT=$(free_port); TEST_SIM_PORT=$(free_port)
TEST_METRICS_PORT_1=$(free_port); TEST_METRICS_PORT_2=$(free_port)
export TEST_PG_PORT TEST_SIM_PORT TEST_METRICS_PORT_1 TEST_METRICS_PORT_2
project="brickwork-test-$$"
compose=("${compose_cmd[@]}" -p "$project" -f docker/compose.yaml -f docker/compose.test.yaml)
cleanup() {
  "${compose[@]}" logs --no-color >build/docker-test.log 2>&1 || true
  "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
  rm -rf "$TEST_SHARED_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM   # the EXIT trap still takes the stack down

# The mock cluster picks its own port: start it, read its address, then the rest.
"${compose[@]}" up -d kafka >/dev/null 2>&1
for _ in $(seq 1 100); do [ -s "$TEST_SHARED_DIR/bootstrap" ] && break; sleep 0.2; done
MOCK_KAFKA_BROKERS=$(head -n 1 "$TEST_SHARED_DIR/bootstrap")
export MOCK_KAFKA_BROKERS
say "mock Kafka at $MOCK_KAFKA_BROKERS"
if ! "${compose[@]}" up -d >build/docker-up.log 2>&1; then
  cat build/docker-up.log
  say "compose up failed; logs in build/docker-test.log" >&2
  exit 1
fi

d1=$("${compose[@]}" ps -q brickwork-1)
d2=$("${compose[@]}" ps -q brickwork-2)
wait_healthy() {  # name container
  local status=starting
  for _ in $(seq 1 90); do
    status=$(docker inspect --format '{{.State.Health.Status}}' "$2")
    if [ "$status" = healthy ]; then say "$1 healthy (GET /healthz)"; return 0; fi
    sleep 1
  done
  docker logs --tail 30 "$2" 2>&1
  say "$1 is $status, not healthy" >&2
  exit 1
}
wait_healthy brickwork-1 "$d1"
wait_healthy brickwork-2 "$d2"

# Submitted through one daemon's container, read back through the other's.
id="docker-test-$$"
docker exec "$d1" brickwork submit extract_transform --id "$id" >/dev/null
state=""
for _ in $(seq 1 90); do
  state=$(docker exec "$d2" brickwork status "$id" --json 2>/dev/null |
          python3 -c 'import json, sys; print(json.load(sys.stdin)["state"])' 2>/dev/null || true)
  case "$state" in succeeded|failed|canceled) break ;; esac
  sleep 1
done
if [ "$state" != succeeded ]; then
  say "workflow $id ended '${state:-unknown}', not succeeded; logs in build/docker-test.log" >&2
  exit 1
fi
say "workflow $id succeeded through the compose stack"
