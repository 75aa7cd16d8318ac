#!/usr/bin/env bash
# Configures and builds envd with a CMake preset (default: dev; CI uses ci,
# which turns warnings into errors, and ci-subset). Installs missing packages
# first. With ccache installed (scripts/install-deps.sh installs it), compiles
# go through it, keyed on paths relative to the repository, so every build
# directory of every clone shares the objects (ccache's default cache,
# ~/.cache/ccache, unless CCACHE_DIR says otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-dev}"
bash scripts/install-deps.sh --build-only
source scripts/ccache-env.sh
cmake --preset "$preset" "${launcher[@]}" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
