#!/usr/bin/env bash
# Four builds at once on one builder against the slowest of the same four run
# alone, for `envd build` (a tcp context) and `buildctl build`, both clients
# of one standalone buildkitd (BuildKit's own v0.11.6 from
# ../shared/tools/buildkit, or ENVD_TEST_BUILDKIT_DIR) on 127.0.0.1.
# Four projects (FROM scratch, COPY of a 1 MiB file of their own random bytes),
# each built with --no-cache to a local directory, so every run transfers its
# context, solves and exports. Target (issue 17): the four together take at
# most 1.2x the slowest one alone.
# Reported: medians over the runs (hyperfine, 2 warm-ups): each build alone,
# the four at once (one shell starting four clients and waiting for them),
# and the ratio of the two; the same for buildctl, on the same daemon in the
# same run.
#
# Needs: root (buildkitd), hyperfine (apt-get install hyperfine), python3.
# Usage: bench/concurrent-builds.sh [runs]   (default 10)
#   ENVD=/path/to/envd   the envd binary (default build/bin/envd; built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
runs="${1:-10}"

fail() {
  echo "bench: $*" >&2
  exit 1
}

# shellcheck source=bench/lib/standalone-buildkitd.sh
source "$repo/bench/lib/standalone-buildkitd.sh"
start_standalone_bench concurrent

envd_cmd() {
  echo "$envd build --no-cache --progress quiet --output type=local,dest=$work/out-envd-$1 $work/p$1"
}
buildctl_cmd() {
  echo "$bkdir/buildctl --addr $addr build --no-cache --progress plain --frontend dockerfile.v0" \
    "--local context=$work/p$1 --local dockerfile=$work/p$1 --output type=local,dest=$work/out-buildctl-$1"
}
for i in 1 2 3 4; do
  mkdir -p "$work/p$i"
  printf 'FROM scratch\nCOPY data.bin /data.bin\n' >"$work/p$i/Dockerfile"
  head -c 1048576 /dev/urandom >"$work/p$i/data.bin"
done
for tool in envd buildctl; do
  {
    echo "# the four builds at once; any failure fails the run"
    for i in 1 2 3 4; do echo "$("${tool}_cmd" "$i") >/dev/null 2>&1 & p$i=\$!"; done
    echo 'wait $p1 && wait $p2 && wait $p3 && wait $p4'
  } >"$work/$tool-four.sh"
done

# hyperfine runs each command through no shell (-N); output goes nowhere.
for tool in envd buildctl; do
  args=()
  for i in 1 2 3 4; do args+=(-n "$tool alone $i" "$("${tool}_cmd" "$i")"); done
  args+=(-n "$tool four at once" "bash $work/$tool-four.sh")
  hyperfine -N --style none --warmup 2 --runs "$runs" --export-json "$work/$tool.json" "${args[@]}" >/dev/null
done

version=$("$bkdir/buildkitd" --version | awk '{print $3}')
printf 'buildkitd %s (oci worker, native snapshotter) on 127.0.0.1, envd %s, %s CPUs (%s), load %s\n' \
  "$version" "$("$envd" --version 2>/dev/null | awk '{print $2}')" "$(nproc)" \
  "$(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')" \
  "$(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$runs" "$work/envd.json" "$work/buildctl.json" <<'PY'
import json, sys
runs = sys.argv[1]
print(f"{'--no-cache, 1 MiB context, median of ' + runs:<40} {'slowest alone (s)':>18} {'four at once (s)':>17} {'ratio':>7}")
for tool, path in (("envd", sys.argv[2]), ("buildctl", sys.argv[3])):
    results = {r["command"]: r for r in json.load(open(path))["results"]}
    alone = max(results[f"{tool} alone {i}"]["median"] for i in range(1, 5))
    four = results[f"{tool} four at once"]["median"]
    print(f"{tool:<40} {alone:>18.3f} {four:>17.3f} {four / alone:>6.2f}x")
PY
