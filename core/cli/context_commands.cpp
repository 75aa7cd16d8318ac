// `envd context ...`: create, ls, use, rm, inspect, show, update, rename,
// export, import.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/core.h>
#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/table.hpp"
#include "context/archive.hpp"
#include "context/resolve.hpp"
#include "context/store.hpp"
#include "context/stored_files.hpp"
#include "util/atomic_file.hpp"
#include "util/json.hpp"
#include "util/terminal.hpp"

namespace envd::cli {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using context::Context;
using context::ContextList;
using context::ContextStore;

// The one context name a command takes, given as NAME or --name NAME.
Result<std::string> one_name(const std::vector<std::string>& positional,
                             const std::vector<std::string>& flagged) {
  std::vector<std::string> names = positional;
  names.insert(names.end(), flagged.begin(), flagged.end());
  if (names.empty()) {
    return Error(Errc::invalid_argument, "a context name is required (NAME or --name NAME)");
  }
  if (names.size() > 1) {
    return Error(Errc::invalid_argument,
                 "expected one context name, got " + std::to_string(names.size()));
  }
  if (auto st = context::validate_name(names[0]); !st) return st.error();
  return names[0];
}

Status missing_context(const std::string& name) {
  return Error(Errc::not_found,
               "context '" + name + "' does not exist; 'envd context ls' lists the contexts");
}

// Validates a builder type and address through the builder's driver.
Result<std::string> normalize_builder(Session& session, const std::string& type,
                                      const std::string& address) {
  auto driver = session.registry().builder(type);
  if (!driver) return driver.error();
  return driver->normalize_address(address);
}

Result<std::string> normalize_runner(Session& session, const std::string& type,
                                     const std::string& address) {
  auto driver = session.registry().runner(type);
  if (!driver) return driver.error();
  return driver->normalize_address(address);
}

// Validates stored options through the drivers (used for imports).
Status check_options(Session& session, Context& ctx) {
  if (!ctx.builder_options.empty()) {
    auto driver = session.registry().builder(ctx.builder);
    if (!driver) return driver.error();
    auto options = driver->normalize_options(ctx.builder_options);
    if (!options) return options.error();
    ctx.builder_options = std::move(*options);
  }
  if (!ctx.runner_options.empty()) {
    auto driver = session.registry().runner(ctx.runner);
    if (!driver) return driver.error();
    auto options = driver->normalize_options(ctx.runner_options);
    if (!options) return options.error();
    ctx.runner_options = std::move(*options);
  }
  return {};
}

// Every file option of the imported context must name a file the archive carries.
Status check_material(Session& session, const Context& ctx,
                      const context::ContextArchive& archive) {
  std::vector<std::string> paths;
  for (const auto& [path, content] : archive.material) paths.push_back(path);
  auto builder = session.registry().builder(ctx.builder);
  if (!builder) return builder.error();
  if (auto st = context::check_stored_files(ctx.builder_options, builder->file_options(), paths);
      !st) {
    return st;
  }
  auto runner = session.registry().runner(ctx.runner);
  if (!runner) return runner.error();
  return context::check_stored_files(ctx.runner_options, runner->file_options(), paths);
}

// The name `ls` marks as current: the one commands would use.
std::string effective_current(const ContextList& list, const Session& session) {
  if (session.context_flag) return *session.context_flag;
  if (const char* env = std::getenv("ENVD_CONTEXT"); env != nullptr && env[0] != '\0') return env;
  return list.current.empty() ? "default" : list.current;
}

// Relative paths of the regular files in the context's private directory.
std::vector<std::string> material_files(const ContextStore& store, const Context& ctx) {
  std::vector<std::string> files;
  std::error_code ec;
  fs::path dir = store.data_dir(ctx);
  if (!fs::is_directory(dir, ec)) return files;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec)) files.push_back(fs::relative(it->path(), dir, ec).string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

json::object options_json(const context::Options& options) {
  json::object out;
  for (const auto& [key, value] : options) out[key] = value;
  return out;
}

// ---- builder options ---------------------------------------------------------

// The option flags of create and update. TLS flags and --buildkitd-config are
// named forms of --builder-opt keys.
struct OptionFlags {
  std::vector<std::string> builder_opts;  // KEY=VALUE, repeatable
  std::optional<std::string> tls_ca;
  std::optional<std::string> tls_cert;
  std::optional<std::string> tls_key;
  std::optional<std::string> tls_servername;
  std::optional<std::string> buildkitd_config;

  bool any() const {
    return !builder_opts.empty() || tls_ca || tls_cert || tls_key || tls_servername ||
           buildkitd_config;
  }
};

// One option as the user gave it: the value, and the flag that gave it (for
// messages).
struct GivenOption {
  std::string value;
  std::string flag;
};
using GivenOptions = std::map<std::string, GivenOption>;

constexpr std::array kTlsFileKeys{"tls-ca", "tls-cert", "tls-key"};

// Parses the option flags. A key given twice through --builder-opt gets the
// values joined with ',' (list options such as cap-add); a key given by both a
// named flag and --builder-opt is an error.
Result<GivenOptions> given_options(const OptionFlags& flags) {
  GivenOptions given;
  for (const auto& opt : flags.builder_opts) {
    size_t eq = opt.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Error(Errc::invalid_argument,
                   "invalid --builder-opt '" + opt + "': expected KEY=VALUE (KEY= removes KEY)");
    }
    std::string key = opt.substr(0, eq);
    std::string value = opt.substr(eq + 1);
    auto [it, fresh] = given.try_emplace(key, GivenOption{value, "--builder-opt " + key});
    if (!fresh) {
      if (value.empty() || it->second.value.empty()) {
        return Error(Errc::invalid_argument,
                     "--builder-opt " + key + " is given twice, once empty (which removes it)");
      }
      it->second.value += "," + value;
    }
  }
  auto named = [&](const std::optional<std::string>& value, const std::string& key,
                   const std::string& flag) -> Status {
    if (!value) return {};
    if (given.count(key) != 0) {
      return Error(Errc::invalid_argument,
                   flag + " and --builder-opt " + key + " set the same option; give one");
    }
    given[key] = GivenOption{*value, flag};
    return {};
  };
  if (auto st = named(flags.tls_ca, "tls-ca", "--builder-tls-ca"); !st) return st.error();
  if (auto st = named(flags.tls_cert, "tls-cert", "--builder-tls-cert"); !st) return st.error();
  if (auto st = named(flags.tls_key, "tls-key", "--builder-tls-key"); !st) return st.error();
  if (auto st = named(flags.tls_servername, "tls-servername", "--builder-tls-servername"); !st) {
    return st.error();
  }
  if (auto st = named(flags.buildkitd_config, "config", "--buildkitd-config"); !st) {
    return st.error();
  }
  return given;
}

bool contains(const std::vector<std::string>& keys, std::string_view key) {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

// The builder's options after applying `given` to `current`, validated by the
// driver, and the contents of the files named by its file options (read now,
// written to the store by the caller). Values of new file options are still the
// user's paths in the result; the caller replaces them with their stored names.
struct OptionChange {
  context::Options options;                  // normalised by the driver
  std::map<std::string, std::string> files;  // file option key -> new content
  std::vector<std::string> removed_files;    // file option keys no longer set
};

Result<OptionChange> change_builder_options(Session& session, const std::string& builder,
                                            const context::Options& current,
                                            const GivenOptions& given) {
  auto driver = session.registry().builder(builder);
  if (!driver) return driver.error();
  std::vector<std::string> file_keys = driver->file_options();

  OptionChange change;
  context::Options wanted = current;
  for (const auto& [key, option] : given) {
    bool tls_flag = option.flag.rfind("--builder-tls-", 0) == 0;
    if (tls_flag && key != "tls-servername" && !contains(file_keys, key)) {
      return Error(Errc::invalid_argument,
                   "the '" + builder + "' builder takes no TLS material (" + option.flag + ")");
    }
    if (option.value.empty()) {
      if (wanted.erase(key) != 0 && contains(file_keys, key)) change.removed_files.push_back(key);
      continue;
    }
    wanted[key] = option.value;
  }
  auto normalized = driver->normalize_options(wanted);
  if (!normalized) return normalized.error();
  change.options = std::move(*normalized);

  for (const auto& [key, option] : given) {
    if (option.value.empty() || !contains(file_keys, key)) continue;
    if (change.options.count(key) == 0) continue;  // the driver dropped it
    auto content = context::read_option_file(option.value, option.flag);
    if (!content) return content.error();
    // TLS material is PEM; catching a swapped or binary file here beats a
    // handshake failure at the first build.
    bool tls = std::find(kTlsFileKeys.begin(), kTlsFileKeys.end(), key) != kTlsFileKeys.end();
    if (tls && content->find("-----BEGIN ") == std::string::npos) {
      return Error(Errc::invalid_argument,
                   option.flag + " '" + option.value + "' is not a PEM file (no -----BEGIN line)");
    }
    change.files[key] = std::move(*content);
    change.options[key] = context::stored_file_value(key);
  }
  return change;
}

// Writes the new file contents of `change` under temporary names; commit()
// renames them into place once the store has the new record, so a failed
// update leaves the stored files as they were.
class StagedFiles {
 public:
  StagedFiles(const ContextStore& store, Context context)
      : store_(store), context_(std::move(context)) {}
  StagedFiles(const StagedFiles&) = delete;
  StagedFiles& operator=(const StagedFiles&) = delete;
  ~StagedFiles() {
    for (const auto& key : staged_) context::remove_option_file(store_, context_, staged(key));
  }

  Status stage(const std::map<std::string, std::string>& files) {
    for (const auto& [key, content] : files) {
      if (auto st = context::store_option_file(store_, context_, staged(key), content); !st) {
        return st;
      }
      staged_.push_back(key);
    }
    return {};
  }

  // Renames every staged file into place and removes `removed`.
  Status commit(const std::vector<std::string>& removed) {
    fs::path dir = store_.data_dir(context_);
    for (const auto& key : staged_) {
      std::error_code ec;
      fs::rename(dir / context::stored_file_value(staged(key)),
                 dir / context::stored_file_value(key), ec);
      if (ec) {
        return Error(Errc::internal, "cannot store the file of option '" + key + "' in '" +
                                         dir.string() + "': " + ec.message());
      }
    }
    staged_.clear();
    for (const auto& key : removed) context::remove_option_file(store_, context_, key);
    return {};
  }

 private:
  static std::string staged(const std::string& key) { return "." + key + ".new"; }

  const ContextStore& store_;
  Context context_;
  std::vector<std::string> staged_;
};

void add_option_flags(CLI::App* cmd, OptionFlags& flags) {
  cmd->add_option("--builder-opt", flags.builder_opts,
                  "Builder driver option KEY=VALUE (repeatable; a repeated KEY adds to a "
                  "comma-separated list; KEY= removes it on update)")
      ->allow_extra_args(false);
  cmd->add_option("--builder-tls-ca", flags.tls_ca,
                  "CA certificate (PEM) to verify the builder with; copied into the store");
  cmd->add_option("--builder-tls-cert", flags.tls_cert,
                  "Client certificate (PEM) for mutual TLS; needs --builder-tls-key");
  cmd->add_option("--builder-tls-key", flags.tls_key,
                  "Client private key (PEM) for mutual TLS; copied into the store (0600)");
  cmd->add_option("--builder-tls-servername", flags.tls_servername,
                  "Name to verify in the builder's certificate (default: the address's host)");
  cmd->add_option("--buildkitd-config", flags.buildkitd_config,
                  "buildkitd.toml for a builder envd starts (docker-container); copied into the "
                  "store");
}

// ---- create ----------------------------------------------------------------

struct CreateRequest {
  std::vector<std::string> positional;
  std::vector<std::string> name;
  std::string builder = "docker-container";
  std::string builder_address;
  std::string runner = "docker";
  std::optional<std::string> runner_address;
  OptionFlags options;
  bool use = false;
};

Status run_create(Session& session, const CreateRequest& req) {
  auto name = one_name(req.positional, req.name);
  if (!name) return name.error();
  auto store = session.store();
  if (!store) return store.error();
  // Fail on a taken name before loading any driver.
  auto existing = store->load();
  if (!existing) return existing.error();
  if (existing->find(*name) != nullptr) {
    return Error(Errc::already_exists, "context '" + *name + "' already exists");
  }

  Context ctx;
  ctx.name = *name;
  ctx.builder = req.builder;
  ctx.runner = req.runner;
  auto builder_address = normalize_builder(session, req.builder, req.builder_address);
  if (!builder_address) return builder_address.error();
  ctx.builder_address = *builder_address;
  auto runner_address = normalize_runner(session, req.runner, req.runner_address.value_or(""));
  if (!runner_address) return runner_address.error();
  if (!runner_address->empty()) ctx.runner_address = *runner_address;
  ctx.id = context::new_context_id();

  auto given = given_options(req.options);
  if (!given) return given.error();
  OptionChange options;
  if (!given->empty()) {
    for (const auto& [key, option] : *given) {
      if (option.value.empty()) {
        return Error(Errc::invalid_argument, option.flag + " needs a value");
      }
    }
    auto change = change_builder_options(session, ctx.builder, {}, *given);
    if (!change) return change.error();
    options = std::move(*change);
    ctx.builder_options = options.options;
  }
  StagedFiles files(*store, ctx);
  if (auto st = files.stage(options.files); !st) return st;

  auto st = store->update([&](ContextList& list) -> Status {
    if (list.find(ctx.name) != nullptr) {
      return Error(Errc::already_exists, "context '" + ctx.name + "' already exists");
    }
    list.contexts.push_back(ctx);
    if (req.use) list.current = ctx.name;
    return {};
  });
  if (!st) {
    std::error_code ec;
    if (!options.files.empty()) fs::remove_all(store->data_dir(ctx), ec);
    return st;
  }
  if (auto committed = files.commit({}); !committed) return committed;
  inform("Context " + ctx.name + " is created");
  if (req.use) inform("Current context is now \"" + ctx.name + "\"");
  return {};
}

// ---- ls ----------------------------------------------------------------------

Status run_ls(Session& session, const std::string& format_flag) {
  auto format = parse_format(format_flag);
  if (!format) return format.error();
  auto store = session.store();
  if (!store) return store.error();
  auto list = store->load();
  if (!list) return list.error();
  std::string current = effective_current(*list, session);
  if (list->find(current) == nullptr) {
    warn("the context in use, '" + current + "', does not exist");
  }

  if (*format == OutputFormat::json) {
    json::array out;
    for (const auto& ctx : list->contexts) {
      json::object row;
      row["context"] = ctx.name;
      row["builder"] = ctx.builder;
      row["builder_addr"] = ctx.builder_endpoint();
      row["runner"] = ctx.runner;
      if (ctx.runner_address) row["runner_addr"] = *ctx.runner_address;
      row["current"] = ctx.name == current;
      out.push_back(std::move(row));
    }
    fmt::print("{}", util::to_compact_json(out));
    return {};
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& ctx : list->contexts) {
    rows.push_back({ctx.name == current ? ctx.name + " (current)" : ctx.name, ctx.builder,
                    ctx.builder_endpoint(), ctx.runner, ctx.runner_address.value_or("")});
  }
  fmt::print("{}",
             render_table({"CONTEXT", "BUILDER", "BUILDER ADDR", "RUNNER", "RUNNER ADDR"}, rows));
  return {};
}

// ---- use ---------------------------------------------------------------------

Status run_use(Session& session, const std::vector<std::string>& positional,
               const std::vector<std::string>& flagged) {
  auto name = one_name(positional, flagged);
  if (!name) return name.error();
  auto store = session.store();
  if (!store) return store.error();
  auto st = store->update([&](ContextList& list) -> Status {
    if (list.find(*name) == nullptr) return missing_context(*name);
    list.current = *name;
    return {};
  });
  if (!st) return st;
  inform("Current context is now \"" + *name + "\"");
  if (const char* env = std::getenv("ENVD_CONTEXT"); env != nullptr && env[0] != '\0') {
    warn(std::string("ENVD_CONTEXT is set to '") + env +
         "' and overrides the current context in this environment");
  }
  return {};
}

// ---- rm ----------------------------------------------------------------------

struct RmRequest {
  std::vector<std::string> positional;
  std::vector<std::string> name;
  bool force = false;
};

Status run_rm(Session& session, const RmRequest& req) {
  std::vector<std::string> names = req.positional;
  names.insert(names.end(), req.name.begin(), req.name.end());
  if (names.empty()) {
    return Error(Errc::invalid_argument, "a context name is required (NAME... or --name NAME)");
  }
  for (const auto& name : names) {
    if (auto st = context::validate_name(name); !st) return st;
  }
  auto store = session.store();
  if (!store) return store.error();

  std::vector<Context> removed;
  std::string new_current;
  bool current_changed = false;
  auto st = store->update([&](ContextList& list) -> Status {
    removed.clear();
    current_changed = false;
    std::set<std::string> doomed;
    for (const auto& name : names) {
      const Context* ctx = list.find(name);
      if (ctx == nullptr) {
        if (req.force) continue;  // --force ignores names that do not exist
        return missing_context(name);
      }
      if (name == list.current && !req.force) {
        return Error(Errc::invalid_argument,
                     "cannot remove the current context '" + name +
                         "'; switch with 'envd context use NAME' first, or pass --force");
      }
      if (doomed.insert(name).second) removed.push_back(*ctx);
    }
    std::erase_if(list.contexts, [&](const Context& c) { return doomed.count(c.name) != 0; });
    if (doomed.count(list.current) != 0) {
      // --force on the current context falls back to the default one.
      list.current = list.find("default") != nullptr ? "default" : "";
      new_current = list.current;
      current_changed = true;
    }
    return {};
  });
  if (!st) return st;
  for (const auto& ctx : removed) {
    // The store no longer refers to it; a leftover directory is only litter.
    std::error_code ec;
    fs::remove_all(store->data_dir(ctx), ec);
    if (ec) warn("cannot remove '" + store->data_dir(ctx).string() + "': " + ec.message());
    inform("Context " + ctx.name + " is removed");
  }
  if (current_changed) {
    if (new_current.empty()) {
      warn("no current context is left; choose one with 'envd context use NAME'");
    } else {
      inform("Current context is now \"" + new_current + "\"");
    }
  }
  return {};
}

// ---- inspect / show ----------------------------------------------------------

Result<Context> resolve(Session& session, const ContextList& list,
                        const std::vector<std::string>& names) {
  if (!names.empty()) {
    auto name = one_name(names, {});
    if (!name) return name.error();
    const Context* ctx = list.find(*name);
    if (ctx == nullptr) return missing_context(*name).error();
    return *ctx;
  }
  auto resolved = context::resolve_context(list, session.context_flag);
  if (!resolved) return resolved.error();
  return resolved->context;
}

Status run_inspect(Session& session, const std::vector<std::string>& names) {
  auto store = session.store();
  if (!store) return store.error();
  auto list = store->load();
  if (!list) return list.error();
  auto ctx = resolve(session, *list, names);
  if (!ctx) return ctx.error();

  json::object out;
  out["name"] = ctx->name;
  out["current"] = ctx->name == effective_current(*list, session);
  out["builder"] = ctx->builder;
  out["builder_address"] = ctx->builder_address;
  out["builder_addr"] = ctx->builder_endpoint();
  out["builder_options"] = options_json(ctx->builder_options);
  out["runner"] = ctx->runner;
  if (ctx->runner_address) out["runner_address"] = *ctx->runner_address;
  out["runner_options"] = options_json(ctx->runner_options);
  // Names of the private files only: their contents (keys) are never printed.
  json::array material;
  for (const auto& file : material_files(*store, *ctx)) material.emplace_back(file);
  out["material"] = std::move(material);
  json::object storage;
  storage["store"] = store->file().string();
  storage["data_dir"] = store->data_dir(*ctx).string();
  out["storage"] = std::move(storage);
  fmt::print("{}", util::to_pretty_json(out));
  return {};
}

Status run_show(Session& session) {
  auto store = session.store();
  if (!store) return store.error();
  auto list = store->load();
  if (!list) return list.error();
  auto resolved = context::resolve_context(*list, session.context_flag);
  if (!resolved) return resolved.error();
  fmt::print("{}\n", resolved->context.name);
  return {};
}

// ---- update ------------------------------------------------------------------

struct UpdateRequest {
  std::vector<std::string> positional;
  std::vector<std::string> name;
  std::optional<std::string> builder;
  std::optional<std::string> builder_address;
  std::optional<std::string> runner;
  std::optional<std::string> runner_address;
  OptionFlags options;
};

Status run_update(Session& session, const UpdateRequest& req) {
  auto name = one_name(req.positional, req.name);
  if (!name) return name.error();
  if (!req.builder && !req.builder_address && !req.runner && !req.runner_address &&
      !req.options.any()) {
    return Error(Errc::invalid_argument,
                 "nothing to update for context '" + *name +
                     "': pass --builder, --builder-address, --builder-opt, a --builder-tls-* "
                     "flag, --runner or --runner-address");
  }
  auto given = given_options(req.options);
  if (!given) return given.error();
  auto store = session.store();
  if (!store) return store.error();
  auto list = store->load();
  if (!list) return list.error();
  const Context* found = list->find(*name);
  if (found == nullptr) return missing_context(*name);

  // Validate against the drivers outside the lock; the update below re-checks
  // that the context still exists.
  Context changed = *found;
  if (req.builder || req.builder_address) {
    changed.builder = req.builder.value_or(found->builder);
    std::string address = req.builder_address.value_or(found->builder_address);
    auto normalized = normalize_builder(session, changed.builder, address);
    if (!normalized) {
      if (!req.builder_address) {
        return normalized.error().wrap("the address of context '" + *name +
                                       "' does not suit the new builder; pass --builder-address");
      }
      return normalized.error();
    }
    changed.builder_address = *normalized;
  }
  // A new builder type starts without the old type's options (and their files).
  OptionChange options;
  bool new_builder = changed.builder != found->builder;
  if (new_builder || !given->empty()) {
    context::Options current = new_builder ? context::Options{} : found->builder_options;
    auto change = change_builder_options(session, changed.builder, current, *given);
    if (!change) return change.error();
    options = std::move(*change);
    changed.builder_options = options.options;
    if (new_builder) {
      auto old_driver = session.registry().builder(found->builder);
      if (old_driver) {
        for (const auto& key : old_driver->file_options()) {
          if (found->builder_options.count(key) != 0) options.removed_files.push_back(key);
        }
      }
    }
  }
  StagedFiles files(*store, *found);
  if (auto st = files.stage(options.files); !st) return st;
  if (req.runner || req.runner_address) {
    changed.runner = req.runner.value_or(found->runner);
    std::string address = req.runner_address.value_or(found->runner_address.value_or(""));
    auto normalized = normalize_runner(session, changed.runner, address);
    if (!normalized) {
      if (!req.runner_address) {
        return normalized.error().wrap("the runner address of context '" + *name +
                                       "' does not suit the new runner; pass --runner-address");
      }
      return normalized.error();
    }
    changed.runner_address = normalized->empty() ? std::nullopt : std::optional(*normalized);
    if (changed.runner != found->runner) changed.runner_options.clear();
  }

  auto st = store->update([&](ContextList& current) -> Status {
    Context* ctx = current.find(*name);
    if (ctx == nullptr) return missing_context(*name);
    ctx->builder = changed.builder;
    ctx->builder_address = changed.builder_address;
    ctx->builder_options = changed.builder_options;
    ctx->runner = changed.runner;
    ctx->runner_address = changed.runner_address;
    ctx->runner_options = changed.runner_options;
    return {};
  });
  if (!st) return st;
  if (auto committed = files.commit(options.removed_files); !committed) return committed;
  inform("Context " + *name + " is updated");
  return {};
}

// ---- rename ------------------------------------------------------------------

Status run_rename(Session& session, const std::string& from, const std::string& to) {
  if (auto st = context::validate_name(from); !st) return st;
  if (auto st = context::validate_name(to); !st) return st;
  auto store = session.store();
  if (!store) return store.error();
  auto st = store->update([&](ContextList& list) -> Status {
    Context* ctx = list.find(from);
    if (ctx == nullptr) return missing_context(from);
    if (from == to) return {};
    if (list.find(to) != nullptr) {
      return Error(Errc::already_exists, "context '" + to + "' already exists");
    }
    ctx->name = to;  // the private directory is keyed by id and stays put
    if (list.current == from) list.current = to;
    return {};
  });
  if (!st) return st;
  inform("Context " + from + " is renamed to " + to);
  return {};
}

// ---- export / import ---------------------------------------------------------

Status run_export(Session& session, const std::string& name, const std::string& file) {
  if (auto st = context::validate_name(name); !st) return st;
  bool to_stdout = file.empty() || file == "-";
  if (to_stdout && util::is_terminal(STDOUT_FILENO)) {
    return Error(Errc::invalid_argument,
                 "refusing to write the context archive to a terminal; give a FILE or redirect "
                 "standard output");
  }
  auto store = session.store();
  if (!store) return store.error();
  auto list = store->load();
  if (!list) return list.error();
  const Context* ctx = list->find(name);
  if (ctx == nullptr) return missing_context(name);
  auto archive = context::export_archive(*store, *ctx);
  if (!archive) return archive.error();

  if (to_stdout) {
    if (auto st = util::write_all(STDOUT_FILENO, *archive, "standard output"); !st) return st;
  } else {
    // O_EXCL: an export never overwrites an existing file.
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      int err = errno;
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
  if (!material_files(*store, *ctx).empty()) {
    warn("the archive contains the private material of context '" + name +
         "' (TLS keys included); keep it safe");
  }
  inform("Context " + name + " is exported to " + (to_stdout ? "standard output" : file));
  return {};
}

Status run_import(Session& session, const std::string& name, const std::string& file) {
  if (auto st = context::validate_name(name); !st) return st;
  bool from_stdin = file == "-";
  std::string source = from_stdin ? "standard input" : "file '" + file + "'";
  Result<std::string> bytes = std::string();
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
  auto archive = context::parse_archive(*bytes, source);
  if (!archive) return archive.error();

  auto store = session.store();
  if (!store) return store.error();
  auto list = store->load();
  if (!list) return list.error();
  if (list->find(name) != nullptr) {
    return Error(Errc::already_exists, "context '" + name + "' already exists");
  }
  // The archive is untrusted: re-validate everything through the drivers.
  Context ctx = archive->context;
  ctx.name = name;
  auto builder_address = normalize_builder(session, ctx.builder, ctx.builder_address);
  if (!builder_address) return builder_address.error().wrap("cannot import " + source);
  ctx.builder_address = *builder_address;
  auto runner_address = normalize_runner(session, ctx.runner, ctx.runner_address.value_or(""));
  if (!runner_address) return runner_address.error().wrap("cannot import " + source);
  ctx.runner_address = runner_address->empty() ? std::nullopt : std::optional(*runner_address);
  if (auto st = check_options(session, ctx); !st) return st.error().wrap("cannot import " + source);
  if (auto st = check_material(session, ctx, *archive); !st) {
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

}  // namespace

void add_context_commands(CLI::App& app, Session& session, Action& action) {
  CLI::App* group = app.add_subcommand("context", "Manage envd contexts");
  group->require_subcommand(1);

  {
    auto req = std::make_shared<CreateRequest>();
    CLI::App* cmd = group->add_subcommand("create", "Create a context");
    cmd->add_option("name", req->positional, "Name of the context");
    cmd->add_option("--name", req->name, "Name of the context")->allow_extra_args(false);
    cmd->add_option("--builder", req->builder,
                    "Builder type: a discovered builder driver (see 'envd plugin ls')")
        ->capture_default_str();
    cmd->add_option("--builder-address", req->builder_address,
                    "Builder address in the driver's form (default: the driver's default)");
    cmd->add_option("--runner", req->runner, "Runner type: a discovered runner driver")
        ->capture_default_str();
    cmd->add_option("--runner-address", req->runner_address, "Runner address (optional)");
    add_option_flags(cmd, req->options);
    cmd->add_flag("--use", req->use, "Make it the current context");
    cmd->callback([&session, &action, req] {
      action = [&session, req] { return run_create(session, *req); };
    });
  }
  {
    auto format = std::make_shared<std::string>("table");
    CLI::App* cmd = group->add_subcommand("ls", "List contexts");
    cmd->alias("list");
    cmd->add_option("-f,--format", *format, "Output format: table or json")->capture_default_str();
    cmd->callback([&session, &action, format] {
      action = [&session, format] { return run_ls(session, *format); };
    });
  }
  {
    auto positional = std::make_shared<std::vector<std::string>>();
    auto flagged = std::make_shared<std::vector<std::string>>();
    CLI::App* cmd = group->add_subcommand("use", "Make a context the current one");
    cmd->add_option("name", *positional, "Name of the context");
    cmd->add_option("--name", *flagged, "Name of the context")->allow_extra_args(false);
    cmd->callback([&session, &action, positional, flagged] {
      action = [&session, positional, flagged] { return run_use(session, *positional, *flagged); };
    });
  }
  {
    auto req = std::make_shared<RmRequest>();
    CLI::App* cmd = group->add_subcommand("rm", "Remove contexts");
    cmd->alias("remove");
    cmd->add_option("names", req->positional, "Names of the contexts");
    cmd->add_option("--name", req->name, "Name of a context (repeatable)")->allow_extra_args(false);
    cmd->add_flag("-f,--force", req->force,
                  "Remove the current context too (falling back to 'default') and ignore names "
                  "that do not exist");
    cmd->callback(
        [&session, &action, req] { action = [&session, req] { return run_rm(session, *req); }; });
  }
  {
    auto names = std::make_shared<std::vector<std::string>>();
    CLI::App* cmd =
        group->add_subcommand("inspect", "Show a context as JSON (default: the one in use)");
    cmd->add_option("name", *names, "Name of the context");
    cmd->callback([&session, &action, names] {
      action = [&session, names] { return run_inspect(session, *names); };
    });
  }
  {
    CLI::App* cmd = group->add_subcommand("show", "Print the name of the context in use");
    cmd->callback([&session, &action] { action = [&session] { return run_show(session); }; });
  }
  {
    auto req = std::make_shared<UpdateRequest>();
    CLI::App* cmd = group->add_subcommand("update", "Change a context's builder or runner");
    cmd->add_option("name", req->positional, "Name of the context");
    cmd->add_option("--name", req->name, "Name of the context")->allow_extra_args(false);
    cmd->add_option("--builder", req->builder, "New builder type");
    cmd->add_option("--builder-address", req->builder_address, "New builder address");
    cmd->add_option("--runner", req->runner, "New runner type");
    cmd->add_option("--runner-address", req->runner_address, "New runner address ('' removes it)");
    add_option_flags(cmd, req->options);
    cmd->callback([&session, &action, req] {
      action = [&session, req] { return run_update(session, *req); };
    });
  }
  {
    auto from = std::make_shared<std::string>();
    auto to = std::make_shared<std::string>();
    CLI::App* cmd =
        group->add_subcommand("rename", "Rename a context (the current one stays current)");
    cmd->add_option("old", *from, "Current name")->required();
    cmd->add_option("new", *to, "New name")->required();
    cmd->callback([&session, &action, from, to] {
      action = [&session, from, to] { return run_rename(session, *from, *to); };
    });
  }
  {
    auto name = std::make_shared<std::string>();
    auto file = std::make_shared<std::string>();
    CLI::App* cmd = group->add_subcommand(
        "export", "Write a context and its private material as a tar archive");
    cmd->add_option("name", *name, "Name of the context")->required();
    cmd->add_option("file", *file, "Output file, created new (default or '-': standard output)");
    cmd->callback([&session, &action, name, file] {
      action = [&session, name, file] { return run_export(session, *name, *file); };
    });
  }
  {
    auto name = std::make_shared<std::string>();
    auto file = std::make_shared<std::string>();
    CLI::App* cmd = group->add_subcommand("import", "Create a context from an exported archive");
    cmd->add_option("name", *name, "Name for the new context")->required();
    cmd->add_option("file", *file, "Archive file ('-': standard input)")->required();
    cmd->callback([&session, &action, name, file] {
      action = [&session, name, file] { return run_import(session, *name, *file); };
    });
  }
}

}  // namespace envd::cli
