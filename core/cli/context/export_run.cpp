// `envd context export`: a context and its private material as a tar archive,
// to a new file or to standard output. In envd-client, which holds
// libarchive; the flags are in export.cpp.
#include "cli/client/commands.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "cli/context/common.hpp"
#include "cli/context/runner_options.hpp"
#include "context/archive.hpp"
#include "context/store.hpp"
#include "context/stored_files.hpp"
#include "util/atomic_file.hpp"
#include "util/data_out.hpp"
#include "util/terminal.hpp"
#include "util/text.hpp"

namespace envd::cli {

using context::Context;

Status run_context_export(Invocation& invocation, const std::string& name,
                          const std::string& file) {
  if (auto st = context::validate_name(name); !st) return st;
  // /dev/stdout and /dev/fd/1 are standard output too: inside envd,
  // descriptor 1 is stderr (util/data_out.hpp).
  bool to_stdout = file.empty() || file == "-" || util::names_standard_output(file);
  if (to_stdout && util::was_closed_at_start(STDOUT_FILENO)) {
    return Error(Errc::invalid_argument,
                 "standard output is closed, so the context archive would be lost; give a FILE");
  }
  if (to_stdout && util::is_terminal(util::data_fd())) {
    return Error(Errc::invalid_argument,
                 "refusing to write the context archive to a terminal; give a FILE or redirect "
                 "standard output");
  }
  auto store = invocation.store();
  if (!store) return store.error();
  auto list = store->load();
  if (!list) return list.error();
  const Context* ctx = list->find(name);
  if (ctx == nullptr) return missing_context(name);
  // Read first: what the private directory holds that is not a regular file
  // (a symbolic link, a FIFO) is refused with the file's name and kind, not
  // as a missing file by the check below.
  auto archive = context::export_archive(*store, *ctx);
  if (!archive) return archive.error();
  // What import will refuse is refused here: an address or an option the
  // driver refuses, and a file option that does not name the copy the store
  // holds (a hand-edited store may hold anything). Only the driver knows
  // them, so the context's installed drivers are loaded for the check;
  // import checks again.
  auto listed = material_files(*store, *ctx);
  if (!listed) return listed.error();
  const auto& material = *listed;
  const std::string refused = "cannot export context '" + name + "'";
  const std::string fix = " (import would refuse it; correct it with envd context update)";
  // "cannot export context 'x': <why> (import would refuse it; ...)".
  auto refusal = [&](const Error& why) {
    std::string message = refused;
    message.append(": ").append(why.message()).append(fix);
    return Error(why.code(), std::move(message));
  };
  // A stored file no option names would be refused by import. The drivers
  // may not be installed here, so a file is named when an option holds its
  // stored name (a file option's only valid value).
  auto keys_of = [](const context::Options& options) {
    std::vector<std::string> keys;
    for (const auto& [key, value] : options) keys.push_back(key);
    return keys;
  };
  if (auto unnamed = context::unnamed_stored_file(
          material, {{&ctx->builder_options, keys_of(ctx->builder_options)},
                     {&ctx->runner_options, keys_of(ctx->runner_options)}})) {
    return Error(Errc::invalid_argument,
                 refused + ": its private directory holds '" + util::printable(*unnamed) +
                     "', a stored file that no option of the context names (import would "
                     "refuse it; remove '" +
                     util::printable((store->data_dir(*ctx) / *unnamed).string()) + "')");
  }
  auto check = [&](const auto& driver, const context::Options& options) -> Status {
    if (auto normalized = driver.normalize_options(options); !normalized) {
      return refusal(normalized.error());
    }
    auto st = context::check_stored_files(options, driver.file_options(), material);
    if (!st) return st.error().wrap(refused);
    // The stored copies themselves, held to what import holds them to (a
    // hand-edited or damaged store may hold anything).
    for (const std::string& key : driver.file_options()) {
      auto value = options.find(key);
      if (value == options.end() || value->second != context::stored_file_value(key)) continue;
      const std::string path = (store->data_dir(*ctx) / value->second).string();
      auto content = context::read_option_file(path, "the context's stored " + key);
      if (!content) return refusal(content.error());
      if (auto checked =
              check_option_file(key, *content, "the context's stored file", value->second);
          !checked) {
        return refusal(checked.error());
      }
    }
    return Status{};
  };
  // The addresses as well, which import has the drivers normalize: a
  // hand-edited one may be anything. A driver not installed here is left to
  // the importing machine's.
  if (auto builder = invocation.registry(true).builder(ctx->builder); builder) {
    if (auto address = builder->normalize_address(ctx->builder_address); !address) {
      return refusal(address.error());
    }
    if (!ctx->builder_options.empty()) {
      if (auto st = check(*builder, ctx->builder_options); !st) return st;
    }
  }
  if (auto runner = invocation.registry(true).runner(ctx->runner); runner) {
    if (auto address = runner->normalize_address(ctx->runner_address.value_or("")); !address) {
      return refusal(address.error());
    }
    if (!ctx->runner_options.empty()) {
      if (auto st = check(*runner, ctx->runner_options); !st) return st;
    }
  }
  if (auto st = check_runner_tls_ca(*ctx); !st) return refusal(st.error());

  if (to_stdout) {
    if (auto st = util::write_all(util::data_fd(), *archive, "standard output"); !st) return st;
  } else {
    // O_EXCL: an export never overwrites an existing file.
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      int err = errno;
      std::error_code ec;
      if (err == EEXIST && std::filesystem::is_directory(file, ec)) {
        return Error(Errc::already_exists,
                     "'" + file + "' is a directory; give the archive a file name");
      }
      if (err == EEXIST) {
        return Error(Errc::already_exists,
                     "'" + file + "' already exists; export never overwrites a file");
      }
      return Error(Errc::internal, "cannot create '" + file + "': " + std::strerror(err));
    }
    Status st = util::write_all(fd, *archive, "'" + file + "'");
    if (st && ::fsync(fd) != 0) {
      st = Error(Errc::internal, "cannot write '" + file + "': " + std::strerror(errno));
    }
    ::close(fd);
    if (!st) {
      ::unlink(file.c_str());
      return st;
    }
  }
  // A private key is what must not leak; a CA certificate alone is public.
  const bool keys = std::any_of(material.begin(), material.end(), [](const std::string& path) {
    return path.find("key") != std::string::npos;
  });
  if (keys) {
    warn("the archive contains the private material of context '" + name +
         "' (TLS keys included); keep it safe");
  }
  inform("Context " + name + " is exported to " + (to_stdout ? "standard output" : file));
  return {};
}

}  // namespace envd::cli
