#!/usr/bin/env bash
# Puts Debian bookworm's kubectl 1.20 (package kubernetes-client, whose exec
# speaks only SPDY/3.1) under DEST without installing the package, so the
# kubectl on PATH (1.32) stays what it is, and prints the binary's path:
# DEST/usr/bin/kubectl. Does nothing but print it when it is already there.
# Fails, saying why, when the package cannot be fetched; the tests that need
# this kubectl then report themselves skipped with the reason.
#
#   bash tests/kube/kubectl-1.20.sh /opt/kubectl-1.20
set -euo pipefail

dest=${1:?usage: kubectl-1.20.sh DEST}
bin="$dest/usr/bin/kubectl"
if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
# apt-get download writes into the current folder, which its sandbox user
# cannot: download as ourselves. Without package lists, fetch them once.
download() { apt-get download -q -o APT::Sandbox::User="$(id -un)" kubernetes-client >/dev/null; }
if ! download 2>/dev/null; then
  $sudo apt-get update -qq
  download
fi
deb=$(ls kubernetes-client_*.deb)
version=$(dpkg-deb -f "$deb" Version)
if [[ "$version" != 1.20.* ]]; then
  echo "kubectl-1.20.sh: Debian's kubernetes-client is $version here, not 1.20" >&2
  exit 1
fi
dpkg-deb -x "$deb" root
root/usr/bin/kubectl version --client >/dev/null
$sudo mkdir -p "$dest"
$sudo cp -a root/. "$dest/"
echo "kubectl-1.20.sh: kubernetes-client $version in $dest" >&2
echo "$bin"
