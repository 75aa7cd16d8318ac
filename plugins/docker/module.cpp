// The module's entry point; the driver lives in docker_runner.cpp.
#include "docker_runner.hpp"
#include "envd/plugin.hpp"

ENVD_DECLARE_RUNNER_PLUGIN(envd::plugins::DockerRunner, "docker", "0.1.0",
                           "environments as containers on a Docker Engine", ENVD_MATURITY_STABLE)
