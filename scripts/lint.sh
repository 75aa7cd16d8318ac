#!/usr/bin/env bash
# Static checks CI runs after the build: every C/C++ source matches
# .clang-format, and clang-tidy (.clang-tidy) finds nothing in the product code.
# Usage: scripts/lint.sh [build dir with compile_commands.json] (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
for tool in clang-format run-clang-tidy; do
  command -v "$tool" >/dev/null || { echo "lint: $tool is missing (apt-get install clang-format clang-tidy)" >&2; exit 1; }
done
mapfile -t files < <(git ls-files '*.cpp' '*.hpp' '*.h' '*.c')
clang-format --dry-run -Werror "${files[@]}"
echo "lint: ${#files[@]} files formatted" >&2
# The core writes its data through util::data_out() and util::data_fd()
# (core/util/data_out.hpp): once main() starts, descriptor 1 and stdio's
# stdout are stderr, where a module's stray print goes. Writing to them is
# a bug, in the core and in the SDK code it compiles in; flushing them (a
# module's lines before an error) is not.
stray_pattern='fmt::print(ln)?\(("|\s*$)|std::cout|\bprintf\(|\bputs\(|[(, ]stdout[,)]|STDOUT_FILENO|\b(isatty|write|ioctl)\(1\b'
hits=$(git grep -nE "$stray_pattern" -- 'core/*.cpp' 'core/*.hpp' 'sdk/src/*.cpp' 'sdk/src/*.hpp' \
  ':!*_test.cpp' ':!*test_support*' ':!core/util/data_out.cpp' ':!core/plugin/scan_helper_main.cpp') ||
  (($? == 1)) || { echo "lint: git grep failed" >&2; exit 1; }
stray=$(grep -vE 'fflush\(stdout\)|was_closed_at_start\(STDOUT_FILENO\)|if \(fd == STDOUT_FILENO\)|^[^:]+:[0-9]+: *//' <<<"$hits" || true)
if [[ -n "$stray" ]]; then
  echo "$stray" >&2
  echo "lint: the core writes data to stdout directly; use util::data_out() or util::data_fd()" >&2
  exit 1
fi
# Product code only: core/, sdk/src/, plugins/, without the *_test.cpp files.
# Each file once: a source compiled into several targets (envd-client and a
# test) has an entry per target, and run-clang-tidy would check it each time.
mkdir -p "$build/lint"
python3 - "$build/compile_commands.json" "$build/lint/compile_commands.json" <<'PY'
import json, os, sys
seen, unique = set(), []
for entry in json.load(open(sys.argv[1])):
    path = os.path.normpath(os.path.join(entry["directory"], entry["file"]))
    if path not in seen:
        seen.add(path)
        unique.append(entry)
json.dump(unique, open(sys.argv[2], "w"), indent=0)
PY
run-clang-tidy -p "$build/lint" -quiet -j "$(nproc)" \
  "^$PWD/(core|sdk/src|plugins)/.*(?<!_test)\.cpp$" >"$build/clang-tidy.log" 2>&1 || {
  sed 's/\x1b\[[0-9;]*m//g' "$build/clang-tidy.log" | grep -E '(warning|error):' | sort -u >&2
  echo "lint: clang-tidy found problems (full log: $build/clang-tidy.log)" >&2
  exit 1
}
echo "lint: clang-tidy clean" >&2
