# envd_add_plugin(<name> KIND builder|runner SOURCES <src>... [LIBRARIES <lib>...])
#
# Declares an envd driver module: a MODULE library with the static envd::sdk
# compiled in, hidden visibility (only the entry function is exported, so no
# C++ symbol crosses to the host), no undefined symbols, the output name
# envd-<kind>-<name>.so, and installation into ENVD_PLUGIN_INSTALL_DIR (from
# the SDK package: the directory envd searches under its prefix, e.g.
# lib/envd/plugins) under the component plugin-<name>.
#
# Shipped with the SDK package; used by envd's own modules and by third parties.
function(envd_add_plugin name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "KIND" "SOURCES;LIBRARIES")
  if(NOT arg_KIND MATCHES "^(builder|runner)$")
    message(FATAL_ERROR "envd_add_plugin(${name}): KIND must be builder or runner")
  endif()
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "envd_add_plugin(${name}): SOURCES is required")
  endif()
  add_library(${name} MODULE ${arg_SOURCES})
  target_link_libraries(${name} PRIVATE envd::sdk ${arg_LIBRARIES})
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    OUTPUT_NAME "envd-${arg_KIND}-${name}"
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  target_link_options(${name} PRIVATE "LINKER:--no-undefined")
  # In envd's own build, OpenSSL's archives instead of its shared libraries
  # (cmake/EnvdStaticClient.cmake says why); a build from the installed
  # package has no such target and links the shared ones.
  if(TARGET envd_static_openssl)
    set_target_properties(${name} PROPERTIES ENVD_STATIC_OPENSSL ON)
  endif()
  # Hidden visibility does not cover template code instantiated from system
  # headers (std::regex, say): a version script makes the entry function the
  # module's only exported symbol, whatever the module uses.
  set(version_script "${CMAKE_CURRENT_BINARY_DIR}/${name}.envd-plugin.map")
  file(WRITE "${version_script}" "{ global: envd_plugin_entry; local: *; };\n")
  target_link_options(${name} PRIVATE "LINKER:--version-script=${version_script}")
  set_property(TARGET ${name} APPEND PROPERTY LINK_DEPENDS "${version_script}")
  if(DEFINED ENVD_PLUGIN_OUTPUT_DIR)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${ENVD_PLUGIN_OUTPUT_DIR}")
  endif()
  if(NOT DEFINED ENVD_PLUGIN_INSTALL_DIR)
    include(GNUInstallDirs)
    set(ENVD_PLUGIN_INSTALL_DIR "${CMAKE_INSTALL_LIBDIR}/envd/plugins")
  endif()
  install(TARGETS ${name} LIBRARY DESTINATION "${ENVD_PLUGIN_INSTALL_DIR}" COMPONENT "plugin-${name}")
  # The one record of the modules this build makes: tests and packaging read
  # it (GLOBAL PROPERTY ENVD_PLUGINS) instead of keeping lists of their own.
  set_property(GLOBAL APPEND PROPERTY ENVD_PLUGINS ${name})
  set_property(GLOBAL APPEND PROPERTY ENVD_PLUGINS_${arg_KIND} ${name})
endfunction()
