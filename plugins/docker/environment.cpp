#include "environment.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <string_view>
#include <tuple>
#include <utility>

#include "envd/docker_engine.hpp"
#include "envd/text.hpp"
#include "gpu_request.hpp"

namespace envd::plugins::docker_runner {
namespace {

namespace json = boost::json;

Error bad(const std::string& what) {
  return Error(Errc::invalid_argument, "invalid environment spec: " + what);
}

std::string string_at(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

const json::object* object_at(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_object() ? &v->as_object() : nullptr;
}

std::int64_t int_at(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return 0;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
  return 0;
}

json::array strings(const std::vector<std::string>& items) {
  json::array out;
  for (const auto& s : items) out.emplace_back(s);
  return out;
}

std::vector<std::string> strings_at(const json::object& o, std::string_view key) {
  std::vector<std::string> out;
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_array()) return out;
  for (const auto& item : v->as_array()) {
    if (item.is_string()) out.emplace_back(item.as_string());
  }
  return out;
}

Result<int> port_number(const json::object& o, std::string_view key, bool allow_zero) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr && allow_zero) return 0;
  if (v == nullptr || !v->is_int64()) return bad(std::string(key) + " must be a number");
  std::int64_t n = v->as_int64();
  if (n < (allow_zero ? 0 : 1) || n > 65535) {
    return bad(std::string(key) + " " + std::to_string(n) + " is not a port (1-65535)");
  }
  return static_cast<int>(n);
}

// "0.0.0.0:8080->80/tcp" for each binding, comma-separated.
std::string endpoint_of(const std::vector<PortBinding>& ports) {
  std::string out;
  for (const auto& p : ports) {
    if (!out.empty()) out += ",";
    std::string ip = p.host_ip.empty() ? "0.0.0.0" : p.host_ip;
    if (ip.find(':') != std::string::npos) ip.insert(0, "[").append("]");
    out.append(ip).append(":");
    out += p.host_port == 0 ? std::string("*") : std::to_string(p.host_port);
    out.append("->").append(std::to_string(p.container_port)).append("/").append(p.protocol);
  }
  return out;
}

// "2026-12-02T08:30:00.123456789Z" -> "2026-12-02T08:30:00Z".
std::string to_seconds(std::string time) {
  if (time.size() > 19 && time[10] == 'T') return time.substr(0, 19) + "Z";
  return time;
}

// "0-3", "1,3": what Linux's cpuset.cpus takes.
bool is_cpu_list(std::string_view text) {
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t comma = std::min(text.find(',', start), text.size());
    std::string_view item = text.substr(start, comma - start);
    std::size_t dash = item.find('-');
    auto digits = [](std::string_view d) {
      return !d.empty() && d.size() <= 4 && std::all_of(d.begin(), d.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) != 0;
      });
    };
    if (!digits(item.substr(0, dash))) return false;
    if (dash != std::string_view::npos) {
      std::string_view last = item.substr(dash + 1);
      if (!digits(last) ||
          std::stoi(std::string(last)) < std::stoi(std::string(item.substr(0, dash)))) {
        return false;
      }
    }
    start = comma + 1;
  }
  return true;
}

// SYS_PTRACE, CAP_SYS_PTRACE or ALL, as the Engine takes them: one of
// Linux's capabilities (capability.h, up to CAP_CHECKPOINT_RESTORE), so a
// misspelt one is refused before `envd up` builds, not by the Engine after.
bool is_capability_name(std::string_view name) {
  // Space-separated, a space on each side of every name.
  static constexpr std::string_view kNames =
      " ALL CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP"
      " LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER"
      " SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE"
      " SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP"
      " MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF"
      " CHECKPOINT_RESTORE ";
  if (name.starts_with("CAP_")) name.remove_prefix(4);
  if (name.empty() || name.find(' ') != std::string_view::npos) return false;
  return kNames.find(" " + std::string(name) + " ") != std::string_view::npos;
}

// One entry of the spec's "volumes".
Result<Mount> mount_of(const json::object& o) {
  Mount mount;
  mount.type = string_at(o, "type");
  mount.source = string_at(o, "source");
  mount.target = string_at(o, "target");
  if (const json::value* ro = o.if_contains("read_only"); ro != nullptr) {
    if (!ro->is_bool()) return bad("a volume's read_only must be true or false");
    mount.read_only = ro->as_bool();
  }
  if (mount.target.empty() || mount.target.front() != '/' || mount.target == "/") {
    return bad("volume target '" + sdk::printable(mount.target, 200) +
               "' is not an absolute path other than /");
  }
  if (mount.type == "bind") {
    if (mount.source.empty() || mount.source.front() != '/') {
      return bad("bind source '" + sdk::printable(mount.source, 200) +
                 "' is not an absolute host path");
    }
  } else if (mount.type == "volume") {
    if (!mount.source.empty() && !sdk::is_docker_container_name(mount.source)) {
      return bad("volume name '" + sdk::printable(mount.source, 200) +
                 "' is not a Docker volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)");
    }
  } else {
    return bad("volume type '" + sdk::printable(mount.type, 40) + "' is not bind or volume");
  }
  return mount;
}

// "on-failure:3" -> {"on-failure", 3}; a count only for on-failure, as the
// Engine takes it.
Result<std::pair<std::string, int>> restart_policy(const std::string& text) {
  auto colon = text.find(':');
  std::string name = text.substr(0, colon);
  if (name != "no" && name != "always" && name != "unless-stopped" && name != "on-failure") {
    return bad("restart policy '" + sdk::printable(text, 80) +
               "' is not one of no, always, unless-stopped, on-failure[:MAX-RETRIES]");
  }
  if (colon == std::string::npos) return std::pair{name, 0};
  std::string count = text.substr(colon + 1);
  if (name != "on-failure") {
    return bad("restart policy '" + sdk::printable(text, 80) +
               "': only on-failure takes a maximum retry count");
  }
  if (count.empty() || count.size() > 6 || !std::all_of(count.begin(), count.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) != 0;
      })) {
    return bad("restart policy '" + sdk::printable(text, 80) +
               "': the maximum retry count must be a whole number, 0 or more");
  }
  return std::pair{name, std::stoi(count)};
}

}  // namespace

std::string default_name(const std::string& image) {
  std::string_view rest = image;
  if (auto at = rest.find('@'); at != std::string_view::npos) rest = rest.substr(0, at);
  if (auto slash = rest.rfind('/'); slash != std::string_view::npos) rest = rest.substr(slash + 1);
  if (auto colon = rest.find(':'); colon != std::string_view::npos) rest = rest.substr(0, colon);
  std::string out;
  for (char c : rest) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '.' || c == '-';
    out += ok ? c : '-';
  }
  while (!out.empty() && std::isalnum(static_cast<unsigned char>(out.front())) == 0) {
    out.erase(out.begin());
  }
  if (out.size() > 30) out.resize(30);
  if (out.size() < 2) out = "envd-" + out;
  return out;
}

Result<Spec> parse_spec(const std::string& args_json) {
  boost::system::error_code ec;
  json::value args = json::parse(args_json, ec);
  if (ec || !args.is_object()) return bad("the request's args are not a JSON object");
  const json::object* s = object_at(args.as_object(), "spec");
  if (s == nullptr) return bad("the request has no spec object");
  Spec spec;
  spec.image = string_at(*s, "image");
  if (spec.image.empty()) return bad("image is missing");
  spec.name = string_at(*s, "name");
  if (spec.name.empty()) spec.name = default_name(spec.image);
  if (!sdk::is_docker_container_name(spec.name)) {
    return bad("name '" + sdk::printable(spec.name, 80) +
               "' is not a Docker container name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)");
  }
  if (const json::object* env = object_at(*s, "env")) {
    for (const auto& [k, v] : *env) {
      if (k.empty() || !v.is_string()) return bad("env must map names to strings");
      spec.env[std::string(k)] = std::string(v.as_string());
    }
  }
  if (const json::value* ports = s->if_contains("ports"); ports != nullptr) {
    if (!ports->is_array()) return bad("ports must be an array");
    for (const auto& item : ports->as_array()) {
      if (!item.is_object()) return bad("each port must be an object");
      const auto& p = item.as_object();
      PortBinding b;
      b.host_ip = string_at(p, "host_ip");
      auto host = port_number(p, "host_port", true);
      if (!host) return host.error();
      auto ctr = port_number(p, "container_port", false);
      if (!ctr) return ctr.error();
      b.host_port = *host;
      b.container_port = *ctr;
      if (std::string proto = string_at(p, "protocol"); !proto.empty()) b.protocol = proto;
      if (b.protocol != "tcp" && b.protocol != "udp" && b.protocol != "sctp") {
        return bad("protocol '" + b.protocol + "' is not tcp, udp or sctp");
      }
      spec.ports.push_back(std::move(b));
    }
  }
  if (const json::value* volumes = s->if_contains("volumes"); volumes != nullptr) {
    if (!volumes->is_array()) return bad("volumes must be an array");
    for (const auto& item : volumes->as_array()) {
      if (!item.is_object()) return bad("each volume must be an object");
      auto mount = mount_of(item.as_object());
      if (!mount) return mount.error();
      for (const auto& other : spec.volumes) {
        if (other.target == mount->target) return bad("two volumes are mounted at " + other.target);
      }
      spec.volumes.push_back(std::move(*mount));
    }
  }
  if (const json::value* cpus = s->if_contains("cpus"); cpus != nullptr) {
    // 0 is no limit. Docker's floor is 0.01: below it the kernel refuses the
    // CPU quota when the container starts, and under 1e-9 it rounds to 0.
    if (!cpus->is_number() || cpus->to_number<double>() < 0 ||
        (cpus->to_number<double>() > 0 && cpus->to_number<double>() < 0.01)) {
      return bad("cpus must be 0 (no limit) or a number of CPUs from 0.01");
    }
    spec.cpus = cpus->to_number<double>();
  }
  spec.memory = int_at(*s, "memory");
  if (spec.memory < 0) return bad("memory must be a positive number of bytes");
  if (const json::value* shm = s->if_contains("shm_size"); shm != nullptr) {
    if (!shm->is_int64() || shm->as_int64() <= 0) {
      return bad("shm_size must be a positive number of bytes");
    }
    spec.shm_size = shm->as_int64();
  }
  spec.cpuset = string_at(*s, "cpuset");
  if (!spec.cpuset.empty() && !is_cpu_list(spec.cpuset)) {
    return bad("cpuset '" + sdk::printable(spec.cpuset, 80) +
               "' is not a list of CPUs and ranges such as 0-3 or 1,3");
  }
  if (const json::value* caps = s->if_contains("cap_add"); caps != nullptr) {
    if (!caps->is_array()) return bad("cap_add must be an array");
    for (const auto& cap : caps->as_array()) {
      if (!cap.is_string() || !is_capability_name(cap.as_string())) {
        return bad("cap_add holds '" + sdk::printable(cap.is_string() ? cap.as_string() : "", 40) +
                   "', which is not a capability name such as SYS_PTRACE");
      }
      spec.cap_add.emplace_back(cap.as_string());
    }
  }
  if (std::string gpus = string_at(*s, "gpus"); !gpus.empty()) {
    auto requests = gpu_device_requests(gpus);
    if (!requests) return bad(requests.error().message());
    spec.gpu_requests = std::move(*requests);
  }
  if (std::string restart = string_at(*s, "restart"); !restart.empty()) {
    auto policy = restart_policy(restart);
    if (!policy) return policy.error();
    std::tie(spec.restart, spec.max_retries) = *policy;
  }
  spec.network = string_at(*s, "network");
  spec.command = strings_at(*s, "command");
  if (const json::value* force = s->if_contains("force"); force != nullptr && force->is_bool()) {
    spec.force = force->as_bool();
  }
  return spec;
}

json::object container_body(const Spec& spec) {
  json::array env;
  for (const auto& [k, v] : spec.env) {
    std::string item = k;
    item.append("=").append(v);
    env.emplace_back(item);
  }
  // Bindings of the same container port accumulate under one key.
  json::object exposed;
  json::object merged;
  for (const auto& p : spec.ports) {
    std::string key = std::to_string(p.container_port) + "/" + p.protocol;
    exposed[key] = json::object{};
    if (!merged.contains(key)) merged[key] = json::array{};
    merged[key].as_array().push_back(
        json::object{{"HostIp", p.host_ip},
                     {"HostPort", p.host_port == 0 ? std::string() : std::to_string(p.host_port)}});
  }
  json::object policy{{"Name", spec.restart}};
  if (spec.max_retries > 0) policy["MaximumRetryCount"] = spec.max_retries;
  json::object host{{"RestartPolicy", std::move(policy)}, {"PortBindings", std::move(merged)}};
  if (!spec.volumes.empty()) {
    json::array mounts;
    for (const auto& m : spec.volumes) {
      json::object mount{{"Type", m.type}, {"Target", m.target}, {"ReadOnly", m.read_only}};
      if (!m.source.empty()) mount["Source"] = m.source;
      mounts.push_back(std::move(mount));
    }
    host["Mounts"] = std::move(mounts);
  }
  if (spec.cpus > 0) host["NanoCpus"] = static_cast<std::int64_t>(std::llround(spec.cpus * 1e9));
  host["ShmSize"] = spec.shm_size > 0 ? spec.shm_size : kDefaultShmSize;
  if (!spec.cpuset.empty()) host["CpusetCpus"] = spec.cpuset;
  if (!spec.cap_add.empty()) host["CapAdd"] = strings(spec.cap_add);
  if (spec.memory > 0) host["Memory"] = spec.memory;
  if (!spec.gpu_requests.empty()) host["DeviceRequests"] = spec.gpu_requests;
  if (!spec.network.empty()) host["NetworkMode"] = spec.network;
  json::object body{
      {"Image", spec.image},
      {"Env", std::move(env)},
      {"Labels", json::object{{kNameLabel, spec.name}, {kVendorLabel, kVendor}}},
      {"ExposedPorts", std::move(exposed)},
      {"Tty", true},
      {"OpenStdin", true},
      {"HostConfig", std::move(host)},
  };
  if (!spec.command.empty()) body["Cmd"] = strings(spec.command);
  return body;
}

bool is_environment(const json::object& container) {
  const json::object* config = object_at(container, "Config");
  const json::object* labels = config ? object_at(*config, "Labels") : nullptr;
  return labels != nullptr && labels->contains(kNameLabel);
}

namespace {

json::object without_creation_token(json::object labels) {
  labels.erase(kCreationLabel);
  return labels;
}

}  // namespace

json::object environment_of(const json::object& c) {
  static const json::object kEmpty;
  const json::object* config = object_at(c, "Config");
  const json::object* state = object_at(c, "State");
  const json::object* host = object_at(c, "HostConfig");
  if (config == nullptr) config = &kEmpty;
  if (state == nullptr) state = &kEmpty;
  if (host == nullptr) host = &kEmpty;

  json::object labels;
  if (const json::object* l = object_at(*config, "Labels")) labels = *l;
  // The container's own name, which every command looks the environment up
  // by; envd gives its label the same value, but a container made by other
  // means may carry the label with another (or the same as another's), and
  // would then be listed under a name nothing can reach.
  std::string name = string_at(c, "Name");
  if (!name.empty() && name.front() == '/') name.erase(0, 1);
  if (name.empty()) name = string_at(labels, kNameLabel);

  // While the container runs, what the Engine published
  // (NetworkSettings.Ports: the port it chose for a HOST left empty, nothing
  // on network none); otherwise what was asked for (HostConfig.PortBindings),
  // which the next start publishes, as far as the network allows. Under the
  // host's network the Engine publishes nothing: the bindings stay in
  // HostConfig but reach no port, so none is shown.
  std::vector<PortBinding> ports;
  const std::string status = string_at(*state, "Status");
  const bool live = status == "running" || status == "paused" || status == "restarting";
  const json::object* network = object_at(c, "NetworkSettings");
  const json::object* bindings = live
                                     ? (network != nullptr ? object_at(*network, "Ports") : nullptr)
                                     : object_at(*host, "PortBindings");
  if (string_at(*host, "NetworkMode") == "host") bindings = nullptr;
  if (bindings != nullptr) {
    for (const auto& [key, list] : *bindings) {
      std::string k(key);
      auto slash = k.find('/');
      PortBinding b;
      b.container_port = std::atoi(k.substr(0, slash).c_str());
      b.protocol = slash == std::string::npos ? "tcp" : k.substr(slash + 1);
      if (!list.is_array()) continue;
      for (const auto& item : list.as_array()) {
        if (!item.is_object()) continue;
        PortBinding one = b;
        one.host_ip = string_at(item.as_object(), "HostIp");
        one.host_port = std::atoi(string_at(item.as_object(), "HostPort").c_str());
        ports.push_back(std::move(one));
      }
    }
  }
  std::sort(ports.begin(), ports.end(), [](const PortBinding& a, const PortBinding& b) {
    return std::tie(a.host_port, a.container_port, a.protocol, a.host_ip) <
           std::tie(b.host_port, b.container_port, b.protocol, b.host_ip);
  });
  json::array ports_json;
  for (const auto& p : ports) {
    ports_json.push_back(json::object{{"host_ip", p.host_ip},
                                      {"host_port", p.host_port},
                                      {"container_port", p.container_port},
                                      {"protocol", p.protocol}});
  }

  json::object env;
  for (const auto& item : strings_at(*config, "Env")) {
    auto eq = item.find('=');
    env[item.substr(0, eq)] = eq == std::string::npos ? std::string() : item.substr(eq + 1);
  }

  std::int64_t nano_cpus = int_at(*host, "NanoCpus");
  json::object resources{{"cpus", static_cast<double>(nano_cpus) / 1e9},
                         {"memory", int_at(*host, "Memory")},
                         {"gpus", gpus_of(*host)},
                         {"shm_size", int_at(*host, "ShmSize")},
                         {"cpuset", string_at(*host, "CpusetCpus")}};
  std::string restart;
  if (const json::object* policy = object_at(*host, "RestartPolicy")) {
    restart = string_at(*policy, "Name");
    if (std::int64_t retries = int_at(*policy, "MaximumRetryCount"); retries > 0) {
      restart += ":" + std::to_string(retries);
    }
  }

  // What is mounted (Mounts of the inspect answer, the image's VOLUMEs among
  // them), in the spec's form; a volume by its name.
  json::array volumes;
  if (const json::value* mounts = c.if_contains("Mounts");
      mounts != nullptr && mounts->is_array()) {
    for (const auto& item : mounts->as_array()) {
      if (!item.is_object()) continue;
      const auto& m = item.as_object();
      std::string type = string_at(m, "Type");
      const json::value* rw = m.if_contains("RW");
      volumes.push_back(
          json::object{{"type", type},
                       {"source", type == "volume" ? string_at(m, "Name") : string_at(m, "Source")},
                       {"target", string_at(m, "Destination")},
                       {"read_only", rw != nullptr && rw->is_bool() && !rw->as_bool()}});
    }
  }

  return json::object{
      {"name", name},
      {"id", string_at(c, "Id")},
      {"image", string_at(*config, "Image")},
      {"status", string_at(*state, "Status")},
      {"exit_code", int_at(*state, "ExitCode")},
      {"error", string_at(*state, "Error")},
      {"created", to_seconds(string_at(c, "Created"))},
      {"started", to_seconds(string_at(*state, "StartedAt"))},
      {"endpoint", endpoint_of(ports)},
      {"ports", std::move(ports_json)},
      {"volumes", std::move(volumes)},
      {"env", std::move(env)},
      {"resources", std::move(resources)},
      {"labels", without_creation_token(std::move(labels))},
      {"restart", restart},
      // How often the Engine restarted it under that policy: a container
      // that crashes after `run` saw it up shows here.
      {"restarts", int_at(c, "RestartCount")},
      {"network", string_at(*host, "NetworkMode")},
      {"command", strings(strings_at(*config, "Cmd"))},
      {"cap_add", strings(strings_at(*host, "CapAdd"))},
  };
}

}  // namespace envd::plugins::docker_runner
