#!/usr/bin/env bash
# Formatting check: every C/C++ source matches .clang-format.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null; then
  echo "lint: clang-format is not installed (apt-get install clang-format)" >&2
  exit 1
fi
mapfile -t files < <(git ls-files '*.cpp' '*.hpp' '*.h' '*.c')
clang-format --dry-run -Werror "${files[@]}"
echo "lint: ${#files[@]} files formatted" >&2
