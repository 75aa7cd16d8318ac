#include "kube_discovery.hpp"

#include <vector>

namespace json = boost::json;

namespace envd::test::kube {
namespace {

struct Resource {
  const char* name;
  const char* singular;
  bool namespaced;
  const char* kind;
  std::vector<const char*> verbs;
  std::vector<const char*> short_names;
  bool all_category;
  const char* hash;
};

const std::vector<const char*> kAllVerbs = {"create", "delete", "deletecollection", "get",
                                            "list",   "patch",  "update",           "watch"};

const std::vector<Resource>& core_resources() {
  static const std::vector<Resource> r = {
      {"namespaces",
       "namespace",
       false,
       "Namespace",
       {"create", "delete", "get", "list", "patch", "update", "watch"},
       {"ns"},
       false,
       "Q3oi5N2YM8M="},
      {"pods", "pod", true, "Pod", kAllVerbs, {"po"}, true, "xPOwRZ+Yhw8="},
      {"pods/exec", "", true, "PodExecOptions", {"create", "get"}, {}, false, ""},
      {"pods/log", "", true, "Pod", {"get"}, {}, false, ""},
  };
  return r;
}

const std::vector<Resource>& apps_resources() {
  static const std::vector<Resource> r = {
      {"deployments",
       "deployment",
       true,
       "Deployment",
       kAllVerbs,
       {"deploy"},
       true,
       "8aSe+NMegvE="},
      {"statefulsets",
       "statefulset",
       true,
       "StatefulSet",
       kAllVerbs,
       {"sts"},
       true,
       "H+vl74LkKdo="},
  };
  return r;
}

json::array strings(const std::vector<const char*>& list) {
  json::array out;
  for (const char* s : list) out.emplace_back(s);
  return out;
}

json::object resource_list(const char* group_version, const std::vector<Resource>& resources,
                           bool with_api_version) {
  json::array items;
  for (const auto& r : resources) {
    json::object o{{"name", r.name},
                   {"singularName", r.singular},
                   {"namespaced", r.namespaced},
                   {"kind", r.kind},
                   {"verbs", strings(r.verbs)}};
    if (!r.short_names.empty()) o["shortNames"] = strings(r.short_names);
    if (r.all_category) o["categories"] = json::array{"all"};
    if (*r.hash != '\0') o["storageVersionHash"] = r.hash;
    items.push_back(std::move(o));
  }
  json::object out{{"kind", "APIResourceList"}};
  // The core group's list is encoded without apiVersion, a named group's with it.
  if (with_api_version) out["apiVersion"] = "v1";
  out["groupVersion"] = group_version;
  out["resources"] = std::move(items);
  return out;
}

json::object aggregated_version(const std::vector<Resource>& resources) {
  json::array items;
  for (const auto& r : resources) {
    std::string name = r.name;
    if (name.find('/') != std::string::npos) continue;
    json::object o{{"resource", r.name},
                   {"responseKind", json::object{{"group", ""}, {"version", ""}, {"kind", r.kind}}},
                   {"scope", r.namespaced ? "Namespaced" : "Cluster"},
                   {"singularResource", r.singular},
                   {"verbs", strings(r.verbs)}};
    if (!r.short_names.empty()) o["shortNames"] = strings(r.short_names);
    if (r.all_category) o["categories"] = json::array{"all"};
    json::array subresources;
    for (const auto& s : resources) {
      std::string sub = s.name;
      if (sub.rfind(name + "/", 0) != 0) continue;
      subresources.push_back(json::object{
          {"subresource", sub.substr(name.size() + 1)},
          {"responseKind", json::object{{"group", ""}, {"version", ""}, {"kind", s.kind}}},
          {"verbs", strings(s.verbs)}});
    }
    if (!subresources.empty()) o["subresources"] = std::move(subresources);
    items.push_back(std::move(o));
  }
  return json::object{{"version", "v1"}, {"resources", std::move(items)}, {"freshness", "Current"}};
}

json::object apps_group() {
  json::object v{{"groupVersion", "apps/v1"}, {"version", "v1"}};
  return json::object{{"name", "apps"}, {"versions", json::array{v}}, {"preferredVersion", v}};
}

}  // namespace

json::object api_versions(const std::string& server_address) {
  return json::object{
      {"kind", "APIVersions"},
      {"versions", json::array{"v1"}},
      {"serverAddressByClientCIDRs",
       json::array{json::object{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", server_address}}}}};
}

json::object api_group_list() {
  return json::object{
      {"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", json::array{apps_group()}}};
}

json::object apps_api_group() {
  json::object g{{"kind", "APIGroup"}, {"apiVersion", "v1"}};
  for (auto& [k, v] : apps_group()) g[k] = v;
  return g;
}

json::object core_v1_resources() { return resource_list("v1", core_resources(), false); }

json::object apps_v1_resources() { return resource_list("apps/v1", apps_resources(), true); }

json::object aggregated_core_group() {
  return json::object{{"metadata", json::object{{"creationTimestamp", nullptr}}},
                      {"versions", json::array{aggregated_version(core_resources())}}};
}

json::object aggregated_apps_group() {
  return json::object{{"metadata", json::object{{"name", "apps"}, {"creationTimestamp", nullptr}}},
                      {"versions", json::array{aggregated_version(apps_resources())}}};
}

}  // namespace envd::test::kube
