#!/usr/bin/env bash
# The unit suites that need no daemon, under sanitizers: AddressSanitizer +
# UndefinedBehaviorSanitizer (the asan preset: the SDK, util, context and
# plugin libraries, the real-dlopen plugin suite with its broken modules, and
# the driver modules' unit tests) and ThreadSanitizer (the tsan preset: the
# SDK's threaded parts, relays, processes and HTTP, and the BuildKit session's
# attachables: file sync, file send, secrets, SSH forwarding). A finding fails the run;
# it is fixed, not suppressed (docs/security.md).
# Usage: scripts/sanitize.sh [asan|tsan]...   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --build-only
source scripts/ccache-env.sh
asan_tests=(envd_sdk_test envd_util_test envd_context_test envd_plugin_test envd_plugin_dlopen_test
  envd_plugin_docker_test envd_plugin_envd_server_test envd_plugin_tcp_test)
tsan_tests=(envd_sdk_test envd_buildkit_attachables_test)
# ASan and TSan stop at the first report. UBSan reports and goes on, and a
# "runtime error:" in a test's output fails the run: halting would also turn
# the dlopen suite's deliberately crashing modules (a store to NULL, in the
# scanning child) into an exit status instead of the SIGSEGV it expects.
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1"
# Debian's gRPC, Abseil and protobuf are not built with TSan: their locks are
# invisible to it, so memory handed over through them (a message gRPC's thread
# filled, read by the caller) would be reported as a race. TSan's documented
# answer is to ignore accesses made inside such libraries; envd's own
# accesses are all still checked.
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:ignore_noninstrumented_modules=1"

run_preset() {
  local preset="$1"
  shift
  local dir="build-$preset"
  cmake --preset "$preset" "${launcher[@]}" >/dev/null
  local targets=()
  for t in "$@"; do targets+=(--target "$t"); done
  # The dlopen suite loads the test modules it depends on; build them too.
  cmake --build "$dir" -j "$(nproc)" "${targets[@]}"
  for t in "$@"; do
    echo "sanitize: $preset $t" >&2
    "$dir/bin/$t" --gtest_brief=1 >"$dir/$t.log" 2>&1 && ! grep -q "runtime error:" "$dir/$t.log" || {
      tail -n 60 "$dir/$t.log" >&2
      echo "sanitize: $t failed under $preset (log: $dir/$t.log)" >&2
      exit 1
    }
  done
}

presets=("$@")
((${#presets[@]} > 0)) || presets=(asan tsan)
for preset in "${presets[@]}"; do
  case "$preset" in
    asan) run_preset asan "${asan_tests[@]}" ;;
    tsan) run_preset tsan "${tsan_tests[@]}" ;;
    *) echo "sanitize: unknown preset '$preset' (asan or tsan)" >&2; exit 2 ;;
  esac
done
echo "sanitize: ${presets[*]} clean" >&2
