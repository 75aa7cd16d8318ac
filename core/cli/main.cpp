// envd's entry point: parse the command line, run the chosen command, and turn
// any failure into one line on stderr and a non-zero exit code.
#include <fcntl.h>
#include <unistd.h>

#include <fmt/core.h>
#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "cli/client/program.hpp"
#include "cli/command_groups.hpp"
#include "cli/commands.hpp"
#include "cli/empty_values.hpp"
#include "cli/global_flags.hpp"
#include "cli/invocation.hpp"
#include "cli/signal_watcher.hpp"
#include "context/context.hpp"
#include "envd/relay.hpp"
#include "plugin/call_in_flight.hpp"
#include "util/data_out.hpp"
#include "util/message_out.hpp"
#include "util/step_times.hpp"
#include "util/terminal.hpp"
#include "util/text.hpp"

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kExitInterrupted = 130;  // 128 + SIGINT, as shells report it

int fail(const std::string& message, int code) {
  // What the command printed comes first, whole, also when stdout and stderr
  // share a terminal or a file; so does what a module printed (data_out.hpp).
  std::fflush(envd::util::data_out());
  std::fflush(stdout);
  // The message may quote a daemon's answer, a file or a name: whatever
  // control characters or escape sequences it holds are shown, not obeyed.
  envd::util::write_message(stderr,
                            fmt::format("envd: error: {}\n", envd::util::printable_lines(message)));
  return code;
}

// The command the parse reached ("envd context create"): its --help is the one
// a usage error points to.
const CLI::App& deepest_command(const CLI::App& app, std::string& path) {
  const CLI::App* deepest = &app;
  path = app.get_name();
  for (auto parsed = deepest->get_subcommands(); !parsed.empty();
       parsed = deepest->get_subcommands()) {
    deepest = parsed.front();
    path += " " + deepest->get_name();
  }
  return *deepest;
}

// The word where a command belongs that names none ("envd nosuch", "envd
// context nosuch"), or the unknown flag in its place, said in one line; empty
// when the parse reached a command that takes no command word.
std::string unknown_command_word(const CLI::App& app) {
  std::string path;
  const CLI::App& deepest = deepest_command(app, path);
  if (deepest.get_require_subcommand_min() == 0) return {};
  for (const auto& word : app.remaining(true)) {
    if (word.empty()) continue;
    if (word.front() != '-') {
      return fmt::format("unknown command '{}' for '{}' (see '{} --help')", word, path, path);
    }
    // "envd --bogus": the flag is the mistake, not the missing command.
    std::string flag = word.substr(0, word.find('='));
    return fmt::format("unknown flag '{}' for '{}' (see '{} --help')",
                       envd::util::printable(flag, 80), path, path);
  }
  return {};
}

// A usage error in one line. CLI11 says only "A subcommand is required" for a
// word where a command belongs that names none, so that word is named.
std::string usage_error(const CLI::App& app, const CLI::ParseError& e) {
  if (std::string unknown = unknown_command_word(app); !unknown.empty()) return unknown;
  std::string path;
  const CLI::App& deepest = deepest_command(app, path);
  // A one-value flag given twice: CLI11 says "--tag: At Most 1 required but
  // received 2", said here in the words of the rest of envd; as for a
  // one-value positional given twice ("expected one context name, got 2",
  // the noun from its description "Name of the context").
  std::string what = e.what();
  if (dynamic_cast<const CLI::ArgumentMismatch*>(&e) != nullptr) {
    constexpr std::string_view kAtMostOne = ": At Most 1 required but received ";
    if (auto at = what.find(kAtMostOne); at != std::string::npos) {
      const std::string name = what.substr(0, at);
      const std::string count = what.substr(at + kAtMostOne.size());
      if (what.front() == '-') {
        what = fmt::format("{} is given {} times; it takes one value", name, count);
      } else if (const CLI::Option* positional = deepest.get_option_no_throw(name)) {
        constexpr std::string_view kNameOf = "Name of the ";
        std::string noun = positional->get_description();
        noun = noun.rfind(kNameOf, 0) == 0 ? noun.substr(kNameOf.size()) + " name" : name;
        what = fmt::format("expected one {}, got {}", noun, count);
      }
    }
  }
  // A missing positional: CLI11 says "names is required"; said with the noun
  // of its description ("Names of the environments": "at least one
  // environment name is required").
  if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr && what.front() != '-') {
    constexpr std::string_view kIsRequired = " is required";
    const std::string name = what.substr(0, what.find(kIsRequired));
    const CLI::Option* positional = deepest.get_option_no_throw(name);
    const std::string description = positional != nullptr ? positional->get_description() : "";
    constexpr std::string_view kNameOf = "Name of the ";
    constexpr std::string_view kNamesOf = "Names of the ";
    if (what.size() == name.size() + kIsRequired.size() && description.rfind(kNameOf, 0) == 0) {
      const std::string noun = description.substr(kNameOf.size());
      const bool vowel = std::string_view("aeiou").find(noun.front()) != std::string_view::npos;
      what = fmt::format("{} {} name is required", vowel ? "an" : "a", noun);
    } else if (what.size() == name.size() + kIsRequired.size() &&
               description.rfind(kNamesOf, 0) == 0 && description.back() == 's') {
      const std::string noun =
          description.substr(kNamesOf.size(), description.size() - kNamesOf.size() - 1);
      what = fmt::format("at least one {} name is required", noun);
    }
  }
  // A flag's check that reads the value as the command will (runner_commands
  // read_by) says "invalid --cpus '...': ..." itself: CLI11's "--cpus: "
  // before it would say the flag twice; a positional's check names what the
  // value is not ("'' is not an environment name"), so "name: " goes too.
  if (dynamic_cast<const CLI::ValidationError*>(&e) != nullptr) {
    if (auto colon = what.find(": invalid ");
        colon != std::string::npos && what.front() == '-' && what.find(' ') > colon &&
        what.compare(colon + 10, colon, what, 0, colon) == 0) {
      what.erase(0, colon + 2);
    } else if (auto sep = what.find(": ");
               sep != std::string::npos && what.front() != '-' && what.find(' ') > sep) {
      const CLI::Option* positional = deepest.get_option_no_throw(what.substr(0, sep));
      if (positional != nullptr && positional->get_positional()) what.erase(0, sep + 2);
    }
  }
  // CLI11 quotes the words it could not take as they are: one line, shown.
  return fmt::format("{} (see '{} --help')", envd::util::printable(what, 1000), path);
}

// What a failed write to stdout is called: the system's words, unless stdout
// was closed when envd started (its stand-in, /dev/full, fails every write).
std::string output_lost(const std::string& reason) {
  if (!envd::util::was_closed_at_start(STDOUT_FILENO)) return reason;
  return "standard output is closed, so the output was lost; give it a file or a pipe";
}

// Help or the version, as CLI11 words it, written to the data stream
// (CLI11 would write to std::cout, which is stderr once data is kept apart);
// its exit code, unless the text could not be written (a closed stdout, a
// full disk).
int shown(const CLI::App& app, const CLI::Error& e) {
  std::ostringstream out;
  std::ostringstream err;
  const int code = app.exit(e, out, err);
  std::fputs(err.str().c_str(), stderr);
  std::FILE* data = envd::util::data_out();
  errno = 0;
  const bool lost = std::fputs(out.str().c_str(), data) == EOF;
  const bool unflushed = std::fflush(data) != 0;
  const int error = errno;
  if (lost || unflushed) {
    const std::string why = error != 0 ? std::strerror(error) : "a write failed";
    return fail(output_lost("cannot write the output: " + why), kExitFailure);
  }
  return code;
}

// Whether the parse met -h or --help as a flag of a command it reached (not
// as a flag's value, `--name -h`, nor after "--").
bool asks_for_help(const CLI::App& app) {
  for (const CLI::App* at = &app; at != nullptr;) {
    const CLI::Option* help = at->get_help_ptr();
    if (help != nullptr && help->count() > 0) return true;
    auto parsed = at->get_subcommands();
    at = parsed.empty() ? nullptr : parsed.front();
  }
  return false;
}

// Returns `code`, unless the command left something to the process's end
// (Invocation::leave_to_exit), after a failure too: then that is not torn
// down, and the process ends here with `code`, running no destructor.
int end_process(const envd::cli::Invocation& invocation, int code) {
  if (!invocation.leaves_anything_to_exit()) return code;
  // The core's own relays (an image load through an ssh:// Engine has an
  // ssh process behind it) end as they would at exit; the builder's module
  // said it keeps nothing running.
  envd::sdk::relay_registry().stop_all();
  std::fflush(envd::util::data_out());
  std::fflush(stdout);  // a module's stray lines (data_out.hpp)
  std::fflush(stderr);
  std::_Exit(code);
}

}  // namespace

int main(int argc, char** argv) {
  const auto main_entered = std::chrono::steady_clock::now();
  // A command that talks to a daemon runs in envd-client, from the start: in
  // envd this returns only if envd-client could not be executed. First, so
  // that envd-client finds the descriptors as the user left them.
  if (auto st = envd::cli::hand_over_to_client(argc, argv); !st) {
    return fail(st.error().message(), kExitFailure);
  }
  // A closed stdin, stdout or stderr gets a stand-in before anything is
  // opened; envd-client is told which were closed (launch.cpp).
  envd::util::stand_in_for_closed_descriptors();
  // Driver modules run in this process: what one prints goes to stderr,
  // never into the data on stdout (util/data_out.hpp).
  envd::util::keep_data_apart();
  // A file-size limit (ulimit -f) makes an oversized write fail with EFBIG,
  // which every writer reports, instead of killing envd half-way through it.
  std::signal(SIGXFSZ, SIG_IGN);
  // A driver module that crashes or calls exit() ends envd with it: the
  // driver and its verb are named in one line rather than nothing said.
  envd::plugin::install_crash_report();
  // A shell starts a background job (`envd build &` in a script) with SIGINT
  // ignored. envd takes it back at once, as Go's signal.Notify does for the
  // docker CLI and buildctl: while it waits on a secret's FIFO, before any
  // signal is blocked, Ctrl-C ends it; later the signal watcher reads it
  // (an ignored signal is dropped even while blocked, so it would never see
  // one otherwise).
  for (int signal : {SIGINT, SIGTERM}) {
    struct sigaction current {};
    if (::sigaction(signal, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) {
      std::signal(signal, SIG_DFL);
    }
  }
  envd::cli::Invocation invocation;
  envd::cli::Action action;
  if (std::getenv("ENVD_TIMINGS") != nullptr) {
    // Measured from the kernel's record of the process's creation, so the
    // dynamic loader's share shows (util/step_times.cpp has the method).
    if (auto start = envd::util::process_start()) invocation.process_start = *start;
    invocation.main_entered = main_entered;
  }

  CLI::App app{"envd: build images and run development environments through contexts", "envd"};
  app.set_version_flag("-v,--version", std::string("envd ") + ENVD_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  app.add_option("-c,--context", invocation.context_flag,
                 "Context to use (overrides ENVD_CONTEXT and the current context)");
  app.add_option("--buildkitd-image", invocation.buildkitd_image,
                 "Image a managed builder (docker-container) is bootstrapped from (overrides "
                 "the context's image option)");
  if (argc > 1 && std::string_view(argv[1]) == "__complete") {
    // The words before the one being completed name the command; the last
    // may be any command's prefix ("b": build, builder, bootstrap).
    envd::cli::add_commands(app, invocation, action, argc - 2, argv + 1);
    std::vector<std::string> words(argv + 2, argv + argc);
    auto st = envd::cli::complete_command_line(invocation, &app, words);
    return st ? 0 : kExitFailure;
  }
  // `envd help context create` is `envd context create --help`.
  const std::vector<std::string> help_words = envd::cli::help_as_flag(argc, argv);
  std::vector<const char*> help_argv;
  help_argv.reserve(help_words.size());
  for (const std::string& word : help_words) help_argv.push_back(word.c_str());
  const int arg_count = help_words.empty() ? argc : static_cast<int>(help_argv.size());
  const char* const* args = help_words.empty() ? argv : help_argv.data();
  envd::cli::add_commands(app, invocation, action, arg_count, args);
  const std::vector<std::string> words = envd::cli::split_empty_assignments(arg_count, args);
  std::vector<const char*> word_pointers;
  word_pointers.reserve(words.size());
  for (const std::string& word : words) word_pointers.push_back(word.c_str());

  try {
    app.parse(static_cast<int>(word_pointers.size()), word_pointers.data());
  } catch (const CLI::CallForHelp& e) {
    // `envd nosuch --help`, and `envd help nosuch` rewritten to it: help for
    // a command that does not exist is an error, not the parent's help.
    for (const auto& word : app.remaining(true)) {
      if (!word.empty() && word.front() != '-') {
        if (std::string unknown = unknown_command_word(app); !unknown.empty()) {
          return fail(unknown, kExitUsage);
        }
        break;
      }
    }
    return shown(app, e);
  } catch (const CLI::CallForAllHelp& e) {
    return shown(app, e);
  } catch (const CLI::CallForVersion& e) {
    return shown(app, e);
  } catch (const CLI::ParseError& e) {
    // CLI11 checks values before it looks for --help, so `run -i '' --help`
    // would answer with the value's error; a user asking for help gets it.
    // Unknown flags and missing values are still errors, as in the docker CLI.
    const bool bad_value = dynamic_cast<const CLI::ValidationError*>(&e) != nullptr ||
                           dynamic_cast<const CLI::ConversionError*>(&e) != nullptr;
    if (bad_value && asks_for_help(app)) return shown(app, CLI::CallForHelp());
    return fail(usage_error(app, e), kExitUsage);
  }

  try {
    if (invocation.context_flag) {
      if (auto st = envd::context::validate_name(*invocation.context_flag); !st) {
        return fail(st.error().message(), kExitUsage);
      }
    }
    if (!action) return fail("no command given (see 'envd --help')", kExitUsage);
    const std::vector<std::string> command = envd::cli::parsed_command(app);
    if (std::string unused = envd::cli::unused_buildkitd_image(invocation, command);
        !unused.empty()) {
      return fail(unused, kExitUsage);
    }
    if (auto st = envd::cli::check_context_flag(invocation, command); !st) {
      return fail(st.error().message(), kExitFailure);
    }
    if (auto st = action(); !st) {
      if (st.error().code() != envd::Errc::cancelled) {
        return end_process(invocation, fail(st.error().message(), kExitFailure));
      }
      // Ctrl-C, SIGTERM or SIGHUP, as the watcher collected it (130, 143, 129).
      const int signal = envd::cli::SignalWatcher::received();
      return end_process(invocation,
                         fail(st.error().message(), signal != 0 ? 128 + signal : kExitInterrupted));
    }
  } catch (const std::system_error& e) {
    // fmt::print's report of a write to stdout that failed half-way (a full
    // disk under a listing longer than stdio's buffer), or Table::print's:
    // the system's words. Any other system error is a bug, said as one.
    if (std::string_view(e.what()).rfind("cannot write", 0) == 0) {
      return fail(output_lost(e.what()), kExitFailure);
    }
    return fail(std::string("internal error: ") + e.what(), kExitFailure);
  } catch (const std::exception& e) {
    // Every expected failure is a Status; reaching this is a bug, still reported
    // as one line rather than a crash.
    return fail(std::string("internal error: ") + e.what(), kExitFailure);
  }
  // Data written through stdio (a listing) fails here, if at all: a full disk
  // or a closed pipe is reported, not taken for a complete listing.
  std::FILE* data = envd::util::data_out();
  const int flush_error = std::fflush(data) == 0 ? 0 : errno;
  if (flush_error != 0 || std::ferror(data) != 0) {
    return fail(output_lost(std::string("cannot write the output: ") +
                            (flush_error != 0 ? std::strerror(flush_error) : "a write failed")),
                kExitFailure);
  }
  return end_process(invocation, invocation.exit_code);
}
