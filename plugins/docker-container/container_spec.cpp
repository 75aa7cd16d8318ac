#include "container_spec.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <string>
#include <string_view>

#include <boost/json.hpp>

namespace envd::plugins::docker_container {
namespace {

namespace json = boost::json;

json::array to_array(const std::vector<std::string>& items) {
  json::array out;
  for (const auto& item : items) out.emplace_back(item);
  return out;
}

}  // namespace

std::string sha256_hex(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < size; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 0xf];
  }
  return out;
}

std::string generated_config(const ContainerOptions& options) {
  std::string text =
      "# Written by envd from the context's driver options; envd rewrites it, so do not edit.\n"
      "# Supply your own file with `envd context update --buildkitd-config FILE`.\n";
  if (options.gc_keep_storage) {
    text += "\n[worker.oci]\n  gckeepstorage = " + std::to_string(*options.gc_keep_storage) + "\n";
  }
  return text;
}

std::string effective_image(const ContainerOptions& options, const std::string& override_image) {
  if (!override_image.empty()) return override_image;
  if (!options.image.empty()) return options.image;
  return options.rootless ? kDefaultRootlessImage : kDefaultImage;
}

bool mounts_over_socket_dir(const ContainerOptions& options) {
  const std::string dir = kSocketDir;
  return std::any_of(options.mounts.begin(), options.mounts.end(), [&](const auto& mount) {
    std::string target = mount.target;
    while (target.size() > 1 && target.back() == '/') target.pop_back();
    return target == "/" || dir == target || dir.rfind(target + "/", 0) == 0 ||
           target.rfind(dir + "/", 0) == 0;
  });
}

ContainerSpec make_spec(const std::string& name, const std::string& context,
                        const ContainerOptions& options, const std::string& image,
                        const std::string& config_host, const std::string& config_text,
                        const std::string& socket_dir_host) {
  ContainerSpec spec;
  spec.name = name;
  spec.image = image;
  spec.volume = name + "_state";
  spec.config_host = config_host;
  spec.socket_dir_host = socket_dir_host;

  json::array cmd{"--config", kConfigPath};
  for (const auto& flag : options.daemon_flags) cmd.emplace_back(flag);
  // Without privileges the OCI worker cannot create process namespaces of its own.
  if (options.rootless) cmd.emplace_back("--oci-worker-no-process-sandbox");

  json::array mounts;
  mounts.push_back(json::object{{"Type", "volume"},
                                {"Source", spec.volume},
                                {"Target", options.rootless ? kRootlessStateDir : kStateDir}});
  for (const auto& m : options.mounts) {
    mounts.push_back(json::object{{"Type", m.is_volume() ? "volume" : "bind"},
                                  {"Source", m.source},
                                  {"Target", m.target},
                                  {"ReadOnly", m.read_only}});
  }

  std::vector<std::string> security_opt = options.security_opt;
  json::array devices;
  if (options.rootless) {
    // What the rootless image needs to nest user namespaces and mount fuse
    // overlays (BuildKit's docs/rootless.md), unless security-opt chose a
    // seccomp or AppArmor profile itself: the Engine takes the last one given
    // for a key, so an added "unconfined" would have overridden the user's.
    for (std::string_view key : {"seccomp=", "apparmor="}) {
      bool chosen = std::any_of(security_opt.begin(), security_opt.end(),
                                [key](const std::string& opt) { return opt.starts_with(key); });
      if (!chosen) security_opt.emplace_back(std::string(key) + "unconfined");
    }
    devices.push_back(json::object{{"PathOnHost", "/dev/fuse"},
                                   {"PathInContainer", "/dev/fuse"},
                                   {"CgroupPermissions", "rwm"}});
  }
  for (const auto& d : options.devices) {
    devices.push_back(json::object{{"PathOnHost", d.host},
                                   {"PathInContainer", d.container},
                                   {"CgroupPermissions", d.permissions}});
  }

  json::object host;
  host["Privileged"] = options.privileged;
  host["Mounts"] = std::move(mounts);
  host["CapAdd"] = to_array(options.cap_add);
  host["CapDrop"] = to_array(options.cap_drop);
  host["SecurityOpt"] = to_array(security_opt);
  if (options.unconfined_system_paths) {
    // What the docker CLI makes of --security-opt systempaths=unconfined.
    host["MaskedPaths"] = json::array();
    host["ReadonlyPaths"] = json::array();
  }
  host["Devices"] = std::move(devices);
  if (!options.network.empty()) host["NetworkMode"] = options.network;

  json::object body;
  body["Image"] = image;
  body["Cmd"] = std::move(cmd);
  body["Env"] = to_array(options.env);
  body["HostConfig"] = std::move(host);

  // Everything the container is created with except its labels and how the
  // config reaches it, plus the config's content: any change to either makes
  // the container stale (a bind-mounted or copied config is the same config).
  spec.config_sha256 = sha256_hex(config_text + '\0' + json::serialize(body));
  if (!config_host.empty()) {
    auto& all = body["HostConfig"].as_object()["Mounts"].as_array();
    all.insert(all.begin() + 1, json::object{{"Type", "bind"},
                                             {"Source", config_host},
                                             {"Target", kConfigPath},
                                             {"ReadOnly", true}});
  }
  if (!socket_dir_host.empty()) {
    body["HostConfig"].as_object()["Mounts"].as_array().push_back(
        json::object{{"Type", "bind"}, {"Source", socket_dir_host}, {"Target", kSocketDir}});
  }
  spec.labels = {
      {kImageLabel, image}, {kConfigLabel, spec.config_sha256}, {kContextLabel, context}};
  json::object labels;
  for (const auto& [k, v] : spec.labels) labels[k] = v;
  body["Labels"] = std::move(labels);
  spec.create_json = json::serialize(body);
  return spec;
}

std::optional<std::string> stale_reason(const std::map<std::string, std::string>& labels,
                                        const ContainerSpec& spec) {
  auto image = labels.find(kImageLabel);
  auto config = labels.find(kConfigLabel);
  if (image == labels.end() || config == labels.end()) {
    return "it was not created by this envd (it has no " + std::string(kImageLabel) + " label)";
  }
  if (image->second != spec.image) {
    return "it runs image " + image->second + " but the context asks for " + spec.image;
  }
  if (config->second != spec.config_sha256) {
    return "its buildkitd.toml or driver options differ from the context's";
  }
  return std::nullopt;
}

ImageRef split_image(const std::string& reference) {
  ImageRef ref;
  std::string name = reference;
  if (auto at = name.find('@'); at != std::string::npos) {
    ref.tag = name.substr(at + 1);
    name = name.substr(0, at);
  } else {
    auto slash = name.rfind('/');
    auto colon = name.rfind(':');
    if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
      ref.tag = name.substr(colon + 1);
      name = name.substr(0, colon);
    }
  }
  if (ref.tag.empty()) ref.tag = "latest";
  ref.repository = name;
  auto slash = name.find('/');
  std::string first = slash == std::string::npos ? "" : name.substr(0, slash);
  bool is_host = first.find_first_of(".:") != std::string::npos || first == "localhost";
  ref.registry = is_host ? first : "docker.io";
  return ref;
}

}  // namespace envd::plugins::docker_container
