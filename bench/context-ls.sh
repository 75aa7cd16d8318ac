#!/usr/bin/env bash
# Start-up cost of listing contexts: `envd context ls` with every module
# installed and 1,000 contexts in the store, side by side with `docker context
# ls` (Debian's docker.io CLI, /usr/bin/docker) holding 1,000 contexts too.
# Also `envd --help` and `envd completion bash`, which shell completion and a
# user's first look pay for, and, when a current docker CLI is installed
# (DOCKER_LATEST), its `docker context ls` on an empty docker store, the
# issue's yardstick. Reported: hyperfine's median wall time, its mean client
# CPU (user + sys), and envd's ratio to docker's median.
# Target (issue 17): `envd context ls` at most 5 ms and at most 0.25x
# `docker context ls` of docker 28 on an empty store.
#
# Needs: hyperfine (apt-get install hyperfine), python3, docker.io's CLI.
# Usage: bench/context-ls.sh [runs]   (default 200)
#   ENVD=/path/to/envd   the envd binary (default build/bin/envd; built if missing)
#   DOCKER=/path/to/docker   the docker CLI (default /usr/bin/docker)
#   DOCKER_LATEST=/path/to/docker   a current docker CLI, timed on an empty
#                            store (default /usr/local/bin/docker when there is one)
#   BASELINE=/path/to/envd   another envd (an older build) timed alongside,
#                            for before/after figures under the same load
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
runs="${1:-200}"
contexts=1000

fail() {
  echo "bench: $*" >&2
  exit 1
}
command -v hyperfine >/dev/null || fail "hyperfine is missing (apt-get install hyperfine)"
envd="${ENVD:-$repo/build/bin/envd}"
if [[ ! -x "$envd" ]]; then
  bash scripts/build.sh dev >/dev/null
  envd="$repo/build/bin/envd"
fi
docker_cli="${DOCKER:-/usr/bin/docker}"
[[ -x "$docker_cli" ]] || fail "no docker CLI at '$docker_cli' (apt-get install docker.io, or set DOCKER)"

work=$(mktemp -d /tmp/envd-bench-ls.XXXXXX)
trap 'rm -rf "$work"' EXIT

# envd's store: written directly, in the store's documented format.
mkdir -p "$work/envd" && chmod 700 "$work/envd"
{
  printf '{"current":"default","contexts":[{"name":"default","builder":"docker-container","builder_address":"envd_buildkitd","runner":"docker","id":"0000000000000000"}'
  for i in $(seq 1 "$contexts"); do
    printf ',{"name":"ctx-%d","builder":"tcp","builder_address":"10.0.%d.%d:8888","runner":"docker","id":"%016x"}' \
      "$i" $((i / 256)) $((i % 256)) "$i"
  done
  printf ']}\n'
} >"$work/envd/contexts.json"

# docker's store: meta/<sha256(name)>/meta.json per context.
mkdir -p "$work/docker/contexts/meta"
echo '{}' >"$work/docker/config.json"
for i in $(seq 1 "$contexts"); do
  name="ctx-$i"
  id=$(printf '%s' "$name" | sha256sum | cut -d' ' -f1)
  mkdir -p "$work/docker/contexts/meta/$id"
  printf '{"Name":"%s","Metadata":{},"Endpoints":{"docker":{"Host":"tcp://10.0.%d.%d:2375","SkipTLSVerify":false}}}' \
    "$name" $((i / 256)) $((i % 256)) >"$work/docker/contexts/meta/$id/meta.json"
done

export ENVD_CONFIG_DIR="$work/envd" XDG_CACHE_HOME="$work/cache" DOCKER_CONFIG="$work/docker"
unset ENVD_CONTEXT ENVD_PLUGIN_PATH DOCKER_HOST DOCKER_CONTEXT

# Sanity: both list every context.
[[ $("$envd" context ls | wc -l) -eq $((contexts + 2)) ]] || fail "envd lists the wrong count"
[[ $("$docker_cli" context ls -q | wc -l) -ge $contexts ]] || fail "docker lists the wrong count"

# hyperfine runs each command through no shell (-N); output goes nowhere.
commands=(-n "envd context ls" "$envd context ls"
  -n "docker context ls" "$docker_cli context ls"
  -n "envd --help" "$envd --help"
  -n "envd completion bash" "$envd completion bash")
latest="${DOCKER_LATEST:-/usr/local/bin/docker}"
latest_name=""
if [[ -x "$latest" && "$latest" != "$docker_cli" ]]; then
  mkdir -p "$work/docker-empty"
  echo '{}' >"$work/docker-empty/config.json"
  latest_name="docker $("$latest" --version | awk '{print $3}' | tr -d ,) context ls, empty store"
  commands+=(-n "$latest_name" "$latest --config $work/docker-empty context ls")
fi
if [[ -n "${BASELINE:-}" ]]; then
  [[ $("$BASELINE" context ls | wc -l) -eq $((contexts + 2)) ]] || fail "BASELINE lists the wrong count"
  commands+=(-n "baseline envd context ls" "$BASELINE context ls"
    -n "baseline envd --help" "$BASELINE --help")
fi
hyperfine -N --style none --warmup 10 --runs "$runs" --export-json "$work/ls.json" \
  "${commands[@]}" >/dev/null

modules=$("$envd" plugin ls --format json | grep -o '"status":"ok"' | wc -l)
printf 'context ls, %d contexts, %d modules installed, envd %s, docker %s, %s CPUs (%s)\n' \
  "$contexts" "$modules" "$("$envd" --version | awk '{print $2}')" \
  "$("$docker_cli" --version | awk '{print $3}' | tr -d ,)" "$(nproc)" \
  "$(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')"
maps() { LD_DEBUG=files "$1" context ls 2>&1 >/dev/null | grep -c 'generating link map' || true; }
printf 'shared objects envd context ls maps: %d' "$(maps "$envd")"
[[ -z "${BASELINE:-}" ]] || printf ' (baseline: %d)' "$(maps "$BASELINE")"
printf '\n'
python3 - "$runs" "$work/ls.json" "$latest_name" <<'PY'
import json, sys
runs, latest = sys.argv[1], sys.argv[3]
results = {r["command"]: r for r in json.load(open(sys.argv[2]))["results"]}
base = results["docker context ls"]["median"]
print(f"{'command, median of ' + runs:<44} {'wall (ms)':>10} {'CPU (ms)':>9} {'vs docker':>10}")
for name, r in results.items():
    cpu = (r["user"] + r["system"]) * 1000
    print(f"{name:<44} {r['median'] * 1000:>10.2f} {cpu:>9.2f} {r['median'] / base:>9.3f}x")
ls = results["envd context ls"]["median"]
print(f"target: envd context ls <= 5 ms: {ls * 1000:.2f} ms: {'met' if ls <= 0.005 else 'NOT met'}")
if latest:
    ratio = ls / results[latest]["median"]
    print(f"target: <= 0.25x {latest}: {ratio:.3f}x: {'met' if ratio <= 0.25 else 'NOT met'}")
else:
    print("target: <= 0.25x docker 28 on an empty store: not judged (no DOCKER_LATEST)")
PY
