// The module's entry point; the driver lives in moby_worker_builder.cpp.
#include "envd/plugin.hpp"
#include "moby_worker_builder.hpp"

ENVD_DECLARE_BUILDER_PLUGIN(envd::plugins::MobyWorkerBuilder, "moby-worker", "0.1.0",
                            "the BuildKit embedded in the Docker Engine named by DOCKER_HOST",
                            ENVD_MATURITY_EXPERIMENTAL)
