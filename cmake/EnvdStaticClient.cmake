# The BuildKit client's libraries as static archives, for the one program that
# links them that way: envd-client (core/cli/CMakeLists.txt), the helper envd
# runs for the commands that talk to a daemon (docs/architecture.md,
# "Start-up").
#
# Why static: Debian's shared gRPC comes as some 60 libraries (gRPC, protobuf,
# Abseil one library per component, OpenSSL), and binding their 21,000 symbol
# references took the dynamic loader 17 to 21 ms on every build, two thirds of
# the time to the first Solve byte (docs/performance.md). Linked in, they are
# bound when the program is linked. Debian builds these archives as
# position-independent executables' code (local-exec TLS): they can go into an
# executable, not into a shared library, hence a program and not a library.
#
# A target opts in with the property ENVD_STATIC_CLIENT. The libraries that
# reach gRPC, protobuf or OpenSSL (the BuildKit protocol library, the BuildKit
# client, the SDK's TLS code) choose by that property of the target being
# linked: envd_static_client_libs for it, the shared libraries for everything
# else (the tests, the modules, third-party plugins).
#
# The list is pkg-config's own static link line for grpc++, protobuf-lite (the
# generated code is lite, proto/envd/wellknown.proto) and openssl, each -l
# resolved to its archive, with two exceptions that stay shared: RE2 (its
# archive's thread-local hooks are not even PIE code) and zlib (a copy of zlib
# is what Debian's lintian refuses in a package, and the shared one is small).
find_package(PkgConfig REQUIRED)
execute_process(
  COMMAND "${PKG_CONFIG_EXECUTABLE}" --static --libs grpc++ protobuf-lite openssl
  OUTPUT_VARIABLE envd_static_client_flags OUTPUT_STRIP_TRAILING_WHITESPACE
  RESULT_VARIABLE envd_static_client_result)
if(NOT envd_static_client_result EQUAL 0)
  message(FATAL_ERROR "pkg-config cannot list the static link of grpc++, protobuf-lite and openssl")
endif()
separate_arguments(envd_static_client_flags UNIX_COMMAND "${envd_static_client_flags}")

set(envd_static_client_archives)
set(envd_static_client_system)
foreach(flag IN LISTS envd_static_client_flags)
  if(NOT flag MATCHES "^-l(.+)$")
    continue()  # -pthread and --as-needed's brackets: Threads::Threads below
  endif()
  set(name "${CMAKE_MATCH_1}")
  if(name MATCHES "^(dl|rt|m|pthread|atomic)$")
    list(APPEND envd_static_client_system "${name}")
  elseif(name MATCHES "^(re2|z)$")
    list(APPEND envd_static_client_system "${name}")
  elseif(NOT DEFINED envd_static_archive_${name})
    set(envd_static_archive_${name} ON)
    find_library(ENVD_STATIC_ARCHIVE_${name} NAMES "lib${name}.a" NO_CACHE)
    if(NOT ENVD_STATIC_ARCHIVE_${name})
      message(FATAL_ERROR "lib${name}.a not found: envd-client links gRPC, protobuf, Abseil and "
        "OpenSSL statically (scripts/install-deps.sh installs their -dev packages)")
    endif()
    list(APPEND envd_static_client_archives "${ENVD_STATIC_ARCHIVE_${name}}")
  endif()
endforeach()
list(REMOVE_DUPLICATES envd_static_client_system)

add_library(envd_static_client_libs INTERFACE)
# One group, searched again until nothing new is pulled: pkg-config's order
# names some Abseil archives before others that need them.
target_link_libraries(envd_static_client_libs INTERFACE
  "$<LINK_GROUP:RESCAN,${envd_static_client_archives}>"
  ${envd_static_client_system} Threads::Threads)

# The choice each of those libraries makes, by the linked target's property.
set(ENVD_IF_STATIC_CLIENT "$<BOOL:$<TARGET_PROPERTY:ENVD_STATIC_CLIENT>>")
set(ENVD_UNLESS_STATIC_CLIENT "$<NOT:${ENVD_IF_STATIC_CLIENT}>")
# The BuildKit protocol's generated code (proto/CMakeLists.txt), chosen alike.
set(ENVD_BUILDKIT_PROTO
  "$<IF:${ENVD_IF_STATIC_CLIENT},envd_buildkit_proto_static,envd_buildkit_proto>")

# OpenSSL's archives, for envd's own driver modules (envd_add_plugin sets the
# property ENVD_STATIC_OPENSSL on them). Unlike gRPC's and Abseil's, Debian
# builds these as position-independent code, so they can go into a shared
# module; the module's version script keeps every symbol of them local. Why:
# the shared libcrypto and libssl carry 24,000 relocations, 4,900 of them
# symbol lookups, and loading them took 0.7 to 0.8 ms of every build on the
# moby-worker context and of every command of the docker runner; linked in,
# only the members a module uses come along, bound when it is linked
# (docs/performance.md). Third-party modules, built from the installed
# package, keep the shared libraries: the property and this target are this
# build's own.
add_library(envd_static_openssl INTERFACE)
target_link_libraries(envd_static_openssl INTERFACE
  "${ENVD_STATIC_ARCHIVE_ssl}" "${ENVD_STATIC_ARCHIVE_crypto}" ${CMAKE_DL_LIBS} Threads::Threads)
set(ENVD_IF_STATIC_OPENSSL "$<BOOL:$<TARGET_PROPERTY:ENVD_STATIC_OPENSSL>>")
