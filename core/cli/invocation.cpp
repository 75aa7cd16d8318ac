#include "cli/invocation.hpp"

#include <fmt/core.h>

#include <cstdlib>
#include <utility>

#include "context/resolve.hpp"
#include "envd/internal/host_binding.hpp"
#include "plugin/search_path.hpp"
#include "util/message_out.hpp"
#include "util/text.hpp"

namespace envd::cli {

Result<OutputFormat> parse_format(const std::string& value) {
  if (value == "table") return OutputFormat::table;
  if (value == "json") return OutputFormat::json;
  return Error(Errc::invalid_argument,
               "invalid --format '" + util::printable(value, 80) + "': expected 'table' or 'json'");
}

Invocation::Invocation() { sdk::internal::bind_host(host.api()); }

Invocation::~Invocation() {
  while (!left_to_exit_.empty()) left_to_exit_.pop_back();
}

void Invocation::leave_to_exit(std::shared_ptr<void> resources) {
  left_to_exit_.push_back(std::move(resources));
}

Result<context::ContextStore> Invocation::store() const {
  auto store = context::ContextStore::open_default();
  if (store) {
    store->on_lock_wait([lock = store->lock_file()] {
      inform("Waiting for another envd command to finish changing the contexts ('" + lock.string() +
             "' is locked)");
    });
  }
  return store;
}

Result<Invocation::CurrentContext> Invocation::current_context() const {
  auto opened = store();
  if (!opened) return opened.error();
  auto list = opened->load();
  if (!list) return list.error();
  auto resolved = context::resolve_context(*list, context_flag);
  if (!resolved) return resolved.error();
  return CurrentContext{std::move(resolved->context), std::move(*opened)};
}

plugin::Registry& Invocation::registry(bool quiet) {
  if (!registry_) {
    plugin::DiscoverOptions options;
    options.host = host.api();
    registry_ = plugin::Registry::discover(plugin::default_search_path(),
                                           plugin::default_manifest_cache(), options);
    if (!quiet) {
      warn_ignored_plugin_path();
      for (const auto& warning : registry_->warnings()) warn(warning);
    }
  }
  return *registry_;
}

// Messages may quote daemons, files and names: shown printably (util/text.hpp).
void warn(const std::string& message) {
  util::write_message(stderr, fmt::format("envd: warning: {}\n", util::printable_lines(message)));
}

void warn_ignored_plugin_path() {
  if (const char* env = std::getenv("ENVD_PLUGIN_PATH")) {  // NOLINT(concurrency-mt-unsafe)
    for (const auto& entry : plugin::relative_entries(env)) {
      warn("ENVD_PLUGIN_PATH entry '" + util::printable(entry, 64) +
           "' is not an absolute path: ignored (plugins are never loaded relative to the "
           "working directory)");
    }
  }
}

void inform(const std::string& message) {
  util::write_message(stderr, fmt::format("{}\n", util::printable_lines(message)));
}

}  // namespace envd::cli
