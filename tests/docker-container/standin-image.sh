#!/usr/bin/env bash
# Builds the stand-in buildkit image offline (no moby/buildkit image can be
# pulled here): busybox-static's applets plus the stand-in binary installed as
# /usr/bin/buildctl and /usr/bin/buildkitd, imported into the test engine.
# Test-only; run by the docker-container e2e tests once the fixture `engine` is up.
# Usage: standin-image.sh <test-services env file> <stand-in binary> NAME:TAG [NAME:TAG...]
set -euo pipefail
env_file=${1:?usage: standin-image.sh ENV_FILE BINARY NAME:TAG...}
binary=${2:?usage: standin-image.sh ENV_FILE BINARY NAME:TAG...}
shift 2
[[ -f "$env_file" ]] || { echo "standin-image: '$env_file' is missing: the engine fixture is not up" >&2; exit 1; }
[[ -x "$binary" ]] || { echo "standin-image: '$binary' is not an executable" >&2; exit 1; }
set -a
# shellcheck disable=SC1090
source "$env_file"
set +a
export DOCKER_CONFIG=${env_file%/*}/cli-config

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs"/{bin,usr/bin,etc/buildkit,var/lib/buildkit,run/envd-test,tmp,proc,sys,dev}
mkdir -p "$rootfs"/home/user/.local/share/buildkit
chmod 1777 "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in sh cat ls echo sleep ps; do ln -s busybox "$rootfs/bin/$applet"; done
cp "$binary" "$rootfs/usr/bin/buildkitd"
ln -s buildkitd "$rootfs/usr/bin/buildctl"
echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"
first=$1
tar -C "$rootfs" --numeric-owner --owner=0 --group=0 -cf - . |
  docker import -c 'ENV PATH=/usr/bin:/bin' -c 'ENTRYPOINT ["buildkitd"]' - "$first" >/dev/null
shift
for name in "$@"; do docker tag "$first" "$name"; done
echo "standin-image: built $first $*"
