// The cluster that envd_test_kube_apiserver pretends to run: pods, deployments,
// statefulsets and RBAC denials, read from the --state JSON file on every
// request, rendered as the Kubernetes v1 / apps/v1 objects a real
// kube-apiserver returns. The file's format is described at the top of
// kube_fixture.hpp. Test-only.
#pragma once

#include <boost/json.hpp>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kube_selector.hpp"

namespace envd::test::kube {

struct Pod {
  std::string namespace_name = "default";
  std::string name;
  Labels labels;
  std::string phase = "Running";        // Pending, Running, Succeeded, Failed, Unknown
  bool ready = true;                    // Running pods only
  std::string node = "envd-test-node";  // empty: not scheduled (a Pending pod)
  std::vector<std::string> containers = {"buildkitd"};
  std::string default_container;  // the kubectl.kubernetes.io/default-container annotation
  std::string image = "moby/buildkit:v0.11.6";
  std::string waiting_reason;   // e.g. CrashLoopBackOff: the containers wait with this reason
  std::string waiting_message;  // defaults to what the kubelet says for that reason
  std::string message;          // why a Pending pod is not scheduled
  int restarts = 0;
  std::string owner_kind;  // "StatefulSet" or "ReplicaSet"; empty: no owner
  std::string owner_name;
  std::string log;  // what GET .../log answers for any of its containers
  // Being deleted: metadata.deletionTimestamp (and its grace period) set, as
  // a pod has while it terminates; it keeps its phase and may still be Ready.
  bool deleting = false;

  // Whether `container` runs: what exec needs.
  bool container_running(const std::string& container) const;
  bool has_container(const std::string& container) const;
};

struct Workload {
  std::string kind;  // "Deployment" or "StatefulSet"
  std::string namespace_name = "default";
  std::string name;
  Labels selector;  // spec.selector.matchLabels, also the template's labels
  int replicas = 1;
  std::string image = "moby/buildkit:v0.11.6";
  std::vector<std::string> containers = {"buildkitd"};
};

// An RBAC denial: requests in `namespace_name` for one of `resources`
// ("pods", "pods/exec", "pods/log", "deployments", "statefulsets"; empty: all)
// with one of `verbs` ("get", "list", "create"; empty: all) are forbidden.
struct Denial {
  std::string namespace_name;
  std::vector<std::string> resources;
  std::vector<std::string> verbs;
};

struct State {
  std::string user = "system:serviceaccount:ci:envd";  // named in 403 messages
  std::vector<Pod> pods;
  std::vector<Workload> deployments;
  std::vector<Workload> statefulsets;
  std::vector<Denial> denials;

  const Pod* find_pod(const std::string& ns, const std::string& name) const;
  const Workload* find_workload(const std::string& kind, const std::string& ns,
                                const std::string& name) const;
  bool denied(const std::string& ns, const std::string& resource, const std::string& verb) const;
};

// Reads the state file; on failure returns nullopt and sets *error.
std::optional<State> load_state(const std::string& path, std::string* error);

// The objects as the apiserver encodes them. `created` is an RFC 3339 time
// used for every timestamp; `with_type` adds kind and apiVersion (list items
// carry neither).
boost::json::object pod_object(const Pod& pod, const std::string& created, bool with_type);
boost::json::object workload_object(const Workload& workload, const State& state,
                                    const std::string& created, bool with_type);

// A stable UUID-shaped uid for an object.
std::string object_uid(const std::string& kind, const std::string& ns, const std::string& name);

}  // namespace envd::test::kube
