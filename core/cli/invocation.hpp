// What one envd invocation works with: the global flags, the context store and,
// only when a command needs a driver, the driver registry. Commands that need no
// driver never touch the registry, so they load and scan no module.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "context/context.hpp"
#include "context/store.hpp"
#include "envd/result.hpp"
#include "plugin/host.hpp"
#include "plugin/registry.hpp"
#include "util/step_times.hpp"

namespace envd::cli {

enum class OutputFormat { table, json };

// "table" / "json"; anything else is an error naming the flag and the value.
Result<OutputFormat> parse_format(const std::string& value);

class Invocation {
 public:
  // Binds the core's own copy of the SDK to `host`.
  Invocation();
  ~Invocation();
  Invocation(const Invocation&) = delete;
  Invocation& operator=(const Invocation&) = delete;

  // The services driver modules get (progress, logs, cancellation): the
  // process's, which outlives this invocation, the registry and every module
  // (a module's thread may call it after main() returns).
  plugin::Host& host = plugin::process_host();

  // --context, if given.
  std::optional<std::string> context_flag;

  // --buildkitd-image, if given: the image a managed builder (docker-container)
  // is bootstrapped from, overriding the context's `image` driver option.
  std::string buildkitd_image;

  // Set by commands whose --progress is quiet: drivers' progress lines (image
  // pulls, "starting envd_buildkitd") are then not shown.
  bool quiet_progress = false;

  // The word after the command's name on the command line, empty under help:
  // a group registers only the subcommand it names (cli/command_groups.hpp).
  std::string_view subcommand_word;

  // The exit status of a command that succeeded but passes on another
  // program's status (`envd attach`: the shell's).
  int exit_code = 0;

  // With ENVD_TIMINGS set: when the process began and when main() was
  // entered, for the step timings a command prints (util/step_times.hpp).
  std::optional<util::ProcessStart> process_start;
  std::chrono::steady_clock::time_point main_entered{};

  // The context store at the configured directory.
  Result<context::ContextStore> store() const;

  // The context this invocation works in (--context, else ENVD_CONTEXT, else
  // the store's current one), with the store it was loaded from.
  struct CurrentContext {
    context::Context context;
    context::ContextStore store;
  };
  Result<CurrentContext> current_context() const;

  // Discovers the driver modules on first use and prints one warning per
  // refused module to stderr (unless `quiet`, for commands that report refusals
  // themselves).
  plugin::Registry& registry(bool quiet = false);

  // Hands what a finished command no longer uses to the end of the process,
  // for the kernel to reclaim: a build's gRPC channel and gRPC itself, whose
  // orderly teardown (closing the channel, joining gRPC's threads) took 0.5
  // to 4 ms that nobody waits for. Once anything was handed over, main()
  // flushes stdio and ends the process with std::_Exit, running no
  // destructors; so only a command after which the process ends may call
  // this, and only with objects whose destructors do nothing the user would
  // miss (no file to finish, no daemon to tell). Were the invocation
  // destroyed anyway, they go in the reverse of the order they came.
  void leave_to_exit(std::shared_ptr<void> resources);
  bool leaves_anything_to_exit() const { return !left_to_exit_.empty(); }

 private:
  std::optional<plugin::Registry> registry_;
  std::vector<std::shared_ptr<void>> left_to_exit_;
};

// Prints "envd: warning: <message>" to stderr.
void warn(const std::string& message);

// Warns of each ENVD_PLUGIN_PATH entry that is ignored (not an absolute path).
// Invocation::registry() does unless quiet; the reports that list modules
// (plugin ls, version) do themselves, since their table cannot show it.
void warn_ignored_plugin_path();

// Prints a status message (not data) to stderr.
void inform(const std::string& message);

}  // namespace envd::cli
