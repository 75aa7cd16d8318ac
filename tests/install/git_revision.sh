#!/usr/bin/env bash
# cmake/EnvdGitRevision.cmake, the build step that names the revision
# `envd version` reports, on throwaway git repositories: a new commit is
# seen without a new configure, a changed tracked file adds "-dirty", an
# unchanged revision leaves the header untouched (nothing recompiles), and a
# tree without .git says "unknown".
# usage: git_revision.sh <source dir>
set -euo pipefail
src=${1:?usage: git_revision.sh <source dir>}
script="$src/cmake/EnvdGitRevision.cmake"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git=$(command -v git)

fail() {
  echo "git_revision: $*" >&2
  exit 1
}
generate() {  # <repo dir> <header>
  cmake "-DSOURCE_DIR=$1" "-DOUTPUT=$2" "-DGIT_EXECUTABLE=$git" -P "$script"
}
revision_in() {  # <header>: the string ENVD_GIT_REVISION is defined as
  sed -n 's/^#define ENVD_GIT_REVISION "\(.*\)"$/\1/p' "$1"
}
expect() {  # <header> <expected revision> <what>
  local got
  got=$(revision_in "$1")
  [[ "$got" == "$2" ]] || fail "$3: expected '$2', got '$got'"
}

repo="$work/repo"
header="$work/out/envd_git_revision.h"
mkdir -p "$repo" "$work/out"
git -C "$repo" init -q
git -C "$repo" -c user.name=t -c user.email=t@t commit -q --allow-empty -m one
echo a >"$repo/file"
git -C "$repo" add file
git -C "$repo" -c user.name=t -c user.email=t@t commit -q -m two
generate "$repo" "$header"
expect "$header" "$(git -C "$repo" rev-parse --short=12 HEAD)" "first build"

# The same revision again: the header keeps its mtime, so nothing rebuilds.
touch -d '2000-01-01 00:00:00' "$header"
generate "$repo" "$header"
[[ $(stat -c %Y "$header") == $(date -d '2000-01-01 00:00:00' +%s) ]] ||
  fail "an unchanged revision rewrote the header"

# A commit after the first build is seen by the next build.
echo b >"$repo/file"
git -C "$repo" -c user.name=t -c user.email=t@t commit -q -am three
generate "$repo" "$header"
expect "$header" "$(git -C "$repo" rev-parse --short=12 HEAD)" "after a commit"

# A tracked file changed: dirty. An untracked file (a build directory) is not.
echo untracked >"$repo/other"
generate "$repo" "$header"
expect "$header" "$(git -C "$repo" rev-parse --short=12 HEAD)" "with an untracked file"
echo c >"$repo/file"
generate "$repo" "$header"
expect "$header" "$(git -C "$repo" rev-parse --short=12 HEAD)-dirty" "with a changed file"

# No git checkout (a source tarball).
mkdir -p "$work/tarball"
generate "$work/tarball" "$header"
expect "$header" "unknown" "outside a checkout"
echo "git_revision: ok"
