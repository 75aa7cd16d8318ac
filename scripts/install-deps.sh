#!/usr/bin/env bash
# Installs every Debian bookworm package envd needs to build, test and run its
# end-to-end suite. Idempotent: packages already present are not touched, and
# apt is not even consulted when nothing is missing.
set -euo pipefail

build_pkgs=(
  build-essential cmake pkg-config git clang-format clang-tidy ccache
  libboost1.81-dev libboost-json1.81-dev
  libcli11-dev libfmt-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libarchive-dev libssl-dev nettle-dev zlib1g-dev
  libgtest-dev libgmock-dev
  openssh-client  # ssh-agent, ssh-add, ssh-keygen for the SSH forwarding unit tests
  libssh-dev      # the envd-server SSH gateway stand-in (tests/envd-server)
  clang libfuzzer-14-dev  # the fuzz preset (scripts/fuzz.sh)
)
# Real services the end-to-end tests and the README's first command start,
# and the tools the tests drive.
service_pkgs=(docker.io docker-registry busybox-static runc openssl iproute2 curl python3 openssh-server
  zsh fish  # the shells whose parsers check `envd completion zsh|fish`
  lintian)  # checks the Debian packages (tests/install/packages.sh)

want=("${build_pkgs[@]}")
if [[ "${1:-}" != "--build-only" ]]; then want+=("${service_pkgs[@]}"); fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Not a package to install: Debian's kubectl 1.20 (SPDY-only exec) extracted
# beside the kubectl on PATH, for the kube tests' legacy cases
# (ENVD_TEST_KUBECTL_LEGACY), which report themselves skipped without it.
if [[ "${1:-}" != "--build-only" ]]; then
  bash "$(dirname "$0")/../tests/kube/kubectl-1.20.sh" /opt/kubectl-1.20 >/dev/null ||
    echo "install-deps: no kubectl 1.20 in /opt/kubectl-1.20: tests needing it will skip" >&2
fi

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#want[@]} packages present" >&2
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done" >&2
