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
  # The job helper's wheel, built offline and tested from a virtual
  # environment (scripts/test-job-helper.sh).
  python3-setuptools python3-wheel python3-pip python3-venv
  # The Debian package: lintian (scripts/package.sh), and a clean Debian 12
  # root to install it in (scripts/debian-root.sh, scripts/test-package.sh).
  debootstrap lintian
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
# Clusters that are up now are someone's own (a developer's Postgres): left alone.
online_clusters() {
  command -v pg_lsclusters >/dev/null 2>&1 || return 0
  pg_lsclusters -h 2>/dev/null | awk '$4 ~ /^online/ {print $1 "/" $2}'
}
online_before=$(online_clusters)
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# A cluster that installing postgresql created and started is not used (tests
# and the demo start their own servers): stop only those.
for cluster in $(online_clusters); do
  if ! grep -qxF "$cluster" <<<"$online_before"; then
    echo "install-deps: stopping cluster $cluster, started by installing postgresql"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "${cluster%%/*}" "${cluster#*/}" stop 2>/dev/null || true
  fi
done
