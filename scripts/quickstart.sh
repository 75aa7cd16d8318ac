#!/usr/bin/env bash
# The README's first command: install what is missing, build envd, and take a
# tour of contexts and drivers on the local backend. The tour uses a scratch
# config directory, so your own contexts are untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh dev
envd="$PWD/build/bin/envd"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export ENVD_CONFIG_DIR="$scratch/config" XDG_CACHE_HOME="$scratch/cache"
unset ENVD_CONTEXT ENVD_PLUGIN_PATH

step() {
  printf '\n\033[1m$ envd %s\033[0m\n' "$*"
  "$envd" "$@"
}

step plugin ls
step context ls
step context create --name demo --builder-address buildkitd-demo --use --builder docker-container --runner docker
step context create --name remote-context --builder tcp --builder-address 127.0.0.1:8888
step context ls
step context inspect remote-context
step --context remote-context context show
step context use default
step context rm --name demo
step context ls --format json
printf '\nThe tour used a scratch config directory; your envd is at %s\n' "$envd"
