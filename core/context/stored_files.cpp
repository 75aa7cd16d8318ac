#include "context/stored_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "util/atomic_file.hpp"

namespace envd::context {

namespace fs = std::filesystem;

std::string stored_file_value(std::string_view key) { return "files/" + std::string(key); }

bool is_staged_file(std::string_view relative_path) {
  constexpr std::string_view prefix = "files/.";
  constexpr std::string_view suffix = ".new";
  return relative_path.size() > prefix.size() + suffix.size() &&
         relative_path.substr(0, prefix.size()) == prefix &&
         relative_path.substr(relative_path.size() - suffix.size()) == suffix &&
         relative_path.find('/', prefix.size()) == std::string_view::npos;
}

Result<std::string> read_option_file(const std::string& path, const std::string& what) {
  auto fail = [&](const std::string& why) {
    return Error(Errc::invalid_argument, "cannot read " + what + " '" + path + "': " + why);
  };
  if (path.empty()) return fail("no file given");
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return fail(std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail("not a regular file");
  }
  auto content = util::read_all(fd, kMaxOptionFileBytes, what + " '" + path + "'");
  ::close(fd);
  if (!content) return content.error();
  if (content->size() > kMaxOptionFileBytes) {
    return fail("larger than " + std::to_string(kMaxOptionFileBytes >> 20) + " MiB");
  }
  return content;
}

Status store_option_file(const ContextStore& store, const Context& context, std::string_view key,
                         std::string_view content) {
  auto dir = store.ensure_data_dir(context);
  if (!dir) return dir.error();
  fs::path files = *dir / "files";
  if (auto st = util::create_directories(files, 0700); !st) return st;
  return util::write_file_atomically(*dir / stored_file_value(key), content, 0600);
}

void remove_option_file(const ContextStore& store, const Context& context, std::string_view key) {
  fs::path dir = store.data_dir(context);
  if (dir.empty()) return;
  std::error_code ec;
  fs::remove(dir / stored_file_value(key), ec);
}

Options resolve_stored_files(const ContextStore& store, const Context& context,
                             const Options& options, const std::vector<std::string>& file_keys) {
  Options resolved = options;
  fs::path dir = store.data_dir(context);
  for (const auto& key : file_keys) {
    auto it = resolved.find(key);
    if (it != resolved.end() && it->second == stored_file_value(key) && !dir.empty()) {
      it->second = (dir / it->second).string();
    }
  }
  return resolved;
}

Status check_stored_files(const Options& options, const std::vector<std::string>& file_keys,
                          const std::vector<std::string>& material_paths) {
  for (const auto& key : file_keys) {
    auto it = options.find(key);
    if (it == options.end()) continue;
    std::string expected = stored_file_value(key);
    if (it->second != expected) {
      std::string message = "option '" + key;
      message += "' must name its stored file '" + expected;
      message += "', not '" + it->second + "'";
      return Error(Errc::invalid_argument, message);
    }
    if (std::find(material_paths.begin(), material_paths.end(), expected) == material_paths.end()) {
      std::string message = "option '" + key;
      message += "' names '" + expected + "', which is missing";
      return Error(Errc::invalid_argument, message);
    }
  }
  return {};
}

std::optional<std::string> unnamed_stored_file(const std::vector<std::string>& material_paths,
                                               const std::vector<FileOptionSet>& sets) {
  const std::string prefix = stored_file_value("");
  for (const std::string& path : material_paths) {
    if (path.compare(0, prefix.size(), prefix) != 0) continue;
    bool named = std::any_of(sets.begin(), sets.end(), [&path](const FileOptionSet& set) {
      return std::any_of(set.file_keys.begin(), set.file_keys.end(), [&](const std::string& key) {
        auto it = set.options->find(key);
        return it != set.options->end() && it->second == path && path == stored_file_value(key);
      });
    });
    if (!named) return path;
  }
  return std::nullopt;
}

}  // namespace envd::context
