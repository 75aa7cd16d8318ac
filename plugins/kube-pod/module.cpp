// The module's entry point; the driver lives in kube_pod_builder.cpp.
#include "envd/plugin.hpp"
#include "kube_pod_builder.hpp"

ENVD_DECLARE_BUILDER_PLUGIN(
    envd::plugins::KubePodBuilder, "kube-pod", "0.1.0",
    "buildkitd in Kubernetes pods (by name, workload or labels), through kubectl exec",
    ENVD_MATURITY_EXPERIMENTAL)
