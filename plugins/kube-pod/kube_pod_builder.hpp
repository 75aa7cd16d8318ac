// The kube-pod builder: buildkitd in a Kubernetes pod that already exists,
// reached with `kubectl --context=<ctx> --namespace=<ns> exec --container=<c>
// -i <pod> -- buildctl dial-stdio`. envd never creates or removes the pod.
//
// Address grammar:
//   <pod>[?context=<kube context>&namespace=<namespace>&container=<container>]
// optionally with a "kube-pod://" prefix (dropped when stored). Pod, namespace
// and container match [-a-z0-9.]+; the kube context is any non-empty string.
// Parameters may come in any order and are stored in the order context,
// namespace, container (the order of the grammar), absent ones left out, so
// two spellings of one target compare equal. There is no default address.
// Dialling comes later.
#pragma once

#include <string>

#include "envd/plugin.hpp"

namespace envd::plugins {

class KubePodBuilder final : public sdk::BuilderDriver {
 public:
  Result<std::string> normalize_address(const std::string& address) const override;
};

}  // namespace envd::plugins
