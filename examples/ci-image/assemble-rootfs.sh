#!/usr/bin/env bash
# Assembles the root file system of a CI image that carries envd and only the
# driver modules whose packages you pass: the packages unpacked (dpkg-deb -x),
# every shared object their programs and modules need (as ldd resolves them on
# this machine), busybox for a POSIX shell and the usual tools, and bash for
# job scripts. Nothing is downloaded and no base image is needed: Dockerfile
# (beside this script) turns the result into an image with `envd build`.
#
# Run it on Debian bookworm, where the packages were built: the libraries are
# copied from this machine, so the packages' run-time dependencies must be
# installed here (the script checks, and names any that is missing).
#
# Usage: assemble-rootfs.sh <rootfs-dir> <package.deb>...
#   e.g. assemble-rootfs.sh rootfs envd_0.1.0_amd64.deb envd-plugin-tcp_0.1.0_amd64.deb
# <rootfs-dir> must not exist yet or be empty.
set -euo pipefail

usage="usage: assemble-rootfs.sh <rootfs-dir> <package.deb>..."
fail() {
  echo "assemble-rootfs: $*" >&2
  exit 1
}
(($# >= 2)) || fail "$usage"
root=$1
shift
for tool in dpkg-deb dpkg-query ldd; do
  command -v "$tool" >/dev/null || fail "'$tool' is missing: run this on Debian bookworm"
done
busybox=$(command -v busybox || true)
[[ -n $busybox ]] || fail "'busybox' is missing (apt-get install busybox-static)"
# A static busybox needs no library; a dynamic one would pull in its own.
ldd "$busybox" >/dev/null 2>&1 && fail "'$busybox' is not static (apt-get install busybox-static)"
bash_bin=$(command -v bash)

if [[ -e $root ]]; then
  [[ -d $root && -z $(ls -A "$root") ]] || fail "'$root' exists and is not an empty directory"
fi
mkdir -p "$root"
root=$(cd "$root" && pwd)

# Debian bookworm merges /usr: the top-level directories are links into it, so
# a library ldd finds as /lib/x86_64-linux-gnu/... lands in usr/lib.
mkdir -p "$root"/usr/{bin,sbin,lib,lib64} "$root"/{etc,root,tmp,work}
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"

for deb in "$@"; do
  [[ -f $deb ]] || fail "no package '$deb'"
  name=$(dpkg-deb -f "$deb" Package 2>/dev/null) || fail "'$deb' is not a Debian package"
  # The libraries come from this machine: the package's dependencies must be here.
  depends=$(dpkg-deb -f "$deb" Depends)
  while read -r dep; do
    [[ -z $dep || $dep == envd* ]] && continue
    dpkg-query -W -f='${Status}' "$dep" 2>/dev/null | grep -q "install ok installed" ||
      fail "$name depends on '$dep', which is not installed on this machine (apt-get install $dep)"
  done < <(tr ',' '\n' <<<"$depends" | sed -E 's/^ *([^ |]+).*/\1/')
  dpkg-deb -x "$deb" "$root" || fail "cannot unpack '$deb'"
  echo "assemble-rootfs: unpacked $name" >&2
done
[[ -x $root/usr/bin/envd ]] || fail "no usr/bin/envd in the packages: pass the envd package"

cp "$busybox" "$root/usr/bin/busybox"
cp "$bash_bin" "$root/usr/bin/bash"
# One link per applet, never over a file a package installed.
for applet in $("$busybox" --list); do
  [[ -e $root/usr/bin/$applet || $applet == busybox ]] || ln -s busybox "$root/usr/bin/$applet"
done

# Every ELF file's shared objects, as this machine's loader resolves them
# (ldd lists the whole closure; the modules and envd's private libraries are
# found in the tree itself through their RUNPATH and need no copy).
is_elf() { [[ $(head -c 4 "$1" | od -An -c | tr -d ' ') == '177ELF' ]]; }
declare -A copied=()
while IFS= read -r -d '' file; do
  is_elf "$file" || continue
  [[ $file == "$root/usr/bin/busybox" ]] && continue
  out=$(ldd "$file" 2>&1) || fail "ldd cannot read '${file#"$root"}': $out"
  if grep -q "not found" <<<"$out"; then
    fail "'${file#"$root"}' needs a library this machine lacks: $(grep 'not found' <<<"$out" | head -n 1 | xargs)"
  fi
  while read -r lib; do
    [[ -z $lib || $lib == "$root"/* || -n ${copied[$lib]:-} ]] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
    copied[$lib]=1
  done < <(sed -nE 's@.*=> (/[^ ]+) .*@\1@p; s@^[[:space:]]*(/[^ ]+) \(.*@\1@p' <<<"$out")
done < <(find "$root/usr" -type f -print0)

cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"

size=$(du -sk "$root" | cut -f1)
echo "assemble-rootfs: $root: ${#copied[@]} shared objects copied, $((size / 1024)) MiB" >&2
