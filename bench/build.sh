#!/usr/bin/env bash
# `envd build` (moby-worker context) against `DOCKER_BUILDKIT=1 docker build`,
# both on the same Docker Engine and its embedded BuildKit, same Dockerfile:
#   (a) cached rebuild of a small context: median of several runs, in rounds
#       of both clients (one hyperfine run each, one warm-up, order swapped)
#   (b) a context of 10,000 files x 4 KiB plus one 256 MiB file, COPY . /ctx and
#       a trivial RUN with --network none, built with --no-cache; the context
#       directory is renamed before every run, so neither client can reuse an
#       earlier transfer (docker keys its reuse on the directory's path, envd
#       keys it on the directory) and every run sends the whole context, into
#       an empty build cache on the private Engine (hyperfine's --prepare
#       renames and prunes, outside the timing)
#   (c) the context of (b) sent once into a fixed directory, one 4 KiB file
#       changed, and built again: the bytes each client sent for the context
#       on the rebuild, as the daemon reports them ("transferring ..." in
#       plain progress), against the whole context's
# For each: wall time, the CLIENT's CPU time (user + sys) and its peak
# resident memory, medians.
#
# What is measured: hyperfine times the runs (wall time per run; the CPU time
# of the client process and every descendant it waited for, as hyperfine's
# mean per command and round). envd has no children; docker build has none
# either without buildx. The daemon's CPU time (dockerd, BuildKit,
# containerd, the RUN container) is not included. hyperfine does not measure
# memory: one more run of each under /usr/bin/time gives the peak RSS.
#
# docker: /usr/bin/docker when present (Debian's docker.io CLI, whose
# DOCKER_BUILDKIT=1 builder is built in and talks to the Engine's /session and
# /grpc itself), else the first docker on PATH; a CLI that needs the missing
# buildx plugin fails the benchmark with its own message.
#
# Engine: the one at DOCKER_HOST if it answers, else a private one started
# with tests/services/start.sh in a temporary directory (root needed) and
# stopped on exit. The base image is envd-test/busybox:latest (made offline by
# scripts/base-image.sh if missing).
#
# Usage: bench/build.sh [runs]   (default 9 for (a), rounded up to rounds of 3; 3 for (b))
#   ENVD=/path/to/envd   the envd binary (default build/bin/envd; built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
runs="${1:-9}"
big_runs=3
base="envd-test/busybox:latest"

envd="${ENVD:-$repo/build/bin/envd}"
if [[ ! -x "$envd" ]]; then
  bash scripts/build.sh dev >/dev/null
  envd="$repo/build/bin/envd"
fi
docker_cli=$(command -v /usr/bin/docker || command -v docker || true)
[[ -n "$docker_cli" ]] || { echo "bench: no docker CLI on PATH" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "bench: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "bench: hyperfine is missing (apt-get install hyperfine)" >&2; exit 1; }

work=$(mktemp -d /tmp/envd-bench.XXXXXX)
services=""
cleanup() {
  if [[ -n "$services" ]]; then
    bash "$repo/tests/services/stop.sh" "$services" >/dev/null 2>&1 || true
  elif [[ -n "${docker_cli:-}" ]]; then
    "$docker_cli" rmi -f bench-small:envd bench-small:docker bench-big:envd bench-big:docker \
      >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

source "$repo/bench/lib/engine.sh"
use_engine "$work/s"
export DOCKER_CONFIG="$work/docker-config" DOCKER_BUILDKIT=1
mkdir -p "$DOCKER_CONFIG"
"$docker_cli" image inspect "$base" >/dev/null 2>&1 || bash scripts/base-image.sh "$base" >&2

# envd in a private configuration with a moby-worker context on this engine.
export ENVD_CONFIG_DIR="$work/envd" XDG_CACHE_HOME="$work/cache"
unset ENVD_CONTEXT ENVD_PLUGIN_PATH BUILDKIT_PROGRESS
"$envd" context create --name bench --builder moby-worker --use >/dev/null

# Runs "$@" under /usr/bin/time; prints "<wall s> <user+sys s> <peak RSS MiB>". Fails loudly
# if the command fails.
measure() {
  local log="$work/time.log" out="$work/cmd.log"
  if ! /usr/bin/time -o "$log" -f '%e %U %S %M' "$@" >"$out" 2>&1; then
    echo "bench: '$*' failed:" >&2
    tail -n 20 "$out" >&2
    exit 1
  fi
  awk '{ printf "%.3f %.3f %.1f\n", $1, $2 + $3, $4 / 1024 }' "$log"
}

# Median of the numbers on stdin.
median() {
  sort -n | awk '{a[NR]=$1} END {printf "%.3f", (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'
}

# Appends, for each result of hyperfine's JSON export $1 (in the order of the
# commands), "<wall s> <user+sys s>" per run to the file named by $2, $3, ...:
# every run's wall time, and the command's mean CPU time (hyperfine 1.15
# exports CPU time only as a mean over the command's runs).
collect() {
  python3 - "$@" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
for result, path in zip(results, sys.argv[2:]):
    cpu = result["user"] + result["system"]
    with open(path, "a") as out:
        for wall in result["times"]:
            out.write(f"{wall:.4f} {cpu:.4f}\n")
PY
}

# --- (a) cached rebuild of a small context ---------------------------------
# In rounds: each round is one hyperfine run of both clients (round_runs runs
# each after one warm-up), the order swapped from round to round, so neither
# client always meets the daemon first; between rounds, one ENVD_TIMINGS=1
# build gives the floor.
small="$work/small"
mkdir -p "$small"
printf 'FROM %s\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\n' "$base" >"$small/Dockerfile"
echo "small context" >"$small/a.txt"
envd_small_argv=("$envd" build --progress quiet --network none -t bench-small:envd "$small")
docker_small_argv=("$docker_cli" build -q --network none -t bench-small:docker "$small")
# As hyperfine takes a command (split as a shell would; the paths hold no spaces).
envd_small="${envd_small_argv[*]}"
docker_small="${docker_small_argv[*]}"
round_runs=3
rounds=$(((runs + round_runs - 1) / round_runs))
runs=$((rounds * round_runs))
: >"$work/a.envd"
: >"$work/a.docker"
: >"$work/a.floor"
for round in $(seq 1 "$rounds"); do
  if ((round % 2)); then
    hyperfine -N --style none --warmup 1 --runs "$round_runs" \
      --export-json "$work/a.json" "$envd_small" "$docker_small" >/dev/null
    collect "$work/a.json" "$work/a.envd" "$work/a.docker"
  else
    hyperfine -N --style none --warmup 1 --runs "$round_runs" \
      --export-json "$work/a.json" "$docker_small" "$envd_small" >/dev/null
    collect "$work/a.json" "$work/a.docker" "$work/a.envd"
  fi
  # The Solve call's duration, as envd timed it: the daemon's solve plus the
  # session's few round trips. No client can finish a build faster.
  ENVD_TIMINGS=1 "${envd_small_argv[@]}" 2>&1 >/dev/null |
    sed -n 's/^envd: timings: .*solve \([0-9.]*\) s.*/\1/p' >>"$work/a.floor"
done
# Peak resident memory, which hyperfine does not measure: one more run each.
a_rss_envd=$(measure "${envd_small_argv[@]}" | cut -d' ' -f3)
a_rss_docker=$(measure "${docker_small_argv[@]}" | cut -d' ' -f3)

# --- (b) large context --------------------------------------------------------
big="$work/big-0"
mkdir -p "$big/files"
python3 "$repo/bench/lib/small-files.py" "$big/files"
head -c $((256 * 1024 * 1024)) /dev/urandom >"$big/large.bin"
printf 'FROM %s\nCOPY . /ctx\nRUN true\n' "$base" >"$big/Dockerfile"
: >"$work/b.envd"
: >"$work/b.docker"
n=0
rename() {
  local next="$work/big-$((n + 1))"
  mv "$work/big-$n" "$next"
  n=$((n + 1))
  big="$next"
}
# Into an empty build cache, as the target says: the private Engine's build
# cache is emptied before every run. An Engine of the user's (DOCKER_HOST) is
# never pruned; its runs start from whatever cache it has.
prune=true
if [[ -n "$services" ]]; then prune="$docker_cli builder prune -af"; fi
# One hyperfine run of each client per round, envd first; each run's
# --prepare renames the directory to the name its command builds and empties
# the cache, outside the timing.
for _ in $(seq 1 "$big_runs"); do
  from="$work/big-$n"
  to_envd="$work/big-$((n + 1))"
  to_docker="$work/big-$((n + 2))"
  hyperfine --style none --runs 1 --export-json "$work/b.json" \
    --prepare "mv $from $to_envd && $prune >/dev/null" \
    --prepare "mv $to_envd $to_docker && $prune >/dev/null" \
    "$envd build --progress quiet --no-cache --network none -t bench-big:envd $to_envd" \
    "$docker_cli build -q --no-cache --network none -t bench-big:docker $to_docker" >/dev/null
  collect "$work/b.json" "$work/b.envd" "$work/b.docker"
  n=$((n + 2))
  big="$to_docker"
done
rename
$prune >/dev/null
b_rss_envd=$(measure "$envd" build --progress quiet --no-cache --network none -t bench-big:envd "$big" |
  cut -d' ' -f3)
rename
$prune >/dev/null
b_rss_docker=$(measure "$docker_cli" build -q --no-cache --network none -t bench-big:docker "$big" |
  cut -d' ' -f3)

# --- (c) a rebuild after one file changed -------------------------------------
sent() { python3 "$repo/bench/lib/sent-bytes.py" "$1"; }
rebuild_sent() {  # name build-command...: sends the context, changes a file, rebuilds
  local name="$1"
  shift
  "$@" >"$work/c.$name.full" 2>&1 || { tail -n 20 "$work/c.$name.full" >&2; exit 1; }
  head -c 4096 /dev/urandom >"$big/files/d07/f00007"
  "$@" >"$work/c.$name.rebuild" 2>&1 || { tail -n 20 "$work/c.$name.rebuild" >&2; exit 1; }
  echo "$(sent "$work/c.$name.full") $(sent "$work/c.$name.rebuild")"
}
# A directory of a new name for each: docker reuses a transfer keyed on the
# path, and (b) built this one last with docker.
rename
c_envd=$(rebuild_sent envd "$envd" build --progress plain --network none -t bench-big:envd "$big")
rename
c_docker=$(rebuild_sent docker "$docker_cli" build --progress plain --network none -t bench-big:docker "$big")

# --- report ---------------------------------------------------------------------
row() {  # label file peak-RSS
  printf '%-60s %12s %14s %14s\n' "$1" "$(cut -d' ' -f1 "$2" | median)" "$(cut -d' ' -f2 "$2" | median)" \
    "$3"
}
engine_version=$("$docker_cli" version --format '{{.Server.Version}}' 2>/dev/null || echo "?")
client_version=$("$docker_cli" version --format '{{.Client.Version}}' 2>/dev/null || echo "?")
printf 'Docker Engine %s (embedded BuildKit), docker CLI %s, %s CPUs (%s)\n' "$engine_version" \
  "$client_version" "$(nproc)" "$(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')"
printf '%-60s %12s %14s %14s\n' "command" "wall (s)" "client CPU (s)" "peak RSS (MiB)"
row "(a) cached rebuild, envd, median of $runs" "$work/a.envd" "$a_rss_envd"
row "(a) cached rebuild, docker build, median of $runs" "$work/a.docker" "$a_rss_docker"
printf '%-60s %12s %14s %14s\n' "(a) the daemon's Solve alone (the floor), median of $rounds" \
  "$(median <"$work/a.floor")" "-" "-"
row "(b) 10,000 x 4 KiB + 256 MiB, envd, median of $big_runs" "$work/b.envd" "$b_rss_envd"
row "(b) 10,000 x 4 KiB + 256 MiB, docker build, median of $big_runs" "$work/b.docker" "$b_rss_docker"
printf '%-60s %12s %14s\n' "(c) context bytes sent, one 4 KiB file changed" "first build" "rebuild"
printf '%-60s %12s %14s\n' "(c) envd" $c_envd
printf '%-60s %12s %14s\n' "(c) docker build" $c_docker
