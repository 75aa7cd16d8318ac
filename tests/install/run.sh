#!/usr/bin/env bash
# Install test: install envd to a temporary prefix, build the example third-party
# plugin out of tree against the *installed* SDK package, and use it through the
# installed envd. Usage: run.sh <build dir> <source dir>
set -euo pipefail
build=$(realpath "$1")
src=$(realpath "$2")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"

fail() { echo "install test: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" >/dev/null

# Only the public SDK headers are installed.
installed=$(cd "$prefix/include" && find . -type f | sort | tr '\n' ' ')
expected="./envd/address.hpp ./envd/csv.hpp ./envd/docker_engine.hpp ./envd/files.hpp ./envd/host.hpp ./envd/http_client.hpp ./envd/internal/host_binding.hpp ./envd/internal/plugin_glue.hpp ./envd/plugin.hpp ./envd/plugin_abi.h ./envd/process.hpp ./envd/progress.hpp ./envd/registry_auth.hpp ./envd/relay.hpp ./envd/result.hpp ./envd/stdio_frames.hpp ./envd/text.hpp "
[[ "$installed" == "$expected" ]] || fail "unexpected installed headers: $installed"
[[ -f "$prefix/lib/cmake/envd-sdk/envd-sdkConfig.cmake" ]] || fail "no envd-sdk package config"
[[ -f "$prefix/lib/cmake/envd-sdk/envd-sdkConfigVersion.cmake" ]] || fail "no package version file"
# The SDK is a static library compiled into each module: no shared SDK to
# keep ABI-compatible, and no module needs one.
[[ -f "$prefix/lib/libenvd-sdk.a" ]] || fail "no libenvd-sdk.a"
[[ -z $(find "$prefix" -name 'libenvd-sdk.so*') ]] || fail "a shared libenvd-sdk was installed"
# Exactly the modules this build made (envd_add_plugin's record: the build
# tree's plugin directory; any subset, none at all included), none of them
# linked to a shared SDK.
modules_in() { find "$1" -maxdepth 1 -name 'envd-*.so' -printf '%f\n' 2>/dev/null | sort | tr '\n' ' '; }
built=$(modules_in "$build/lib/envd/plugins")
installed_modules=$(modules_in "$prefix/lib/envd/plugins")
[[ "$installed_modules" == "$built" ]] || fail "installed modules '$installed_modules', built '$built'"
shopt -s nullglob
for module in "$prefix"/lib/envd/plugins/envd-*.so; do
  if readelf -d "$module" | grep -q 'NEEDED.*libenvd'; then fail "$module needs a shared envd library"; fi
  # envd's own modules take OpenSSL's archives in (cmake/EnvdStaticClient.cmake):
  # binding the shared libcrypto cost every build on moby-worker over a millisecond.
  if readelf -d "$module" | grep -qE 'NEEDED.*lib(ssl|crypto)\.'; then
    fail "$module loads the shared OpenSSL, which envd's modules link in"
  fi
  # libarchive brings nine libraries (ICU, libxml2, the compressors) to every
  # load: the docker-container module opens it when it needs it.
  if readelf -d "$module" | grep -q 'NEEDED.*libarchive'; then
    fail "$module links libarchive, which a module opens only when it writes an archive"
  fi
done

# The scanner's helper is installed where the installed envd looks for it.
[[ -x "$prefix/libexec/envd/envd-plugin-scan" ]] || fail "no libexec/envd/envd-plugin-scan"

# envd-client, the private program of the commands that talk to a daemon or
# read an archive, sits beside the scanner; it links gRPC, protobuf, Abseil and
# OpenSSL in, and envd itself links none of what it holds (it executes
# envd-client for those commands). No private shared library is installed.
[[ -x "$prefix/libexec/envd/envd-client" ]] || fail "no libexec/envd/envd-client"
if readelf -d "$prefix/bin/envd" | grep -E 'NEEDED.*(grpc|gpr|protobuf|absl|ssl|crypto|archive|envd)'; then
  fail "the installed envd links a library only envd-client needs"
fi
# libstdc++ and fmt are linked into envd too (ENVD_STATIC_CXX_RUNTIME, on
# unless a sanitizer build turned it off), and envd exports none of it: a
# module it loads binds its own libstdc++.
if grep -q '^ENVD_STATIC_CXX_RUNTIME:BOOL=ON' "$build/CMakeCache.txt"; then
  if readelf -d "$prefix/bin/envd" | grep -E 'NEEDED.*(stdc\+\+|fmt)'; then
    fail "the installed envd loads libstdc++ or fmt, which it should link in"
  fi
  if nm -DC --defined-only "$prefix/bin/envd" | grep -E 'std::|fmt::|__cxa|operator (new|delete)'; then
    fail "the installed envd exports the C++ library it links in"
  fi
fi
if readelf -d "$prefix/libexec/envd/envd-client" | grep -E 'NEEDED.*(grpc|gpr|protobuf|absl|ssl|crypto|envd)'; then
  fail "the installed envd-client loads a library it should link in"
fi
[[ -z $(find "$prefix/lib" -maxdepth 2 -name 'libenvd-*.so*') ]] ||
  fail "a private shared library was installed: $(find "$prefix/lib" -maxdepth 2 -name 'libenvd-*.so*')"

# The example builds against the installed package only.
cmake -S "$src/examples/third-party-builder" -B "$work/example" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/example" >/dev/null
module="$work/example/envd-builder-podman-container.so"
[[ -f "$module" ]] || fail "the example did not produce $module"

# The example's own .deb (its README's packaging step): the module alone, in
# the system plugin directory, depending on an envd of the SDK's plugin ABI.
# Configured as a Debian package build configures it (prefix /usr, the
# multiarch libdir): the module still goes where envd looks.
cmake -S "$src/examples/third-party-builder" -B "$work/example" -DCMAKE_INSTALL_PREFIX=/usr \
  -DCMAKE_INSTALL_LIBDIR=lib/x86_64-linux-gnu >/dev/null
(cd "$work/example" && cpack -G DEB >/dev/null) || fail "cpack failed for the example"
deb=$(ls "$work/example"/envd-plugin-podman-container_*.deb 2>/dev/null) || fail "the example made no .deb"
contents=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $6}' | tr '\n' ' ')
[[ "$contents" == "./usr/lib/envd/plugins/envd-builder-podman-container.so " ]] ||
  fail "the example's .deb holds '$contents'"
abi=$(sed -n 's/^#define ENVD_ABI_MINOR \([0-9]*\).*/\1/p' "$prefix/include/envd/plugin_abi.h")
[[ "$(dpkg-deb -f "$deb" Depends)" == "envd-plugin-abi-1 (>= 1.$abi)"* ]] ||
  fail "the example's .deb does not depend on the SDK's plugin ABI first: $(dpkg-deb -f "$deb" Depends)"

# Hidden visibility: the entry function is the module's only exported symbol.
exports=$(nm -D --defined-only "$module" | awk '$2 ~ /^[TDRBVW]$/ {print $3}' | sort | tr '\n' ' ')
[[ "$exports" == "envd_plugin_entry " ]] || fail "the example exports more than its entry: $exports"

# A package of another ABI major is not accepted.
mkdir -p "$work/major2"
cat > "$work/major2/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(wants_major_2 LANGUAGES CXX)
find_package(envd-sdk 2 REQUIRED)
CMAKE
if cmake -S "$work/major2" -B "$work/major2/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null 2>&1; then
  fail "find_package(envd-sdk 2) accepted an ABI 1 SDK"
fi

# The installed envd finds its installed modules and the example on ENVD_PLUGIN_PATH.
export HOME="$work/home"
unset XDG_CONFIG_HOME XDG_CACHE_HOME XDG_DATA_HOME ENVD_CONFIG_DIR ENVD_CONTEXT
export ENVD_PLUGIN_PATH="$work/example"
envd="$prefix/bin/envd"
listing=$("$envd" plugin ls --format json)
types=$(sed -E 's/envd-(builder|runner)-([a-z0-9-]+)\.so/\2/g' <<<"$built")
for type in podman-container $types; do
  grep -q "\"type\":\"$type\"" <<<"$listing" || fail "plugin ls does not show $type: $listing"
done
grep -q '"status":"refused"' <<<"$listing" && fail "a module was refused: $listing"
if [[ -n "$built" ]]; then
  grep -q "\"path\":\"$prefix/lib/envd/plugins/" <<<"$listing" || fail "installed modules not found: $listing"
fi

# The install is relocatable: moved elsewhere, envd still finds envd-client
# (context export needs it, and no daemon).
mv "$prefix" "$work/moved"
"$work/moved/bin/envd" context export default "$work/default.tar" 2>"$work/err" ||
  fail "the moved envd cannot export: $(cat "$work/err")"
[[ -s "$work/default.tar" ]] || fail "the moved envd wrote no archive"
mv "$work/moved" "$prefix"

# A context needs a runner too: docker (the default) when this build made it.
runner=""
for file in $built; do
  [[ $file =~ ^envd-runner-(.+)\.so$ ]] || continue
  if [[ -z "$runner" || ${BASH_REMATCH[1]} == docker ]]; then runner=${BASH_REMATCH[1]}; fi
done
if [[ -z "$runner" ]]; then
  echo "install test: ok (this build made no runner module: no context with the example)"
  exit 0
fi
"$envd" context create --name pod --builder podman-container --builder-address mybuildkitd \
  --runner "$runner" --use 2>/dev/null
row=$("$envd" context ls --format json)
grep -q '"builder_addr":"podman-container://mybuildkitd"' <<<"$row" || fail "context not created: $row"
if "$envd" context create --name bad --builder podman-container --builder-address 'no/slash' \
  --runner "$runner" 2>"$work/err"; then
  fail "the example accepted an invalid address"
fi
grep -q "podman-container address 'no/slash' is invalid" "$work/err" || fail "unexpected error: $(cat "$work/err")"
echo "install test: ok"
