#include "plugin/host.hpp"

#include <fmt/core.h>

#include <cstdlib>
#include <string_view>

#include "util/message_out.hpp"
#include "util/text.hpp"

namespace envd::plugin {
namespace {

// A module's progress or log line as shown: at most this many bytes (a 10 MiB
// line went to stderr whole), with "..." where it was cut, as a module's
// error message is bounded (module_handles.cpp).
constexpr std::size_t kMaxLineBytes = std::size_t{16} * 1024;

}  // namespace

Host::Host(std::FILE* err) : err_(err) {
  const char* debug = std::getenv("ENVD_DEBUG");
  debug_ = debug != nullptr && debug[0] != '\0' && std::string_view(debug) != "0";
  api_.struct_size = sizeof(envd_host_api);
  api_.context = this;
  api_.progress = &Host::progress;
  api_.log = &Host::log;
  api_.cancelled = &Host::is_cancelled;
}

void Host::progress(void* context, const char* line) {
  auto* host = static_cast<Host*>(context);
  if (line == nullptr || host->quiet_.load()) return;
  // A module's line may quote a daemon: nothing in it drives the terminal.
  util::write_message(host->err_, fmt::format("{}\n", util::printable(line, kMaxLineBytes)));
}

void Host::log(void* context, int32_t level, const char* line) {
  auto* host = static_cast<Host*>(context);
  if (line == nullptr) return;
  if (level >= ENVD_LOG_WARNING) {
    util::write_message(host->err_,
                        fmt::format("envd: warning: {}\n", util::printable(line, kMaxLineBytes)));
  } else if (host->debug_) {
    util::write_message(host->err_,
                        fmt::format("envd: debug: {}\n", util::printable(line, kMaxLineBytes)));
  }
}

int32_t Host::is_cancelled(void* context) {
  return static_cast<const Host*>(context)->cancelled_.load() ? 1 : 0;
}

Host& process_host() {
  // Leaked on purpose: no destructor runs at exit under a module's thread.
  static Host* const host = new Host();  // NOLINT(cppcoreguidelines-owning-memory)
  return *host;
}

}  // namespace envd::plugin
