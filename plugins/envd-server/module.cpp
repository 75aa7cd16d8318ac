// The module's entry point; the driver lives in envd_server_runner.cpp.
#include "envd/plugin.hpp"
#include "envd_server_runner.hpp"

ENVD_DECLARE_RUNNER_PLUGIN(envd::plugins::EnvdServerRunner, "envd-server", "0.1.0",
                           "environments on Kubernetes through an envd-server",
                           ENVD_MATURITY_EXPERIMENTAL)
