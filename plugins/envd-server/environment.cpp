#include "environment.hpp"

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string_view>

#include "envd/text.hpp"

namespace envd::plugins::envd_server {
namespace {

namespace json = boost::json;

constexpr std::int64_t kMiB = std::int64_t{1024} * 1024;

Error bad(const std::string& message) {
  return Error(Errc::invalid_argument, "invalid environment spec: " + message);
}

std::string string_at(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

const json::object* object_at(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_object() ? &v->as_object() : nullptr;
}

const json::array* array_at(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_array() ? &v->as_array() : nullptr;
}

std::string rfc3339(std::int64_t seconds) {
  if (seconds <= 0) return "";
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

bool all_digits(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (std::isdigit(static_cast<unsigned char>(c)) == 0) return false;
  }
  return true;
}

}  // namespace

std::string default_name(const std::string& image) {
  std::string_view rest = image;
  if (auto at = rest.find('@'); at != std::string_view::npos) rest = rest.substr(0, at);
  if (auto slash = rest.rfind('/'); slash != std::string_view::npos) rest = rest.substr(slash + 1);
  if (auto colon = rest.find(':'); colon != std::string_view::npos) rest = rest.substr(0, colon);
  std::string name;
  for (char c : rest) {
    char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    bool ok = std::isalnum(static_cast<unsigned char>(lower)) != 0;
    if (ok) {
      name += lower;
    } else if (!name.empty() && name.back() != '-') {
      name += '-';
    }
    if (name.size() == 30) break;
  }
  while (!name.empty() && name.back() == '-') name.pop_back();
  return name;
}

Result<CreateBody> create_body(const std::string& args_json) {
  boost::system::error_code ec;
  json::value args = json::parse(args_json, ec);
  if (ec || !args.is_object()) return bad("the request's args are not a JSON object");
  const json::object* spec = object_at(args.as_object(), "spec");
  if (spec == nullptr) return bad("'spec' is missing");

  CreateBody out;
  std::string image = string_at(*spec, "image");
  if (image.empty()) return bad("'image' is required");
  out.name = string_at(*spec, "name");
  if (out.name.empty()) out.name = default_name(image);
  if (out.name.empty()) {
    return bad("no environment name can be made from the image '" + image + "'; give one");
  }
  if (const json::value* force = spec->if_contains("force"); force != nullptr) {
    out.force = force->is_bool() && force->as_bool();
  }
  if (!string_at(*spec, "restart").empty()) {
    return bad(
        "a restart policy does not apply to envd-server (its pods are managed by the server)");
  }
  if (!string_at(*spec, "network").empty()) {
    return bad("a network mode does not apply to envd-server");
  }

  // The server's runtime reads the image and nothing else of the spec: the
  // pod gets its own variables, the image's command and the SSH port (and
  // the ports the image's envd labels declare). What it would drop is
  // refused here, not sent to be lost.
  if (const json::object* env = object_at(*spec, "env"); env != nullptr && !env->empty()) {
    return bad(
        "envd-server does not pass environment variables (-e) to an environment: its pod "
        "gets the image's own; set them in the image");
  }
  if (const json::array* command = array_at(*spec, "command");
      command != nullptr && !command->empty()) {
    return bad("envd-server runs the image's own command; a command cannot be given");
  }
  if (const json::array* ports = array_at(*spec, "ports"); ports != nullptr && !ports->empty()) {
    return bad(
        "envd-server publishes the SSH port and the ports the image's envd labels declare; "
        "-p cannot be given");
  }
  if (const json::array* volumes = array_at(*spec, "volumes");
      volumes != nullptr && !volumes->empty()) {
    return bad(
        "envd-server mounts no host directory or volume (-v) into an environment: its pods run "
        "on the server's cluster, which gives them their own storage");
  }
  if (!string_at(*spec, "cpuset").empty()) {
    return bad("envd-server takes no CPU set (--cpu-set): its pods get CPUs by count (--cpus)");
  }
  if (const json::array* caps = array_at(*spec, "cap_add"); caps != nullptr && !caps->empty()) {
    return bad("envd-server adds no capability (--cap-add) to an environment's pod");
  }
  json::object server_spec{{"image", image}};

  // As upstream: gpu is a string, "0" without GPUs; shm in MiB.
  json::object resource{{"gpu", "0"}, {"shm", std::to_string(kDefaultShmMiB) + "Mi"}};
  if (const json::value* shm = spec->if_contains("shm_size"); shm != nullptr) {
    // The server takes MiB; a part of one is rounded up, never down to less.
    if (!shm->is_int64() || shm->as_int64() <= 0) {
      return bad("shm_size must be a positive number of bytes");
    }
    resource["shm"] = std::to_string((shm->as_int64() + kMiB - 1) / kMiB) + "Mi";
  }
  std::string gpus = string_at(*spec, "gpus");
  if (!gpus.empty()) {
    if (!all_digits(gpus)) {
      return bad("envd-server takes a GPU count, not '" + gpus + "'");
    }
    resource["gpu"] = gpus;
  }
  if (const json::value* cpus = spec->if_contains("cpus"); cpus != nullptr && cpus->is_number()) {
    double value = cpus->to_number<double>();
    if (value > 0) {
      char text[32];
      std::snprintf(text, sizeof text, "%g", value);
      resource["cpu"] = text;
    }
  }
  if (const json::value* memory = spec->if_contains("memory");
      memory != nullptr && memory->is_int64() && memory->as_int64() > 0) {
    resource["memory"] = std::to_string(memory->as_int64());
  }
  out.body = json::object{
      {"name", out.name}, {"spec", std::move(server_spec)}, {"resource", std::move(resource)}};
  return out;
}

json::object environment_of(const json::object& env, const std::string& login,
                            const std::string& host, int ssh_port) {
  static const json::object empty;
  const json::object* spec = object_at(env, "spec");
  const json::object* status = object_at(env, "status");
  const json::object* resource = object_at(env, "resource");
  if (spec == nullptr) spec = &empty;
  if (status == nullptr) status = &empty;
  if (resource == nullptr) resource = &empty;

  std::string name = string_at(env, "name");
  std::string phase = string_at(*status, "phase");
  for (char& c : phase) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::int64_t created = 0;
  if (const json::value* at = env.if_contains("created_at"); at != nullptr && at->is_int64()) {
    created = at->as_int64();
  }
  std::string owner = string_at(*spec, "owner");

  json::object vars;
  if (const json::array* list = array_at(*spec, "env")) {
    for (const auto& item : *list) {
      if (item.is_object())
        vars[string_at(item.as_object(), "name")] = string_at(item.as_object(), "value");
    }
  }
  json::array ports;
  if (const json::array* list = array_at(*spec, "ports")) {
    for (const auto& item : *list) {
      if (!item.is_object()) continue;
      const json::value* port = item.as_object().if_contains("port");
      if (port == nullptr || !port->is_int64()) continue;
      ports.push_back(json::object{{"host_ip", ""},
                                   {"host_port", 0},
                                   {"container_port", port->as_int64()},
                                   {"protocol", "tcp"}});
    }
  }
  json::array command;
  if (const json::array* list = array_at(*spec, "cmd")) command = *list;
  json::object labels;
  if (const json::object* l = object_at(env, "labels")) labels = *l;

  json::object resources;
  std::string cpu = string_at(*resource, "cpu");
  if (!cpu.empty()) {
    char* end = nullptr;
    double value = std::strtod(cpu.c_str(), &end);
    if (end != cpu.c_str() && *end == '\0') resources["cpus"] = value;
  }
  std::string memory = string_at(*resource, "memory");
  if (all_digits(memory) && memory.size() < 19) resources["memory"] = std::stoll(memory);
  std::string gpu = string_at(*resource, "gpu");
  resources["gpus"] = gpu == "0" ? "" : gpu;
  // As the docker runner says it, in bytes: the server keeps "<N>Mi"
  // (what create sends, see above).
  std::string shm = string_at(*resource, "shm");
  if (shm.size() > 2 && shm.size() < 14 && shm.ends_with("Mi") &&
      all_digits(shm.substr(0, shm.size() - 2))) {
    resources["shm_size"] = std::stoll(shm.substr(0, shm.size() - 2)) * kMiB;
  }

  std::string ssh_host = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return json::object{
      {"name", name},
      {"image", string_at(*spec, "image")},
      {"status", phase},
      {"created", rfc3339(created)},
      {"endpoint", (owner.empty() ? login : owner) + "/" + name + "@" + ssh_host + ":" +
                       std::to_string(ssh_port)},
      {"owner", owner},
      {"command", std::move(command)},
      {"env", std::move(vars)},
      {"ports", std::move(ports)},
      {"resources", std::move(resources)},
      {"labels", std::move(labels)},
      {"jupyter_addr", string_at(*status, "jupyter_addr")},
      {"rstudio_server_addr", string_at(*status, "rstudio_server_addr")},
      {"server", env},
  };
}

std::string server_message(int status, const std::string& body) {
  boost::system::error_code ec;
  json::value value = json::parse(body, ec);
  if (!ec && value.is_object()) {
    std::string message = string_at(value.as_object(), "message");
    // The server's words go into one line of envd's: escaped and bounded.
    if (!message.empty()) return sdk::printable(message, 300);
  }
  std::string text = body;
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.erase(0, 1);
  // A page of HTML or any text of many lines (a proxy's error page) says
  // less than its status.
  if (text.empty() || text.size() > 512 || text.front() == '<' ||
      text.find('\n') != std::string::npos) {
    return "HTTP status " + std::to_string(status);
  }
  return sdk::printable(text);
}

}  // namespace envd::plugins::envd_server
