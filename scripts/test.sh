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
bash scripts/install-deps.sh
bash scripts/build.sh ci
bash scripts/lint.sh
ctest --preset ci -j 2
# Every fuzz target under libFuzzer, ASan and UBSan, briefly, and the unit
# suites that need no daemon under ASan + UBSan and TSan (docs/security.md).
bash scripts/fuzz.sh 15
bash scripts/sanitize.sh
bash scripts/build.sh ci-subset
ctest --preset ci-subset -j 2
