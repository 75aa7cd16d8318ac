#include "kube_api.hpp"

#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <iterator>
#include <map>
#include <random>

#include "kube_discovery.hpp"
#include "kube_table.hpp"

namespace json = boost::json;
namespace http = boost::beast::http;

namespace envd::test::kube {
namespace {

constexpr const char* kVersionJson =
    R"({"major":"1","minor":"32","gitVersion":"v1.32.4",)"
    R"("gitCommit":"4cb5f0764b8d5f425645c6f433394fede34a8a26","gitTreeState":"clean",)"
    R"("buildDate":"2025-05-15T20:09:34Z","goVersion":"go1.23.8","compiler":"gc",)"
    R"("platform":"linux/amd64"})";

constexpr const char* kDiscoveryV2 =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

// --- replies -------------------------------------------------------------------------------------

Reply json_reply(unsigned status, const json::value& body) {
  Reply r;
  r.status = status;
  r.body = json::serialize(body);
  return r;
}

Reply status_reply(unsigned code, const std::string& reason, const std::string& message,
                   std::optional<json::object> details = std::nullopt) {
  return json_reply(code, status_object(code, reason, message, std::move(details)));
}

Reply text_reply(unsigned status, const std::string& body) {
  Reply r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = body;
  return r;
}

Reply not_found_generic() {
  return status_reply(404, "NotFound", "the server could not find the requested resource",
                      json::object{});
}

// `pods "x" not found`, with the group-qualified resource name for apps.
Reply not_found(const std::string& group, const std::string& resource, const std::string& name) {
  std::string qualified = group.empty() ? resource : resource + "." + group;
  json::object details{{"name", name}};
  if (!group.empty()) details["group"] = group;
  details["kind"] = resource;
  return status_reply(404, "NotFound", qualified + " \"" + name + "\" not found", details);
}

Reply bad_request(const std::string& message) { return status_reply(400, "BadRequest", message); }

// --- media types ---------------------------------------------------------------------------------

enum class Media { json, discovery_v2, table, none };

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    auto at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return out;
    start = at + 1;
  }
}

// The apiserver's content negotiation, for the one serializer this server
// has (JSON): a clause asking for a conversion (`as=`) is acceptable only for
// aggregated discovery on /api and /apis, and for a Table of resources.
Media negotiate(const std::string& accept, bool discovery_root, bool aggregated,
                bool tables = false) {
  if (trim(accept).empty()) return Media::json;
  struct Clause {
    std::string type;
    std::vector<std::pair<std::string, std::string>> params;
    double q = 1.0;
  };
  std::vector<Clause> clauses;
  for (const auto& part : split(accept, ',')) {
    auto fields = split(part, ';');
    Clause c;
    c.type = lower(trim(fields[0]));
    for (std::size_t i = 1; i < fields.size(); ++i) {
      auto eq = fields[i].find('=');
      if (eq == std::string::npos) continue;
      std::string key = lower(trim(fields[i].substr(0, eq)));
      std::string value = trim(fields[i].substr(eq + 1));
      if (key == "q") {
        try {
          c.q = std::stod(value);
        } catch (const std::exception&) {
          c.q = 0;
        }
      } else {
        c.params.emplace_back(key, value);
      }
    }
    if (!c.type.empty()) clauses.push_back(std::move(c));
  }
  std::stable_sort(clauses.begin(), clauses.end(),
                   [](const Clause& a, const Clause& b) { return a.q > b.q; });
  for (const auto& c : clauses) {
    if (c.q <= 0) continue;
    if (c.type != "application/json" && c.type != "application/*" && c.type != "*/*") continue;
    std::string as, g, v;
    for (const auto& [key, value] : c.params) {
      if (key == "as") as = value;
      if (key == "g") g = value;
      if (key == "v") v = value;
    }
    if (as.empty()) return Media::json;
    if (as == "APIGroupDiscoveryList" && g == "apidiscovery.k8s.io" && v == "v2" &&
        discovery_root && aggregated) {
      return Media::discovery_v2;
    }
    if (as == "Table" && g == "meta.k8s.io" && (v == "v1" || v == "v1beta1") && tables) {
      return Media::table;
    }
  }
  return Media::none;
}

// --- discovery -----------------------------------------------------------------------------------

Reply aggregated_reply(json::object item) {
  json::object list{{"kind", "APIGroupDiscoveryList"},
                    {"apiVersion", "apidiscovery.k8s.io/v2"},
                    {"metadata", json::object{}},
                    {"items", json::array{std::move(item)}}};
  Reply r = json_reply(200, list);
  r.content_type = kDiscoveryV2;
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(r.body.data()), r.body.size(), digest);
  char hex[17];
  for (std::size_t i = 0; i < 8; ++i) std::snprintf(hex + 2 * i, 3, "%02X", digest[i]);
  r.headers.emplace_back("Etag", std::string("\"") + hex + "\"");
  r.headers.emplace_back("Vary", "Accept");
  return r;
}

// --- requests ------------------------------------------------------------------------------------

struct Target {
  std::vector<std::string> segments;  // decoded, empty ones dropped
  std::vector<std::pair<std::string, std::string>> query;

  const std::string* param(const std::string& key) const {
    for (const auto& [k, v] : query) {
      if (k == key) return &v;
    }
    return nullptr;
  }
  std::vector<std::string> params(const std::string& key) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : query) {
      if (k == key) out.push_back(v);
    }
    return out;
  }
  bool flag(const std::string& key) const {
    const std::string* v = param(key);
    if (v == nullptr) return false;
    return !(*v == "0" || lower(*v) == "false");
  }
};

Target parse_target(const std::string& raw) {
  Target t;
  auto q = raw.find('?');
  std::string path = raw.substr(0, q);
  if (q != std::string::npos) t.query = parse_query(raw.substr(q + 1));
  for (const auto& s : split(path, '/')) {
    if (!s.empty()) t.segments.push_back(percent_decode(s, false));
  }
  return t;
}

// What the apiserver's RequestInfoFactory makes of a resource path.
struct ResourceRequest {
  std::string group;
  std::string version;
  std::string namespace_name;
  std::string resource;
  std::string name;
  std::string subresource;
  std::string verb;
  bool valid = false;
};

ResourceRequest resource_request(const Target& t, const std::string& method) {
  ResourceRequest r;
  const auto& s = t.segments;
  std::size_t at = 0;
  if (s.size() >= 3 && s[0] == "api") {
    r.version = s[1];
    at = 2;
  } else if (s.size() >= 4 && s[0] == "apis") {
    r.group = s[1];
    r.version = s[2];
    at = 3;
  } else {
    return r;
  }
  std::vector<std::string> rest(s.begin() + static_cast<std::ptrdiff_t>(at), s.end());
  if (rest[0] == "namespaces") {
    if (rest.size() >= 3) {
      r.namespace_name = rest[1];
      r.resource = rest[2];
      if (rest.size() >= 4) r.name = rest[3];
      if (rest.size() >= 5) r.subresource = rest[4];
      if (rest.size() > 5) return r;
    } else {
      r.resource = "namespaces";
      if (rest.size() == 2) {
        r.name = rest[1];
        r.namespace_name = rest[1];
      }
    }
  } else {
    r.resource = rest[0];
    if (rest.size() >= 2) r.name = rest[1];
    if (rest.size() >= 3) r.subresource = rest[2];
    if (rest.size() > 3) return r;
  }
  if (method == "GET" || method == "HEAD") {
    r.verb = r.name.empty() ? (t.flag("watch") ? "watch" : "list") : "get";
  } else if (method == "POST") {
    r.verb = "create";
  } else if (method == "PUT") {
    r.verb = "update";
  } else if (method == "PATCH") {
    r.verb = "patch";
  } else if (method == "DELETE") {
    r.verb = r.name.empty() ? "deletecollection" : "delete";
  } else {
    r.verb = lower(method);
  }
  r.valid = true;
  return r;
}

Reply forbidden(const ResourceRequest& r, const std::string& user) {
  std::string resource = r.subresource.empty() ? r.resource : r.resource + "/" + r.subresource;
  std::string reason = "User \"" + user + "\" cannot " + r.verb + " resource \"" + resource +
                       "\" in API group \"" + r.group + "\"";
  reason += r.namespace_name.empty() ? " at the cluster scope"
                                     : " in the namespace \"" + r.namespace_name + "\"";
  std::string qualified = r.group.empty() ? r.resource : r.resource + "." + r.group;
  std::string message = r.name.empty() ? qualified + " is forbidden: " + reason
                                       : qualified + " \"" + r.name + "\" is forbidden: " + reason;
  json::object details;
  if (!r.name.empty()) details["name"] = r.name;
  if (!r.group.empty()) details["group"] = r.group;
  details["kind"] = r.resource;
  return status_reply(403, "Forbidden", message, details);
}

std::string header(const Request& req, http::field f) {
  auto it = req.find(f);
  return it == req.end() ? "" : std::string(it->value());
}

bool header_has_token(const std::string& value, const std::string& token) {
  for (const auto& part : split(value, ',')) {
    if (lower(trim(part)) == token) return true;
  }
  return false;
}

// --- field selectors (the ones the pod registry supports that tests use) --------------------

struct FieldRequirement {
  std::string field;
  bool equal;
  std::string value;
};

std::optional<std::vector<FieldRequirement>> parse_fields(const std::string& text,
                                                          const std::vector<std::string>& known,
                                                          std::string* error) {
  std::vector<FieldRequirement> out;
  if (trim(text).empty()) return out;
  for (const auto& part : split(text, ',')) {
    FieldRequirement r;
    std::size_t at;
    std::size_t skip;
    if ((at = part.find("!=")) != std::string::npos) {
      r.equal = false;
      skip = 2;
    } else if ((at = part.find("==")) != std::string::npos) {
      r.equal = true;
      skip = 2;
    } else if ((at = part.find('=')) != std::string::npos) {
      r.equal = true;
      skip = 1;
    } else {
      *error = "invalid selector: '" + text + "'; can't understand '";
      *error += part + "'";
      return std::nullopt;
    }
    r.field = trim(part.substr(0, at));
    r.value = trim(part.substr(at + skip));
    if (std::find(known.begin(), known.end(), r.field) == known.end()) {
      *error = "field label not supported: " + r.field;
      return std::nullopt;
    }
    out.push_back(std::move(r));
  }
  return out;
}

bool fields_match(const std::vector<FieldRequirement>& fields,
                  const std::vector<std::pair<std::string, std::string>>& values) {
  for (const auto& f : fields) {
    std::string actual;
    for (const auto& [k, v] : values) {
      if (k == f.field) actual = v;
    }
    if ((actual == f.value) != f.equal) return false;
  }
  return true;
}

// Answers `body` (an object or a list of `resource`) as JSON or as a Table.
Reply respond(const json::object& body, const std::string& resource, Media media,
              const Config& config) {
  if (media != Media::table) return json_reply(200, body);
  std::vector<json::object> objects;
  std::string rv;
  if (const auto* items = body.if_contains("items")) {
    for (const auto& i : items->as_array()) objects.push_back(i.as_object());
    rv = json_text(body, {"metadata", "resourceVersion"});
  } else {
    objects.push_back(body);
    rv = json_text(body, {"metadata", "resourceVersion"});
  }
  std::int64_t age = static_cast<std::int64_t>(std::time(nullptr)) - config.created_at;
  return json_reply(200, table(resource, objects, rv, age));
}

// --- handlers ------------------------------------------------------------------------------------

std::string list_resource_version(const State& state) {
  std::size_t n =
      1000000 + state.pods.size() * 7 + state.deployments.size() * 3 + state.statefulsets.size();
  return std::to_string(n);
}

Reply get_pods(const ResourceRequest& r, const Target& t, const State& state, const Config& config,
               Media media) {
  if (!r.name.empty()) {
    const Pod* pod = state.find_pod(r.namespace_name, r.name);
    if (pod == nullptr) return not_found("", "pods", r.name);
    return respond(pod_object(*pod, config.created, true), "pods", media, config);
  }
  std::string error;
  std::optional<Selector> selector = Selector{};
  if (const std::string* s = t.param("labelSelector")) selector = Selector::parse(*s, &error);
  if (!selector) return bad_request(error);
  std::optional<std::vector<FieldRequirement>> fields = std::vector<FieldRequirement>{};
  if (const std::string* s = t.param("fieldSelector")) {
    fields = parse_fields(*s,
                          {"metadata.name", "metadata.namespace", "status.phase", "spec.nodeName",
                           "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                           "status.podIP", "status.nominatedNodeName"},
                          &error);
  }
  if (!fields) return bad_request(error);
  json::array items;
  for (const auto& pod : state.pods) {
    if (!r.namespace_name.empty() && pod.namespace_name != r.namespace_name) continue;
    if (!selector->matches(pod.labels)) continue;
    if (!fields_match(*fields, {{"metadata.name", pod.name},
                                {"metadata.namespace", pod.namespace_name},
                                {"status.phase", pod.phase},
                                {"spec.nodeName", pod.node},
                                {"spec.restartPolicy", "Always"},
                                {"spec.schedulerName", "default-scheduler"},
                                {"spec.serviceAccountName", "default"}})) {
      continue;
    }
    items.push_back(pod_object(pod, config.created, false));
  }
  return respond(
      json::object{{"kind", "PodList"},
                   {"apiVersion", "v1"},
                   {"metadata", json::object{{"resourceVersion", list_resource_version(state)}}},
                   {"items", std::move(items)}},
      "pods", media, config);
}

Reply get_workloads(const ResourceRequest& r, const Target& t, const State& state,
                    const Config& config, Media media) {
  std::string kind = r.resource == "deployments" ? "Deployment" : "StatefulSet";
  if (!r.name.empty()) {
    const Workload* w = state.find_workload(kind, r.namespace_name, r.name);
    if (w == nullptr) return not_found("apps", r.resource, r.name);
    return respond(workload_object(*w, state, config.created, true), r.resource, media, config);
  }
  std::string error;
  std::optional<Selector> selector = Selector{};
  if (const std::string* s = t.param("labelSelector")) selector = Selector::parse(*s, &error);
  if (!selector) return bad_request(error);
  std::optional<std::vector<FieldRequirement>> fields = std::vector<FieldRequirement>{};
  if (const std::string* s = t.param("fieldSelector")) {
    fields = parse_fields(*s, {"metadata.name", "metadata.namespace"}, &error);
  }
  if (!fields) return bad_request(error);
  json::array items;
  for (const auto& w : kind == "Deployment" ? state.deployments : state.statefulsets) {
    if (!r.namespace_name.empty() && w.namespace_name != r.namespace_name) continue;
    if (!selector->matches(w.selector)) continue;
    if (!fields_match(*fields,
                      {{"metadata.name", w.name}, {"metadata.namespace", w.namespace_name}})) {
      continue;
    }
    items.push_back(workload_object(w, state, config.created, false));
  }
  return respond(
      json::object{{"kind", kind + "List"},
                   {"apiVersion", "apps/v1"},
                   {"metadata", json::object{{"resourceVersion", list_resource_version(state)}}},
                   {"items", std::move(items)}},
      r.resource, media, config);
}

std::vector<std::string> namespaces_of(const State& state) {
  std::vector<std::string> out = {"default", "kube-system", "kube-public", "kube-node-lease"};
  auto add = [&](const std::string& ns) {
    if (std::find(out.begin(), out.end(), ns) == out.end()) out.push_back(ns);
  };
  for (const auto& p : state.pods) add(p.namespace_name);
  for (const auto& w : state.deployments) add(w.namespace_name);
  for (const auto& w : state.statefulsets) add(w.namespace_name);
  for (const auto& d : state.denials) add(d.namespace_name);
  return out;
}

json::object namespace_object(const std::string& ns, const std::string& created, bool with_type) {
  std::string uid = object_uid("Namespace", "", ns);
  json::object o;
  if (with_type) {
    o["kind"] = "Namespace";
    o["apiVersion"] = "v1";
  }
  o["metadata"] = json::object{{"name", ns},
                               {"uid", uid},
                               {"resourceVersion", "17"},
                               {"creationTimestamp", created},
                               {"labels", json::object{{"kubernetes.io/metadata.name", ns}}}};
  o["spec"] = json::object{{"finalizers", json::array{"kubernetes"}}};
  o["status"] = json::object{{"phase", "Active"}};
  return o;
}

Reply get_namespaces(const ResourceRequest& r, const State& state, const Config& config,
                     Media media) {
  auto all = namespaces_of(state);
  if (!r.name.empty()) {
    if (std::find(all.begin(), all.end(), r.name) == all.end()) {
      return not_found("", "namespaces", r.name);
    }
    return respond(namespace_object(r.name, config.created, true), "namespaces", media, config);
  }
  json::array items;
  for (const auto& ns : all) items.push_back(namespace_object(ns, config.created, false));
  return respond(
      json::object{{"kind", "NamespaceList"},
                   {"apiVersion", "v1"},
                   {"metadata", json::object{{"resourceVersion", list_resource_version(state)}}},
                   {"items", std::move(items)}},
      "namespaces", media, config);
}

// The container a log or exec request means, or the apiserver's 400.
std::optional<Reply> pick_container(const Pod& pod, std::string* container) {
  if (container->empty()) {
    if (pod.containers.size() == 1) {
      *container = pod.containers.front();
      return std::nullopt;
    }
    std::string names;
    for (const auto& c : pod.containers) names += (names.empty() ? "" : " ") + c;
    return bad_request("a container name must be specified for pod " + pod.name +
                       ", choose one of: [" + names + "]");
  }
  if (!pod.has_container(*container)) {
    return bad_request("container " + *container + " is not valid for pod " + pod.name);
  }
  return std::nullopt;
}

Reply get_log(const ResourceRequest& r, const Target& t, const State& state) {
  const Pod* pod = state.find_pod(r.namespace_name, r.name);
  if (pod == nullptr) return not_found("", "pods", r.name);
  std::string container = t.param("container") ? *t.param("container") : "";
  if (auto error = pick_container(*pod, &container)) return *error;
  if (pod->node.empty()) return text_reply(200, "");
  const std::string& waiting = pod->waiting_reason;
  if (!waiting.empty() && waiting != "CrashLoopBackOff") {
    std::string why = waiting == "ImagePullBackOff" || waiting == "ErrImagePull"
                          ? "trying and failing to pull image"
                          : waiting;
    return bad_request("container \"" + container + "\" in pod \"" + pod->name +
                       "\" is waiting to start: " + why);
  }
  return text_reply(200, pod->log);
}

// Go's %#v of the request's http.Header (sorted, names canonical), without the
// Authorization the apiserver keeps to itself: what the kubelet prints when
// the upgrade headers are wrong.
std::string go_header_dump(const Request& req) {
  std::map<std::string, std::vector<std::string>> headers;
  for (const auto& field : req) {
    std::string name(field.name_string());
    bool upper = true;
    for (auto& c : name) {
      c = static_cast<char>(upper ? std::toupper(static_cast<unsigned char>(c))
                                  : std::tolower(static_cast<unsigned char>(c)));
      upper = c == '-';
    }
    if (name != "Authorization") headers[name].emplace_back(field.value());
  }
  auto quote = [](const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    return out + "\"";
  };
  std::string out = "http.Header{";
  bool first = true;
  for (const auto& [name, values] : headers) {
    out += (first ? "" : ", ") + quote(name) + ":[]string{";
    for (std::size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + quote(values[i]);
    out += "}";
    first = false;
  }
  return out + "}";
}

// An exec upgrading to anything but a WebSocket: the apiserver proxies it to
// the kubelet as it is (its stream translator takes only v5 WebSockets), so
// this is the kubelet's remotecommand server, whose refusals come back as
// plain text. It speaks SPDY/3.1 with the first protocol of the client's
// X-Stream-Protocol-Version headers that it has a SPDY handler for: v4 for
// kubectl 1.20 (which lists v4 first) and for 1.30 and later (which list v5,
// a WebSocket protocol, before it).
Routed kubelet_spdy_exec(ExecPlan plan, const Pod& pod, const Request& req) {
  Routed out;
  bool no_streams = !plan.use_stdin && !plan.use_stdout && !plan.use_stderr;
  if (no_streams) {
    out.reply = text_reply(400, "you must specify at least 1 of stdin, stdout, stderr");
    return out;
  }
  if (!pod.container_running(plan.container)) {
    out.reply = text_reply(500, "container not found (\"" + plan.container + "\")");
    return out;
  }
  std::vector<std::string> offered;
  auto [from, to] = req.equal_range("X-Stream-Protocol-Version");
  for (auto it = from; it != to; ++it) {
    for (const auto& p : split(std::string(it->value()), ',')) {
      if (!trim(p).empty()) offered.push_back(trim(p));
    }
  }
  // http.Error's replies end with a newline.
  if (offered.empty()) {
    out.reply = text_reply(400, "unable to upgrade: X-Stream-Protocol-Version is required\n");
    return out;
  }
  static const std::pair<const char*, Channel> kKubelet[] = {{"v4.channel.k8s.io", Channel::v4},
                                                             {"v3.channel.k8s.io", Channel::v3},
                                                             {"v2.channel.k8s.io", Channel::v2},
                                                             {"channel.k8s.io", Channel::v1}};
  for (const auto& p : offered) {
    for (const auto& [name, channel] : kKubelet) {
      if (plan.protocol.empty() && p == name) {
        plan.protocol = name;
        plan.channel = channel;
      }
    }
  }
  if (plan.protocol.empty()) {
    std::string client;
    for (const auto& p : offered) client += (client.empty() ? "" : " ") + p;
    std::string message = "unable to upgrade: unable to negotiate protocol: client supports [" +
                          client + "], server accepts [";
    for (std::size_t i = 0; i < std::size(kKubelet); ++i) {
      message += (i ? " " : "") + std::string(kKubelet[i].first);
    }
    message += "]\n";
    // The kubelet's handshake writes the 403, and its caller the same text again.
    out.reply = text_reply(403, message + message);
    for (const auto& [name, channel] : kKubelet) {
      out.reply.headers.emplace_back("X-Accepted-Stream-Protocol-Versions", name);
    }
    return out;
  }
  if (lower(header(req, http::field::upgrade)).find("spdy/3.1") == std::string::npos) {
    out.reply = text_reply(400, "unable to upgrade: missing upgrade headers in request: " +
                                    go_header_dump(req) + "\n");
    return out;
  }
  plan.transport = Transport::spdy;
  out.exec = std::move(plan);
  return out;
}

Routed exec(const ResourceRequest& r, const Target& t, const Request& req, const State& state) {
  Routed out;
  std::string method(req.method_string());
  if (method != "GET" && method != "POST") {
    out.reply = status_reply(405, "MethodNotAllowed",
                             "the server does not allow this method on the requested resource",
                             json::object{});
    return out;
  }
  const Pod* pod = state.find_pod(r.namespace_name, r.name);
  if (pod == nullptr) {
    out.reply = not_found("", "pods", r.name);
    return out;
  }
  ExecPlan plan;
  plan.namespace_name = r.namespace_name;
  plan.pod = r.name;
  plan.container = t.param("container") ? *t.param("container") : "";
  if (auto error = pick_container(*pod, &plan.container)) {
    out.reply = *error;
    return out;
  }
  if (pod->node.empty()) {
    out.reply = bad_request("pod " + pod->name + " does not have a host assigned");
    return out;
  }
  plan.command = t.params("command");
  if (plan.command.empty()) {
    out.reply = bad_request("you must specify at least one command for the container");
    return out;
  }
  plan.use_stdin = t.flag("stdin");
  plan.use_stdout = t.flag("stdout");
  plan.use_stderr = t.flag("stderr");
  plan.tty = t.flag("tty");
  if (plan.tty) plan.use_stderr = false;  // the kubelet drops stderr with a tty

  std::string upgrade = header(req, http::field::upgrade);
  bool upgrading = header_has_token(header(req, http::field::connection), "upgrade");
  if (upgrading && lower(trim(upgrade)) == "websocket") {
    if (method != "GET") {
      out.reply = text_reply(405, "");
      return out;
    }
    std::vector<std::string> offered;
    for (const auto& p : split(header(req, http::field::sec_websocket_protocol), ',')) {
      if (!trim(p).empty()) offered.push_back(trim(p));
    }
    if (std::find(offered.begin(), offered.end(), "v5.channel.k8s.io") != offered.end()) {
      plan.protocol = "v5.channel.k8s.io";
      plan.channel = Channel::v5;
    } else {
      // Proxied to the kubelet, whose WebSocket server takes the client's first
      // protocol it knows, and "" when the client names none.
      static const std::pair<const char*, Channel> kKubelet[] = {
          {"v4.channel.k8s.io", Channel::v4},
          {"v4.base64.channel.k8s.io", Channel::v4_base64},
          {"channel.k8s.io", Channel::v1},
          {"base64.channel.k8s.io", Channel::v1_base64}};
      bool found = offered.empty();
      plan.channel = Channel::v1;
      for (const auto& p : offered) {
        for (const auto& [name, channel] : kKubelet) {
          if (!found && p == name) {
            found = true;
            plan.protocol = name;
            plan.channel = channel;
          }
        }
      }
      if (!found) {
        out.reply = text_reply(403, "");
        out.reply.content_type.clear();
        return out;
      }
    }
    if (!plan.use_stdin && !plan.use_stdout && !plan.use_stderr) {
      plan.failure = "you must specify at least 1 of stdin, stdout, stderr";
    } else if (!pod->container_running(plan.container)) {
      plan.failure = "container not found (\"" + plan.container + "\")";
    }
    if (!plan.failure.empty() && plan.channel != Channel::v5) {
      // Without the stream translator the kubelet's refusal comes back as it is.
      bool no_streams = !plan.use_stdin && !plan.use_stdout && !plan.use_stderr;
      out.reply = text_reply(no_streams ? 400 : 500, plan.failure);
      return out;
    }
    out.exec = std::move(plan);
    return out;
  }
  if (upgrading) return kubelet_spdy_exec(std::move(plan), *pod, req);
  out.reply = bad_request("Upgrade request required");
  return out;
}

Routed route_request(const Request& req, const Config& config, const Target& t) {
  Routed out;
  std::string method(req.method_string());
  const auto& s = t.segments;

  // Authentication: one bearer token; anonymous requests are refused too.
  // As the apiserver's bearertoken authenticator reads the header: trimmed,
  // split at single spaces (at most three parts), the token the second part,
  // so "Bearer  TOKEN" has an empty token and is refused.
  std::string auth = trim(header(req, http::field::authorization));
  auto space = auth.find(' ');
  std::string token;
  if (space != std::string::npos) {
    auto end = auth.find(' ', space + 1);
    token = auth.substr(space + 1, end == std::string::npos ? std::string::npos : end - space - 1);
  }
  bool authenticated = space != std::string::npos && lower(auth.substr(0, space)) == "bearer" &&
                       !token.empty() && token == config.token && !config.token.empty();
  if (!authenticated) {
    out.reply = status_reply(401, "Unauthorized", "Unauthorized");
    return out;
  }

  std::string error;
  std::optional<State> state = load_state(config.state_file, &error);
  if (!state) {
    out.reply =
        status_reply(500, "InternalError", "Internal error occurred: " + error,
                     json::object{{"causes", json::array{json::object{{"message", error}}}}});
    return out;
  }

  // Non-resource paths.
  if (s.empty() || (s[0] != "api" && s[0] != "apis") || s.size() < 3 ||
      (s[0] == "apis" && s.size() < 4)) {
    bool get = method == "GET" || method == "HEAD";
    Media media =
        negotiate(header(req, http::field::accept),
                  s.size() == 1 && (s[0] == "api" || s[0] == "apis"), config.aggregated_discovery);
    auto discovery = [&](const json::object& doc) {
      if (!get) {
        out.reply = status_reply(405, "MethodNotAllowed",
                                 "the server does not allow this method on the requested resource",
                                 json::object{});
      } else if (media == Media::none) {
        out.reply = status_reply(406, "NotAcceptable",
                                 "only the following media types are accepted: application/json");
      } else {
        out.reply = json_reply(200, doc);
      }
    };
    if (s.size() == 1 && s[0] == "version") {
      out.reply = Reply{200, "application/json", kVersionJson, {}};
    } else if (s.size() == 1 && (s[0] == "healthz" || s[0] == "livez" || s[0] == "readyz")) {
      out.reply = text_reply(200, "ok");
    } else if (s.size() == 1 && s[0] == "api") {
      if (media == Media::discovery_v2 && get) {
        out.reply = aggregated_reply(aggregated_core_group());
      } else {
        discovery(api_versions(config.server_address));
      }
    } else if (s.size() == 1 && s[0] == "apis") {
      if (media == Media::discovery_v2 && get) {
        out.reply = aggregated_reply(aggregated_apps_group());
      } else {
        discovery(api_group_list());
      }
    } else if (s.size() == 2 && s[0] == "api" && s[1] == "v1") {
      discovery(core_v1_resources());
    } else if (s.size() == 2 && s[0] == "apis" && s[1] == "apps") {
      discovery(apps_api_group());
    } else if (s.size() == 3 && s[0] == "apis" && s[1] == "apps" && s[2] == "v1") {
      discovery(apps_v1_resources());
    } else if (!s.empty() && (s[0] == "api" || s[0] == "apis")) {
      out.reply = not_found_generic();
    } else {
      out.reply = text_reply(404, "404 page not found\n");
    }
    return out;
  }

  ResourceRequest r = resource_request(t, method);
  bool served_group =
      (r.group.empty() && r.version == "v1") || (r.group == "apps" && r.version == "v1");
  if (!r.valid || !served_group) {
    out.reply = not_found_generic();
    return out;
  }
  if (state->denied(r.namespace_name,
                    r.subresource.empty() ? r.resource : r.resource + "/" + r.subresource,
                    r.verb)) {
    out.reply = forbidden(r, state->user);
    return out;
  }
  bool core = r.group.empty();
  bool known = (core && (r.resource == "pods" || r.resource == "namespaces")) ||
               (!core && (r.resource == "deployments" || r.resource == "statefulsets"));
  bool known_sub = r.subresource.empty() || (core && r.resource == "pods" &&
                                             (r.subresource == "exec" || r.subresource == "log"));
  if (!known || !known_sub) {
    out.reply = not_found_generic();
    return out;
  }
  if (r.subresource == "exec") return exec(r, t, req, *state);
  if (method != "GET" && method != "HEAD") {
    out.reply = status_reply(405, "MethodNotAllowed",
                             "the server does not allow this method on the requested resource",
                             json::object{});
    return out;
  }
  if (r.verb == "watch") {
    out.reply = status_reply(405, "MethodNotAllowed",
                             "this test apiserver does not serve watch requests", json::object{});
    return out;
  }
  if (r.subresource == "log") {
    out.reply = get_log(r, t, *state);
    return out;
  }
  Media media = negotiate(header(req, http::field::accept), false, false, true);
  if (media == Media::none) {
    out.reply = status_reply(406, "NotAcceptable",
                             "only the following media types are accepted: application/json");
    return out;
  }
  if (r.resource == "pods") {
    out.reply = get_pods(r, t, *state, config, media);
  } else if (r.resource == "namespaces") {
    out.reply = get_namespaces(r, *state, config, media);
  } else {
    out.reply = get_workloads(r, t, *state, config, media);
  }
  return out;
}

std::string audit_id() {
  static std::mt19937_64 rng{std::random_device{}()};
  char buf[40];
  unsigned long long a = rng();
  unsigned long long b = rng();
  std::snprintf(buf, sizeof buf, "%08llx-%04llx-4%03llx-%04llx-%012llx", a >> 32,
                (a >> 16) & 0xffff, a & 0xfff, (b >> 48) | 0x8000, b & 0xffffffffffffULL);
  return buf;
}

}  // namespace

json::object status_object(unsigned code, const std::string& reason, const std::string& message,
                           std::optional<json::object> details, bool with_type) {
  json::object s;
  if (with_type) {
    s["kind"] = "Status";
    s["apiVersion"] = "v1";
  }
  s["metadata"] = json::object{};
  s["status"] = code >= 200 && code < 300 ? "Success" : "Failure";
  if (!message.empty()) s["message"] = message;
  if (!reason.empty()) s["reason"] = reason;
  if (details) s["details"] = std::move(*details);
  if (code != 0) s["code"] = code;
  return s;
}

std::string percent_decode(const std::string& text, bool plus_is_space) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%' && i + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> parse_query(const std::string& query) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& part : split(query, '&')) {
    if (part.empty()) continue;
    auto eq = part.find('=');
    std::string key = part.substr(0, eq);
    std::string value = eq == std::string::npos ? "" : part.substr(eq + 1);
    out.emplace_back(percent_decode(key, true), percent_decode(value, true));
  }
  return out;
}

Routed route(const Request& request, const Config& config) {
  Target t = parse_target(std::string(request.target()));
  Routed out = route_request(request, config, t);
  if (!out.exec) {
    auto& h = out.reply.headers;
    h.insert(h.begin(), {"Audit-Id", audit_id()});
    h.emplace_back("Cache-Control", "no-cache, private");
  }
  return out;
}

}  // namespace envd::test::kube
