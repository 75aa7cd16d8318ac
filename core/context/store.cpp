#include "context/store.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "context/record.hpp"
#include "util/atomic_file.hpp"
#include "util/json.hpp"
#include "util/paths.hpp"
#include "util/text.hpp"

namespace envd::context {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr mode_t kDirMode = 0700;
constexpr mode_t kFileMode = 0600;
constexpr std::string_view kRecovery =
    "; fix it or move it aside to start over with the default context";

std::string quoted(const fs::path& path) { return "'" + util::printable(path.string()) + "'"; }

Error corrupt(const fs::path& file, const std::string& reason) {
  return Error(Errc::invalid_argument,
               "context store " + quoted(file) + " is corrupt: " + reason + std::string(kRecovery));
}

// The rules that span contexts: unique names, unique ids. The message is the
// bare reason.
Status check_list(const ContextList& list) {
  std::unordered_set<std::string_view> names;
  std::unordered_map<std::string_view, std::string_view> ids;  // id -> name, for the message
  names.reserve(list.contexts.size());
  ids.reserve(list.contexts.size());
  for (const Context& ctx : list.contexts) {
    if (!names.insert(ctx.name).second) {
      return Error(Errc::invalid_argument, "two contexts are named '" + ctx.name + "'");
    }
    if (ctx.id.empty()) continue;
    auto [it, inserted] = ids.emplace(ctx.id, ctx.name);
    if (!inserted) {
      return Error(Errc::invalid_argument, "contexts '" + std::string(it->second) + "' and '" +
                                               ctx.name + "' share the id '" + ctx.id + "'");
    }
  }
  return {};
}

// Gives every context without an id the derived one (see derived_context_id).
void derive_missing_ids(ContextList& list) {
  if (std::all_of(list.contexts.begin(), list.contexts.end(),
                  [](const Context& ctx) { return !ctx.id.empty(); })) {
    return;  // the usual store: every context was written with its id
  }
  std::set<std::string> taken;
  for (const Context& ctx : list.contexts) {
    if (!ctx.id.empty()) taken.insert(ctx.id);
  }
  for (Context& ctx : list.contexts) {
    if (!ctx.id.empty()) continue;
    for (unsigned attempt = 0;; ++attempt) {
      std::string id = derived_context_id(ctx.name, attempt);
      if (taken.insert(id).second) {
        ctx.id = std::move(id);
        break;
      }
    }
  }
}

Result<ContextList> parse_store(std::string_view text, const fs::path& file) {
  auto parsed = util::parse_json(text, "context store " + quoted(file) + " is corrupt");
  if (!parsed) {
    return Error(parsed.error().code(), parsed.error().message() + std::string(kRecovery));
  }
  if (!parsed->is_object()) return corrupt(file, "the top level must be a JSON object");
  const json::object& top = parsed->get_object();

  ContextList list;
  list.file = file;
  if (const json::value* current = top.if_contains("current")) {
    if (!current->is_string()) return corrupt(file, "field 'current' must be a string");
    list.current = std::string(current->get_string());
  }
  const json::value* contexts = top.if_contains("contexts");
  if (contexts == nullptr) return corrupt(file, "field 'contexts' is missing");
  if (!contexts->is_array()) return corrupt(file, "field 'contexts' must be an array");
  const json::array& records = contexts->get_array();
  list.contexts.reserve(records.size());
  for (std::size_t index = 0; index < records.size(); ++index) {
    const json::value& record = records[index];
    auto ctx = context_from_json(record, "", RecordKind::store);
    if (!ctx) {
      // Only a failing record pays for its label: read again with it.
      std::string what = "contexts[" + std::to_string(index) + "]";
      if (record.is_object()) {
        if (const json::value* name = record.get_object().if_contains("name");
            name != nullptr && name->is_string()) {
          what += " ('" + util::printable(name->get_string(), 64) + "')";
        }
      }
      return corrupt(file, context_from_json(record, what, RecordKind::store).error().message());
    }
    list.contexts.push_back(std::move(*ctx));
  }
  if (auto st = check_list(list); !st) return corrupt(file, st.error().message());
  for (const auto& member : top) {
    if (member.key() != "current" && member.key() != "contexts") {
      list.unknown_fields.emplace(member.key(), member.value());
    }
  }
  derive_missing_ids(list);
  return list;
}

std::string serialize(const ContextList& list) {
  json::object top;
  if (!list.current.empty()) top["current"] = list.current;
  json::array contexts;
  for (const Context& ctx : list.contexts)
    contexts.push_back(context_to_json(ctx, RecordKind::store));
  top["contexts"] = std::move(contexts);
  for (const auto& member : list.unknown_fields) {
    if (member.key() != "current" && member.key() != "contexts") {
      top.emplace(member.key(), member.value());
    }
  }
  return util::to_pretty_json(top);
}

ContextList initial_list(const fs::path& file) {
  ContextList list;
  list.file = file;
  Context ctx = default_context();
  ctx.id = new_context_id();
  list.current = ctx.name;
  list.contexts.push_back(std::move(ctx));
  return list;
}

}  // namespace

ContextStore::ContextStore(fs::path config_dir) : dir_(std::move(config_dir)) {}

Result<ContextStore> ContextStore::open_default() {
  auto dir = util::config_dir();
  if (!dir) return dir.error();
  return ContextStore(std::move(*dir));
}

fs::path ContextStore::file() const { return dir_ / "contexts.json"; }

fs::path ContextStore::lock_file() const { return dir_ / "contexts.json.lock"; }

fs::path ContextStore::data_root() const { return dir_ / "contexts.d"; }

fs::path ContextStore::data_dir(const Context& context) const {
  if (!is_valid_id(context.id)) return {};
  return data_root() / context.id;
}

Result<std::optional<ContextList>> ContextStore::read() const {
  auto text = util::read_file(file());
  if (!text) {
    if (text.error().code() == Errc::not_found) return std::optional<ContextList>();
    return Error(text.error().code(), "the context store is unreadable: " + text.error().message() +
                                          "; check the owner and permissions of the file and of " +
                                          quoted(dir_));
  }
  auto list = parse_store(*text, file());
  if (!list) return list.error();
  return std::optional<ContextList>(std::move(*list));
}

Status ContextStore::write(const ContextList& list) const {
  // Write through a symlinked store (dotfile managers) instead of replacing the link.
  fs::path target = file();
  std::error_code ec;
  if (fs::is_symlink(target, ec)) {
    fs::path resolved = fs::canonical(target, ec);
    if (!ec) target = std::move(resolved);
  }
  return util::write_file_atomically(target, serialize(list), kFileMode);
}

Result<util::FileLock> ContextStore::lock() const {
  if (auto st = util::create_directories(dir_, kDirMode); !st) return st.error();
  return util::FileLock::exclusive(lock_file());
}

Result<ContextList> ContextStore::load() const {
  auto existing = read();
  if (!existing) return existing.error();
  if (*existing) return std::move(**existing);

  // First use. Another process may be creating the store too: decide under the lock.
  auto lock_held = lock();
  if (!lock_held) return lock_held.error();
  existing = read();
  if (!existing) return existing.error();
  if (*existing) return std::move(**existing);
  ContextList list = initial_list(file());
  if (auto st = write(list); !st) return st.error();
  return list;
}

Status ContextStore::update(const std::function<Status(ContextList&)>& change) const {
  auto lock_held = lock();
  if (!lock_held) return lock_held.error();
  auto existing = read();
  if (!existing) return existing.error();
  // On first use the default list is written only together with the change.
  ContextList list = *existing ? std::move(**existing) : initial_list(file());
  const std::string old_current = list.current;
  const bool old_current_dangling = !old_current.empty() && list.find(old_current) == nullptr;

  if (auto st = change(list); !st) return st;

  auto refuse = [&](const std::string& reason) {
    return Error(Errc::invalid_argument, "cannot update the context store " + quoted(file()) +
                                             ": " + reason + "; nothing was written");
  };
  for (Context& ctx : list.contexts) {
    if (ctx.id.empty()) ctx.id = new_context_id();
    if (auto st = check_context(ctx, RecordKind::store); !st) {
      return refuse("context '" + util::printable(ctx.name) + "': " + st.error().message());
    }
  }
  if (auto st = check_list(list); !st) return refuse(st.error().message());
  // A dangling current found in the file is tolerated (and left alone); a change
  // never creates one.
  if (!list.current.empty() && list.find(list.current) == nullptr &&
      !(old_current_dangling && list.current == old_current)) {
    return refuse("the current context '" + util::printable(list.current) + "' does not exist");
  }
  return write(list);
}

Result<fs::path> ContextStore::ensure_data_dir(const Context& context) const {
  if (!is_valid_id(context.id)) {
    return Error(Errc::invalid_argument, "context '" + util::printable(context.name) +
                                             "' has no valid id, so it has no private directory; "
                                             "add it to the store first");
  }
  // One level at a time: create_directories gives missing parents 0755.
  for (const fs::path& dir : {dir_, data_root(), data_root() / context.id}) {
    if (auto st = util::create_directories(dir, kDirMode); !st) return st.error();
  }
  return data_root() / context.id;
}

}  // namespace envd::context
