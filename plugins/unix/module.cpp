// The module's entry point; the driver lives in unix_builder.cpp.
#include "envd/plugin.hpp"
#include "unix_builder.hpp"

ENVD_DECLARE_BUILDER_PLUGIN(envd::plugins::UnixBuilder, "unix", "0.1.0",
                            "a BuildKit daemon listening on a unix socket (rootless, daemonless)",
                            ENVD_MATURITY_STABLE)
