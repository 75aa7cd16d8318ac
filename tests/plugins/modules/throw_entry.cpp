// A module whose entry throws, as a C++ module built without the SDK's glue
// might: the exception must not reach past the core's catch. With
// THROW_LINES its message spans lines and is not UTF-8: the reason is still
// one line of clean text.
#include <stdexcept>

#include "envd/plugin_abi.h"

extern "C" ENVD_PLUGIN_EXPORT const envd_plugin_descriptor* envd_plugin_entry() {
#ifdef THROW_LINES
  throw std::runtime_error("boom\nfrom \xff entry\n");
#else
  throw std::runtime_error("boom from entry");
#endif
}
