#!/usr/bin/env bash
# Makes an offline base image from Debian's busybox-static (no registry is
# reachable here): a root filesystem of /bin/busybox and its applets, imported
# into the Docker Engine at $DOCKER_HOST under the given name.
# Usage: scripts/base-image.sh NAME[:TAG]
set -euo pipefail
name="${1:?usage: base-image.sh NAME[:TAG]}"
busybox_bin=/bin/busybox
[[ -x "$busybox_bin" ]] || { echo "base-image: $busybox_bin is missing (apt-get install busybox-static)" >&2; exit 1; }

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs"/{bin,etc,tmp,root,proc,sys,dev}
chmod 1777 "$rootfs/tmp"
cp "$busybox_bin" "$rootfs/bin/busybox"
for applet in sh ash echo cat ls mkdir cp mv rm ln sha256sum find sort test '[' true false \
  grep sed head tail wc env touch chmod printf sleep id uname tr cut xargs date pwd basename \
  dirname stat du df readlink tar gzip which; do
  ln -s busybox "$rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"
tar -C "$rootfs" --numeric-owner --owner=0 --group=0 -cf - . |
  docker import -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' - "$name" >/dev/null
docker run --rm --network none "$name" sh -c 'echo ok | sha256sum >/dev/null' ||
  { echo "base-image: the imported image $name cannot run sh" >&2; exit 1; }
