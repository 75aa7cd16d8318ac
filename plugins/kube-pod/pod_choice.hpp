// Reading kubectl's pod JSON and choosing the pod a build goes to.
#pragma once

#include <string>
#include <vector>

#include "envd/result.hpp"

namespace envd::plugins::kube {

struct PodFacts {
  std::string name;
  std::string namespace_;
  std::string phase;   // Pending, Running, Succeeded, Failed, Unknown
  bool ready = false;  // condition Ready is True
  bool deleting = false;
  std::vector<std::string> containers;
  // Why it is not ready, from the first waiting container ("CrashLoopBackOff")
  // or a false condition ("Unschedulable"); "" when there is none.
  std::string reason;

  // A build may go to it: Running, Ready, not being deleted.
  bool usable() const { return phase == "Running" && ready && !deleting; }
  // "pod buildkitd-0 in namespace ci is Pending (reason: Unschedulable)".
  std::string why_unusable() const;
};

// One Pod object, or every item of a PodList, as `kubectl get -o json` prints
// them. Errors: Errc::internal naming what kubectl printed that was not one.
Result<PodFacts> parse_pod(const std::string& json);
Result<std::vector<PodFacts>> parse_pod_list(const std::string& json);

// spec.selector of a Deployment or StatefulSet, as a label selector:
// matchLabels ("app=buildkitd,tier=ci", keys sorted), then matchExpressions
// as kubectl's set-based terms ("track notin (canary)", "gpu", "!spot");
// "" if it has none.
Result<std::string> parse_workload_selector(const std::string& json);

// Among `pods`, the usable one `context` sticks to, by rendezvous hashing of
// the context's name with each usable pod's: repeated builds of one context
// reuse one pod's cache (buildx's loadbalance=sticky), and a pod that goes
// away moves only the contexts it had (as buildx's hash ring). Errors:
// Errc::unavailable "no Running, Ready pod for <what> (<each pod and why>)".
Result<PodFacts> choose_pod(const std::vector<PodFacts>& pods, const std::string& context,
                            const std::string& what);

}  // namespace envd::plugins::kube
