#include "context/store.hpp"

#include <sys/stat.h>

#include <string>
#include <system_error>
#include <utility>

#include "context/record.hpp"
#include "context/store_parse.hpp"
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
// A store of 1,000 contexts is about 100 KB. Anything past this limit is not
// one envd wrote, and parsing it would take seconds and gigabytes (a sparse
// file of 4 GiB took 18 s and 4 GB of memory to be called invalid JSON).
constexpr size_t kMaxStoreBytes = size_t{64} << 20;

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

fs::path ContextStore::driver_data_dir(const Context& context) const {
  auto made = ensure_data_dir(context);
  return made ? *made : data_dir(context);
}

Result<std::optional<ContextList>> ContextStore::read() const {
  auto text = util::read_file(file(), kMaxStoreBytes);
  if (!text) {
    if (text.error().code() == Errc::not_found) return std::optional<ContextList>();
    if (text.error().code() == Errc::unsupported) {
      return Error(Errc::invalid_argument,
                   "the context store is unusable: " + text.error().message());
    }
    if (text.error().code() == Errc::invalid_argument) {
      return corrupt_store(file(), "it is larger than " + std::to_string(kMaxStoreBytes >> 20) +
                                       " MiB, which no store envd writes is");
    }
    return Error(text.error().code(), "the context store is unreadable: " + text.error().message() +
                                          "; check the owner and permissions of the file and of " +
                                          quoted(dir_));
  }
  auto list = parse_store(*text, file());
  if (!list) return list.error();
  return std::optional<ContextList>(std::move(*list));
}

Status ContextStore::write(const ContextList& list) const {
  // Write through a symlinked store (dotfile managers) instead of replacing
  // the link, also when the link's target does not exist yet: followed link
  // by link, since canonical() fails on a dangling one. The path is left for
  // the kernel to resolve, not normalised: '..' after a symlinked directory
  // leads out of the link's target, as it does when the store is read.
  fs::path target = file();
  std::error_code ec;
  for (int links = 0; fs::is_symlink(target, ec); ++links) {
    if (links == 40) {
      return Error(Errc::invalid_argument, "cannot write the context store " + quoted(file()) +
                                               ": too many levels of symbolic links");
    }
    fs::path next = fs::read_symlink(target, ec);
    if (ec) {
      return Error(Errc::internal, "cannot write the context store " + quoted(file()) +
                                       ": cannot read the link " + quoted(target) + ": " +
                                       ec.message());
    }
    target = next.is_absolute() ? next : target.parent_path() / next;
  }
  // A store envd could not read back would lose every context: refused
  // before it is written (a driver's 65 MiB address did that once).
  std::string text = serialize(list);
  if (text.size() > kMaxStoreBytes) {
    return Error(Errc::invalid_argument, "cannot write the context store " + quoted(file()) +
                                             ": it would be larger than the " +
                                             std::to_string(kMaxStoreBytes >> 20) +
                                             " MiB envd reads; nothing changed");
  }
  // Under the store's lock: no other writer's temporary is in use.
  util::remove_stale_temporaries(target);
  return util::write_file_atomically(target, text, kFileMode);
}

Result<util::FileLock> ContextStore::lock() const {
  if (auto st = util::create_directories(dir_, kDirMode); !st) return st.error();
  return util::FileLock::exclusive(lock_file(), lock_wait_);
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

Status ContextStore::update(const std::function<Status(ContextList&)>& change,
                            const std::function<Status()>& after_write) const {
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
  if (auto st = write(list); !st) return st;
  return after_write ? after_write() : Status{};
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
