#!/usr/bin/env bash
# Runs every fuzz target (tests/fuzz) under libFuzzer, with AddressSanitizer
# and UndefinedBehaviorSanitizer, for SECONDS each (default 30), starting
# from its seed corpus in tests/fuzz/corpus/<target>/. New inputs go to
# build-fuzz/corpus/<target>/ (kept between runs, never into the repository);
# a crash, leak, hang or broken property leaves its input in
# build-fuzz/findings/ and fails the run. CI runs it briefly; for a long run:
#   scripts/fuzz.sh 3600            # an hour per target
#   scripts/fuzz.sh 600 address     # one target
# Once a finding is fixed, copy its input into tests/fuzz/corpus/<target>/:
# the replay tests (ctest -L fuzz) then run it in every build.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
shift || true
bash scripts/install-deps.sh --build-only
source scripts/ccache-env.sh
cmake --preset fuzz "${launcher[@]}" >/dev/null
cmake --build --preset fuzz -j "$(nproc)"

targets=("$@")
if ((${#targets[@]} == 0)); then
  for bin in build-fuzz/fuzz/fuzz_*; do targets+=("${bin##*/fuzz_}"); done
fi
mkdir -p build-fuzz/findings
for target in "${targets[@]}"; do
  [[ -x "build-fuzz/fuzz/fuzz_$target" ]] || { echo "fuzz: no target '$target'" >&2; exit 2; }
done
# One target per CPU at once: libFuzzer runs one input at a time, so each
# target still gets SECONDS of a whole CPU.
fuzz_target() {
  local target="$1" bin="build-fuzz/fuzz/fuzz_$1" log="build-fuzz/findings/$1.log"
  mkdir -p "build-fuzz/corpus/$target"
  # -timeout: an input slower than 10 s is a hang; -rss_limit_mb: a leak or
  # an allocation a hostile file can force.
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="build-fuzz/findings/$target-" -print_final_stats=1 \
    "build-fuzz/corpus/$target" "tests/fuzz/corpus/$target" >"$log" 2>&1
}
report() {
  local target="$1" rc="$2" log="build-fuzz/findings/$1.log"
  if ((rc != 0)); then
    failed+=("$target")
    tail -n 40 "$log" >&2
  fi
  echo "fuzz: $target for ${seconds}s: $(grep -E '^stat::(number_of_executed_units|new_units_added)' "$log" | tr '\n' ' ')" >&2
}
failed=()
declare -A running=()
for target in "${targets[@]}"; do
  while ((${#running[@]} >= $(nproc))); do
    # Whichever ends first frees its CPU.
    wait -n -p done_pid "${!running[@]}" && rc=0 || rc=$?
    report "${running[$done_pid]}" "$rc"
    unset "running[$done_pid]"
  done
  fuzz_target "$target" &
  running[$!]="$target"
done
for pid in "${!running[@]}"; do
  wait "$pid" && rc=0 || rc=$?
  report "${running[$pid]}" "$rc"
done
if ((${#failed[@]} > 0)); then
  echo "fuzz: findings in ${failed[*]} (inputs in build-fuzz/findings/)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, nothing found" >&2
