# Sourced by the build scripts: with ccache installed, compiles go through it,
# keyed on paths relative to the repository, so every build directory of
# every clone shares the objects (ccache's default cache, ~/.cache/ccache,
# unless CCACHE_DIR says otherwise). Sets `launcher` to the CMake arguments.
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
  export CCACHE_DIR="${CCACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ccache}"
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
