#!/usr/bin/env bash
# The docker-container builder against the same daemon reached over tcp:
# issue 17's "docker-container at most 15 ms more than tcp". One buildkitd
# runs in a container that envd's docker-container driver created and
# manages; its flags add a tcp listener on 127.0.0.1 (the container shares the
# host's network), and a second context reaches that same buildkitd as `tcp`.
# Both build the same small context (FROM scratch, two COPYs) with a cached
# rebuild exported to a local directory, so the daemon's work is the same and
# only the way in differs: docker-container asks the Engine about the
# container, then connects to buildkitd's socket through the directory it
# mounted (or, where that cannot work, runs `buildctl dial-stdio` in the
# container through an exec); tcp dials.
#
# Reported: the median wall time of each (hyperfine -N, 3 warm-ups that fill
# the cache), the client's mean CPU, the median of the first Solve byte
# (ENVD_TIMINGS=1, as many separate runs), and docker-container minus tcp.
#
# Daemons: the Engine at DOCKER_HOST (a unix socket) if it answers, else a
# private one started with tests/services/start.sh (root needed), stopped on
# exit. The container's image is tests/buildkit/image.sh's (BuildKit v0.11.6
# from ../shared/tools/buildkit or ENVD_TEST_BUILDKIT_DIR, assembled offline),
# created with the non-privileged options that image needs here; the
# container and its volume are removed on exit.
#
# Needs: root, hyperfine (apt-get install hyperfine), python3.
# Usage: bench/docker-container.sh [runs]   (default 20)
#   ENVD=/path/to/envd   the envd binary (default build/bin/envd)
#   BENCH_KEEP=1         keep the work directory, the container and a private
#                        Engine running afterwards, to look further
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
runs="${1:-20}"
image="envd-test/buildkit:bench"

fail() {
  echo "bench: $*" >&2
  exit 1
}
command -v hyperfine >/dev/null || fail "hyperfine is missing (apt-get install hyperfine)"
[[ $(id -u) == 0 ]] || fail "the private Engine needs root"
envd="${ENVD:-$repo/build/bin/envd}"
[[ -x "$envd" ]] || fail "no envd at '$envd' (build it, or set ENVD)"

work=$(mktemp -d /tmp/envd-bench-dc.XXXXXX)
services=""
name="envd_bench_dc_$$"
cleanup() {
  if [[ -n "${DOCKER_HOST:-}" ]]; then
    curl -fsS --max-time 10 --unix-socket "${DOCKER_HOST#unix://}" -X DELETE \
      "http://localhost/containers/$name?force=1&v=1" >/dev/null 2>&1 || true
    curl -fsS --max-time 10 --unix-socket "${DOCKER_HOST#unix://}" -X DELETE \
      "http://localhost/volumes/${name}_state?force=1" >/dev/null 2>&1 || true
  fi
  if [[ -n "$services" ]]; then
    bash "$repo/tests/services/stop.sh" "$services" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
[[ -n "${BENCH_KEEP:-}" ]] && trap - EXIT

source "$repo/bench/lib/engine.sh"
use_engine "$work/s"
bash tests/buildkit/image.sh "$image" >&2

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export ENVD_CONFIG_DIR="$work/envd" XDG_CACHE_HOME="$work/cache" DOCKER_CONFIG="$work/docker-config"
mkdir -p "$DOCKER_CONFIG"
unset ENVD_CONTEXT ENVD_PLUGIN_PATH BUILDKIT_PROGRESS ENVD_TIMINGS
# The options of tests/buildkit/real_buildkit_test.hpp; the unix socket is
# the one the driver dials inside the container, the tcp one is this bench's.
"$envd" context create --name dc --builder docker-container --builder-address "$name" \
  --builder-opt "image=$image" --builder-opt privileged=false \
  --builder-opt cap-add=ALL --builder-opt cap-drop=SYS_RESOURCE \
  --builder-opt "security-opt=seccomp=unconfined,apparmor=unconfined" \
  --builder-opt security-opt=systempaths=unconfined \
  --builder-opt mount=/sys/fs/cgroup:/sys/fs/cgroup --builder-opt network=host \
  --builder-opt "buildkitd-flags=--oci-worker-snapshotter=native --addr unix:///run/buildkit/buildkitd.sock --addr tcp://127.0.0.1:$port" \
  >/dev/null
"$envd" context create --name tcp --builder tcp --builder-address "127.0.0.1:$port" >/dev/null
"$envd" --context dc bootstrap >&2

ctx="$work/ctx"
mkdir -p "$ctx"
printf 'FROM scratch\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\n' >"$ctx/Dockerfile"
echo "small context" >"$ctx/a.txt"
head -c 65536 /dev/urandom >"$ctx/b.txt"

envd_dc="$envd --context dc build --progress quiet --output type=local,dest=$work/out-dc $ctx"
envd_tcp="$envd --context tcp build --progress quiet --output type=local,dest=$work/out-tcp $ctx"

source "$repo/bench/lib/first-solve-byte.sh"

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# shellcheck disable=SC2086 # the command lines are split on purpose
hyperfine -N --style none --warmup 3 --runs "$runs" --export-json "$work/runs.json" \
  -n docker-container "$envd_dc" -n tcp "$envd_tcp" >/dev/null
for _ in $(seq 1 "$runs"); do
  # shellcheck disable=SC2086
  first_solve $envd_dc >>"$work/dc.first"
  # shellcheck disable=SC2086
  first_solve $envd_tcp >>"$work/tcp.first"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

printf 'Docker Engine %s; buildkitd %s in container %s (image %s), also on tcp://127.0.0.1:%s\n' \
  "$(curl -fsS --unix-socket "${DOCKER_HOST#unix://}" http://localhost/version |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Version"])')" \
  "$("$repo/../shared/tools/buildkit/buildkitd" --version 2>/dev/null | awk '{print $3}' || echo '?')" \
  "$name" "$image" "$port"
printf 'envd %s; %s CPUs; load average %s before, %s after\n' \
  "$("$envd" --version 2>/dev/null | awk '{print $2}')" "$(nproc)" "$load_before" "$load_after"
python3 - "$runs" "$work/runs.json" "$(median <"$work/dc.first")" "$(median <"$work/tcp.first")" <<'PY'
import json, sys
runs, path, dc_first, tcp_first = sys.argv[1:]
results = {r["command"]: r for r in json.load(open(path))["results"]}
print(f"{'median of ' + runs + ' runs':<28} {'first Solve byte':>17} {'wall (s)':>9} {'client CPU (s)':>15}")
for name, first in (("docker-container", dc_first), ("tcp", tcp_first)):
    r = results[name]
    print(f"{name:<28} {first + ' ms':>17} {r['median']:>9.3f} {r['user'] + r['system']:>15.3f}")
wall = (results["docker-container"]["median"] - results["tcp"]["median"]) * 1000
first = float(dc_first) - float(tcp_first) if "-" not in (dc_first, tcp_first) else float("nan")
print(f"docker-container minus tcp: wall {wall:+.1f} ms, first Solve byte {first:+.1f} ms (target: at most +15 ms)")
PY
