// The kube-pod builder's address: which pod runs buildkitd, and how kubectl
// reaches it.
//
//   POD[?context=KUBECTX&namespace=NS&container=C]        as upstream envd writes it
//   deployment/NAME[?...]   statefulset/NAME[?...]        a Running, Ready pod of that workload
//   ?selector=app%3Dbuildkitd[&...]                       a Running, Ready pod with those labels
//
// optionally with a "kube-pod://" prefix (dropped when stored). Names follow
// Kubernetes' own rules, named in each message: pods, deployments and
// statefulsets are DNS-1123 subdomains (at most 253 characters of [a-z0-9-.],
// starting and ending with [a-z0-9]), namespaces and containers DNS-1123 labels
// (at most 63 of [a-z0-9-], starting and ending with [a-z0-9]); a kube context is
// any non-empty name without spaces; a selector is Kubernetes' equality-based
// label selector syntax (key=value, key==value, key!=value, key, !key, joined by
// commas). Nothing can become a kubectl flag: every value is checked to start
// with no '-', and kubectl gets names after "--" anyway. Parameters are stored in
// the order context, namespace, container, selector.
#pragma once

#include <string>

#include "envd/result.hpp"

namespace envd::plugins::kube {

struct KubeTarget {
  enum class Kind { pod, deployment, statefulset, selector };
  Kind kind = Kind::pod;
  std::string name;        // pod, deployment or statefulset name; empty for a selector
  std::string context;     // kube context; empty: kubectl's current one
  std::string namespace_;  // empty: the kubeconfig's namespace
  std::string container;   // empty: the pod's default container
  std::string selector;    // label selector (Kind::selector)

  // The stored form, e.g. "deployment/buildkitd?namespace=ci".
  std::string to_string() const;
  // "pod buildkitd-0", "deployment/buildkitd", "pods with labels app=buildkitd".
  std::string describe() const;
};

// The expected forms, for messages.
extern const char* const kExpectedAddress;

// Parses and checks an address (with or without "kube-pod://"). Errors are
// Errc::invalid_argument in the SDK's address wording.
Result<KubeTarget> parse_address(const std::string& address);

// Kubernetes' name rules; each returns "" or the rule broken, e.g. "must be at
// most 63 characters" or "must consist of lower case alphanumeric characters or
// '-', and must start and end with an alphanumeric character".
std::string dns1123_label_problem(const std::string& name);
std::string dns1123_subdomain_problem(const std::string& name);
std::string label_selector_problem(const std::string& selector);

}  // namespace envd::plugins::kube
