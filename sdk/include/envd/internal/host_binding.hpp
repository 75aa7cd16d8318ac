// Internal to the SDK and the envd core; not for drivers. Installed only
// because the glue of <envd/plugin.hpp>, instantiated inside each module,
// refers to it.
//
// Each module carries its own copy of the SDK (a static library with hidden
// visibility), so each copy is told the host's services on its own: the glue
// passes on what the core hands the module's descriptor (set_host, ABI 1.2),
// and the core binds its own copy the same way.
#pragma once

#include "envd/plugin_abi.h"

namespace envd::sdk::internal {

// Makes `host` the services this copy of the SDK reports to (nullptr: none).
// `host` must stay valid for the life of the process. Thread-safe.
void bind_host(const envd_host_api* host);

}  // namespace envd::sdk::internal
