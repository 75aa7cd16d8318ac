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
# same run. Then what the four at once cost in CPU time: the daemon's (all
# its threads, from /proc, median per run) and the clients' (hyperfine's
# rusage of the shell, which includes the four clients it waited for), and
# the floor that puts under the wall: that CPU time spread over every CPU
# with none idle. A floor over 1.2x the slowest build alone means no client
# can meet the target on this machine.
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

# Before each run of the four at once: the previous run ends, this one starts.
daemon_cpu_marks

# hyperfine runs each command through no shell (-N); output goes nowhere.
for tool in envd buildctl; do
  args=()
  for i in 1 2 3 4; do args+=(-n "$tool alone $i" "$("${tool}_cmd" "$i")"); done
  hyperfine -N --style none --warmup 2 --runs "$runs" --export-json "$work/$tool-alone.json" \
    "${args[@]}" >/dev/null
  : >"$work/$tool.cpu"
  hyperfine -N --style none --warmup 2 --runs "$runs" --export-json "$work/$tool-four.json" \
    -p "bash $work/mark.sh $work/$tool.cpu" -n "$tool four at once" "bash $work/$tool-four.sh" \
    >/dev/null
  echo "end $(bash "$work/daemon-cpu.sh")" >>"$work/$tool.cpu"
done

version=$("$bkdir/buildkitd" --version | awk '{print $3}')
printf 'buildkitd %s (oci worker, native snapshotter) on 127.0.0.1, envd %s, %s CPUs (%s), load %s\n' \
  "$version" "$("$envd" --version 2>/dev/null | awk '{print $2}')" "$(nproc)" \
  "$(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')" \
  "$(cut -d' ' -f1-3 /proc/loadavg)"
PYTHONPATH="$repo/bench/lib${PYTHONPATH:+:$PYTHONPATH}" python3 - "$runs" "$work" "$(nproc)" <<'PY'
import json, sys
from daemon_cpu import median_per_run
runs, work, cpus = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])

rows = []
for tool in ("envd", "buildctl"):
    results = {r["command"]: r for part in ("alone", "four")
               for r in json.load(open(f"{work}/{tool}-{part}.json"))["results"]}
    alone = max(results[f"{tool} alone {i}"]["median"] for i in range(1, 5))
    four = results[f"{tool} four at once"]
    clients = four["user"] + four["system"]
    daemon = median_per_run(f"{work}/{tool}.cpu", runs)
    rows.append((tool, alone, four["median"], clients, daemon, (clients + daemon) / cpus))
print(f"{'--no-cache, 1 MiB context, median of ' + str(runs):<38} {'slowest alone (s)':>18} "
      f"{'four at once (s)':>17} {'ratio':>7}")
for tool, alone, four, *_ in rows:
    print(f"{tool:<38} {alone:>18.3f} {four:>17.3f} {four / alone:>6.2f}x")
print(f"{'the four at once, CPU time':<38} {'clients (s)':>18} {'daemon (s)':>17} "
      f"{'floor on ' + str(cpus) + ' CPUs (s)':>20} {'floor ratio':>12}")
for tool, alone, _, clients, daemon, floor in rows:
    print(f"{tool:<38} {clients:>18.3f} {daemon:>17.3f} {floor:>20.3f} {floor / alone:>11.2f}x")
PY
