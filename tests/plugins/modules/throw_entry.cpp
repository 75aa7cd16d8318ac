// A module whose entry throws, as a C++ module built without the SDK's glue
// might: the exception must not reach past the core's catch.
#include <stdexcept>

#include "envd/plugin_abi.h"

extern "C" ENVD_PLUGIN_EXPORT const envd_plugin_descriptor* envd_plugin_entry() {
  throw std::runtime_error("boom from entry");
}
