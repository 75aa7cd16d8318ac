// envd's side of envd-client (program.hpp): handing a command line over.
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "cli/client/program.hpp"
#include "cli/command_groups.hpp"
#include "util/data_out.hpp"
#include "util/paths.hpp"
#include "util/terminal.hpp"

namespace envd::cli {
namespace {

// main's command line, for a hand-over that happens late (client_api).
int saved_argc = 0;
const char* const* saved_argv = nullptr;

// Whether the command runs in envd-client. A miss costs nothing but time
// (client_api() hands the command over when it gets there), and so does a
// command handed over that needed no client.
bool runs_in_client(int argc, const char* const* argv) {
  auto [command, subcommand] = command_words(argc, argv);
  for (std::string_view name :
       {"build", "builder", "bootstrap", "prune", "up", "login", "logout"}) {
    if (command == name) return true;
  }
  if (command != "context") return false;
  if (subcommand == "export" || subcommand == "import") return true;
  // Given a client certificate and key (on update, either: the other may be
  // stored), create and update check that they belong together, with OpenSSL
  // (builder_options.cpp): handed over before anything is printed, where a
  // late hand-over would say it twice.
  if (subcommand == "create" || subcommand == "update") {
    bool cert = false;
    bool key = false;
    for (int i = 1; i < argc; ++i) {
      std::string_view arg(argv[i]);
      cert = cert || arg.find("tls-cert") != std::string_view::npos;
      key = key || arg.find("tls-key") != std::string_view::npos;
    }
    return subcommand == "update" ? cert || key : cert && key;
  }
  return false;
}

// Returns only when envd-client could not be executed.
Error execute_client(int argc, const char* const* argv) {
  auto path = client_program_path();
  if (!path) return path.error();
  // envd-client's static initializers (gRPC's) open descriptors before its
  // main() runs, and one of them would take a closed 0, 1 or 2: a build's
  // `-f -` then read gRPC's eventfd as its Dockerfile. The stand-ins are put
  // in place here instead, and which were closed goes over in the
  // environment (kClosedAtStartVariable, program.hpp).
  util::stand_in_for_closed_descriptors();
  std::string closed;
  for (int fd = 0; fd <= 2; ++fd) {
    if (util::was_closed_at_start(fd)) closed += static_cast<char>('0' + fd);
  }
  if (closed.empty()) {
    ::unsetenv(kClosedAtStartVariable);
  } else {
    ::setenv(kClosedAtStartVariable, closed.c_str(), 1);
  }
  // What envd wrote so far goes out before its buffers are dropped, and
  // envd-client gets the user's stdout on descriptor 1, where envd found it.
  util::put_data_back();
  std::fflush(stdout);
  std::fflush(stderr);
  // argv[0] stays the user's: ps, and every message, still say envd.
  std::vector<char*> args;
  args.reserve(static_cast<size_t>(argc) + 1);
  for (int i = 0; i < argc; ++i) args.push_back(const_cast<char*>(argv[i]));
  args.push_back(nullptr);
  // A late hand-over may come after a command blocked SIGINT and SIGTERM for
  // its signal watcher; envd-client starts as envd did, with none blocked.
  sigset_t none;
  sigset_t previous;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, &previous);
  ::execv(path->c_str(), args.data());
  const int error = errno;
  util::keep_data_apart();  // envd goes on (to say why), its data apart again
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return Error(Errc::internal, "cannot run '" + path->string() + "': " + std::strerror(error) +
                                   " (reinstall envd: the program ships with it)");
}

}  // namespace

Result<std::filesystem::path> client_program_path() {
  auto prefix = util::install_prefix();
  if (!prefix) return prefix.error();
  return *prefix / ENVD_CLIENT_PROGRAM_RELATIVE;
}

Status hand_over_to_client(int argc, const char* const* argv) {
  saved_argc = argc;
  saved_argv = argv;
  if (asks_for_help(argc, argv) || !runs_in_client(argc, argv)) return {};
  return execute_client(argc, argv);
}

Result<const ClientApi*> client_api() {
  if (saved_argv == nullptr) {
    return Error(Errc::internal, "the command line was not recorded before the command ran");
  }
  return execute_client(saved_argc, saved_argv);
}

}  // namespace envd::cli
