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
# then the runs in rounds: each round is one hyperfine run of every client
# (ROUND_RUNS runs each, default 5, one warm-up each), the clients' order
# swapped from one round to the next. A daemon whose cached builds drift
# over a minute (the Engine's do) then drifts under every client alike,
# where one long run of each, back to back, compares two stretches of the
# daemon's time. Medians over all rounds' runs; the wall ratio's 95%
# interval resamples whole rounds (bootstrap, 2,000 draws, fixed seed), so
# a target is met when the interval's top is under it. Mean client CPU
# (user + sys of the client; the daemons' CPU is not included). The first-Solve-byte figures are
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
# Usage: bench/first-solve.sh [runs]   (default 20; rounded up to whole rounds)
#   ROUND_RUNS=N         runs of each client per round (default 5)
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

round_runs="${ROUND_RUNS:-5}"
[[ "$round_runs" =~ ^[1-9][0-9]*$ ]] || fail "ROUND_RUNS must be a positive number, not '$round_runs'"
rounds=$(((runs + round_runs - 1) / round_runs))
# rounds_of CTX WARMUP CMD...: one hyperfine run of the named commands
# ("-n NAME COMMAND" triples) per round, written to $work/CTX.<round>.json;
# odd rounds take the commands in reverse order.
rounds_of() {
  local ctx="$1" warmup="$2"
  shift 2
  local forward=("$@") reverse=() i round
  for ((i = ${#forward[@]} - 3; i >= 0; i -= 3)); do
    reverse+=("${forward[i]}" "${forward[i + 1]}" "${forward[i + 2]}")
  done
  for ((round = 0; round < rounds; round++)); do
    local order=("${forward[@]}")
    ((round % 2 == 0)) || order=("${reverse[@]}")
    hyperfine -N --style none --warmup "$([[ $round == 0 ]] && echo "$warmup" || echo 1)" \
      --runs "$round_runs" --export-json "$work/$ctx.$round.json" "${order[@]}" >/dev/null
  done
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
rounds_of moby 3 -n envd "$envd_moby" "${baseline_moby[@]}" -n docker "$docker_moby"
rounds_of tcp 3 -n envd "$envd_tcp" "${baseline_tcp[@]}" -n buildctl "$buildctl_tcp"
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
python3 - "$rounds" "$round_runs" "$work" "$(median <"$work/moby.first")" \
  "$(median <"$work/tcp.first")" <<'PY'
import json, random, statistics, sys
rounds, round_runs, work, moby_first, tcp_first = sys.argv[1:]
rounds, round_runs = int(rounds), int(round_runs)

def load(ctx):
    """Per round, each command's wall times and CPU times."""
    out = []
    for r in range(rounds):
        results = json.load(open(f"{work}/{ctx}.{r}.json"))["results"]
        out.append({x["command"]: x for x in results})
    return out

def walls(per_round, name):
    return [t for rd in per_round for t in rd[name]["times"]]

def interval(per_round, name, other):
    """95% bootstrap interval of median(name) / median(other), resampling rounds."""
    rng = random.Random(17)
    ratios = []
    for _ in range(2000):
        pick = [rng.choice(per_round) for _ in per_round]
        ratios.append(statistics.median(walls(pick, name)) / statistics.median(walls(pick, other)))
    ratios.sort()
    return ratios[int(0.025 * len(ratios))], ratios[int(0.975 * len(ratios)) - 1]

title = f"median of {rounds} x {round_runs} runs"
print(f"{title:<34} {'first Solve byte':>17} {'wall (s)':>9} {'client CPU (s)':>15} {'wall ratio':>11} {'95% interval':>14}")
for label, ctx, other, first in (("moby-worker", "moby", "docker", moby_first),
                                 ("tcp", "tcp", "buildctl", tcp_first)):
    per_round = load(ctx)
    base = statistics.median(walls(per_round, other))
    for name in ("envd", "baseline", other):
        if name not in per_round[0]:
            continue
        wall = statistics.median(walls(per_round, name))
        cpu = statistics.mean(rd[name]["user"] + rd[name]["system"] for rd in per_round)
        shown = (first + " ms") if name == "envd" else "-"
        spread = "-"
        if name != other and rounds > 1:
            low, high = interval(per_round, name, other)
            spread = f"{low:.2f} to {high:.2f}"
        print(f"{label + ', ' + name:<34} {shown:>17} {wall:>9.3f} {cpu:>15.3f} {wall / base:>10.2f}x {spread:>14}")
PY
# Where envd's time goes: each step's median since the process started
# (docs/design/first-solve.md names the steps).
echo "envd's steps, moby-worker: $(step_medians "$work/moby.steps")"
echo "envd's steps, tcp: $(step_medians "$work/tcp.steps")"
