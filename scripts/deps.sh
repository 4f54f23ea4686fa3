#!/usr/bin/env bash
# Installs every Debian 12 package pgphase needs to build, test and benchmark.
# Idempotent: does nothing when all packages are present.
set -euo pipefail
PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config clang libclang-rt-14-dev clang-format
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libboost-program-options1.81-dev
  libpg-query-dev libprotobuf-c-dev libssl-dev openssl libjemalloc-dev prometheus-cpp-dev catch2 libpq-dev
  postgresql-15 postgresql-client-15 postgresql-contrib pgbouncer prometheus
  default-jdk-headless libpostgresql-jdbc-java curl procps util-linux chromium fonts-dejavu-core
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
# The Debian postgresql package starts a cluster on 5432; pgphase's tests and demo run their
# own throwaway clusters, so the packaged one is left as it is.
