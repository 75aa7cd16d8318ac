#include "kube_state.hpp"

#include <openssl/sha.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace json = boost::json;

namespace envd::test::kube {
namespace {

// --- reading the state file -----------------------------------------------------------------

// Reads an optional member of `obj`, checking its type; the first problem goes to *error.
class Reader {
 public:
  Reader(const json::object& obj, std::string where, std::string* error)
      : obj_(obj), where_(std::move(where)), error_(error) {}

  void string(const char* key, std::string* out) {
    if (const auto* v = find(key)) {
      if (v->is_string()) {
        *out = std::string(v->get_string());
      } else {
        fail(key, "a string");
      }
    }
  }
  void boolean(const char* key, bool* out) {
    if (const auto* v = find(key)) {
      if (v->is_bool()) {
        *out = v->get_bool();
      } else {
        fail(key, "true or false");
      }
    }
  }
  void integer(const char* key, int* out) {
    if (const auto* v = find(key)) {
      if (v->is_int64() && v->get_int64() >= 0 && v->get_int64() < 1000000) {
        *out = static_cast<int>(v->get_int64());
      } else {
        fail(key, "a non-negative integer");
      }
    }
  }
  void strings(const char* key, std::vector<std::string>* out) {
    if (const auto* v = find(key)) {
      if (!v->is_array()) return fail(key, "an array of strings");
      out->clear();
      for (const auto& item : v->get_array()) {
        if (!item.is_string()) return fail(key, "an array of strings");
        out->emplace_back(item.get_string());
      }
    }
  }
  void labels(const char* key, Labels* out) {
    if (const auto* v = find(key)) {
      if (!v->is_object()) return fail(key, "an object of strings");
      out->clear();
      for (const auto& [k, value] : v->get_object()) {
        if (!value.is_string()) return fail(key, "an object of strings");
        (*out)[std::string(k)] = std::string(value.get_string());
      }
    }
  }
  void require(const char* key, const std::string& value) {
    if (value.empty() && error_->empty()) *error_ = where_ + " lacks \"" + key + "\"";
  }

 private:
  const json::value* find(const char* key) { return obj_.if_contains(key); }
  void fail(const char* key, const char* expected) {
    if (error_->empty()) *error_ = where_ + "." + key + " must be " + expected;
  }

  const json::object& obj_;
  std::string where_;
  std::string* error_;
};

Pod read_pod(const json::object& obj, const std::string& where, std::string* error) {
  Pod pod;
  Reader r(obj, where, error);
  r.string("namespace", &pod.namespace_name);
  r.string("name", &pod.name);
  r.require("name", pod.name);
  r.labels("labels", &pod.labels);
  r.string("phase", &pod.phase);
  pod.ready = pod.phase == "Running";
  r.boolean("ready", &pod.ready);
  r.string("node", &pod.node);
  r.strings("containers", &pod.containers);
  r.string("default_container", &pod.default_container);
  r.string("image", &pod.image);
  r.string("waiting_reason", &pod.waiting_reason);
  r.string("waiting_message", &pod.waiting_message);
  r.string("message", &pod.message);
  r.integer("restarts", &pod.restarts);
  r.string("owner_kind", &pod.owner_kind);
  r.string("owner_name", &pod.owner_name);
  r.string("log", &pod.log);
  r.boolean("deleting", &pod.deleting);
  static const char* const kPhases[] = {"Pending", "Running", "Succeeded", "Failed", "Unknown"};
  if (error->empty() &&
      std::find(std::begin(kPhases), std::end(kPhases), pod.phase) == std::end(kPhases)) {
    *error = where + ".phase must be Pending, Running, Succeeded, Failed or Unknown, not '" +
             pod.phase + "'";
  }
  if (error->empty() && pod.containers.empty()) *error = where + ".containers is empty";
  if (pod.waiting_reason.empty() && pod.phase == "Pending" && !pod.node.empty()) {
    pod.waiting_reason = "ContainerCreating";
  }
  if (pod.phase != "Running") pod.ready = false;
  if (!pod.waiting_reason.empty()) pod.ready = false;
  return pod;
}

Workload read_workload(const json::object& obj, const std::string& kind, const std::string& where,
                       std::string* error) {
  Workload w;
  w.kind = kind;
  Reader r(obj, where, error);
  r.string("namespace", &w.namespace_name);
  r.string("name", &w.name);
  r.require("name", w.name);
  r.labels("selector", &w.selector);
  r.integer("replicas", &w.replicas);
  r.string("image", &w.image);
  r.strings("containers", &w.containers);
  if (error->empty() && w.selector.empty()) *error = where + ".selector is empty";
  return w;
}

Denial read_denial(const json::object& obj, const std::string& where, std::string* error) {
  Denial d;
  Reader r(obj, where, error);
  r.string("namespace", &d.namespace_name);
  r.require("namespace", d.namespace_name);
  r.strings("resources", &d.resources);
  r.strings("verbs", &d.verbs);
  return d;
}

template <class T, class Read>
void read_array(const json::object& root, const char* key, std::vector<T>* out, Read read,
                std::string* error) {
  const auto* v = root.if_contains(key);
  if (v == nullptr || !error->empty()) return;
  if (!v->is_array()) {
    *error = std::string(key) + " must be an array";
    return;
  }
  std::size_t i = 0;
  for (const auto& item : v->get_array()) {
    std::string where = std::string(key) + "[" + std::to_string(i++) + "]";
    if (!item.is_object()) {
      *error = where + " must be an object";
      return;
    }
    out->push_back(read(item.get_object(), where, error));
    if (!error->empty()) return;
  }
}

// --- rendering ---------------------------------------------------------------------------------

json::object labels_object(const Labels& labels) {
  json::object out;
  for (const auto& [k, v] : labels) out[k] = v;
  return out;
}

std::string resource_version(const std::string& uid) {
  // Digits from the uid: stable for an object, like an etcd revision.
  unsigned long n = 0;
  for (char c : uid) n = (n * 31 + static_cast<unsigned char>(c)) % 9000000;
  return std::to_string(1000000 + n);
}

json::object container_spec(const std::string& name, const std::string& image) {
  return {{"name", name},
          {"image", image},
          {"resources", json::object{}},
          {"terminationMessagePath", "/dev/termination-log"},
          {"terminationMessagePolicy", "File"},
          {"imagePullPolicy", "IfNotPresent"}};
}

json::object condition(const char* type, bool status, const std::string& created,
                       const std::string& reason = "", const std::string& message = "") {
  json::object c{{"type", type},
                 {"status", status ? "True" : "False"},
                 {"lastProbeTime", nullptr},
                 {"lastTransitionTime", created}};
  if (!reason.empty()) c["reason"] = reason;
  if (!message.empty()) c["message"] = message;
  return c;
}

std::string join_names(const std::vector<std::string>& names, const char* sep) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : sep) + n;
  return out;
}

std::string container_id(const Pod& pod, const std::string& container, int restart) {
  std::string id = object_uid("container", pod.namespace_name + "/" + pod.name,
                              container + "#" + std::to_string(restart));
  id.erase(std::remove(id.begin(), id.end(), '-'), id.end());
  return "containerd://" + id + id;
}

json::object pod_status(const Pod& pod, const std::string& uid, const std::string& created) {
  json::object status{{"phase", pod.phase}};
  json::array conditions;
  if (pod.node.empty()) {
    // Not scheduled: the scheduler's only condition, no node, no containers.
    std::string message =
        pod.message.empty() ? "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 "
                              "nodes are available: 1 No preemption victims found for incoming pod."
                            : pod.message;
    conditions.push_back(condition("PodScheduled", false, created, "Unschedulable", message));
    status["conditions"] = std::move(conditions);
    status["qosClass"] = "BestEffort";
    return status;
  }
  bool done = pod.phase == "Succeeded" || pod.phase == "Failed";
  bool started = pod.phase == "Running" || done;
  std::string not_ready_reason = done ? "PodCompleted" : "ContainersNotReady";
  std::string not_ready_message =
      done ? "" : "containers with unready status: [" + join_names(pod.containers, " ") + "]";
  conditions.push_back(condition("PodReadyToStartContainers", started && !done, created));
  conditions.push_back(condition("Initialized", true, created, done ? "PodCompleted" : ""));
  conditions.push_back(condition("Ready", pod.ready, created, pod.ready ? "" : not_ready_reason,
                                 pod.ready ? "" : not_ready_message));
  conditions.push_back(condition("ContainersReady", pod.ready, created,
                                 pod.ready ? "" : not_ready_reason,
                                 pod.ready ? "" : not_ready_message));
  conditions.push_back(condition("PodScheduled", true, created));
  status["conditions"] = std::move(conditions);
  status["hostIP"] = "10.89.0.2";
  status["hostIPs"] = json::array{json::object{{"ip", "10.89.0.2"}}};
  if (started) {
    // A stable pod IP from the uid.
    unsigned n = 0;
    for (char c : uid) n = n * 33 + static_cast<unsigned char>(c);
    std::string ip = "10.244.0." + std::to_string(2 + n % 250);
    status["podIP"] = ip;
    status["podIPs"] = json::array{json::object{{"ip", ip}}};
  }
  status["startTime"] = created;
  json::array statuses;
  for (const auto& c : pod.containers) {
    json::object cs{{"name", c}};
    json::object state;
    json::object last_state;
    bool running = pod.container_running(c);
    if (running) {
      state["running"] = json::object{{"startedAt", created}};
    } else if (!pod.waiting_reason.empty()) {
      json::object waiting{{"reason", pod.waiting_reason}};
      std::string message = pod.waiting_message;
      if (message.empty() && pod.waiting_reason == "CrashLoopBackOff") {
        message = "back-off 5m0s restarting failed container=" + c;
        message += " pod=" + pod.name + "_" + pod.namespace_name + "(" + uid + ")";
      }
      if (message.empty() &&
          (pod.waiting_reason == "ImagePullBackOff" || pod.waiting_reason == "ErrImagePull")) {
        message = "Back-off pulling image \"" + pod.image + "\"";
      }
      if (!message.empty()) waiting["message"] = message;
      state["waiting"] = std::move(waiting);
      if (pod.restarts > 0 || pod.waiting_reason == "CrashLoopBackOff") {
        last_state["terminated"] = json::object{{"exitCode", 1},
                                                {"reason", "Error"},
                                                {"startedAt", created},
                                                {"finishedAt", created},
                                                {"containerID", container_id(pod, c, 0)}};
      }
    } else if (done) {
      bool ok = pod.phase == "Succeeded";
      state["terminated"] = json::object{{"exitCode", ok ? 0 : 1},
                                         {"reason", ok ? "Completed" : "Error"},
                                         {"startedAt", created},
                                         {"finishedAt", created},
                                         {"containerID", container_id(pod, c, pod.restarts)}};
    } else {
      state["waiting"] = json::object{{"reason", "ContainerCreating"}};
    }
    bool created_container = running || done || !last_state.empty();
    cs["state"] = std::move(state);
    cs["lastState"] = std::move(last_state);
    cs["ready"] = running && pod.ready;
    cs["restartCount"] = pod.restarts;
    cs["image"] = pod.image;
    cs["imageID"] =
        created_container
            ? "docker.io/" + pod.image + "@sha256:" + std::string(64, '0').replace(0, 8, "4a4b2f1c")
            : "";
    if (created_container) cs["containerID"] = container_id(pod, c, pod.restarts);
    cs["started"] = running;
    statuses.push_back(std::move(cs));
  }
  status["containerStatuses"] = std::move(statuses);
  status["qosClass"] = "BestEffort";
  return status;
}

}  // namespace

bool Pod::has_container(const std::string& container) const {
  return std::find(containers.begin(), containers.end(), container) != containers.end();
}

bool Pod::container_running(const std::string& container) const {
  return has_container(container) && phase == "Running" && waiting_reason.empty() && !node.empty();
}

const Pod* State::find_pod(const std::string& ns, const std::string& name) const {
  for (const auto& p : pods) {
    if (p.namespace_name == ns && p.name == name) return &p;
  }
  return nullptr;
}

const Workload* State::find_workload(const std::string& kind, const std::string& ns,
                                     const std::string& name) const {
  const auto& list = kind == "Deployment" ? deployments : statefulsets;
  for (const auto& w : list) {
    if (w.namespace_name == ns && w.name == name) return &w;
  }
  return nullptr;
}

bool State::denied(const std::string& ns, const std::string& resource,
                   const std::string& verb) const {
  for (const auto& d : denials) {
    if (d.namespace_name != ns) continue;
    bool resource_matches = d.resources.empty() || std::find(d.resources.begin(), d.resources.end(),
                                                             resource) != d.resources.end();
    bool verb_matches =
        d.verbs.empty() || std::find(d.verbs.begin(), d.verbs.end(), verb) != d.verbs.end();
    if (resource_matches && verb_matches) return true;
  }
  return false;
}

std::optional<State> load_state(const std::string& path, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot read the state file '" + path + "'";
    return std::nullopt;
  }
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  json::value root = json::parse(text.str(), ec);
  if (ec) {
    *error = "the state file '" + path + "' is not JSON: " + ec.message();
    return std::nullopt;
  }
  if (!root.is_object()) {
    *error = "the state file '" + path + "' does not hold a JSON object";
    return std::nullopt;
  }
  const auto& obj = root.get_object();
  State state;
  std::string problem;
  Reader(obj, "state", &problem).string("user", &state.user);
  read_array(obj, "pods", &state.pods, read_pod, &problem);
  read_array(
      obj, "deployments", &state.deployments,
      [](const json::object& o, const std::string& w, std::string* e) {
        return read_workload(o, "Deployment", w, e);
      },
      &problem);
  read_array(
      obj, "statefulsets", &state.statefulsets,
      [](const json::object& o, const std::string& w, std::string* e) {
        return read_workload(o, "StatefulSet", w, e);
      },
      &problem);
  read_array(obj, "forbidden", &state.denials, read_denial, &problem);
  if (!problem.empty()) {
    *error = "the state file '" + path + "': " + problem;
    return std::nullopt;
  }
  return state;
}

std::string object_uid(const std::string& kind, const std::string& ns, const std::string& name) {
  std::string key = kind + "/" + ns + "/" + name;
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
  char hex[SHA256_DIGEST_LENGTH * 2 + 1];
  for (std::size_t i = 0; i < SHA256_DIGEST_LENGTH; ++i) {
    std::snprintf(hex + 2 * i, 3, "%02x", digest[i]);
  }
  std::string h(hex, 32);
  h[12] = '4';  // a version-4-shaped UUID
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20, 12);
}

json::object pod_object(const Pod& pod, const std::string& created, bool with_type) {
  std::string uid = object_uid("Pod", pod.namespace_name, pod.name);
  json::object metadata{{"name", pod.name},
                        {"namespace", pod.namespace_name},
                        {"uid", uid},
                        {"resourceVersion", resource_version(uid)},
                        {"creationTimestamp", created}};
  if (pod.deleting) {
    metadata["deletionTimestamp"] = created;
    metadata["deletionGracePeriodSeconds"] = 30;
  }
  if (!pod.labels.empty()) metadata["labels"] = labels_object(pod.labels);
  if (!pod.default_container.empty()) {
    metadata["annotations"] =
        json::object{{"kubectl.kubernetes.io/default-container", pod.default_container}};
  }
  if (!pod.owner_kind.empty()) {
    metadata["ownerReferences"] = json::array{
        json::object{{"apiVersion", "apps/v1"},
                     {"kind", pod.owner_kind},
                     {"name", pod.owner_name},
                     {"uid", object_uid(pod.owner_kind, pod.namespace_name, pod.owner_name)},
                     {"controller", true},
                     {"blockOwnerDeletion", true}}};
  }
  json::array containers;
  for (const auto& c : pod.containers) containers.push_back(container_spec(c, pod.image));
  json::object spec{{"containers", std::move(containers)}, {"restartPolicy", "Always"},
                    {"terminationGracePeriodSeconds", 30}, {"dnsPolicy", "ClusterFirst"},
                    {"serviceAccountName", "default"},     {"serviceAccount", "default"}};
  if (!pod.node.empty()) spec["nodeName"] = pod.node;
  spec["securityContext"] = json::object{};
  spec["schedulerName"] = "default-scheduler";
  spec["priority"] = 0;
  spec["enableServiceLinks"] = true;
  spec["preemptionPolicy"] = "PreemptLowerPriority";
  json::object out;
  if (with_type) {
    out["kind"] = "Pod";
    out["apiVersion"] = "v1";
  }
  out["metadata"] = std::move(metadata);
  out["spec"] = std::move(spec);
  out["status"] = pod_status(pod, uid, created);
  return out;
}

json::object workload_object(const Workload& w, const State& state, const std::string& created,
                             bool with_type) {
  std::string uid = object_uid(w.kind, w.namespace_name, w.name);
  json::object metadata{{"name", w.name},
                        {"namespace", w.namespace_name},
                        {"uid", uid},
                        {"resourceVersion", resource_version(uid)},
                        {"generation", 1},
                        {"creationTimestamp", created},
                        {"labels", labels_object(w.selector)}};
  if (w.kind == "Deployment") {
    metadata["annotations"] = json::object{{"deployment.kubernetes.io/revision", "1"}};
  }
  json::array containers;
  for (const auto& c : w.containers) containers.push_back(container_spec(c, w.image));
  json::object template_spec{
      {"containers", std::move(containers)}, {"restartPolicy", "Always"},
      {"terminationGracePeriodSeconds", 30}, {"dnsPolicy", "ClusterFirst"},
      {"securityContext", json::object{}},   {"schedulerName", "default-scheduler"}};
  json::object pod_template{{"metadata", json::object{{"creationTimestamp", nullptr},
                                                      {"labels", labels_object(w.selector)}}},
                            {"spec", std::move(template_spec)}};
  json::object spec{{"replicas", w.replicas},
                    {"selector", json::object{{"matchLabels", labels_object(w.selector)}}},
                    {"template", std::move(pod_template)}};
  int ready = 0;
  int current = 0;
  for (const auto& p : state.pods) {
    if (p.namespace_name != w.namespace_name) continue;
    bool match = std::all_of(w.selector.begin(), w.selector.end(), [&](const auto& kv) {
      auto it = p.labels.find(kv.first);
      return it != p.labels.end() && it->second == kv.second;
    });
    if (!match) continue;
    ++current;
    if (p.ready) ++ready;
  }
  json::object status;
  std::string revision = w.name + "-" + object_uid("rev", w.namespace_name, w.name).substr(0, 10);
  if (w.kind == "Deployment") {
    spec["strategy"] = json::object{
        {"type", "RollingUpdate"},
        {"rollingUpdate", json::object{{"maxUnavailable", "25%"}, {"maxSurge", "25%"}}}};
    spec["revisionHistoryLimit"] = 10;
    spec["progressDeadlineSeconds"] = 600;
    status["observedGeneration"] = 1;
    status["replicas"] = current;
    status["updatedReplicas"] = current;
    status["readyReplicas"] = ready;
    status["availableReplicas"] = ready;
    if (current > ready) status["unavailableReplicas"] = current - ready;
    json::array conditions;
    json::object available{
        {"type", "Available"},
        {"status", ready >= w.replicas ? "True" : "False"},
        {"lastUpdateTime", created},
        {"lastTransitionTime", created},
        {"reason", ready >= w.replicas ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable"},
        {"message", ready >= w.replicas ? "Deployment has minimum availability."
                                        : "Deployment does not have minimum availability."}};
    conditions.push_back(std::move(available));
    conditions.push_back(
        json::object{{"type", "Progressing"},
                     {"status", "True"},
                     {"lastUpdateTime", created},
                     {"lastTransitionTime", created},
                     {"reason", "NewReplicaSetAvailable"},
                     {"message", "ReplicaSet \"" + revision + "\" has successfully progressed."}});
    status["conditions"] = std::move(conditions);
  } else {
    spec["serviceName"] = w.name;
    spec["podManagementPolicy"] = "OrderedReady";
    spec["updateStrategy"] =
        json::object{{"type", "RollingUpdate"}, {"rollingUpdate", json::object{{"partition", 0}}}};
    spec["revisionHistoryLimit"] = 10;
    spec["persistentVolumeClaimRetentionPolicy"] =
        json::object{{"whenDeleted", "Retain"}, {"whenScaled", "Retain"}};
    status["observedGeneration"] = 1;
    status["replicas"] = current;
    status["readyReplicas"] = ready;
    status["currentReplicas"] = current;
    status["updatedReplicas"] = current;
    status["currentRevision"] = revision;
    status["updateRevision"] = revision;
    status["collisionCount"] = 0;
    status["availableReplicas"] = ready;
  }
  json::object out;
  if (with_type) {
    out["kind"] = w.kind;
    out["apiVersion"] = "apps/v1";
  }
  out["metadata"] = std::move(metadata);
  out["spec"] = std::move(spec);
  out["status"] = std::move(status);
  return out;
}

}  // namespace envd::test::kube
