#!/usr/bin/env bash
# `envd build` on a tcp context against `buildctl build`, both clients of the
# same standalone buildkitd (BuildKit's own v0.11.6 from ../shared/tools/buildkit,
# or ENVD_TEST_BUILDKIT_DIR) on 127.0.0.1, same Dockerfile, same output:
#   cached rebuild of a small context (FROM scratch, two COPYs), exported
#   (1) to a local directory and (2) to a tar file, after a warm-up that fills
#   the cache. Every run transfers the context through the session (FileSync)
#   and the result back (FileSend), so the client's share is what differs.
# Reported: median wall time over the runs (hyperfine), and the client's mean
# CPU time (user + sys; hyperfine's rusage of the command). The daemon's CPU is
# not included.
#
# Needs: root (buildkitd), hyperfine (apt-get install hyperfine), python3.
# Usage: bench/remote-build.sh [runs]   (default 20)
#   ENVD=/path/to/envd   the envd binary (default build/bin/envd; built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
runs="${1:-20}"

fail() {
  echo "bench: $*" >&2
  exit 1
}

# shellcheck source=bench/lib/standalone-buildkitd.sh
source "$repo/bench/lib/standalone-buildkitd.sh"
start_standalone_bench remote

ctx="$work/ctx"
mkdir -p "$ctx"
printf 'FROM scratch\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\n' >"$ctx/Dockerfile"
echo "small context" >"$ctx/a.txt"
head -c 65536 /dev/urandom >"$ctx/b.txt"

envd_local="$envd build --progress quiet --output type=local,dest=$work/out-envd $ctx"
buildctl_local="$bkdir/buildctl --addr $addr build --progress plain --frontend dockerfile.v0 \
--local context=$ctx --local dockerfile=$ctx --output type=local,dest=$work/out-buildctl"
envd_tar="$envd build --progress quiet --output type=tar,dest=$work/envd.tar $ctx"
buildctl_tar="$bkdir/buildctl --addr $addr build --progress plain --frontend dockerfile.v0 \
--local context=$ctx --local dockerfile=$ctx --output type=tar,dest=$work/buildctl.tar"

# hyperfine runs each command through no shell (-N); output goes nowhere.
hyperfine -N --style none --warmup 3 --runs "$runs" --export-json "$work/local.json" \
  -n envd "$envd_local" -n buildctl "$buildctl_local" >/dev/null
hyperfine -N --style none --warmup 3 --runs "$runs" --export-json "$work/tar.json" \
  -n envd "$envd_tar" -n buildctl "$buildctl_tar" >/dev/null

version=$("$bkdir/buildkitd" --version | awk '{print $3}')
printf 'buildkitd %s (oci worker, native snapshotter) on 127.0.0.1, envd %s, %s CPUs (%s)\n' \
  "$version" "$("$envd" --version 2>/dev/null | awk '{print $2}')" "$(nproc)" \
  "$(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')"
python3 - "$runs" "$work/local.json" "$work/tar.json" <<'PY'
import json, sys
runs = sys.argv[1]
print(f"{'cached rebuild, median of ' + runs:<44} {'wall (s)':>9} {'client CPU (s)':>15} {'wall ratio':>11}")
for label, path in (("type=local", sys.argv[2]), ("type=tar", sys.argv[3])):
    results = {r["command"]: r for r in json.load(open(path))["results"]}
    base = results["buildctl"]["median"]
    for name in ("envd", "buildctl"):
        r = results[name]
        cpu = r["user"] + r["system"]
        print(f"{label + ', ' + name:<44} {r['median']:>9.3f} {cpu:>15.3f} {r['median'] / base:>10.2f}x")
PY
