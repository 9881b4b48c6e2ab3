#!/usr/bin/env bash
# Installs every Debian 12 package brickwork needs to build, test and run the
# demo. Safe to run again; uses sudo when not root.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache git
  librdkafka-dev libpqxx-dev libpq-dev libyaml-cpp-dev
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libboost-system1.81-dev
  libssl-dev libcli11-dev libspdlog-dev libfmt-dev libsystemd-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev
  postgresql postgresql-client
  clang libclang-rt-14-dev
  # The job-side helper's tests (integrations/databricks) and the static check
  # of docker/compose.yaml (scripts/check-docker.sh).
  python3-confluent-kafka python3-yaml
  # The contract checks (scripts/check-contract.sh: AsyncAPI parser, ajv).
  nodejs
)
# npm comes with some nodejs builds and as a package of its own in Debian.
if ! command -v npm >/dev/null 2>&1; then PACKAGES+=(npm); fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The packaged cluster is not used: tests and the demo start their own servers.
if command -v pg_lsclusters >/dev/null 2>&1 && pg_lsclusters -h 2>/dev/null | grep -q online; then
  $SUDO pg_ctlcluster --skip-systemctl-redirect 15 main stop 2>/dev/null || true
fi
