// `envd context import`: a new context from an exported archive, which is
// untrusted and re-validated through the drivers. In envd-client, which
// holds libarchive; the flags are in import.cpp.
#include "cli/client/commands.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "cli/context/common.hpp"
#include "cli/context/runner_options.hpp"
#include "context/archive.hpp"
#include "context/store.hpp"
#include "context/stored_files.hpp"
#include "util/atomic_file.hpp"
#include "util/terminal.hpp"
#include "util/text.hpp"

namespace envd::cli {
namespace {

namespace fs = std::filesystem;
using context::Context;
using context::ContextList;

// Validates stored options through the drivers.
Status check_options(Invocation& invocation, Context& ctx) {
  if (!ctx.builder_options.empty()) {
    auto driver = invocation.registry().builder(ctx.builder);
    if (!driver) return driver.error();
    auto options = driver->normalize_options(ctx.builder_options);
    if (!options) return options.error();
    ctx.builder_options = std::move(*options);
  }
  if (!ctx.runner_options.empty()) {
    auto driver = invocation.registry().runner(ctx.runner);
    if (!driver) return driver.error();
    auto options = driver->normalize_options(ctx.runner_options);
    if (!options) return options.error();
    ctx.runner_options = std::move(*options);
  }
  return {};
}

// Every file option of the imported context must name a file the archive
// carries, and hold what `context create` would have taken. A login is never
// exported (export_run.cpp), so an archive with one was made by hand: its
// token and identity file are refused rather than used by the runner.
Status check_material(Invocation& invocation, const Context& ctx,
                      const context::ContextArchive& archive) {
  std::vector<std::string> paths;
  for (const auto& [path, content] : archive.material) {
    if (path == context::kRunnerLoginFile) {
      return Error(Errc::invalid_argument,
                   std::string("entry 'material/") + context::kRunnerLoginFile +
                       "' is a login, which envd never exports; log in with 'envd login' "
                       "after the import instead");
    }
    paths.push_back(path);
  }
  auto builder = invocation.registry().builder(ctx.builder);
  if (!builder) return builder.error();
  if (auto st = context::check_stored_files(ctx.builder_options, builder->file_options(), paths);
      !st) {
    return st;
  }
  auto runner = invocation.registry().runner(ctx.runner);
  if (!runner) return runner.error();
  if (auto st = context::check_stored_files(ctx.runner_options, runner->file_options(), paths);
      !st) {
    return st;
  }
  // What no option names would be installed and carried on by every export.
  if (auto unnamed =
          context::unnamed_stored_file(paths, {{&ctx.builder_options, builder->file_options()},
                                               {&ctx.runner_options, runner->file_options()}})) {
    return Error(Errc::invalid_argument,
                 "entry 'material/" + util::printable(*unnamed) +
                     "' is a stored file that no option of the context names; remove it from "
                     "the archive or set the option it belongs to");
  }
  // The archive's entry for file option `key` of `options`, if it has one.
  auto entry = [&archive](const context::Options& options,
                          const std::string& key) -> const std::pair<std::string, std::string>* {
    if (options.count(key) == 0) return nullptr;
    const std::string stored = context::stored_file_value(key);
    for (const auto& item : archive.material) {
      if (item.first == stored) return &item;
    }
    return nullptr;
  };
  for (const auto& [options, keys] : {std::pair{&ctx.builder_options, builder->file_options()},
                                      std::pair{&ctx.runner_options, runner->file_options()}}) {
    for (const std::string& key : keys) {
      const auto* file = entry(*options, key);
      if (file == nullptr) continue;
      if (auto st = check_option_file(key, file->second, "entry", "material/" + file->first); !st) {
        return st;
      }
      if (is_ca_file(key)) {
        // Read as create reads it.
        if (auto st = run_check_tls_ca(file->second, "entry 'material/" + file->first + "'"); !st) {
          return st;
        }
      }
    }
    // A client key that is not its certificate's fails every connection:
    // refused here, as context create and update refuse it.
    const auto* cert = entry(*options, "tls-cert");
    const auto* key = entry(*options, "tls-key");
    if (cert != nullptr && key != nullptr) {
      TlsPair pair{cert->second, key->second, "entry 'material/" + cert->first + "'",
                   "entry 'material/" + key->first + "'"};
      if (auto st = run_check_tls_pair(pair); !st) return st;
    }
  }
  return {};
}

}  // namespace

Status run_context_import(Invocation& invocation, const std::string& name,
                          const std::string& file) {
  if (auto st = context::validate_name(name); !st) return st;
  bool from_stdin = file == "-";
  std::string source = from_stdin ? "standard input" : "file '" + file + "'";
  Result<std::string> bytes = std::string();
  if (from_stdin && util::is_terminal(STDIN_FILENO)) {
    // It would wait for an archive typed in, silently.
    return Error(Errc::invalid_argument,
                 "refusing to read a context archive from a terminal; give a FILE or redirect "
                 "standard input");
  }
  if (from_stdin && util::was_closed_at_start(STDIN_FILENO)) {
    return Error(Errc::invalid_argument,
                 "standard input is closed, so there is no context archive to read; give a FILE "
                 "or redirect standard input");
  }
  if (from_stdin) {
    bytes = util::read_all(STDIN_FILENO, context::kMaxArchiveBytes, source);
  } else {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return Error(Errc::not_found, "cannot open " + source + ": " + std::strerror(errno));
    bytes = util::read_all(fd, context::kMaxArchiveBytes, source);
    ::close(fd);
  }
  if (!bytes) return bytes.error();
  // libarchive's word for no bytes at all is "Unrecognized archive format".
  if (bytes->empty()) {
    return Error(Errc::invalid_argument,
                 "cannot import " + source + ": it is empty, not a context archive");
  }
  auto archive = context::parse_archive(*bytes, source);
  if (!archive) return archive.error();

  auto store = invocation.store();
  if (!store) return store.error();
  auto list = store->load();
  if (!list) return list.error();
  if (list->find(name) != nullptr) {
    return Error(Errc::already_exists, "context '" + name + "' already exists");
  }
  // The archive is untrusted: re-validate everything through the drivers.
  Context ctx = archive->context;
  ctx.name = name;
  auto builder_address = normalize_builder_address(invocation, ctx.builder, ctx.builder_address);
  if (!builder_address) return builder_address.error().wrap("cannot import " + source);
  ctx.builder_address = *builder_address;
  auto runner_address =
      normalize_runner_address(invocation, ctx.runner, ctx.runner_address.value_or(""));
  if (!runner_address) return runner_address.error().wrap("cannot import " + source);
  ctx.runner_address = runner_address->empty() ? std::nullopt : std::optional(*runner_address);
  if (auto st = check_options(invocation, ctx); !st)
    return st.error().wrap("cannot import " + source);
  if (auto st = check_runner_tls_ca(ctx); !st) return st.error().wrap("cannot import " + source);
  if (auto st = check_material(invocation, ctx, *archive); !st) {
    return st.error().wrap("cannot import " + source);
  }
  ctx.id = context::new_context_id();

  if (auto st = context::install_material(*store, ctx, *archive); !st) return st;
  auto st = store->update([&](ContextList& current) -> Status {
    if (current.find(name) != nullptr) {
      return Error(Errc::already_exists, "context '" + name + "' already exists");
    }
    current.contexts.push_back(ctx);
    return {};
  });
  if (!st) {
    std::error_code ec;
    fs::remove_all(store->data_dir(ctx), ec);
    return st;
  }
  inform("Context " + name + " is imported");
  return {};
}

}  // namespace envd::cli
