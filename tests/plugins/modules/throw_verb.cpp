// A builder whose entry works and whose every verb throws, as a C++ module
// built without the SDK's glue might: the exception must end in the core's
// catch (a one-line error), in every program that loads modules, including
// envd with its C++ library linked in while the module uses the shared one.
#include <stdexcept>
#include <string>

#include "envd/plugin_abi.h"

namespace {

[[noreturn]] void boom(const char* verb) {
  throw std::runtime_error(std::string("boom from ") + verb);
}

envd_status normalize_address(const char*, char**, char**) { boom("normalize_address"); }
envd_status normalize_options(const char*, char**, char**) { boom("normalize_options"); }
envd_status dial(const char*, envd_transport*, char**) { boom("dial"); }
envd_status status(const char*, char**, char**) { boom("status"); }
envd_status bootstrap(const char*, char**, char**) { boom("bootstrap"); }
envd_status stop(const char*, char**) { boom("stop"); }
envd_status remove_daemon(const char*, char**) { boom("remove"); }
envd_status dial_session(const char*, int32_t*, char**) { boom("dial_session"); }
void free_string(char*) {}

const envd_builder_vtable table = {sizeof(envd_builder_vtable),
                                   normalize_address,
                                   normalize_options,
                                   dial,
                                   status,
                                   bootstrap,
                                   stop,
                                   remove_daemon,
                                   dial_session};

const envd_plugin_descriptor descriptor = {ENVD_ABI_MAJOR,
                                           ENVD_ABI_MINOR,
                                           sizeof(envd_plugin_descriptor),
                                           ENVD_KIND_BUILDER,
                                           "test-throwing",
                                           "1.0.0",
                                           "builder whose verbs throw",
                                           ENVD_MATURITY_EXPERIMENTAL,
                                           free_string,
                                           &table,
                                           nullptr,
                                           nullptr,
                                           nullptr};

}  // namespace

extern "C" ENVD_PLUGIN_EXPORT const envd_plugin_descriptor* envd_plugin_entry() {
  return &descriptor;
}
