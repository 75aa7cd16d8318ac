#include "kube_table.hpp"

namespace json = boost::json;

namespace envd::test::kube {
namespace {

// duration.HumanDuration.
std::string human_duration(std::int64_t seconds) {
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) return std::to_string(seconds) + "s";
  std::int64_t minutes = seconds / 60;
  if (minutes < 10) {
    std::int64_t s = seconds % 60;
    return std::to_string(minutes) + "m" + (s == 0 ? "" : std::to_string(s) + "s");
  }
  if (minutes < 180) return std::to_string(minutes) + "m";
  std::int64_t hours = minutes / 60;
  if (hours < 8) {
    std::int64_t m = minutes % 60;
    return std::to_string(hours) + "h" + (m == 0 ? "" : std::to_string(m) + "m");
  }
  if (hours < 48) return std::to_string(hours) + "h";
  if (hours < std::int64_t{24} * 8) {
    std::int64_t h = hours % 24;
    return std::to_string(hours / 24) + "d" + (h == 0 ? "" : std::to_string(h) + "h");
  }
  if (hours < std::int64_t{24} * 365 * 2) return std::to_string(hours / 24) + "d";
  if (hours < std::int64_t{24} * 365 * 8) {
    std::int64_t d = (hours / 24) % 365;
    return std::to_string(hours / 24 / 365) + "y" + (d == 0 ? "" : std::to_string(d) + "d");
  }
  return std::to_string(hours / 24 / 365) + "y";
}

json::object column(const char* name, const char* description, int priority = 0,
                    const char* format = "", const char* type = "string") {
  return json::object{{"name", name},
                      {"type", type},
                      {"format", format},
                      {"description", description},
                      {"priority", priority}};
}

constexpr const char* kNameDoc =
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
constexpr const char* kAgeDoc =
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
    "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/"
    "api-conventions.md#metadata";

}  // namespace

std::string json_text(const json::object& o, std::initializer_list<const char*> path) {
  const json::value* v = nullptr;
  const json::object* at = &o;
  for (const char* key : path) {
    if (at == nullptr) return "";
    v = at->if_contains(key);
    if (v == nullptr) return "";
    at = v->if_object();
  }
  if (v == nullptr) return "";
  if (v->is_string()) return std::string(v->get_string());
  if (v->is_int64()) return std::to_string(v->get_int64());
  return "";
}

namespace {

std::int64_t num(const json::object& o, std::initializer_list<const char*> path) {
  std::string s = json_text(o, path);
  return s.empty() ? 0 : std::stoll(s);
}

std::string container_names(const json::object& spec, bool images) {
  std::string out;
  for (const auto& c : spec.at("containers").as_array()) {
    out += (out.empty() ? "" : ",") + json_text(c.as_object(), {images ? "image" : "name"});
  }
  return out;
}

std::string selector_text(const json::object& match_labels) {
  std::string out;
  for (const auto& [k, v] : match_labels) {
    out += (out.empty() ? "" : ",") + std::string(k) + "=" + std::string(v.as_string());
  }
  return out;
}

// printPod's READY, STATUS and RESTARTS.
json::array pod_cells(const json::object& pod, std::int64_t age, const std::string& age_text) {
  const auto& status = pod.at("status").as_object();
  const auto* statuses = status.if_contains("containerStatuses");
  std::size_t total = pod.at("spec").at("containers").as_array().size();
  std::size_t ready = 0;
  std::int64_t restarts = 0;
  bool last_terminated = false;
  std::string reason = json_text(status, {"phase"});
  bool running = false;
  if (statuses != nullptr) {
    const auto& list = statuses->as_array();
    for (std::size_t i = list.size(); i-- > 0;) {
      const auto& cs = list[i].as_object();
      restarts += num(cs, {"restartCount"});
      if (cs.at("lastState").as_object().contains("terminated")) last_terminated = true;
      const auto& state = cs.at("state").as_object();
      if (auto w = json_text(state, {"waiting", "reason"}); !w.empty()) {
        reason = w;
      } else if (state.contains("terminated")) {
        reason = json_text(state, {"terminated", "reason"});
      } else if (state.contains("running") && cs.at("ready").as_bool()) {
        running = true;
      }
      if (cs.at("ready").as_bool()) ++ready;
    }
  }
  if (reason == "Completed" && running) reason = "Running";
  // printPod: a pod being deleted is Terminating, whatever else it says.
  if (pod.at("metadata").as_object().contains("deletionTimestamp")) reason = "Terminating";
  std::string restart_text = std::to_string(restarts);
  if (last_terminated && restarts > 0) restart_text += " (" + human_duration(age) + " ago)";
  std::string ip = json_text(status, {"podIP"});
  std::string node = json_text(pod, {"spec", "nodeName"});
  return json::array{json_text(pod, {"metadata", "name"}),
                     std::to_string(ready) + "/" + std::to_string(total),
                     reason,
                     restart_text,
                     age_text,
                     ip.empty() ? "<none>" : ip,
                     node.empty() ? "<none>" : node,
                     "<none>",
                     "<none>"};
}

}  // namespace

json::object table(const std::string& resource, const std::vector<json::object>& objects,
                   const std::string& resource_version, std::int64_t age) {
  std::string age_text = human_duration(age);
  json::array columns;
  if (resource == "pods") {
    columns = {column("Name", kNameDoc, 0, "name"),
               column("Ready", "The aggregate readiness state of this pod for accepting traffic."),
               column("Status", "The aggregate status of the containers in this pod."),
               column("Restarts",
                      "The number of times the containers in this pod have been restarted and "
                      "when the last container in this pod has restarted."),
               column("Age", kAgeDoc),
               column("IP",
                      "podIP address allocated to the pod. Routable at least within the cluster. "
                      "Empty if not yet allocated.",
                      1),
               column("Node",
                      "NodeName indicates in which node this pod is scheduled. If empty, this pod "
                      "is a candidate for scheduling by the scheduler defined in schedulerName.",
                      1),
               column("Nominated Node",
                      "nominatedNodeName is set only when this pod preempts other pods on the "
                      "node, but it cannot be scheduled right away as preemption victims receive "
                      "their graceful termination periods.",
                      1),
               column("Readiness Gates",
                      "If specified, all readiness gates will be evaluated for pod readiness. A "
                      "pod is ready when all its containers are ready AND all conditions "
                      "specified in the readiness gates have status equal to \"True\"",
                      1)};
  } else if (resource == "deployments") {
    columns = {column("Name", kNameDoc, 0, "name"),
               column("Ready", "Number of the pod with ready state"),
               column("Up-to-date",
                      "Total number of non-terminated pods targeted by this deployment that have "
                      "the desired template spec.",
                      0, "", "integer"),
               column("Available",
                      "Total number of available pods (ready for at least minReadySeconds) "
                      "targeted by this deployment.",
                      0, "", "integer"),
               column("Age", kAgeDoc),
               column("Containers", "Names of each container in the template.", 1),
               column("Images", "Images referenced by each container in the template.", 1),
               column("Selector",
                      "Label selector for pods. Existing ReplicaSets whose pods are "
                      "selected by this will be the ones affected by this deployment.",
                      1)};
  } else if (resource == "statefulsets") {
    columns = {column("Name", kNameDoc, 0, "name"),
               column("Ready", "Number of the pod with ready state"), column("Age", kAgeDoc),
               column("Containers", "Names of each container in the template.", 1),
               column("Images", "Images referenced by each container in the template.", 1)};
  } else {
    columns = {column("Name", kNameDoc, 0, "name"), column("Status", "The status of the namespace"),
               column("Age", kAgeDoc)};
  }
  json::array rows;
  for (const auto& o : objects) {
    json::array cells;
    std::string name = json_text(o, {"metadata", "name"});
    if (resource == "pods") {
      cells = pod_cells(o, age, age_text);
    } else if (resource == "deployments" || resource == "statefulsets") {
      const auto& spec = o.at("spec").as_object();
      const auto& tpl = spec.at("template").at("spec").as_object();
      std::string ready = std::to_string(num(o, {"status", "readyReplicas"})) + "/" +
                          std::to_string(num(o, {"spec", "replicas"}));
      if (resource == "deployments") {
        cells = {name,
                 ready,
                 num(o, {"status", "updatedReplicas"}),
                 num(o, {"status", "availableReplicas"}),
                 age_text,
                 container_names(tpl, false),
                 container_names(tpl, true),
                 selector_text(spec.at("selector").at("matchLabels").as_object())};
      } else {
        cells = {name, ready, age_text, container_names(tpl, false), container_names(tpl, true)};
      }
    } else {
      cells = {name, json_text(o, {"status", "phase"}), age_text};
    }
    rows.push_back(json::object{{"cells", std::move(cells)},
                                {"object", json::object{{"kind", "PartialObjectMetadata"},
                                                        {"apiVersion", "meta.k8s.io/v1"},
                                                        {"metadata", o.at("metadata")}}}});
  }
  return json::object{{"kind", "Table"},
                      {"apiVersion", "meta.k8s.io/v1"},
                      {"metadata", json::object{{"resourceVersion", resource_version}}},
                      {"columnDefinitions", std::move(columns)},
                      {"rows", std::move(rows)}};
}

}  // namespace envd::test::kube
