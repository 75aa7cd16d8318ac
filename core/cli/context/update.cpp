// `envd context update`: a context's builder, runner, their addresses and the
// builder's options, checked by the drivers; file options are swapped in only
// once the store holds the new record.
#include "cli/context/context_commands.hpp"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cli/context/builder_options.hpp"
#include "cli/context/common.hpp"
#include "cli/context/runner_options.hpp"
#include "cli/empty_values.hpp"
#include "context/file_staging.hpp"
#include "context/store.hpp"
#include "context/stored_files.hpp"

namespace envd::cli {
namespace {

using context::Context;
using context::ContextList;

struct UpdateRequest {
  NameArgs names;
  std::optional<std::string> builder;
  std::optional<std::string> builder_address;
  std::optional<std::string> runner;
  std::optional<std::string> runner_address;
  OptionFlags options;
  RunnerOptionFlags runner_options;
};

// What an update makes of one context: the new record, and the file options
// written anew or removed. Worked out from the record as read, outside the
// store's lock (the drivers check addresses and options).
struct PlannedUpdate {
  Context changed;
  OptionChange options;
};

Result<PlannedUpdate> plan_update(Invocation& invocation, const UpdateRequest& req,
                                  const Context& found, const GivenOptions& given,
                                  const std::filesystem::path& data_dir) {
  const std::string& name = found.name;
  PlannedUpdate plan{found, {}};
  Context& changed = plan.changed;
  OptionChange& options = plan.options;
  if (req.builder || req.builder_address) {
    changed.builder = req.builder.value_or(found.builder);
    std::string address = req.builder_address.value_or(found.builder_address);
    auto normalized = normalize_builder_address(invocation, changed.builder, address);
    if (!normalized) {
      if (!req.builder_address) {
        return normalized.error().wrap("the address of context '" + name +
                                       "' does not suit the new builder; pass --builder-address");
      }
      return normalized.error();
    }
    changed.builder_address = *normalized;
  }
  // A new builder type starts without the old type's options (and their files).
  bool new_builder = changed.builder != found.builder;
  if (new_builder || !given.empty()) {
    context::Options current = new_builder ? context::Options{} : found.builder_options;
    auto change = change_builder_options(invocation, changed.builder, current, given,
                                         new_builder ? std::filesystem::path() : data_dir);
    if (!change) return change.error();
    options = std::move(*change);
    changed.builder_options = options.options;
    if (new_builder) {
      auto old_driver = invocation.registry().builder(found.builder);
      if (old_driver) {
        for (const auto& key : old_driver->file_options()) {
          if (found.builder_options.count(key) != 0) options.removed_files.push_back(key);
        }
      }
    }
  }
  if (req.runner || req.runner_address) {
    changed.runner = req.runner.value_or(found.runner);
    std::string address = req.runner_address.value_or(found.runner_address.value_or(""));
    auto normalized = normalize_runner_address(invocation, changed.runner, address);
    if (!normalized) {
      if (!req.runner_address) {
        return normalized.error().wrap("the runner address of context '" + name +
                                       "' does not suit the new runner; pass --runner-address");
      }
      return normalized.error();
    }
    changed.runner_address = normalized->empty() ? std::nullopt : std::optional(*normalized);
    if (changed.runner != found.runner) {
      // A new runner type starts without the old type's options (and files).
      changed.runner_options.clear();
      for (const auto& [key, value] : found.runner_options) {
        if (value == context::stored_file_value(key)) options.removed_files.push_back(key);
      }
    }
  }
  if (req.runner_options.any()) {
    auto runner_options = change_runner_options(invocation, changed.runner, changed.runner_options,
                                                req.runner_options);
    if (!runner_options) return runner_options.error();
    changed.runner_options = runner_options->options;
    options.files.insert(runner_options->files.begin(), runner_options->files.end());
    options.removed_files.insert(options.removed_files.end(), runner_options->removed_files.begin(),
                                 runner_options->removed_files.end());
  }
  if (auto st = check_runner_tls_ca(changed); !st) return st.error();
  // A file written anew is not removed afterwards (commit removes after it renames).
  std::erase_if(options.removed_files,
                [&](const std::string& key) { return options.files.count(key) != 0; });
  return plan;
}

// How often an update is worked out again when another envd changed the
// context between the read and the lock (each round is a few milliseconds).
constexpr int kUpdateRounds = 5;

Status run_update(Invocation& invocation, const UpdateRequest& req) {
  auto name = one_context_name(req.names);
  if (!name) return name.error();
  if (!req.builder && !req.builder_address && !req.runner && !req.runner_address &&
      !req.options.any() && !req.runner_options.any()) {
    return Error(Errc::invalid_argument,
                 "nothing to update for context '" + *name +
                     "': pass --builder, --builder-address, --builder-opt, a --builder-tls-* "
                     "flag, --runner, --runner-address, --runner-opt or --runner-tls-ca");
  }
  auto given = given_options(req.options);
  if (!given) return given.error();
  auto store = invocation.store();
  if (!store) return store.error();
  for (int round = 1;; ++round) {
    auto list = store->load();
    if (!list) return list.error();
    const Context* found = list->find(*name);
    if (found == nullptr) return missing_context(*name);
    auto plan = plan_update(invocation, req, *found, *given, store->data_dir(*found));
    if (!plan) return plan.error();

    // The change is made only to the record it was worked out from, and its
    // files are staged, the record written and the files renamed into place
    // under the store's lock: two updates at once each apply whole (one after
    // the other), never one over a copy the other has made stale.
    bool stale = false;
    context::StagedFiles files(*store, *found);
    auto st = store->update(
        [&](ContextList& current) -> Status {
          Context* ctx = current.find(*name);
          if (ctx == nullptr) return missing_context(*name);
          if (!(*ctx == *found)) {
            stale = true;
            return Error(Errc::unavailable, "context '" + *name +
                                                "' was changed by another envd while this "
                                                "update was worked out; run it again");
          }
          if (auto staged = files.stage(plan->options.files); !staged) return staged;
          *ctx = plan->changed;
          return {};
        },
        [&] { return files.commit(plan->options.removed_files); });
    if (stale && round < kUpdateRounds) continue;
    if (!st) return st;
    inform("Context " + *name + " is updated");
    return {};
  }
}

}  // namespace

void add_context_update_command(CLI::App& group, Invocation& invocation, Action& action) {
  auto req = std::make_shared<UpdateRequest>();
  CLI::App* cmd = group.add_subcommand("update", "Change a context's builder or runner");
  add_name_args(cmd, req->names);
  cmd->add_option("--builder", req->builder, "New builder type");
  allow_empty(cmd->add_option("--builder-address", req->builder_address,
                              "New builder address ('' asks for the driver's default)"));
  cmd->add_option("--runner", req->runner, "New runner type");
  allow_empty(cmd->add_option("--runner-address", req->runner_address,
                              "New runner address ('' removes it)"));
  add_option_flags(cmd, req->options, OptionVerb::update);
  add_runner_option_flags(cmd, req->runner_options, OptionVerb::update);
  cmd->callback([&invocation, &action, req] {
    action = [&invocation, req] { return run_update(invocation, *req); };
  });
}

}  // namespace envd::cli
