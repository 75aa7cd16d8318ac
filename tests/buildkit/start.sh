#!/usr/bin/env bash
# Starts real standalone BuildKit daemons (the static buildkitd and buildctl of
# ../shared/tools/buildkit, or $ENVD_TEST_BUILDKIT_DIR) for the end-to-end
# tests, on loopback, beside the engine and registry of tests/services:
#   - plain: tcp://127.0.0.1:<port> and unix://<dir>/plain/buildkitd.sock
#   - tls:   tcp://127.0.0.1:<port>, server certificate only
#   - mtls:  tcp://127.0.0.1:<port>, client certificates signed by the test CA required
# each with the OCI worker (runc, native snapshotter) and <dir>/buildkitd.toml,
# which lets them use the plain-HTTP test registry. It also makes the test PKI
# in <dir>/pki, pushes the engine's offline base image to the registry as
# <registry>/envd-test/busybox:latest, builds the BuildKit image
# envd-test/buildkit:<version> with image.sh, and writes <dir>/env for the tests
# (keys: see real_buildkit.hpp).
#
# Without the binaries it writes only BUILDKIT_ABSENT=<reason> to <dir>/env and
# succeeds: the tests then report themselves skipped with that reason.
#
# usage: start.sh <dir> <engine-env-file>   (run as root; stop.sh <dir> undoes
# everything; <engine-env-file> is the env file tests/services/start.sh wrote)
# A leftover from an earlier run in <dir> is stopped first.
set -euo pipefail

usage="usage: start.sh <dir> <engine-env-file>"
dir=${1:?$usage}
engine_env=${2:?$usage}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
started=$EPOCHREALTIME

fail() {
  echo "buildkit: $*" >&2
  exit 1
}

[[ $(id -u) == 0 ]] || fail "must run as root (buildkitd's OCI worker needs it); this is uid $(id -u)"
# runc lives in /usr/sbin, which a non-login root shell may lack.
export PATH=$PATH:/usr/sbin:/sbin

bash "$here/stop.sh" "$dir"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
touch "$dir/.envd-test-buildkit"

# --- the binaries, or a reason to skip -------------------------------------------
if [[ -n ${ENVD_TEST_BUILDKIT_DIR:-} ]]; then
  bin_dir=$(realpath -m "$ENVD_TEST_BUILDKIT_DIR")
  looked="ENVD_TEST_BUILDKIT_DIR='$bin_dir'"
else
  bin_dir=$(realpath -m "$here/../../../shared/tools/buildkit")
  looked="'$bin_dir' (ENVD_TEST_BUILDKIT_DIR is not set)"
fi
absent=""
for tool in buildkitd buildctl; do
  if [[ ! -x $bin_dir/$tool || -d $bin_dir/$tool ]]; then
    absent="no executable '$tool' in $looked: set ENVD_TEST_BUILDKIT_DIR to the folder holding buildkitd and buildctl v0.11.6"
    break
  fi
done
if [[ -n $absent ]]; then
  echo "BUILDKIT_ABSENT=$absent" >"$dir/env.tmp"
  mv "$dir/env.tmp" "$dir/env"
  echo "buildkit: absent, the tests that need it will be skipped: $absent"
  exit 0
fi
buildkitd=$bin_dir/buildkitd
buildctl=$bin_dir/buildctl
version=$("$buildkitd" --version | cut -d' ' -f3)
[[ $version == v* ]] || fail "'$buildkitd --version' printed no version"

for tool in runc openssl docker python3; do
  command -v "$tool" >/dev/null || fail "'$tool' is not installed: run scripts/install-deps.sh"
done

# --- the engine and registry of tests/services ------------------------------------
[[ -r $engine_env ]] ||
  fail "the engine env file '$engine_env' is missing: start tests/services/start.sh first (ctest fixture 'engine')"
engine_env=$(realpath "$engine_env")
docker_host=$(sed -n 's/^DOCKER_HOST=//p' "$engine_env")
registry=$(sed -n 's/^ENVD_TEST_REGISTRY=//p' "$engine_env")
[[ -n $docker_host && -n $registry ]] ||
  fail "'$engine_env' lacks DOCKER_HOST=... or ENVD_TEST_REGISTRY=..."
export DOCKER_HOST=$docker_host
# The CLI configuration tests/services/start.sh uses, away from the invoking user's.
export DOCKER_CONFIG=${engine_env%/*}/cli-config

# --- unix socket paths ----------------------------------------------------------
# Each buildkitd also listens on <root>/otel-grpc.sock; sun_path holds 107 bytes.
names=(plain tls mtls)
sockets=("$dir/plain/buildkitd.sock")
for name in "${names[@]}"; do sockets+=("$dir/$name/root/otel-grpc.sock"); done
for sock in "${sockets[@]}"; do
  ((${#sock} <= 107)) ||
    fail "unix socket path '$sock' is ${#sock} bytes, more than 107: use a shorter build directory"
done

# --- test PKI ---------------------------------------------------------------------
pki=$dir/pki
mkdir -p "$pki"
# new_ca <name> <common name>: <name>.pem and <name>-key.pem, self-signed.
new_ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -keyout "$pki/$1-key.pem" -out "$pki/$1.pem" -subj "/CN=$2" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    2>/dev/null || fail "openssl cannot make the test CA '$pki/$1.pem'"
}
# new_cert <name> <ca> <common name> <extensions>: <name>-cert.pem and <name>-key.pem.
new_cert() {
  if ! openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$pki/$1-key.pem" -out "$pki/$1.csr" -subj "/CN=$3" 2>/dev/null ||
    ! openssl x509 -req -in "$pki/$1.csr" -CA "$pki/$2.pem" -CAkey "$pki/$2-key.pem" \
      -set_serial "0x$(openssl rand -hex 16)" -days 30 -out "$pki/$1-cert.pem" \
      -extfile <(printf '%s\n' "basicConstraints=critical,CA:FALSE" \
        "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" "$4") 2>/dev/null; then
    fail "openssl cannot make the test certificate '$pki/$1-cert.pem'"
  fi
  rm -f "$pki/$1.csr"
}
new_ca ca envd-test-ca
new_ca other-ca envd-test-other-ca
new_cert server ca localhost "$(printf '%s\n' \
  "keyUsage=critical,digitalSignature,keyAgreement" "extendedKeyUsage=serverAuth" \
  "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost")"
new_cert client ca envd-test-client \
  "$(printf '%s\n' "keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth")"
new_cert stranger other-ca envd-test-stranger \
  "$(printf '%s\n' "keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth")"

# --- buildkitd ----------------------------------------------------------------------
cat >"$dir/buildkitd.toml" <<TOML
# The plain-HTTP registry of tests/services.
[registry."$registry"]
  http = true
  insecure = true
TOML

# Three distinct free loopback ports from one interpreter start (python3 may be
# a slow pyenv shim).
ports=$(python3 -c 'import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))') || fail "python3 cannot find free loopback ports"
read -r port_plain port_tls port_mtls <<<"$ports"
declare -A addr=([plain]=127.0.0.1:$port_plain [tls]=127.0.0.1:$port_tls [mtls]=127.0.0.1:$port_mtls)
# start_daemon <name> <buildkitd args>...
start_daemon() {
  local name=$1
  shift
  mkdir -p "$dir/$name/root"
  setsid "$buildkitd" --root "$dir/$name/root" \
    --oci-worker=true --containerd-worker=false --oci-worker-snapshotter=native \
    --config "$dir/buildkitd.toml" "$@" \
    >"$dir/$name.log" 2>&1 </dev/null &
  echo $! >"$dir/$name.pid"
}
# Loopback only: the plain endpoint is unauthenticated.
start_daemon plain --addr "tcp://${addr[plain]}" --addr "unix://$dir/plain/buildkitd.sock"
start_daemon tls --addr "tcp://${addr[tls]}" --tlscert "$pki/server-cert.pem" --tlskey "$pki/server-key.pem"
start_daemon mtls --addr "tcp://${addr[mtls]}" --tlscert "$pki/server-cert.pem" --tlskey "$pki/server-key.pem" \
  --tlscacert "$pki/ca.pem"

# --- images (while the daemons start) ---------------------------------------------------
base=$registry/envd-test/busybox:latest
docker image inspect envd-test/busybox:latest >/dev/null 2>&1 ||
  fail "the engine at $DOCKER_HOST has no envd-test/busybox:latest (tests/services/start.sh makes it)"
docker tag envd-test/busybox:latest "$base"
docker push -q "$base" >/dev/null || fail "cannot push '$base' to the test registry with the docker CLI"
# Only the registry needs this name; the engine keeps what tests/services left.
docker image rm "$base" >/dev/null
image=envd-test/buildkit:$version
ENVD_TEST_BUILDKIT_DIR=$bin_dir bash "$here/image.sh" "$image" || fail "cannot build the BuildKit image '$image'"

# --- readiness ------------------------------------------------------------------------
# probe <name>: whether that daemon answers 'buildctl debug workers', with the
# client credentials its TLS mode needs.
probe() {
  local flags=(--addr "tcp://${addr[$1]}")
  case $1 in
  tls) flags+=(--tlscacert "$pki/ca.pem") ;;
  mtls) flags+=(--tlscacert "$pki/ca.pem" --tlscert "$pki/client-cert.pem" --tlskey "$pki/client-key.pem") ;;
  esac
  timeout 10 "$buildctl" "${flags[@]}" --timeout 5 debug workers
}
deadline=$((SECONDS + 60))
waiting=("${names[@]}")
while ((${#waiting[@]} > 0)); do
  still=()
  for name in "${waiting[@]}"; do
    if probe "$name" >/dev/null 2>"$dir/$name.probe"; then
      continue
    fi
    pid=$(cat "$dir/$name.pid")
    if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
      why="did not answer 'buildctl debug workers' within 60 s"
      kill -0 "$pid" 2>/dev/null || why="exited"
      echo "buildkit: buildkitd '$name' (${addr[$name]}) $why; last probe: $(tail -n 1 "$dir/$name.probe"); log tail:" >&2
      tail -n 40 "$dir/$name.log" >&2 || true
      exit 1
    fi
    still+=("$name")
  done
  waiting=("${still[@]}")
  ((${#waiting[@]} == 0)) || sleep 0.2
done
rm -f "$dir"/*.probe

# --- hand-over ---------------------------------------------------------------------------
cat >"$dir/env.tmp" <<ENV
BUILDKIT_VERSION=$version
BUILDKITD=$buildkitd
BUILDCTL=$buildctl
BUILDKIT_TCP=${addr[plain]}
BUILDKIT_UNIX=$dir/plain/buildkitd.sock
BUILDKIT_TLS=${addr[tls]}
BUILDKIT_MTLS=${addr[mtls]}
BUILDKIT_PKI=$pki
BUILDKIT_BASE=$base
BUILDKIT_IMAGE=$image
BUILDKIT_CONFIG=$dir/buildkitd.toml
ENV
mv "$dir/env.tmp" "$dir/env"
elapsed_ms=$(((${EPOCHREALTIME/./} - ${started/./}) / 1000))
echo "buildkit: $version up in ${elapsed_ms} ms (tcp ${addr[plain]}, unix $dir/plain/buildkitd.sock, tls ${addr[tls]}, mtls ${addr[mtls]}; image $image)"
