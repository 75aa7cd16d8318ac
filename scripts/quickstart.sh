#!/usr/bin/env bash
# The README's first command: install what is missing, build envd, make sure a
# Docker Engine answers (starting a private one, as the tests do, if none
# does), create a context on the Engine's embedded BuildKit, build
# examples/hello with progress shown, and run the image.
#
# The tour keeps its contexts in a scratch config directory, so yours are
# untouched. A private engine it starts keeps running afterwards (so you can
# run the image again); the last lines say how to use and stop it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash scripts/install-deps.sh
# The CI preset's flags and directory without the tests: scripts/test.sh then
# builds only the tests, and compiles nothing this built.
bash scripts/build.sh quickstart
envd="$root/build/bin/envd"

step() {
  printf '\n\033[1m$ %s\033[0m\n' "$*"
  "$@"
}

# --- a Docker Engine ------------------------------------------------------------
engine_dir="$root/build/quickstart-engine"
engine_answers() { timeout 5 docker version >/dev/null 2>&1; }
if [[ -z "${DOCKER_HOST:-}" ]] && ! engine_answers && [[ -S "$engine_dir/docker.sock" ]]; then
  export DOCKER_HOST="unix://$engine_dir/docker.sock"
fi
if ! engine_answers; then
  echo "quickstart: no Docker Engine answers; starting a private one in $engine_dir" >&2
  bash tests/services/start.sh "$engine_dir" >&2
  export DOCKER_HOST="unix://$engine_dir/docker.sock"
fi
echo "quickstart: using the Docker Engine at ${DOCKER_HOST:-unix:///var/run/docker.sock}" >&2

# No registry is reachable from here: make the base image offline.
docker image inspect envd-examples/busybox:latest >/dev/null 2>&1 ||
  bash scripts/base-image.sh envd-examples/busybox:latest

# --- the tour ---------------------------------------------------------------------
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export ENVD_CONFIG_DIR="$scratch/config"
unset ENVD_CONTEXT

step "$envd" plugin ls
step "$envd" context create --name local --builder moby-worker --use
step "$envd" context ls
step "$envd" builder status
# RUN steps get no network: a private engine here runs without a bridge.
step "$envd" build --network none --progress "${ENVD_PROGRESS:-auto}" -t envd-examples/hello:dev examples/hello
step docker run --rm --network none envd-examples/hello:dev

cat <<EOF2

Done: envd built examples/hello on the Docker Engine's BuildKit, and the image ran.
The envd binary is $envd (contexts of this tour were in a scratch directory).
EOF2
if [[ "${DOCKER_HOST:-}" == "unix://$engine_dir/docker.sock" ]]; then
  cat <<EOF2
The private engine keeps running:
  export DOCKER_HOST=$DOCKER_HOST     # to use it
  bash tests/services/stop.sh $engine_dir   # to stop it
EOF2
fi
