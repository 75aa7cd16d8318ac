#include "plugin/registry.hpp"

#include <map>
#include <optional>
#include <set>
#include <system_error>
#include <utility>

#include "plugin/descriptor.hpp"
#include "plugin/manifest_cache.hpp"
#include "plugin/module_files.hpp"
#include "plugin/module_loader.hpp"
#include "plugin/scanner.hpp"
#include "util/text.hpp"

namespace envd::plugin {
namespace {

namespace fs = std::filesystem;

constexpr const char* kBuiltinPath = "<built-in>";

std::string quoted(const fs::path& path) { return "'" + path.string() + "'"; }

std::string join(const std::vector<std::string>& items, const char* separator) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

// The type a module file claims by its name (envd-<kind>-<type>.so), or "".
std::string type_from_file_name(const fs::path& path, Kind kind) {
  const std::string name = path.filename().string();
  const std::string prefix = std::string("envd-") + to_string(kind) + "-";
  if (!name.starts_with(prefix) || !name.ends_with(".so")) return {};
  return name.substr(prefix.size(), name.size() - prefix.size() - 3);
}

Error refused(Kind kind, std::string_view type, const fs::path& path, const std::string& reason) {
  return Error(Errc::unavailable, std::string(to_string(kind)) + " '" + std::string(type) +
                                      "' is not available: plugin " + quoted(path) +
                                      " was refused: " + reason);
}

}  // namespace

struct Registry::State {
  // Runtime state of one entry of `modules`, kept beside it.
  struct Slot {
    const envd_plugin_descriptor* builtin = nullptr;
    const envd_plugin_descriptor* loaded = nullptr;
    std::optional<Error> load_error;
  };

  std::vector<fs::path> search_path;
  std::vector<ModuleInfo> modules;
  std::vector<Slot> slots;  // parallel to modules
  const envd_host_api* host = nullptr;

  // Refuses every usable module after the first of the same kind and type.
  void refuse_duplicates() {
    std::map<std::pair<Kind, std::string>, const ModuleInfo*> providers;
    for (ModuleInfo& info : modules) {
      if (!info.ok) continue;
      auto [it, inserted] = providers.emplace(std::pair(info.kind, info.type), &info);
      if (inserted) continue;
      info.ok = false;
      info.reason = std::string(to_string(info.kind)) + " type '" + info.type +
                    "' already provided by " + quoted(it->second->path);
    }
  }

  std::vector<std::string> types(Kind kind) const {
    std::set<std::string> found;
    for (const ModuleInfo& info : modules) {
      if (info.ok && info.kind == kind) found.insert(info.type);
    }
    return {found.begin(), found.end()};
  }

  // Whether refused module `info` was meant to provide `kind` `type`.
  static bool claims(const ModuleInfo& info, Kind kind, std::string_view type) {
    if (!info.type.empty()) return info.kind == kind && info.type == type;
    return type_from_file_name(info.path, kind) == type;
  }

  Error unknown(Kind kind, std::string_view type) const {
    const char* name = to_string(kind);
    const Kind other = kind == Kind::builder ? Kind::runner : Kind::builder;
    std::vector<std::string> available = types(kind);
    std::string list = available.empty()
                           ? std::string("no ") + name + " drivers are installed"
                           : "available " + std::string(name) + "s: " + join(available, ", ");
    for (const ModuleInfo& info : modules) {
      if (info.ok && info.kind == other && info.type == type) {
        return Error(Errc::invalid_argument, "'" + std::string(type) + "' is a " +
                                                 to_string(other) + ", not a " + name + "; " +
                                                 list);
      }
    }
    std::string message =
        "unknown " + std::string(name) + " type '" + util::printable(type, 80) + "'; ";
    if (!available.empty()) {
      message += "available: " + join(available, ", ");
    } else {
      std::vector<std::string> dirs;
      for (const auto& dir : search_path) dirs.push_back(dir.string());
      message += list + (dirs.empty() ? " (the plugin search path is empty)"
                                      : " (searched " + join(dirs, ", ") + ")");
    }
    return Error(Errc::not_found, message);
  }

  Result<const envd_plugin_descriptor*> load(size_t index) {
    const ModuleInfo& info = modules[index];
    Slot& slot = slots[index];
    if (slot.builtin != nullptr) return slot.builtin;
    if (slot.loaded != nullptr) return slot.loaded;
    if (slot.load_error) return *slot.load_error;

    // Reported like a scan refusal: to the user it is the same failure.
    auto fail = [&](const std::string& reason) {
      slot.load_error = refused(info.kind, info.type, info.path, reason);
      return *slot.load_error;
    };
    std::error_code ec;
    fs::path canonical = fs::canonical(info.path, ec);
    if (ec) return fail(ec.message());
    auto descriptor = load_module(canonical);
    if (!descriptor) return fail(descriptor.error().message());
    ModuleInfo now = describe_descriptor(*descriptor);
    if (!now.ok) return fail(now.reason);
    if (now.kind != info.kind || now.type != info.type) {
      return fail("it changed since it was scanned and now provides " +
                  std::string(to_string(now.kind)) + " '" + now.type + "'");
    }
    slot.loaded = *descriptor;
    bind_host(slot.loaded, host);
    return slot.loaded;
  }

  Result<const envd_plugin_descriptor*> driver(Kind kind, std::string_view type) {
    for (size_t i = 0; i < modules.size(); ++i) {
      if (modules[i].ok && modules[i].kind == kind && modules[i].type == type) return load(i);
    }
    for (const ModuleInfo& info : modules) {
      if (!info.ok && claims(info, kind, type)) {
        return refused(kind, type, info.path, info.reason);
      }
    }
    return unknown(kind, type);
  }
};

Registry::Registry() : state_(std::make_unique<State>()) {}
Registry::~Registry() = default;
Registry::Registry(Registry&&) noexcept = default;
Registry& Registry::operator=(Registry&&) noexcept = default;

Registry Registry::discover(const std::vector<fs::path>& search_path, const fs::path& cache_file) {
  return discover(search_path, cache_file, DiscoverOptions{});
}

Registry Registry::discover(const std::vector<fs::path>& search_path, const fs::path& cache_file,
                            const DiscoverOptions& options) {
  Registry registry;
  State& state = *registry.state_;
  state.search_path = search_path;
  state.host = options.host;
  ManifestCache cache = ManifestCache::load(cache_file, scanner_identity());
  std::set<std::string> seen;  // canonical paths: a file reached twice is one module

  for (const fs::path& dir : search_path) {
    for (ModuleFile& file : list_module_files(dir)) {
      if (!seen.insert(file.canonical.native()).second) continue;
      ModuleInfo info;
      if (!file.refusal.empty()) {
        info.reason = std::move(file.refusal);
      } else {
        // Stamp before scanning: a file replaced during the scan is rescanned next time.
        auto stamp = stamp_of(file.canonical);
        if (!stamp) continue;  // vanished meanwhile
        if (auto cached = cache.find(*stamp)) {
          info = std::move(*cached);
        } else {
          info = scan_module(file.canonical, options.scan_timeout);
          if (info.cacheable) cache.store(*stamp, info);
        }
      }
      info.path = std::move(file.path);
      state.modules.push_back(std::move(info));
      state.slots.emplace_back();
    }
  }
  state.refuse_duplicates();
  // Derived data: failing to write it only costs a rescan next time.
  (void)cache.save(cache_file);
  return registry;
}

Status Registry::add_builtin(const envd_plugin_descriptor* descriptor) {
  State& state = *state_;
  ModuleInfo info = describe_descriptor(descriptor);
  info.path = kBuiltinPath;
  size_t position = 0;
  while (position < state.slots.size() && state.modules[position].path == kBuiltinPath) {
    ++position;
  }
  if (info.ok) {
    for (size_t i = 0; i < position; ++i) {
      const ModuleInfo& other = state.modules[i];
      if (other.ok && other.kind == info.kind && other.type == info.type) {
        return Error(Errc::already_exists, std::string("built-in ") + to_string(info.kind) + " '" +
                                               info.type + "' is already registered");
      }
    }
  }
  const std::string reason = info.reason;
  State::Slot slot;
  if (info.ok) {
    slot.builtin = descriptor;
    bind_host(descriptor, state.host);
  }
  state.modules.insert(state.modules.begin() + static_cast<std::ptrdiff_t>(position),
                       std::move(info));
  state.slots.insert(state.slots.begin() + static_cast<std::ptrdiff_t>(position), slot);
  if (!reason.empty()) return Error(Errc::invalid_argument, "built-in driver refused: " + reason);
  state.refuse_duplicates();
  return {};
}

const std::vector<ModuleInfo>& Registry::modules() const { return state_->modules; }

std::vector<std::string> Registry::warnings() const {
  std::vector<std::string> lines;
  for (const ModuleInfo& info : state_->modules) {
    if (!info.ok) lines.push_back("skipping plugin " + quoted(info.path) + ": " + info.reason);
  }
  return lines;
}

const std::vector<fs::path>& Registry::search_path() const { return state_->search_path; }

std::vector<std::string> Registry::types(Kind kind) const { return state_->types(kind); }

void Registry::set_host(const envd_host_api* host) {
  state_->host = host;
  for (const auto& slot : state_->slots) {
    bind_host(slot.builtin != nullptr ? slot.builtin : slot.loaded, host);
  }
}

Result<BuilderModule> Registry::builder(std::string_view type) {
  auto descriptor = state_->driver(Kind::builder, type);
  if (!descriptor) return descriptor.error();
  return BuilderModule(*descriptor);
}

Result<RunnerModule> Registry::runner(std::string_view type) {
  auto descriptor = state_->driver(Kind::runner, type);
  if (!descriptor) return descriptor.error();
  return RunnerModule(*descriptor);
}

}  // namespace envd::plugin
