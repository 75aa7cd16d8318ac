#!/usr/bin/env bash
# The whole test suite, as CI runs it: install what is missing, build with
# warnings as errors, check formatting, run every test with CTest, run each
# fuzz target for 15 seconds (the fuzz preset, built with clang) and the unit
# suites under sanitizers (scripts/sanitize.sh). Then
# prove that a build of a subset of the modules (the ENVD_PLUGIN_* options)
# builds and passes its tests: the ci-subset preset (only the tcp builder and
# the docker runner), whose tests that need no real services run too. ccache
# shares the objects of the two builds, so the second one compiles little.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each phase says how long it took, so a slow CI run shows where its time went.
phase() {
  local name="$1" started=$SECONDS rc=0
  shift
  "$@" || rc=$?
  if ((rc != 0)); then
    echo "test.sh: $name failed (exit $rc) after $((SECONDS - started)) s" >&2
    exit "$rc"
  fi
  echo "test.sh: $name took $((SECONDS - started)) s" >&2
}
# CTest, and when a test failed, that test's output again at the very end
# (the last lines of its log): CI keeps the tail of a failed run, and with
# 1,000 tests the output of the failed one is long gone from it by then.
run_ctest() {
  local preset="$1" dir="$2" rc=0
  ctest --preset "$preset" -j 2 || rc=$?
  if ((rc != 0)) && [[ -f "$dir/Testing/Temporary/LastTest.log" ]]; then
    awk -v keep=40 '
      /^[0-9]+\/[0-9]+ Testing: / { name = $0; sub(/^[^:]*: /, "", name); n = 0; passed = 0; next }
      /^Output:$/ { in_output = 1; getline; next }
      /^<end of output>$/ { in_output = 0; next }
      in_output { lines[n++] = $0; next }
      /^Test Passed\.$/ { passed = 1; next }
      /^"[^"]*" end time: / && !passed {
        print "\n---- " name ": the last lines of its output ----"
        for (i = (n > keep ? n - keep : 0); i < n; i++) print lines[i]
      }' "$dir/Testing/Temporary/LastTest.log" >&2
  fi
  return "$rc"
}
phase install bash scripts/install-deps.sh
phase build bash scripts/build.sh ci
phase lint bash scripts/lint.sh
phase ctest run_ctest ci build
# Every fuzz target under libFuzzer, ASan and UBSan, briefly, and the unit
# suites that need no daemon under ASan + UBSan and TSan (docs/security.md).
phase fuzz bash scripts/fuzz.sh 15
phase sanitize bash scripts/sanitize.sh
phase subset-build bash scripts/build.sh ci-subset
phase subset-ctest run_ctest ci-subset build-subset
echo "test.sh: everything passed in $SECONDS s" >&2
