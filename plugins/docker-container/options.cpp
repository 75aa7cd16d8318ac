#include "options.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "envd/csv.hpp"
#include "envd/docker_engine.hpp"

namespace envd::plugins::docker_container {
namespace {

Error invalid(std::string_view key, std::string_view value, std::string_view why) {
  return Error(Errc::invalid_argument, "driver option '" + std::string(key) + "=" +
                                           std::string(value) +
                                           "' is invalid: " + std::string(why));
}

std::string trim(std::string_view text) {
  auto begin = text.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return {};
  auto end = text.find_last_not_of(" \t");
  return std::string(text.substr(begin, end - begin + 1));
}

// The items of a list option: a CSV record (an item in double quotes holds
// commas: env="NO_PROXY=a,b",FOO=1), each item trimmed, empty ones dropped.
Result<std::vector<std::string>> split_list(std::string_view key, std::string_view value) {
  // Lazy, as the stored form csv_field writes: `FOO="x"` is a value.
  auto fields = sdk::split_csv_record(value, "driver option '" + std::string(key) + "'",
                                      sdk::CsvQuotes::lazy);
  if (!fields) return fields.error();
  std::vector<std::string> out;
  for (const auto& field : *fields) {
    std::string item = trim(field);
    if (!item.empty()) out.push_back(std::move(item));
  }
  return out;
}

// The stored form of a list option: what split_list reads back as `items`.
std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ",") + sdk::csv_field(item);
  return out;
}

Result<bool> parse_bool(std::string_view key, std::string_view value) {
  std::string lower;
  for (char c : value) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "true" || lower == "1" || lower == "yes") return true;
  if (lower == "false" || lower == "0" || lower == "no") return false;
  return invalid(key, value, "expected true or false");
}

bool has_space(std::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; });
}

Result<std::string> capability(std::string_view key, const std::string& item) {
  std::string upper;
  for (char c : item) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  bool ok = !upper.empty() && std::all_of(upper.begin(), upper.end(), [](char c) {
    return std::isupper(static_cast<unsigned char>(c)) != 0 || c == '_';
  });
  if (!ok) return invalid(key, item, "expected a capability name such as SYS_ADMIN or ALL");
  return upper;
}

Result<MountSpec> parse_mount(const std::string& item) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t colon; (colon = item.find(':', start)) != std::string::npos; start = colon + 1) {
    parts.push_back(item.substr(start, colon - start));
  }
  parts.push_back(item.substr(start));
  auto fail = [&](std::string_view why) { return invalid("mount", item, why); };
  if (parts.size() < 2 || parts.size() > 3) return fail("expected SRC:DST[:ro|rw]");
  MountSpec mount{parts[0], parts[1]};
  if (parts.size() == 3) {
    if (parts[2] == "ro") {
      mount.read_only = true;
    } else if (parts[2] != "rw") {
      return fail("the mode must be ro or rw");
    }
  }
  if (mount.source.empty()) return fail("the source is empty");
  if (mount.is_volume() && !sdk::is_docker_container_name(mount.source)) {
    return fail("the source must be an absolute host path or a volume name");
  }
  if (mount.target.empty() || mount.target.front() != '/') {
    return fail("the target must be an absolute path in the container");
  }
  return mount;
}

Result<DeviceSpec> parse_device(const std::string& item) {
  DeviceSpec device;
  size_t first = item.find(':');
  device.host = item.substr(0, first);
  if (first != std::string::npos) {
    size_t second = item.find(':', first + 1);
    device.container = item.substr(first + 1, second - first - 1);
    if (second != std::string::npos) device.permissions = item.substr(second + 1);
  }
  if (device.container.empty()) device.container = device.host;
  auto absolute = [](const std::string& p) { return !p.empty() && p.front() == '/'; };
  if (!absolute(device.host) || !absolute(device.container)) {
    return invalid("device", item, "expected /dev/HOST[:/dev/CONTAINER[:rwm]]");
  }
  if (device.permissions.empty() ||
      device.permissions.find_first_not_of("rwm") != std::string::npos) {
    return invalid("device", item, "permissions are a combination of r, w and m");
  }
  return device;
}

Result<std::string> parse_env(const std::string& item) {
  size_t eq = item.find('=');
  std::string name = item.substr(0, eq);
  bool ok = eq != std::string::npos && !name.empty() &&
            std::isdigit(static_cast<unsigned char>(name.front())) == 0 &&
            std::all_of(name.begin(), name.end(), [](char c) {
              return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
            });
  if (!ok) return invalid("env", item, "expected NAME=VALUE with NAME made of [A-Za-z0-9_]");
  return item;
}

// One --security-opt item as the docker CLI reads it: KEY=VALUE (or the
// deprecated KEY:VALUE), or no-new-privileges alone. Returns the form sent to
// the Engine, or "" for systempaths=unconfined, which is no Engine option: the
// CLI turns it into empty MaskedPaths and ReadonlyPaths, and so does envd.
Result<std::string> parse_security_opt(const std::string& item) {
  auto fail = [&](std::string_view why) { return invalid("security-opt", item, why); };
  if (has_space(item)) return fail("it contains white space");
  if (item == "no-new-privileges") return item;
  size_t sep = item.find('=');
  if (sep == std::string::npos) sep = item.find(':');
  if (sep == std::string::npos) {
    return fail(
        "expected no-new-privileges, seccomp=unconfined|builtin|/PROFILE.json, apparmor=PROFILE, "
        "label=LABEL or systempaths=unconfined");
  }
  const std::string key = item.substr(0, sep);
  const std::string value = item.substr(sep + 1);
  if (value.empty()) return fail("the value after '" + key + "' is empty");
  if (key == "no-new-privileges") {
    if (value != "true" && value != "false") return fail("no-new-privileges takes true or false");
  } else if (key == "seccomp") {
    if (value != "unconfined" && value != "builtin" && value.front() != '/') {
      return fail("seccomp takes unconfined, builtin or the absolute path of a JSON profile");
    }
  } else if (key == "systempaths") {
    if (value != "unconfined") return fail("systempaths takes only unconfined");
    return std::string();
  } else if (key != "apparmor" && key != "label") {
    return fail("unknown security option '" + key +
                "' (expected no-new-privileges, seccomp, apparmor, label or systempaths)");
  }
  return key + "=" + value;
}

// Applies `parse_item` to every item of the list option `key`.
template <typename T, typename F>
Result<std::vector<T>> parse_items(std::string_view key, std::string_view value, F parse_item) {
  auto items = split_list(key, value);
  if (!items) return items.error();
  std::vector<T> out;
  for (const auto& item : *items) {
    auto parsed = parse_item(item);
    if (!parsed) return parsed.error();
    out.push_back(std::move(*parsed));
  }
  return out;
}

}  // namespace

const std::vector<std::string_view>& option_keys() {
  static const std::vector<std::string_view> keys = {
      "image",   "privileged", "cap-add",         "cap-drop", "security-opt",    "device", "mount",
      "network", "env",        "buildkitd-flags", "rootless", "gc-keep-storage", "config"};
  return keys;
}

Result<std::uint64_t> parse_size(std::string_view text, std::string_view what) {
  auto fail = [&] {
    return Error(Errc::invalid_argument,
                 std::string(what) + " '" + std::string(text) +
                     "' is not a size (expected e.g. 10GB, 512MiB or a number of bytes)");
  };
  std::string s = trim(text);
  size_t digits = 0;
  while (digits < s.size() &&
         (std::isdigit(static_cast<unsigned char>(s[digits])) != 0 || s[digits] == '.')) {
    ++digits;
  }
  if (digits == 0 || std::count(s.begin(), s.begin() + static_cast<long>(digits), '.') > 1) {
    return fail();
  }
  // strtod, not stod: "." and a 300-digit number throw out of stod.
  std::string number_text = s.substr(0, digits);
  char* end = nullptr;
  double number = std::strtod(number_text.c_str(), &end);
  if (end != number_text.c_str() + number_text.size() || !std::isfinite(number)) return fail();
  std::string unit;
  for (char c : trim(s.substr(digits))) {
    unit += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  static const std::vector<std::pair<std::string_view, double>> units = {
      {"", 1},
      {"b", 1},
      {"k", 1024.0},
      {"kb", 1e3},
      {"kib", 1024.0},
      {"m", 1024.0 * 1024},
      {"mb", 1e6},
      {"mib", 1024.0 * 1024},
      {"g", 1024.0 * 1024 * 1024},
      {"gb", 1e9},
      {"gib", 1024.0 * 1024 * 1024},
      {"t", 1024.0 * 1024 * 1024 * 1024},
      {"tb", 1e12},
      {"tib", 1024.0 * 1024 * 1024 * 1024}};
  for (const auto& [name, factor] : units) {
    if (unit != name) continue;
    double bytes = std::round(number * factor);
    if (bytes > static_cast<double>(std::numeric_limits<std::int64_t>::max())) return fail();
    return static_cast<std::uint64_t>(bytes);
  }
  return fail();
}

Result<std::vector<std::string>> split_words(std::string_view text, std::string_view what) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quote == '\'') {
      if (c == '\'') {
        quote = 0;
      } else {
        word += c;
      }
    } else if (quote == '"') {
      if (c == '"') {
        quote = 0;
      } else if (c == '\\' && i + 1 < text.size() &&
                 std::string_view("\"\\$`").find(text[i + 1]) != std::string_view::npos) {
        word += text[++i];
      } else {
        word += c;
      }
    } else if (std::isspace(static_cast<unsigned char>(c)) != 0) {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else {
      in_word = true;
      if (c == '\'' || c == '"') {
        quote = c;
      } else if (c == '\\' && i + 1 < text.size()) {
        word += text[++i];
      } else {
        word += c;
      }
    }
  }
  if (quote != 0) {
    return Error(Errc::invalid_argument, std::string(what) + " '" + std::string(text) +
                                             "' has an unterminated " + quote + " quote");
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

Result<sdk::Options> normalize(const sdk::Options& options) {
  auto parsed = parse(options);
  if (!parsed) return parsed.error();
  sdk::Options out;
  for (const auto& [key, value] : options) {
    if (key == "privileged" || key == "rootless") {
      out[key] = (key == "rootless" ? parsed->rootless : parsed->privileged) ? "true" : "false";
    } else if (key == "cap-add") {
      out[key] = join(parsed->cap_add);
    } else if (key == "cap-drop") {
      out[key] = join(parsed->cap_drop);
    } else if (key == "security-opt" || key == "device" || key == "mount" || key == "env") {
      auto items = split_list(key, value);
      if (!items) return items.error();
      out[key] = join(*items);
    } else {
      out[key] = trim(value);
    }
  }
  return out;
}

Result<ContainerOptions> parse(const sdk::Options& options) {
  ContainerOptions out;
  bool privileged_given = false;
  for (const auto& [key, raw] : options) {
    const std::string value = trim(raw);
    if (key == "image") {
      // The reference's characters (names, tag, digest); the Engine checks
      // the rest when it pulls. A ',' is two values: --builder-opt joins a
      // repeated key's with one.
      if (value.find(',') != std::string::npos) {
        return invalid(key, raw, "it takes one image reference (image= was given twice?)");
      }
      bool reference = !value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
               std::string_view("._-/:@").find(c) != std::string_view::npos;
      });
      if (!reference) {
        return invalid(key, raw, "expected an image reference such as moby/buildkit:v0.19.0");
      }
      out.image = value;
    } else if (key == "privileged") {
      auto b = parse_bool(key, value);
      if (!b) return b.error();
      out.privileged = *b;
      privileged_given = true;
    } else if (key == "rootless") {
      auto b = parse_bool(key, value);
      if (!b) return b.error();
      out.rootless = *b;
    } else if (key == "cap-add" || key == "cap-drop") {
      std::string_view name = key;  // a structured binding cannot be captured before C++20
      auto caps = parse_items<std::string>(
          key, value, [name](const std::string& item) { return capability(name, item); });
      if (!caps) return caps.error();
      (key == "cap-add" ? out.cap_add : out.cap_drop) = std::move(*caps);
    } else if (key == "security-opt") {
      auto items = split_list(key, value);
      if (!items) return items.error();
      out.security_opt.clear();
      for (const auto& item : *items) {
        auto opt = parse_security_opt(item);
        if (!opt) return opt.error();
        if (opt->empty()) {
          out.unconfined_system_paths = true;
        } else {
          out.security_opt.push_back(std::move(*opt));
        }
      }
    } else if (key == "device") {
      auto devices = parse_items<DeviceSpec>(key, value, parse_device);
      if (!devices) return devices.error();
      out.devices = std::move(*devices);
    } else if (key == "mount") {
      auto mounts = parse_items<MountSpec>(key, value, parse_mount);
      if (!mounts) return mounts.error();
      out.mounts = std::move(*mounts);
    } else if (key == "network") {
      if (value != "host" && value != "none" && value != "bridge" &&
          !sdk::is_docker_container_name(value)) {
        return invalid(key, raw, "expected host, none or a Docker network name");
      }
      out.network = value;
    } else if (key == "env") {
      auto env = parse_items<std::string>(key, value, parse_env);
      if (!env) return env.error();
      out.env = std::move(*env);
    } else if (key == "buildkitd-flags") {
      auto words = split_words(value, "driver option 'buildkitd-flags'");
      if (!words) return words.error();
      out.daemon_flags = std::move(*words);
    } else if (key == "gc-keep-storage") {
      auto size = parse_size(value, "driver option 'gc-keep-storage'");
      if (!size) return size.error();
      out.gc_keep_storage = *size;
    } else if (key == "config") {
      if (value.empty()) return invalid(key, raw, "expected the path of a buildkitd.toml");
      out.config_file = value;
    } else {
      std::string message = "unknown driver option '" + key;
      message += "' (allowed: ";
      for (size_t i = 0; i < option_keys().size(); ++i) {
        if (i > 0) message += ", ";
        message += option_keys()[i];
      }
      return Error(Errc::invalid_argument, message + ")");
    }
  }
  if (out.gc_keep_storage && !out.config_file.empty()) {
    return Error(Errc::invalid_argument,
                 "driver options 'gc-keep-storage' and 'config' cannot be combined: set "
                 "worker.oci.gckeepstorage in your config");
  }
  if (out.rootless) {
    if (privileged_given && out.privileged) {
      return Error(Errc::invalid_argument,
                   "driver options 'rootless=true' and 'privileged=true' cannot be combined: a "
                   "rootless buildkitd runs unprivileged");
    }
    out.privileged = false;
  }
  return out;
}

}  // namespace envd::plugins::docker_container
