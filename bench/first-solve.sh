#!/usr/bin/env bash
# Issue 17's build latency targets, side by side in one run:
#   (1) envd's time from process start to the first Solve byte (the moment
#       the Solve request is handed to gRPC), as ENVD_TIMINGS=1 prints it, on
#       a moby-worker context (the Engine's embedded BuildKit) and on a tcp
#       context (a standalone buildkitd); target: at most 10 ms
#   (2) the wall time of a cached rebuild of a small context:
#       moby-worker: envd build against DOCKER_BUILDKIT=1 docker build (the
#         docker CLI's built-in BuildKit client), both tagging an image in the
#         Engine; target: envd at most 0.9x
#       tcp: envd build against buildctl build, both exporting type=local to a
#         directory; target: envd at most 0.9x
# The go clients' first Solve byte cannot be read from outside; only their
# wall time is compared. Last, each of envd's steps (ENVD_TIMINGS=1's second
# line) as its median over those runs, to show where the time goes.
#
# Method: hyperfine -N (no shell), 3 warm-ups (which fill the build cache),
# then the runs; median wall and mean client CPU (user + sys of the client;
# the daemons' CPU is not included). The first-Solve-byte figures are
# medians over as many separate ENVD_TIMINGS=1 runs, taken between the
# hyperfine runs. The load average is printed with the figures: the machine
# is shared, and a busy CPU inflates every wall time.
#
# Daemons: the Engine at DOCKER_HOST (a unix socket) if it answers, else a
# private one started with tests/services/start.sh (root needed), stopped on
# exit; a private buildkitd (BuildKit's own, ../shared/tools/buildkit or
# ENVD_TEST_BUILDKIT_DIR) on 127.0.0.1, stopped on exit.
#
# Needs: root, hyperfine (apt-get install hyperfine), python3, Debian's
# docker.io CLI (/usr/bin/docker).
# Usage: bench/first-solve.sh [runs]   (default 20)
#   ENVD=/path/to/envd   the envd binary (default build/bin/envd)
#   ENVD_BASELINE=/path/to/envd   another envd (a build of an earlier commit,
#                        with its own modules under its prefix), run in the
#                        same hyperfine runs as a third command, for a before
#                        and after in one run; its wall ratio is to the same
#                        Go client
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
runs="${1:-20}"
base="envd-test/busybox:latest"

fail() {
  echo "bench: $*" >&2
  exit 1
}
command -v hyperfine >/dev/null || fail "hyperfine is missing (apt-get install hyperfine)"
[[ $(id -u) == 0 ]] || fail "buildkitd needs root"
docker_cli=$(command -v /usr/bin/docker || command -v docker || true)
[[ -n "$docker_cli" ]] || fail "no docker CLI (apt-get install docker.io)"
bkdir="${ENVD_TEST_BUILDKIT_DIR:-$repo/../shared/tools/buildkit}"
[[ -x "$bkdir/buildkitd" && -x "$bkdir/buildctl" ]] ||
  fail "no buildkitd and buildctl in '$bkdir' (set ENVD_TEST_BUILDKIT_DIR)"
envd="${ENVD:-$repo/build/bin/envd}"
[[ -x "$envd" ]] || fail "no envd at '$envd' (build it, or set ENVD)"
baseline="${ENVD_BASELINE:-}"
[[ -z "$baseline" || -x "$baseline" ]] || fail "no envd at '$baseline' (ENVD_BASELINE)"

work=$(mktemp -d /tmp/envd-bench-first.XXXXXX)
services=""
daemon=""
cleanup() {
  if [[ -n "$daemon" ]]; then
    kill "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
  fi
  if [[ -n "$services" ]]; then
    bash "$repo/tests/services/stop.sh" "$services" >/dev/null 2>&1 || true
  else
    "$docker_cli" rmi -f bench-first:envd bench-first:docker >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- the daemons ----------------------------------------------------------------
source "$repo/bench/lib/engine.sh"
use_engine "$work/s"
export DOCKER_CONFIG="$work/docker-config" DOCKER_BUILDKIT=1
mkdir -p "$DOCKER_CONFIG"
"$docker_cli" image inspect "$base" >/dev/null 2>&1 || bash scripts/base-image.sh "$base" >&2

source "$repo/bench/lib/standalone-buildkitd.sh"
start_buildkitd "$bkdir" "$work/bk" "$work/buildkitd.log"

# --- the builds -------------------------------------------------------------------
export ENVD_CONFIG_DIR="$work/envd" XDG_CACHE_HOME="$work/cache"
unset ENVD_CONTEXT ENVD_PLUGIN_PATH BUILDKIT_PROGRESS ENVD_TIMINGS
"$envd" context create --name moby --builder moby-worker >/dev/null
"$envd" context create --name tcp --builder tcp --builder-address "127.0.0.1:$port" >/dev/null

# moby-worker: a three-line Dockerfile with a RUN, as bench/build.sh.
moby_ctx="$work/moby-ctx"
mkdir -p "$moby_ctx"
printf 'FROM %s\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\n' "$base" >"$moby_ctx/Dockerfile"
echo "small context" >"$moby_ctx/a.txt"
# tcp: FROM scratch and two COPYs, exported to a directory, as bench/remote-build.sh.
tcp_ctx="$work/tcp-ctx"
mkdir -p "$tcp_ctx"
printf 'FROM scratch\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\n' >"$tcp_ctx/Dockerfile"
echo "small context" >"$tcp_ctx/a.txt"
head -c 65536 /dev/urandom >"$tcp_ctx/b.txt"

envd_moby="$envd --context moby build --progress quiet --network none -t bench-first:envd $moby_ctx"
docker_moby="$docker_cli build -q --network none -t bench-first:docker $moby_ctx"
envd_tcp="$envd --context tcp build --progress quiet --output type=local,dest=$work/out-envd $tcp_ctx"
buildctl_tcp="$bkdir/buildctl --addr $addr build --progress plain --frontend dockerfile.v0 \
--local context=$tcp_ctx --local dockerfile=$tcp_ctx --output type=local,dest=$work/out-buildctl"

baseline_moby=()
baseline_tcp=()
if [[ -n "$baseline" ]]; then
  baseline_moby=(-n baseline "${envd_moby/#$envd/$baseline}")
  baseline_tcp=(-n baseline "${envd_tcp/#$envd/$baseline}")
fi

source "$repo/bench/lib/first-solve-byte.sh"

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# shellcheck disable=SC2086 # the command lines are split on purpose
hyperfine -N --style none --warmup 3 --runs "$runs" --export-json "$work/moby.json" \
  -n envd "$envd_moby" "${baseline_moby[@]}" -n docker "$docker_moby" >/dev/null
hyperfine -N --style none --warmup 3 --runs "$runs" --export-json "$work/tcp.json" \
  -n envd "$envd_tcp" "${baseline_tcp[@]}" -n buildctl "$buildctl_tcp" >/dev/null
for _ in $(seq 1 "$runs"); do
  # shellcheck disable=SC2086
  step_line $envd_moby >>"$work/moby.steps"
  # shellcheck disable=SC2086
  step_line $envd_tcp >>"$work/tcp.steps"
done
for ctx in moby tcp; do
  sed -n 's/.*first Solve byte \([0-9.]*\) ms.*/\1/p' "$work/$ctx.steps" >"$work/$ctx.first"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the report --------------------------------------------------------------------
printf 'Docker Engine %s (embedded BuildKit), docker CLI %s; buildkitd %s (oci worker, native)\n' \
  "$("$docker_cli" version --format '{{.Server.Version}}' 2>/dev/null || echo '?')" \
  "$("$docker_cli" version --format '{{.Client.Version}}' 2>/dev/null || echo '?')" \
  "$("$bkdir/buildkitd" --version | awk '{print $3}')"
printf 'envd %s; %s CPUs (%s); load average %s before, %s after\n' \
  "$("$envd" --version 2>/dev/null | awk '{print $2}')" "$(nproc)" \
  "$(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')" "$load_before" "$load_after"
python3 - "$runs" "$work/moby.json" "$work/tcp.json" "$(median <"$work/moby.first")" \
  "$(median <"$work/tcp.first")" <<'PY'
import json, sys
runs, moby, tcp, moby_first, tcp_first = sys.argv[1:]
print(f"{'median of ' + runs + ' runs':<34} {'first Solve byte':>17} {'wall (s)':>9} {'client CPU (s)':>15} {'wall ratio':>11}")
for label, path, other, first in (("moby-worker", moby, "docker", moby_first),
                                  ("tcp", tcp, "buildctl", tcp_first)):
    results = {r["command"]: r for r in json.load(open(path))["results"]}
    base = results[other]["median"]
    for name in ("envd", "baseline", other):
        if name not in results:
            continue
        r = results[name]
        cpu = r["user"] + r["system"]
        shown = (first + " ms") if name == "envd" else "-"
        print(f"{label + ', ' + name:<34} {shown:>17} {r['median']:>9.3f} {cpu:>15.3f} {r['median'] / base:>10.2f}x")
PY
# Where envd's time goes: each step's median since the process started
# (docs/design/first-solve.md names the steps).
echo "envd's steps, moby-worker: $(step_medians "$work/moby.steps")"
echo "envd's steps, tcp: $(step_medians "$work/tcp.steps")"
