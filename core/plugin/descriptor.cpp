#include "plugin/descriptor.hpp"

#include <boost/json.hpp>
#include <string>

#include "util/text.hpp"

namespace envd::plugin {
namespace {

namespace json = boost::json;

// Module-provided text shown in messages: escaped and cut (util::printable).
std::string shown(std::string_view text) { return util::printable(text, 64); }

// How much of a module's version and description envd keeps and shows
// (plugin_abi.h): a longer one is cut, with "..." after it, so that `envd
// plugin ls` stays a table. Cut, not refused: ABI 1.x took any length.
constexpr std::size_t kMaxVersionBytes = 64;
constexpr std::size_t kMaxDescriptionBytes = 256;

// `text` (clean UTF-8: is_clean_text) cut at the last character's start
// within `limit` bytes, with "...": at most `limit` + 3 bytes, what a cached
// record may hold (facts_from_json).
std::string bounded(std::string_view text, std::size_t limit) {
  if (text.size() <= limit) return std::string(text);
  std::size_t cut = limit;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80) --cut;
  return std::string(text.substr(0, cut)) + "...";
}

// One line of well-formed UTF-8 without control characters.
bool is_clean_text(std::string_view text) { return util::printable(text) == text; }

std::string abi_string(unsigned major, unsigned minor) {
  return std::to_string(major) + "." + std::to_string(minor);
}

std::string too_small(const char* what, uint32_t size, size_t needed) {
  // Every minimum is the ABI 1.0 layout: later fields are optional.
  return std::string(what) + " is too small: struct_size is " + std::to_string(size) +
         " bytes, ABI 1.0 needs at least " + std::to_string(needed);
}

// The first required function of a builder table that is missing, or nullptr.
const char* missing_function(const envd_builder_vtable& t) {
  if (t.normalize_address == nullptr) return "normalize_address";
  if (t.normalize_options == nullptr) return "normalize_options";
  if (t.dial == nullptr) return "dial";
  if (t.status == nullptr) return "status";
  if (t.bootstrap == nullptr) return "bootstrap";
  if (t.stop == nullptr) return "stop";
  if (t.remove == nullptr) return "remove";
  return nullptr;
}

const char* missing_function(const envd_runner_vtable& t) {
  if (t.normalize_address == nullptr) return "normalize_address";
  if (t.normalize_options == nullptr) return "normalize_options";
  if (t.create == nullptr) return "create";
  if (t.list == nullptr) return "list";
  if (t.inspect == nullptr) return "inspect";
  if (t.remove == nullptr) return "remove";
  return nullptr;
}

// Checks the table of the descriptor's kind; returns the reason or "".
template <typename Table>
std::string check_table(const char* kind, const Table* table, size_t needed) {
  const std::string name = std::string(kind) + " table";
  if (table == nullptr) {
    return std::string("kind is ") + kind + " but the " + name + " is missing";
  }
  if (table->struct_size < needed) return too_small(name.c_str(), table->struct_size, needed);
  if (const char* fn = missing_function(*table)) {
    return name + " lacks the required function '" + fn + "'";
  }
  return {};
}

// Option keys: ^[a-z0-9][a-z0-9.-]{0,63}$.
bool is_valid_option_key(std::string_view key) {
  if (key.empty() || key.size() > 64 || key.front() == '-' || key.front() == '.') return false;
  for (char c : key) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  }
  return true;
}

// Checks the ABI 1.1 file_options array; returns the reason or "".
std::string check_file_options(const envd_plugin_descriptor* d) {
  if (d->struct_size < kDescriptorSizeV1_1 || d->file_options == nullptr) return {};
  for (size_t i = 0;; ++i) {
    const char* key = d->file_options[i];
    if (key == nullptr) return {};
    if (i == kMaxFileOptions) {
      return "file option list has more than " + std::to_string(kMaxFileOptions) +
             " keys (or lacks its NULL terminator)";
    }
    if (!is_valid_option_key(key)) {
      return "file option '" + shown(key) +
             "' is invalid: it must match ^[a-z0-9][a-z0-9.-]{0,63}$";
    }
  }
}

ModuleInfo refuse(ModuleInfo info, std::string reason) {
  info.ok = false;
  info.reason = std::move(reason);
  return info;
}

}  // namespace

const char* to_string(Kind kind) { return kind == Kind::builder ? "builder" : "runner"; }

const char* maturity_name(int32_t maturity) {
  switch (maturity) {
    case ENVD_MATURITY_STABLE:
      return "stable";
    case ENVD_MATURITY_EXPERIMENTAL:
      return "experimental";
    default:
      return "unknown";
  }
}

bool is_valid_type_name(std::string_view name) {
  if (name.empty() || name.size() > 32 || name.front() == '-') return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

ModuleInfo describe_descriptor(const envd_plugin_descriptor* d) {
  ModuleInfo info;
  if (d == nullptr) return refuse(std::move(info), "entry returned no descriptor");

  // The three header fields are the only ones every ABI version shares.
  info.abi_major = d->abi_major;
  info.abi_minor = d->abi_minor;
  if (d->abi_major != ENVD_ABI_MAJOR || d->abi_minor > ENVD_ABI_MINOR) {
    return refuse(std::move(info), "needs ABI " + abi_string(d->abi_major, d->abi_minor) +
                                       ", this envd has " +
                                       abi_string(ENVD_ABI_MAJOR, ENVD_ABI_MINOR));
  }
  if (d->struct_size < kDescriptorSizeV1_0) {
    return refuse(std::move(info), too_small("descriptor", d->struct_size, kDescriptorSizeV1_0));
  }

  if (d->kind != ENVD_KIND_BUILDER && d->kind != ENVD_KIND_RUNNER) {
    return refuse(std::move(info), "descriptor has unknown kind " + std::to_string(d->kind) +
                                       " (1 is a builder, 2 a runner)");
  }
  info.kind = d->kind == ENVD_KIND_BUILDER ? Kind::builder : Kind::runner;

  if (d->type_name == nullptr) return refuse(std::move(info), "descriptor has no type name");
  if (!is_valid_type_name(d->type_name)) {
    return refuse(std::move(info), "type name '" + shown(d->type_name) +
                                       "' is invalid: it must match ^[a-z0-9][a-z0-9-]{0,31}$");
  }
  info.type = d->type_name;

  if (d->version == nullptr) return refuse(std::move(info), "descriptor has no version");
  if (!is_clean_text(d->version)) {
    return refuse(std::move(info),
                  "version '" + shown(d->version) + "' is not one line of UTF-8 text");
  }
  info.version = bounded(d->version, kMaxVersionBytes);
  if (d->description == nullptr) return refuse(std::move(info), "descriptor has no description");
  if (!is_clean_text(d->description)) {
    return refuse(std::move(info),
                  "description '" + shown(d->description) + "' is not one line of UTF-8 text");
  }
  info.description = bounded(d->description, kMaxDescriptionBytes);
  info.maturity = d->maturity;

  if (d->free_string == nullptr) {
    return refuse(std::move(info), "descriptor has no free_string function");
  }

  std::string problem;
  if (info.kind == Kind::builder) {
    problem = check_table("builder", d->builder, kBuilderTableSizeV1_0);
    if (problem.empty() && d->runner != nullptr) {
      problem = "kind is builder but a runner table is set too";
    }
  } else {
    problem = check_table("runner", d->runner, kRunnerTableSizeV1_0);
    if (problem.empty() && d->builder != nullptr) {
      problem = "kind is runner but a builder table is set too";
    }
  }
  if (problem.empty()) problem = check_file_options(d);
  if (!problem.empty()) return refuse(std::move(info), std::move(problem));

  info.ok = true;
  return info;
}

void bind_host(const envd_plugin_descriptor* d, const envd_host_api* host) {
  if (d == nullptr || host == nullptr || d->struct_size < kDescriptorSizeV1_2 ||
      d->set_host == nullptr) {
    return;
  }
  d->set_host(host);
}

std::vector<std::string> file_options(const envd_plugin_descriptor* d) {
  std::vector<std::string> keys;
  if (d->struct_size < kDescriptorSizeV1_1 || d->file_options == nullptr) return keys;
  for (size_t i = 0; i < kMaxFileOptions && d->file_options[i] != nullptr; ++i) {
    keys.emplace_back(d->file_options[i]);
  }
  return keys;
}

json::object facts_to_json(const ModuleInfo& info) {
  json::object object;
  object["ok"] = info.ok;
  object["reason"] = info.reason;
  object["type"] = info.type;
  object["kind"] = to_string(info.kind);
  object["version"] = info.version;
  object["description"] = info.description;
  object["maturity"] = static_cast<int64_t>(info.maturity);
  object["abi_major"] = static_cast<int64_t>(info.abi_major);
  object["abi_minor"] = static_cast<int64_t>(info.abi_minor);
  return object;
}

std::optional<ModuleInfo> facts_from_json(const json::object& object) {
  ModuleInfo info;
  auto string_at = [&](const char* key, std::string& out) {
    const json::value* v = object.if_contains(key);
    if (v == nullptr || !v->is_string()) return false;
    out = std::string(v->get_string());
    return true;
  };
  auto int_at = [&](const char* key, int64_t min, int64_t max, int64_t& out) {
    const json::value* v = object.if_contains(key);
    if (v == nullptr || !v->is_int64()) return false;
    out = v->get_int64();
    return out >= min && out <= max;
  };
  const json::value* ok = object.if_contains("ok");
  if (ok == nullptr || !ok->is_bool()) return std::nullopt;
  info.ok = ok->get_bool();
  std::string kind;
  int64_t maturity = 0;
  int64_t major = 0;
  int64_t minor = 0;
  if (!string_at("reason", info.reason) || !string_at("type", info.type) ||
      !string_at("kind", kind) || !string_at("version", info.version) ||
      !string_at("description", info.description) ||
      !int_at("maturity", INT32_MIN, INT32_MAX, maturity) ||
      !int_at("abi_major", 0, UINT16_MAX, major) || !int_at("abi_minor", 0, UINT16_MAX, minor)) {
    return std::nullopt;
  }
  if (kind != "builder" && kind != "runner") return std::nullopt;
  info.kind = kind == "builder" ? Kind::builder : Kind::runner;
  info.maturity = static_cast<int32_t>(maturity);
  info.abi_major = static_cast<uint16_t>(major);
  info.abi_minor = static_cast<uint16_t>(minor);
  // A usable module always has a valid type; anything else is not our writing.
  if (info.ok && (!is_valid_type_name(info.type) || !info.reason.empty())) return std::nullopt;
  // Nor is text the descriptor checks would have refused (a hand edit could
  // otherwise put terminal escapes into `envd plugin ls`): the module is then
  // scanned again.
  for (const std::string* text : {&info.type, &info.version, &info.description, &info.reason}) {
    if (!is_clean_text(*text)) return std::nullopt;
  }
  if (info.version.size() > kMaxVersionBytes + 3 ||
      info.description.size() > kMaxDescriptionBytes + 3) {
    return std::nullopt;  // longer than bounded() makes it
  }
  if (!info.ok && info.reason.empty()) return std::nullopt;
  return info;
}

}  // namespace envd::plugin
