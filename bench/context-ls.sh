#!/usr/bin/env bash
# Start-up cost of listing contexts: `envd context ls` with every module
# installed and 1,000 contexts in the store, side by side with `docker context
# ls` holding 1,000 contexts too. Prints the median wall time of repeated runs.
# Target (issue: foundation): envd at most a quarter of docker's time.
#
# Usage: bench/context-ls.sh [runs]   (default 30; builds envd if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-30}"
contexts=1000

[[ -x build/bin/envd ]] || bash scripts/build.sh dev >/dev/null
envd="$PWD/build/bin/envd"
docker_cli=$(command -v /usr/bin/docker || command -v docker || true)
[[ -n "$docker_cli" ]] || { echo "bench: no docker CLI (apt-get install docker.io)" >&2; exit 1; }

work=$(mktemp -d)
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

# Median wall time in milliseconds of `runs` runs of the command.
median_ms() {
  local samples=()
  for _ in $(seq 1 "$runs"); do
    local start end
    start=$(date +%s%N)
    "$@" >/dev/null 2>&1
    end=$(date +%s%N)
    samples+=($(((end - start) / 1000)))
  done
  printf '%s\n' "${samples[@]}" | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m/1000}'
}

export ENVD_CONFIG_DIR="$work/envd" XDG_CACHE_HOME="$work/cache" DOCKER_CONFIG="$work/docker"
unset ENVD_CONTEXT ENVD_PLUGIN_PATH DOCKER_HOST DOCKER_CONTEXT

# Sanity: both list every context.
[[ $("$envd" context ls | wc -l) -eq $((contexts + 2)) ]] || { echo "bench: envd lists the wrong count" >&2; exit 1; }
[[ $("$docker_cli" context ls -q | wc -l) -ge $contexts ]] || { echo "bench: docker lists the wrong count" >&2; exit 1; }

envd_ms=$(median_ms "$envd" context ls)
docker_ms=$(median_ms "$docker_cli" context ls)
modules=$("$envd" plugin ls --format json | grep -o '"status":"ok"' | wc -l)
printf 'context ls, %d contexts, %d modules installed, median of %d runs\n' "$contexts" "$modules" "$runs"
printf '%-40s %10s\n' "command" "wall (ms)"
printf '%-40s %10s\n' "envd context ls" "$envd_ms"
printf '%-40s %10s\n' "docker context ls ($("$docker_cli" --version | awk '{print $3}' | tr -d ,))" "$docker_ms"
awk -v e="$envd_ms" -v d="$docker_ms" 'BEGIN { r = e / d; printf "ratio envd/docker: %.3f (target <= 0.25): %s\n", r, (r <= 0.25 ? "met" : "NOT met") }'
