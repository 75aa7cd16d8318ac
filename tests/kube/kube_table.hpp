// The Table (meta.k8s.io/v1) that kube-apiserver answers when kubectl get
// prints without -o: the columns and cells of its printers for pods,
// deployments, statefulsets and namespaces. Test-only.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace envd::test::kube {

// A Table of `objects` of `resource` ("pods", "deployments", "statefulsets",
// "namespaces"), each as GET returns it, all `age_seconds` old; each row
// carries the object's metadata as a PartialObjectMetadata.
boost::json::object table(const std::string& resource,
                          const std::vector<boost::json::object>& objects,
                          const std::string& resource_version, std::int64_t age_seconds);

// The metadata.resourceVersion (or any other string or integer) at `path` in
// `o`; "" when absent.
std::string json_text(const boost::json::object& o, std::initializer_list<const char*> path);

}  // namespace envd::test::kube
