// The kube-pod builder: buildkitd in a Kubernetes pod that already exists, by
// pod name, by workload (deployment/NAME, statefulset/NAME) or by label
// selector (kube_address.hpp), reached with `kubectl [--context=C]
// [--namespace=N] exec -i [--container=C] POD -- buildctl dial-stdio` whose
// stdin and stdout are one end of a socketpair handed to the core. envd never
// creates or removes the pod.
//
// Before exec, one `kubectl get` (the pod, or the workload and its pods)
// checks the phase, so a Pending or crashing pod is named with its reason
// rather than met with a timeout. Among several usable pods the choice sticks
// to the context (pod_choice.hpp). When kubectl ends before BuildKit answered,
// status() says why (its stderr), which the core appends to its error.
#pragma once

#include <memory>
#include <string>

#include "envd/plugin.hpp"

namespace envd::plugins {

class KubePodBuilder final : public sdk::BuilderDriver {
 public:
  KubePodBuilder();
  ~KubePodBuilder() override;
  KubePodBuilder(const KubePodBuilder&) = delete;
  KubePodBuilder& operator=(const KubePodBuilder&) = delete;

  Result<std::string> normalize_address(const std::string& address) const override;
  Result<sdk::Transport> dial(const sdk::Request& request) override;
  Result<std::string> status(const sdk::Request& request) override;
  Result<std::string> bootstrap(const sdk::Request& request) override;
  Status stop(const sdk::Request& request) override;
  Status remove(const sdk::Request& request) override;

 private:
  struct Execs;  // the kubectl exec children, reaped by their watcher threads
  std::unique_ptr<Execs> execs_;
};

}  // namespace envd::plugins
