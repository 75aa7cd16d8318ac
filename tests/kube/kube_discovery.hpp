// The discovery documents of envd_test_kube_apiserver: the resources it
// serves (namespaces, pods, pods/exec, pods/log; apps/v1 deployments and
// statefulsets) as kube-apiserver 1.32 describes them, in the legacy form
// (/api, /apis, /api/v1, /apis/apps, /apis/apps/v1) and as aggregated
// discovery (apidiscovery.k8s.io/v2 APIGroupDiscoveryList items for /api and
// /apis). Test-only.
#pragma once

#include <boost/json.hpp>
#include <string>

namespace envd::test::kube {

// GET /api: APIVersions (encoded without apiVersion, as the apiserver does).
boost::json::object api_versions(const std::string& server_address);
// GET /apis: APIGroupList.
boost::json::object api_group_list();
// GET /apis/apps: APIGroup.
boost::json::object apps_api_group();
// GET /api/v1 (without apiVersion, as the apiserver does) and /apis/apps/v1: APIResourceList.
boost::json::object core_v1_resources();
boost::json::object apps_v1_resources();
// The one APIGroupDiscovery item of /api (the core group) and of /apis (apps).
boost::json::object aggregated_core_group();
boost::json::object aggregated_apps_group();

}  // namespace envd::test::kube
