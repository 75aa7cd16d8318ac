#!/usr/bin/env bash
# Starts the real services the end-to-end tests need, on loopback, isolated
# from any system daemon:
#   - dockerd (vfs storage, no iptables, no bridge) on <dir>/docker.sock, and
#     on plain TCP at 127.0.0.1:<free port> for the tcp:// DOCKER_HOST tests
#   - a registry (Debian's docker-registry) on 127.0.0.1:<free port>
#   - the offline base image envd-test/busybox:latest, imported from busybox-static
# and writes <dir>/env (DOCKER_HOST=..., ENVD_TEST_REGISTRY=...,
# DOCKER_TCP_HOST=tcp://127.0.0.1:<port>) for the tests.
#
# usage: start.sh <dir>     (run as root; stop.sh <dir> undoes everything)
# A leftover from an earlier run in <dir> is stopped first.
set -euo pipefail

dir=${1:?usage: start.sh <dir>}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
started=$EPOCHREALTIME

fail() {
  echo "services: $*" >&2
  exit 1
}

[[ $(id -u) == 0 ]] || fail "must run as root (dockerd needs it); this is uid $(id -u)"
for tool in dockerd docker docker-registry curl python3; do
  command -v "$tool" >/dev/null || fail "'$tool' is not installed: run scripts/install-deps.sh"
done
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed" ||
  fail "busybox-static is not installed: run scripts/install-deps.sh"

bash "$here/stop.sh" "$dir"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
touch "$dir/.envd-test-services"
# Unix socket paths must fit in 108 bytes, and the longest one dockerd makes is
# <dir>/exec/containerd/containerd.sock.ttrpc.
((${#dir} <= 68)) ||
  fail "directory '$dir' is too long for dockerd's unix sockets (68 characters at most): use a shorter build directory"

sock=$dir/docker.sock
export DOCKER_HOST=unix://$sock
# Keep the CLI away from the invoking user's configuration and contexts.
export DOCKER_CONFIG=$dir/cli-config
mkdir -p "$DOCKER_CONFIG" "$dir/root" "$dir/exec"
echo '{}' >"$dir/daemon.json"

# --- dockerd -----------------------------------------------------------------
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# Loopback only: an unauthenticated TCP endpoint must not be reachable from elsewhere.
tcp_port=$(free_port)
setsid dockerd \
  --config-file "$dir/daemon.json" \
  --storage-driver=vfs --iptables=false --ip6tables=false --ip-masq=false --bridge=none \
  -H "unix://$sock" -H "tcp://127.0.0.1:$tcp_port" --data-root "$dir/root" --exec-root "$dir/exec" \
  --pidfile "$dir/pid" --log-level warn --shutdown-timeout 5 \
  --containerd-namespace envd-test --containerd-plugins-namespace envd-test-plugins \
  >"$dir/dockerd.log" 2>&1 </dev/null &
echo $! >"$dir/dockerd.launcher.pid"

ping_engine() {
  curl -fsS --max-time 2 --unix-socket "$sock" http://localhost/_ping >/dev/null 2>&1
}
deadline=$((SECONDS + 60))
until ping_engine; do
  if ! kill -0 "$(cat "$dir/dockerd.launcher.pid")" 2>/dev/null || ((SECONDS >= deadline)); then
    echo "services: dockerd did not answer /_ping on $sock within 60 s; log tail:" >&2
    tail -n 40 "$dir/dockerd.log" >&2 || true
    exit 1
  fi
  sleep 0.2
done

# --- registry ------------------------------------------------------------------
port=$(free_port)
mkdir -p "$dir/registry"
cat >"$dir/registry.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YAML
setsid docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 </dev/null &
echo $! >"$dir/registry.pid"
deadline=$((SECONDS + 30))
until curl -fsS --max-time 2 "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; do
  if ! kill -0 "$(cat "$dir/registry.pid")" 2>/dev/null || ((SECONDS >= deadline)); then
    echo "services: the registry did not answer on 127.0.0.1:$port within 30 s; log tail:" >&2
    tail -n 40 "$dir/registry.log" >&2 || true
    exit 1
  fi
  sleep 0.1
done

# --- offline base image ---------------------------------------------------------
bash "$(dirname "${BASH_SOURCE[0]}")/../../scripts/base-image.sh" envd-test/busybox:latest ||
  fail "cannot make the offline base image envd-test/busybox:latest"

# --- hand-over --------------------------------------------------------------------
cat >"$dir/env.tmp" <<ENV
DOCKER_HOST=unix://$sock
ENVD_TEST_REGISTRY=127.0.0.1:$port
DOCKER_TCP_HOST=tcp://127.0.0.1:$tcp_port
ENV
mv "$dir/env.tmp" "$dir/env"
elapsed_ms=$(((${EPOCHREALTIME/./} - ${started/./}) / 1000))
echo "services: up in ${elapsed_ms} ms (DOCKER_HOST=unix://$sock, registry 127.0.0.1:$port)"
