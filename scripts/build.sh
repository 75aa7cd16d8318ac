#!/usr/bin/env bash
# Configures and builds envd with a CMake preset (default: dev; CI uses ci,
# which turns warnings into errors). Installs missing packages first.
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-dev}"
bash scripts/install-deps.sh --build-only
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
