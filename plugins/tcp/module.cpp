// The module's entry point; the driver lives in tcp_builder.cpp.
#include "envd/plugin.hpp"
#include "tcp_builder.hpp"

ENVD_DECLARE_BUILDER_PLUGIN(envd::plugins::TcpBuilder, "tcp", "0.1.0",
                            "a BuildKit daemon listening on a TCP address (host:port)",
                            ENVD_MATURITY_STABLE)
