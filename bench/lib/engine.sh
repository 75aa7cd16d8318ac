# Sourced by the benchmarks that need a Docker Engine.
# use_engine DIR: uses the Engine at DOCKER_HOST when it is a unix socket that
# answers, else starts a private one with tests/services/start.sh in DIR (root
# needed) and exports its DOCKER_HOST. Sets `services` to DIR when it started
# one (the caller stops it with tests/services/stop.sh), else to "".
use_engine() {
  local dir="$1"
  services=""
  if [[ "${DOCKER_HOST:-}" == unix://* ]] &&
    curl -fsS --max-time 2 --unix-socket "${DOCKER_HOST#unix://}" http://localhost/_ping >/dev/null 2>&1; then
    return 0
  fi
  services="$dir"
  bash tests/services/start.sh "$services" >&2
  export "$(grep '^DOCKER_HOST=' "$services/env")"
}
