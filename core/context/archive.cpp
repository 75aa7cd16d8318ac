#include "context/archive.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <system_error>
#include <vector>

#include "context/libarchive_loader.hpp"
#include "context/record.hpp"
#include "context/stored_files.hpp"
#include "util/atomic_file.hpp"
#include "util/json.hpp"
#include "util/text.hpp"

namespace envd::context {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kMeta = "meta.json";
constexpr std::string_view kMaterial = "material";
constexpr std::size_t kMaxPathLength = 1024;
constexpr mode_t kFileMode = 0600;
constexpr mode_t kDirMode = 0700;

// Each holds libarchive's free function (libarchive_loader.hpp).
struct ReadDeleter {
  decltype(LibArchive::archive_read_free) free;
  void operator()(archive* a) const { free(a); }
};
struct WriteDeleter {
  decltype(LibArchive::archive_write_free) free;
  void operator()(archive* a) const { free(a); }
};
struct EntryDeleter {
  decltype(LibArchive::archive_entry_free) free;
  void operator()(archive_entry* e) const { free(e); }
};
using ReadArchive = std::unique_ptr<archive, ReadDeleter>;
using WriteArchive = std::unique_ptr<archive, WriteDeleter>;
using Entry = std::unique_ptr<archive_entry, EntryDeleter>;

std::string libarchive_error(const LibArchive& la, archive* a) {
  const char* message = la.archive_error_string(a);
  return message != nullptr ? util::printable(message, 200) : "unknown libarchive error";
}

std::string shown(std::string_view path) { return "'" + util::printable(path, 200) + "'"; }

// Why `path` (relative, '/'-separated) may not appear in an archive, or nullopt.
// Export, import and install share this rule, so an export always imports.
std::optional<std::string> path_problem(std::string_view path) {
  if (path.empty()) return "has an empty name";
  if (path.front() == '/') return "is an absolute path";
  if (path.find('\\') != std::string_view::npos) return "contains a backslash";
  for (char c : path) {
    if (c < 0x20 || c > 0x7e) return "has a name that is not printable ASCII";
  }
  if (path.size() > kMaxPathLength) return "has a name longer than 1024 characters";
  std::size_t start = 0;
  for (;;) {
    std::size_t end = path.find('/', start);
    std::string_view part = path.substr(start, end == std::string_view::npos ? end : end - start);
    if (part.empty()) return "is not in clean form (empty path component)";
    if (part == ".") return "is not in clean form ('.' path component)";
    if (part == "..") return "has a '..' path component";
    if (end == std::string_view::npos) return std::nullopt;
    start = end + 1;
  }
}

// ---- writing -------------------------------------------------------------------

la_ssize_t append_to_string(archive* /*a*/, void* out, const void* buffer, size_t length) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(buffer), length);
  return static_cast<la_ssize_t>(length);
}

// Path -> content; nullopt marks a directory. std::map keeps entries sorted.
using Entries = std::map<std::string, std::optional<std::string>>;

Result<std::string> write_tar(const LibArchive& la, const Entries& entries,
                              const std::string& what) {
  std::string out;
  WriteArchive a(la.archive_write_new(), WriteDeleter{la.archive_write_free});
  if (!a) return Error(Errc::internal, what + ": out of memory");
  auto fail = [&](const std::string& step) {
    return Error(Errc::internal, what + ": " + step + ": " + libarchive_error(la, a.get()));
  };
  if (la.archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK ||
      la.archive_write_set_bytes_in_last_block(a.get(), 1) != ARCHIVE_OK) {
    return fail("cannot set up the tar writer");
  }
  if (la.archive_write_open(a.get(), &out, nullptr, append_to_string, nullptr) != ARCHIVE_OK) {
    return fail("cannot start the archive");
  }
  Entry entry(la.archive_entry_new(), EntryDeleter{la.archive_entry_free});
  if (!entry) return Error(Errc::internal, what + ": out of memory");
  for (const auto& [path, content] : entries) {
    la.archive_entry_clear(entry.get());
    // Fixed metadata: the same context always gives the same bytes.
    la.archive_entry_set_pathname(entry.get(), path.c_str());
    la.archive_entry_set_filetype(entry.get(), content ? AE_IFREG : AE_IFDIR);
    la.archive_entry_set_perm(entry.get(), content ? kFileMode : kDirMode);
    la.archive_entry_set_size(entry.get(), content ? static_cast<la_int64_t>(content->size()) : 0);
    la.archive_entry_set_mtime(entry.get(), 0, 0);
    la.archive_entry_set_uid(entry.get(), 0);
    la.archive_entry_set_gid(entry.get(), 0);
    if (la.archive_write_header(a.get(), entry.get()) != ARCHIVE_OK) {
      return fail("cannot add " + shown(path));
    }
    if (content && !content->empty()) {
      la_ssize_t written = la.archive_write_data(a.get(), content->data(), content->size());
      if (written < 0 || static_cast<std::size_t>(written) != content->size()) {
        return fail("cannot add " + shown(path));
      }
    }
  }
  if (la.archive_write_close(a.get()) != ARCHIVE_OK) return fail("cannot finish the archive");
  return out;
}

// Reads the regular files under `dir` (relative path -> content). A missing
// directory has no material; links and special files are refused.
Result<std::map<std::string, std::string>> read_material(const fs::path& dir,
                                                         const std::string& what) {
  std::map<std::string, std::string> files;
  std::error_code ec;
  fs::file_status status = fs::symlink_status(dir, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return Error(Errc::internal,
                 what + ": cannot inspect " + shown(dir.string()) + ": " + ec.message());
  }
  if (!fs::exists(status)) return files;
  if (!fs::is_directory(status)) {
    return Error(Errc::invalid_argument, what + ": its private directory " + shown(dir.string()) +
                                             " is not a directory; move it aside");
  }
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::path& path = it->path();
    std::string rel = path.lexically_relative(dir).generic_string();
    fs::file_status entry_status = it->symlink_status(ec);
    if (ec) break;
    // The runtime directory (or whatever stands in its place) stays on this
    // machine: a socket and the like.
    if (rel == kRuntimeDir) {
      if (fs::is_directory(entry_status)) it.disable_recursion_pending();
      continue;
    }
    if (fs::is_directory(entry_status)) continue;  // recorded through the files inside
    if (rel == kRunnerLoginFile) continue;         // a credential stays on this machine
    if (is_staged_file(rel)) continue;  // an update cut short left it; it is not the option
    if (fs::is_symlink(entry_status)) {
      return Error(Errc::invalid_argument, what + ": " + shown(path.string()) +
                                               " is a symbolic link; the private directory may "
                                               "hold only regular files, replace the link with "
                                               "the file it points to");
    }
    if (!fs::is_regular_file(entry_status)) {
      return Error(Errc::invalid_argument, what + ": " + shown(path.string()) +
                                               " is not a regular file; remove it from the "
                                               "private directory");
    }
    if (auto problem = path_problem(std::string(kMaterial) + "/" + rel)) {
      return Error(Errc::invalid_argument, what + ": " + shown(path.string()) + " " + *problem +
                                               ", which an archive cannot carry; rename it");
    }
    auto content = util::read_file(path);
    if (!content) return content.error().wrap(what);
    files.emplace(std::move(rel), std::move(*content));
  }
  if (ec) {
    return Error(Errc::internal,
                 what + ": cannot read " + shown(dir.string()) + ": " + ec.message());
  }
  return files;
}

// ---- reading -------------------------------------------------------------------

std::string entry_type_problem(const LibArchive& la, archive_entry* entry) {
  if (la.archive_entry_hardlink(entry) != nullptr) return "is a hard link";
  switch (la.archive_entry_filetype(entry)) {
    case AE_IFLNK:
      return "is a symbolic link";
    case AE_IFCHR:
    case AE_IFBLK:
      return "is a device";
    case AE_IFIFO:
      return "is a FIFO";
    case AE_IFSOCK:
      return "is a socket";
    default:
      return "has an unsupported type";
  }
}

}  // namespace

Result<std::string> export_archive(const ContextStore& store, const Context& context) {
  std::string what = "cannot export context '" + util::printable(context.name) + "'";
  Entries entries;
  entries.emplace(kMeta, util::to_pretty_json(context_to_json(context, RecordKind::archive)));
  fs::path dir = store.data_dir(context);
  if (!dir.empty()) {
    auto files = read_material(dir, what);
    if (!files) return files.error();
    for (auto& [rel, content] : *files) {
      std::string path = std::string(kMaterial) + "/" + rel;
      // Every ancestor directory gets its own entry (0700 on extraction too).
      for (std::size_t slash = path.find('/'); slash != std::string::npos;
           slash = path.find('/', slash + 1)) {
        entries.emplace(path.substr(0, slash), std::nullopt);
      }
      entries.emplace(std::move(path), std::move(content));
    }
  }
  auto lib = libarchive();
  if (!lib) return Error(lib.error().code(), what + ": " + lib.error().message());
  auto bytes = write_tar(**lib, entries, what);
  if (!bytes) return bytes.error();
  if (bytes->size() > kMaxArchiveBytes) {
    return Error(Errc::invalid_argument,
                 what + ": the archive would be " + std::to_string(bytes->size()) +
                     " bytes, more than the " + std::to_string(kMaxArchiveBytes) +
                     " an import accepts; remove large files from " + shown(dir.string()));
  }
  return bytes;
}

Result<ContextArchive> parse_archive(std::string_view bytes, std::string_view source) {
  const std::string invalid = std::string(source) + " is not a valid context archive";
  auto bad_entry = [&](std::string_view path, const std::string& reason) {
    return Error(Errc::invalid_argument, invalid + ": entry " + shown(path) + " " + reason);
  };
  if (bytes.size() > kMaxArchiveBytes) {
    return Error(Errc::invalid_argument, invalid + ": it is larger than " +
                                             std::to_string(kMaxArchiveBytes) +
                                             " bytes, the limit for a context archive");
  }
  auto lib = libarchive();
  if (!lib) return lib.error();
  const LibArchive& la = **lib;
  ReadArchive a(la.archive_read_new(), ReadDeleter{la.archive_read_free});
  if (!a) return Error(Errc::internal, invalid + ": out of memory");
  if (la.archive_read_support_format_tar(a.get()) != ARCHIVE_OK ||
      la.archive_read_open_memory(a.get(), bytes.data(), bytes.size()) != ARCHIVE_OK) {
    return Error(Errc::invalid_argument, invalid + ": " + libarchive_error(la, a.get()));
  }

  std::optional<std::string> meta;
  std::set<std::string> seen;   // every entry, directories without the trailing '/'
  std::set<std::string> files;  // regular files
  std::vector<std::pair<std::string, std::string>> material;
  std::size_t total = 0;
  archive_entry* entry = nullptr;
  std::string last;  // the entry read before, to say where a damaged archive breaks
  for (;;) {
    int status = la.archive_read_next_header(a.get(), &entry);
    if (status == ARCHIVE_EOF) break;
    // A warning comes with the entry read (a name libarchive cannot convert
    // to this locale, a malformed pax attribute): it is named.
    if (status == ARCHIVE_WARN && entry != nullptr) {
      const char* raw = la.archive_entry_pathname(entry);
      if (raw == nullptr) raw = la.archive_entry_pathname_utf8(entry);
      std::string path = raw != nullptr ? raw : "";
      if (auto problem = path_problem(path)) return bad_entry(path, *problem);
      return bad_entry(path, "cannot be read: " + libarchive_error(la, a.get()));
    }
    if (status != ARCHIVE_OK) {
      std::string message = invalid + ": ";
      if (!last.empty()) message.append("the entry after ").append(shown(last)).append(": ");
      message += libarchive_error(la, a.get());
      return Error(Errc::invalid_argument, std::move(message));
    }
    const char* raw = la.archive_entry_pathname(entry);
    std::string path = raw != nullptr ? raw : "";
    bool is_dir =
        la.archive_entry_hardlink(entry) == nullptr && la.archive_entry_filetype(entry) == AE_IFDIR;
    bool is_file =
        la.archive_entry_hardlink(entry) == nullptr && la.archive_entry_filetype(entry) == AE_IFREG;
    if (is_dir && path.size() > 1 && path.back() == '/') path.pop_back();
    last = path;
    if (auto problem = path_problem(path)) return bad_entry(path, *problem);
    if (!is_dir && !is_file) return bad_entry(path, entry_type_problem(la, entry));
    if (la.archive_entry_sparse_count(entry) > 0) return bad_entry(path, "is a sparse file");

    bool top_meta = path == kMeta;
    bool top_material = path == kMaterial;
    bool under_material = path.size() > kMaterial.size() &&
                          path.compare(0, kMaterial.size(), kMaterial) == 0 &&
                          path[kMaterial.size()] == '/';
    if (!top_meta && !top_material && !under_material) {
      return bad_entry(path, "is not part of a context archive (only meta.json and material/...)");
    }
    if (under_material) {
      // What export never carries: the runtime directory (a module makes it
      // when it runs; the docker-container builder mounts it where buildkitd
      // makes its socket) and an update's staged file option.
      const std::string rel = path.substr(kMaterial.size() + 1);
      if (rel == kRuntimeDir || rel.rfind(std::string(kRuntimeDir) + "/", 0) == 0) {
        return bad_entry(path, "is in the runtime directory, which an export never carries");
      }
      if (is_staged_file(rel)) {
        return bad_entry(path,
                         "is a file option staged by an update, which an export never carries");
      }
    }
    if (top_meta && !is_file) return bad_entry(path, "must be a regular file");
    if (top_material && !is_dir) return bad_entry(path, "must be a directory");
    if (!seen.insert(path).second) return bad_entry(path, "appears twice");
    if (is_dir) continue;

    std::string content;
    char buffer[16384];
    for (;;) {
      la_ssize_t n = la.archive_read_data(a.get(), buffer, sizeof buffer);
      if (n < 0) return bad_entry(path, "cannot be read: " + libarchive_error(la, a.get()));
      if (n == 0) break;
      total += static_cast<std::size_t>(n);
      if (total > kMaxArchiveBytes) {
        return bad_entry(path, "takes the content past " + std::to_string(kMaxArchiveBytes) +
                                   " bytes, the limit for a context archive");
      }
      content.append(buffer, static_cast<std::size_t>(n));
    }
    files.insert(path);
    if (top_meta) {
      meta = std::move(content);
    } else {
      material.emplace_back(path.substr(kMaterial.size() + 1), std::move(content));
    }
  }

  // A file cannot also be a directory holding other entries.
  for (const std::string& file : files) {
    auto inside = seen.lower_bound(file + "/");
    if (inside != seen.end() && inside->compare(0, file.size() + 1, file + "/") == 0) {
      return bad_entry(file, "is a file, yet " + shown(*inside) + " is inside it");
    }
  }
  if (!meta) return Error(Errc::invalid_argument, invalid + ": it has no meta.json");
  std::string meta_what = invalid + ": entry 'meta.json'";
  auto value = util::parse_json(*meta, meta_what);
  if (!value) return value.error();
  // As the store refuses it: one of the two values would be dropped silently.
  if (std::string key = util::first_repeated_key(*meta); !key.empty()) {
    return Error(Errc::invalid_argument, meta_what + ": the key '" + util::printable(key, 64) +
                                             "' appears twice in one object");
  }
  if (auto inexact = util::first_inexact_number(*meta, *value)) {
    return Error(Errc::invalid_argument, meta_what + ": " + util::inexact_number_reason(*inexact));
  }
  auto context = context_from_json(*value, meta_what, RecordKind::archive);
  if (!context) return context.error();

  ContextArchive result;
  result.context = std::move(*context);
  std::sort(material.begin(), material.end());
  result.material = std::move(material);
  return result;
}

Status install_material(const ContextStore& store, const Context& context,
                        const ContextArchive& archive) {
  std::string what =
      "cannot install the private material of context '" + util::printable(context.name) + "'";
  for (const auto& [rel, content] : archive.material) {
    std::string path = std::string(kMaterial) + "/" + rel;
    if (auto problem = path_problem(path)) {
      return Error(Errc::invalid_argument, what + ": " + shown(rel) + " " + *problem);
    }
  }
  fs::path existing = store.data_dir(context);
  std::error_code ec;
  bool created = !existing.empty() && !fs::exists(existing, ec);
  auto dir = store.ensure_data_dir(context);
  if (!dir) return dir.error().wrap(what);

  auto install = [&]() -> Status {
    for (const auto& [rel, content] : archive.material) {
      fs::path target = *dir;
      std::size_t start = 0;
      // Each directory level on its own, so every one is 0700.
      for (std::size_t slash = rel.find('/'); slash != std::string::npos;
           slash = rel.find('/', start)) {
        target /= rel.substr(start, slash - start);
        if (auto st = util::create_directories(target, kDirMode); !st) return st;
        start = slash + 1;
      }
      target /= rel.substr(start);
      if (auto st = util::write_file_atomically(target, content, kFileMode); !st) return st;
    }
    return {};
  };
  Status st = install();
  if (!st) {
    // A half-installed directory that we created is of no use to anyone.
    if (created) fs::remove_all(*dir, ec);
    return st.error().wrap(what);
  }
  return {};
}

}  // namespace envd::context
