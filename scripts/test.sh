#!/usr/bin/env bash
# Installs dependencies, builds, and runs the whole test suite (unit, integration against a real
# PostgreSQL 15, real clients, fuzzing) through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --timeout 900 --parallel "$(nproc)" "$@"
