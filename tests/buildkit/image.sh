#!/usr/bin/env bash
# Assembles a real BuildKit container image offline, for the docker-container
# builder's end-to-end tests: the standalone buildkitd and buildctl of
# ../shared/tools/buildkit (or $ENVD_TEST_BUILDKIT_DIR) in /usr/bin, Debian's
# runc with the shared libraries and loader it links, busybox-static and its
# applets in /bin, root's /etc/passwd and /etc/group, and empty /tmp, /run,
# /var/lib/buildkit and /etc/buildkit; imported into the engine at $DOCKER_HOST
# with ENTRYPOINT ["buildkitd"].
#
# The image is labelled dev.envd.test.buildkit-sha256 with a hash of everything
# it is made from (both binaries, runc, busybox and this script); when <tag>
# already carries the same hash nothing is done.
#
# The image runs RUN steps without --privileged (which fails on these kernels:
# "unable to apply caps") when created with --cap-add ALL --cap-drop SYS_RESOURCE,
# --security-opt seccomp=unconfined (else runc cannot create a session keyring)
# and -v /sys/fs/cgroup:/sys/fs/cgroup (cgroup v1 is read-only otherwise), plus
# --network host to reach a loopback registry. A buildkitd.toml mounted at
# /etc/buildkit/buildkitd.toml is read without --config. The README's
# apparmor=unconfined (for hosts with AppArmor), systempaths=unconfined and
# --oci-worker-snapshotter=native do no harm but were not needed here.
#
# usage: image.sh <tag>      (DOCKER_HOST must be set)
set -euo pipefail

tag=${1:?usage: image.sh <tag>}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
label=dev.envd.test.buildkit-sha256

fail() {
  echo "buildkit: $*" >&2
  exit 1
}

[[ -n ${DOCKER_HOST:-} ]] || fail "DOCKER_HOST is not set: image.sh imports '$tag' into the engine it names"
bin_dir=$(realpath -m "${ENVD_TEST_BUILDKIT_DIR:-$here/../../../shared/tools/buildkit}")
for tool in buildkitd buildctl; do
  [[ -x $bin_dir/$tool ]] ||
    fail "'$bin_dir/$tool' is missing or not executable (set ENVD_TEST_BUILDKIT_DIR to the folder holding buildkitd and buildctl)"
done
runc=/usr/sbin/runc
[[ -x $runc ]] || fail "'$runc' is missing: apt-get install runc"
busybox=/bin/busybox
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed" ||
  fail "busybox-static is not installed: run scripts/install-deps.sh"

sha=$(sha256sum "$bin_dir/buildkitd" "$bin_dir/buildctl" "$runc" "$busybox" "${BASH_SOURCE[0]}" |
  cut -d' ' -f1 | sha256sum | cut -d' ' -f1)
have=$(docker image inspect -f "{{index .Config.Labels \"$label\"}}" "$tag" 2>/dev/null || true)
if [[ $have == "$sha" ]]; then
  echo "buildkit: image $tag is up to date ($label=${sha:0:12})"
  exit 0
fi

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs"/{usr/bin,usr/sbin,bin,sbin,etc/buildkit,tmp,run,var/lib/buildkit,root,proc,sys,dev}
chmod 1777 "$rootfs/tmp"
cp "$bin_dir/buildkitd" "$bin_dir/buildctl" "$rootfs/usr/bin/"
cp "$runc" "$rootfs/usr/sbin/runc"
# Every library ldd resolves for runc, and the loader, at the paths runc names
# them by (ldd prints the loader under its PT_INTERP path).
libs=$(ldd "$runc" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
[[ -n $libs ]] || fail "ldd lists no libraries for '$runc'"
for lib in $libs; do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done
cp "$busybox" "$rootfs/bin/busybox"
for applet in $("$busybox" --list); do
  [[ -e $rootfs/bin/$applet ]] || ln -s busybox "$rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"

version=$("$bin_dir/buildkitd" --version | cut -d' ' -f3)
tar -C "$rootfs" --numeric-owner --owner=0 --group=0 -cf - . |
  docker import \
    --change 'ENTRYPOINT ["buildkitd"]' \
    --change 'ENV PATH=/usr/bin:/bin:/usr/sbin:/sbin' \
    --change "LABEL $label=$sha" \
    --change "LABEL dev.envd.test.buildkit-version=$version" \
    - "$tag" >/dev/null || fail "docker import of '$tag' into $DOCKER_HOST failed"

# The binaries, runc's libraries and the loader must all work inside; a broken
# image is removed so that the label does not vouch for it on the next run.
if ! out=$(docker run --rm --network none --entrypoint /bin/sh "$tag" -c \
  'buildkitd --version && buildctl --version && runc --version && sh -c true' 2>&1); then
  docker image rm -f "$tag" >/dev/null 2>&1 || true
  fail "the imported image '$tag' cannot run its binaries: $(tail -n 1 <<<"$out")"
fi
echo "buildkit: image $tag built ($label=${sha:0:12})"
