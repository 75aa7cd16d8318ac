#!/usr/bin/env bash
# Package test: make the Debian packages and the .tar.gz with CPack, check
# them with lintian (no errors), install the CLI and one plugin package with
# dpkg into a private root, and run what was installed: envd finds exactly that
# plugin with no environment variable, and keeps working when the whole
# prefix is moved. Usage: packages.sh <build dir>
set -euo pipefail
build=$(realpath "$1")
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() {
  echo "package test: $*" >&2
  exit 1
}
for tool in cpack dpkg dpkg-deb lintian; do
  command -v "$tool" >/dev/null || fail "'$tool' is missing (scripts/install-deps.sh installs it)"
done

out="$work/packages"
(cd "$build" && cpack -G "DEB;TGZ" -B "$out" >"$work/cpack.log" 2>&1) ||
  fail "cpack failed: $(tail -n 20 "$work/cpack.log")"
shopt -s nullglob
debs=("$out"/*.deb)
version=$(dpkg-deb -f "$out"/envd_*_amd64.deb Version)

# One package per component: the CLI, the SDK, and one per module this build made.
built=$(find "$build/lib/envd/plugins" -maxdepth 1 -name 'envd-*.so' -printf '%f\n' |
  sed -E 's/^envd-(builder|runner)-(.+)\.so$/envd-plugin-\2/' | sort)
expected=$(printf '%s\n' envd envd-sdk-dev $built | sort | tr '\n' ' ')
names=$(for deb in "${debs[@]}"; do dpkg-deb -f "$deb" Package; done | sort | tr '\n' ' ')
[[ "$names" == "$expected" ]] || fail "packages '$names', expected '$expected'"

# lintian: no errors (warnings are listed in docs/install.md).
lintian --fail-on error --tag-display-limit 0 "${debs[@]}" >"$work/lintian.log" 2>&1 ||
  fail "lintian found errors: $(grep '^E:' "$work/lintian.log")"

# The notices of the libraries linked into envd's programs ship with it
# (cmake/EnvdPackaging.cmake): at least protobuf's and OpenSSL's, which
# envd-client always holds, each the Debian package's own copyright file.
contents=$(dpkg-deb -c "$out"/envd_*_amd64.deb)
for package in libprotobuf-dev libssl-dev libgrpc-dev; do
  grep -q "usr/share/doc/envd/embedded/$package.copyright$" <<<"$contents" ||
    fail "the envd package lacks the notice of $package"
done

# envd's modules link OpenSSL in: its notice ships in every plugin package.
for deb in "$out"/envd-plugin-*.deb; do
  name=$(dpkg-deb -f "$deb" Package)
  dpkg-deb -c "$deb" | grep -q "usr/share/doc/$name/embedded/libssl-dev.copyright$" ||
    fail "$name lacks the notice of libssl-dev"
done

# envd provides the plugin ABI it speaks, for third parties' modules to
# depend on (their version of it comes from the SDK's CMake package).
abi_major=$(sed -n 's/^#define ENVD_ABI_MAJOR \([0-9]*\).*/\1/p' "$src/sdk/include/envd/plugin_abi.h")
abi_minor=$(sed -n 's/^#define ENVD_ABI_MINOR \([0-9]*\).*/\1/p' "$src/sdk/include/envd/plugin_abi.h")
provides=$(dpkg-deb -f "$out"/envd_*_amd64.deb Provides)
[[ "$provides" == "envd-plugin-abi-$abi_major (= $abi_major.$abi_minor)" ]] ||
  fail "the envd package provides '$provides'"
# The SDK's archive ships without its debug information.
sdk_dir="$work/sdk-deb"
dpkg-deb -x "$out"/envd-sdk-dev_*_amd64.deb "$sdk_dir"
if readelf -S "$sdk_dir"/usr/lib/libenvd-sdk.a 2>/dev/null | grep -q '\.debug_info'; then
  fail "the SDK package's libenvd-sdk.a holds debug information"
fi

# Every plugin package wants the envd it was built with, exactly.
for deb in "$out"/envd-plugin-*.deb; do
  depends=$(dpkg-deb -f "$deb" Depends)
  [[ "$depends" == *"envd (= $version)"* ]] || fail "$(basename "$deb") depends on '$depends'"
done
# The CLI's run-time dependencies (dpkg-shlibdeps) are all installed here.
dpkg-deb -f "$out"/envd_*_amd64.deb Depends | tr ',' '\n' | sed -E 's/^ *([^ ]+).*/\1/' |
  while read -r dep; do
    dpkg-query -W -f='${Status}' "$dep" 2>/dev/null | grep -q "install ok installed" ||
      fail "envd depends on '$dep', which is not installed here"
  done

# dpkg -i of the CLI and one plugin, into a private root with its own dpkg
# database (the system's libraries stand in for the Depends; the packages
# carry no maintainer scripts: none installs a library where ldconfig looks).
root="$work/root"
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status"
plugin_deb=$(ls "$out"/envd-plugin-tcp_*.deb 2>/dev/null || ls "$out"/envd-plugin-*.deb | head -n 1)
plugin=$(dpkg-deb -f "$plugin_deb" Package)
dpkg --root="$root" --force-depends --force-script-chrootless --log=/dev/null \
  -i "$out"/envd_*_amd64.deb "$plugin_deb" >"$work/dpkg.log" 2>&1 ||
  fail "dpkg -i failed: $(tail -n 20 "$work/dpkg.log")"
status=$(dpkg --root="$root" -l envd "$plugin" 2>/dev/null | grep -c '^ii' || true)
[[ "$status" == 2 ]] || fail "dpkg does not list envd and $plugin as installed"

export HOME="$work/home"
unset XDG_CONFIG_HOME XDG_CACHE_HOME XDG_DATA_HOME ENVD_CONFIG_DIR ENVD_CONTEXT ENVD_PLUGIN_PATH
check_plugins() {
  local envd="$1" want="$2" listing types
  listing=$("$envd" plugin ls --format json) || fail "$envd plugin ls failed"
  types=$(grep -o '"path":"[^"]*"' <<<"$listing" | sed -E 's|.*/envd-(builder\|runner)-([^/]+)\.so"$|envd-plugin-\2|' |
    sort | tr '\n' ' ')
  [[ "$types" == "$want" ]] || fail "$envd lists '$types', expected '$want': $listing"
  grep -q '"status":"refused"' <<<"$listing" && fail "$envd refused a module: $listing"
  "$envd" version --format json >/dev/null || fail "$envd version failed"
}
check_plugins "$root/usr/bin/envd" "$plugin "

# A build-only install (one builder, no runner, as in a CI image) makes a
# context with the default runner unchecked, says so, and names the missing
# runner when an environment command needs it.
if [[ $plugin == envd-plugin-tcp ]]; then
  envd_in_root="$root/usr/bin/envd"
  "$envd_in_root" context create --name ci --builder tcp --builder-address 127.0.0.1:8888 --use \
    >/dev/null 2>"$work/create.log" || fail "context create with only the tcp module failed: $(cat "$work/create.log")"
  grep -q "Runner 'docker' is not installed: context ci can build but not run environments" "$work/create.log" ||
    fail "context create did not say the runner is missing: $(cat "$work/create.log")"
  if "$envd_in_root" envs ls >/dev/null 2>"$work/envs.log"; then fail "envd envs ls worked with no runner module"; fi
  grep -q "unknown runner type 'docker'" "$work/envs.log" ||
    fail "envd envs ls did not name the missing runner: $(cat "$work/envs.log")"
  "$envd_in_root" context rm --force ci >/dev/null 2>&1 || fail "context rm --force ci failed"
fi

# Relocatable: the whole prefix moved elsewhere keeps working.
mkdir -p "$work/elsewhere/opt"
mv "$root/usr" "$work/elsewhere/opt/envd"
check_plugins "$work/elsewhere/opt/envd/bin/envd" "$plugin "

# The .tar.gz holds the whole prefix: every module.
mkdir -p "$work/tgz"
tar -xzf "$out"/envd-*.tar.gz -C "$work/tgz"
tgz_envd=$(find "$work/tgz" -path '*/bin/envd' -type f)
[[ -n "$tgz_envd" ]] || fail "no bin/envd in the .tar.gz"
check_plugins "$tgz_envd" "$(printf '%s\n' $built | tr '\n' ' ')"
echo "package test: ok (${#debs[@]} packages, version $version, lintian clean of errors)"
