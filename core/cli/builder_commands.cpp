// `envd builder status|stop|rm`, `envd bootstrap` and `envd prune`: their
// flags. They run in envd-client (builder_run.cpp), which holds the BuildKit
// client.
#include <memory>
#include <string>

#include "cli/choice_flag.hpp"
#include "cli/client/program.hpp"
#include "cli/commands.hpp"
#include "cli/duration_flag.hpp"
#include "cli/size_flag.hpp"

namespace envd::cli {

void add_builder_commands(CLI::App& app, Invocation& invocation, Action& action) {
  {
    CLI::App* group = app.add_subcommand("builder", "Inspect and manage the context's builder");
    group->require_subcommand(1);
    auto format = std::make_shared<std::string>("table");
    auto timeout = std::make_shared<std::string>();
    CLI::App* status = group->add_subcommand(
        "status", "Show the builder: its container's state, reachability, BuildKit version");
    status->add_option("-f,--format", *format, "Output format: table or json")
        ->capture_default_str()
        ->check(one_of({"table", "json"}));
    status
        ->add_option("--connect-timeout", *timeout,
                     "How long to wait (default: BUILDKIT_CONNECTING_TIMEOUT or 10s)")
        ->check(positive_duration());
    status->callback([&invocation, &action, format, timeout] {
      action = [&invocation, format, timeout] {
        return run_in_client([&](const ClientApi& client) {
          return client.builder_status(invocation, *format, *timeout);
        });
      };
    });

    CLI::App* stop =
        group->add_subcommand("stop", "Stop the builder's container (managed builders)");
    auto stop_timeout = std::make_shared<std::string>();
    stop->add_option("--connect-timeout", *stop_timeout,
                     "How long to wait for the builder's engine (default: "
                     "BUILDKIT_CONNECTING_TIMEOUT or 10s; buildkitd then has 10s to stop)")
        ->check(positive_duration());
    stop->callback([&invocation, &action, stop_timeout] {
      action = [&invocation, stop_timeout] {
        return run_in_client([&](const ClientApi& client) {
          return client.builder_stop(invocation, *stop_timeout);
        });
      };
    });

    auto keep_cache = std::make_shared<bool>(false);
    CLI::App* rm = group->add_subcommand(
        "rm", "Remove the builder's container and its build cache (managed builders)");
    rm->add_flag("--keep-cache", *keep_cache, "Keep the volume holding the build cache");
    auto rm_timeout = std::make_shared<std::string>();
    rm->add_option("--connect-timeout", *rm_timeout,
                   "How long to wait for the builder's engine (default: "
                   "BUILDKIT_CONNECTING_TIMEOUT or 10s)")
        ->check(positive_duration());
    rm->callback([&invocation, &action, keep_cache, rm_timeout] {
      action = [&invocation, keep_cache, rm_timeout] {
        return run_in_client([&](const ClientApi& client) {
          return client.builder_rm(invocation, *keep_cache, *rm_timeout);
        });
      };
    });
  }
  {
    auto recreate = std::make_shared<bool>(false);
    auto format = std::make_shared<std::string>("table");
    auto timeout = std::make_shared<std::string>();
    CLI::App* bootstrap = app.add_subcommand(
        "bootstrap", "Create and start the context's builder (done by any build on first use)");
    bootstrap->add_flag("--recreate", *recreate,
                        "Replace an existing builder container (its build cache is kept)");
    bootstrap->add_option("-f,--format", *format, "Output format: table or json")
        ->capture_default_str()
        ->check(one_of({"table", "json"}));
    bootstrap
        ->add_option("--connect-timeout", *timeout,
                     "How long to wait for BuildKit (default: BUILDKIT_CONNECTING_TIMEOUT "
                     "or 10s)")
        ->check(positive_duration());
    bootstrap->callback([&invocation, &action, recreate, format, timeout] {
      action = [&invocation, recreate, format, timeout] {
        return run_in_client([&](const ClientApi& client) {
          return client.bootstrap(invocation, *recreate, *format, *timeout);
        });
      };
    });
  }
  {
    auto flags = std::make_shared<PruneRequest>();
    CLI::App* prune = app.add_subcommand("prune", "Remove build cache from the context's builder");
    prune->add_flag("-a,--all", flags->all, "Remove all unused cache, not only what GC would");
    prune
        ->add_option("--keep-storage", flags->keep_storage,
                     "Keep this much cache, e.g. 10GB or 512MiB")
        ->check(size_value());
    prune
        ->add_option("--keep-duration", flags->keep_duration,
                     "Keep cache used within this long, e.g. 48h")
        ->check(duration_value());
    prune->add_option("-f,--format", flags->format, "Output format: table or json")
        ->capture_default_str()
        ->check(one_of({"table", "json"}));
    prune
        ->add_option("--connect-timeout", flags->timeout,
                     "How long to wait (default: BUILDKIT_CONNECTING_TIMEOUT or 10s)")
        ->check(positive_duration());
    prune->callback([&invocation, &action, flags] {
      action = [&invocation, flags] {
        return run_in_client(
            [&](const ClientApi& client) { return client.prune(invocation, *flags); });
      };
    });
  }
}

}  // namespace envd::cli
