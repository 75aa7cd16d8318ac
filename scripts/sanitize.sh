#!/usr/bin/env bash
# The suites that need no daemon, under sanitizers: AddressSanitizer +
# UndefinedBehaviorSanitizer (the asan preset: the SDK, util, context, output and
# plugin libraries, the real-dlopen plugin suite with its broken modules, the
# driver modules' unit tests, and the CLI suite, which runs the instrumented
# envd binary with every instrumented module) and ThreadSanitizer (the tsan preset: the
# SDK's threaded parts, relays, processes and HTTP, the BuildKit session's
# attachables: file sync, file send, secrets, SSH forwarding, and the output
# library, whose progress display writes from a ticker thread while the build's
# updates arrive on another). A finding fails the run;
# it is fixed, not suppressed (docs/security.md).
# Usage: scripts/sanitize.sh [asan|tsan]...   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --build-only
source scripts/ccache-env.sh
# The asan preset leaves out UBSan's null and alignment checks: they keep a
# record of every pointer use's place, which made envd's executable 54 MB of
# data and 2 million relocations to apply at each start (0.33 s, 0.13 s
# without them, and the CLI suite starts envd thousands of times). A null
# dereference is still reported, by ASan, as a SEGV with its stack, and the
# fuzz preset (clang) keeps both checks over every fuzz target's parser.
# The asan preset's flags apply to every target of build-asan: envd, its
# client library and every module the CLI suite makes envd load are
# instrumented too. The CLI suite (tests/cli) needs no service: every test
# runs, none is filtered out (the cases that want a Docker Engine are in
# tests/e2e and tests/docker-container, not here).
asan_tests=(envd_sdk_test envd_util_test envd_context_test envd_plugin_test envd_plugin_dlopen_test
  envd_plugin_docker_test envd_plugin_docker_container_test envd_plugin_envd_server_test
  envd_plugin_tcp_test envd_output_test envd_cli_test)
tsan_tests=(envd_sdk_test envd_buildkit_attachables_test envd_output_test)
# ASan and TSan stop at the first report. UBSan reports and goes on, and a
# report (or a "runtime error:" in a test's output) fails the run: halting would also turn
# the dlopen suite's deliberately crashing modules (a store to NULL, in the
# scanning child) into an exit status instead of the SIGSEGV it expects.
# Every report, a test's own or that of an envd the CLI suite ran (whose
# stderr the test may only match against, never show), goes to a file in
# build-asan/sanitizer-reports/ (log_path appends the process id); any
# non-empty file there fails the run and is printed.
reports="$PWD/build-asan/sanitizer-reports"
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_string_checks=1:log_path=$reports/asan"
export UBSAN_OPTIONS="print_stacktrace=1:log_path=$reports/ubsan"
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
  # Before the build: it runs the instrumented test binaries to list their
  # tests, and what they report counts too.
  if [[ "$preset" == asan ]]; then
    rm -rf "$reports"
    mkdir -p "$reports"
  fi
  # The dlopen suite loads the test modules it depends on; build them too.
  cmake --build "$dir" -j "$(nproc)" "${targets[@]}"
  for t in "$@"; do
    echo "sanitize: $preset $t" >&2
    local started=$SECONDS ok=1 shard pids=()
    # One shard per CPU, at once (GoogleTest's sharding splits the tests):
    # the CLI suite starts thousands of instrumented envd processes, one after
    # another in each test, and a test uses one CPU at a time.
    for ((shard = 0; shard < shards; shard++)); do
      GTEST_TOTAL_SHARDS=$shards GTEST_SHARD_INDEX=$shard \
        "$dir/bin/$t" --gtest_brief=1 >"$dir/$t.$shard.log" 2>&1 &
      pids+=($!)
    done
    for ((shard = 0; shard < shards; shard++)); do
      local log="$dir/$t.$shard.log"
      wait "${pids[$shard]}" && ! grep -q "runtime error:" "$log" || {
        tail -n 60 "$log" >&2
        echo "sanitize: $t (shard $shard of $shards) failed under $preset (log: $log)" >&2
        ok=0
      }
    done
    if [[ "$preset" == asan ]] && find "$reports" -type f -size +0 | grep -q .; then
      find "$reports" -type f -size +0 -print -exec cat {} \; >&2
      echo "sanitize: sanitizer reports under $preset while $t ran (in $reports)" >&2
      ok=0
    fi
    ((ok)) || exit 1
    echo "sanitize: $preset $t clean in $((SECONDS - started)) s" >&2
  done
}

shards="$(nproc)"
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
