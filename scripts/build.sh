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
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
  export CCACHE_DIR="${CCACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ccache}"
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake --preset "$preset" "${launcher[@]}" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
