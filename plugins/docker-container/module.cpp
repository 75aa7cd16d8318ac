// The module's entry point; the driver lives in docker_container_builder.cpp.
#include "docker_container_builder.hpp"
#include "envd/plugin.hpp"

ENVD_DECLARE_BUILDER_PLUGIN(envd::plugins::DockerContainerBuilder, "docker-container", "0.1.0",
                            "buildkitd in a Docker container that envd manages",
                            ENVD_MATURITY_STABLE)
