// `envd context create`: a new context, its addresses and builder options
// checked by the drivers, its file options copied into the store.
#include "cli/context/context_commands.hpp"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include "cli/context/builder_options.hpp"
#include "cli/context/common.hpp"
#include "cli/context/runner_options.hpp"
#include "cli/empty_values.hpp"
#include "context/file_staging.hpp"
#include "context/store.hpp"

namespace envd::cli {
namespace {

namespace fs = std::filesystem;
using context::Context;
using context::ContextList;

struct CreateRequest {
  NameArgs names;
  std::string builder = "docker-container";
  std::string builder_address;
  std::string runner = "docker";
  bool runner_given = false;  // --runner on the command line, not the default
  std::optional<std::string> runner_address;
  OptionFlags options;
  RunnerOptionFlags runner_options;
  bool use = false;
};

Status run_create(Invocation& invocation, const CreateRequest& req) {
  auto name = one_context_name(req.names);
  if (!name) return name.error();
  auto store = invocation.store();
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
  auto builder_address = normalize_builder_address(invocation, req.builder, req.builder_address);
  if (!builder_address) return builder_address.error();
  ctx.builder_address = *builder_address;
  // A build-only install (a CI image with one builder module) has no runner
  // module. The default runner is then recorded unchecked, as upstream envd
  // records it: the context builds, and a command that runs an environment
  // names the missing runner when it needs it.
  const bool runner_untouched =
      !req.runner_given && !req.runner_address && !req.runner_options.any();
  auto runner_address =
      normalize_runner_address(invocation, req.runner, req.runner_address.value_or(""));
  if (!runner_address && runner_untouched && runner_address.error().code() == Errc::not_found) {
    inform("Runner '" + req.runner + "' is not installed: context " + ctx.name +
           " can build but not run environments");
    runner_address = std::string();
  }
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
    auto change = change_builder_options(invocation, ctx.builder, {}, *given);
    if (!change) return change.error();
    options = std::move(*change);
    ctx.builder_options = options.options;
  }
  auto runner_options = change_runner_options(invocation, ctx.runner, {}, req.runner_options);
  if (!runner_options) return runner_options.error();
  ctx.runner_options = runner_options->options;
  if (auto st = check_runner_tls_ca(ctx); !st) return st;
  options.files.insert(runner_options->files.begin(), runner_options->files.end());
  context::StagedFiles files(*store, ctx);
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

}  // namespace

void add_context_create_command(CLI::App& group, Invocation& invocation, Action& action) {
  auto req = std::make_shared<CreateRequest>();
  CLI::App* cmd = group.add_subcommand("create", "Create a context");
  add_name_args(cmd, req->names);
  cmd->add_option("--builder", req->builder,
                  "Builder type: a discovered builder driver (see 'envd plugin ls')")
      ->capture_default_str();
  allow_empty(cmd->add_option("--builder-address", req->builder_address,
                              "Builder address in the driver's form (default, and '': the "
                              "driver's default)"));
  CLI::Option* runner =
      cmd->add_option("--runner", req->runner, "Runner type: a discovered runner driver")
          ->capture_default_str();
  allow_empty(cmd->add_option("--runner-address", req->runner_address,
                              "Runner address (optional; '' for none)"));
  add_option_flags(cmd, req->options, OptionVerb::create);
  add_runner_option_flags(cmd, req->runner_options, OptionVerb::create);
  cmd->add_flag("--use", req->use, "Make it the current context");
  cmd->callback([&invocation, &action, req, runner] {
    req->runner_given = runner->count() > 0;
    action = [&invocation, req] { return run_create(invocation, *req); };
  });
}

}  // namespace envd::cli
