#include "cli/environment_session.hpp"

#include <unistd.h>

#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "cli/empty_values.hpp"
#include "cli/flag_values.hpp"
#include "cli/signal_watcher.hpp"
#include "cli/terminal.hpp"
#include "util/terminal.hpp"
#include "util/text.hpp"

namespace envd::cli {
namespace {

namespace json = boost::json;

// How long finding the environment and starting its shell, or showing its
// logs, may take unless --timeout says; the shell session has no deadline,
// nor has a followed log unless --timeout gives it one.
constexpr std::chrono::milliseconds kReachTimeout{30000};

struct LogsFlags {
  std::string name;
  bool follow = false;
  int tail = -1;  // -1: all lines
  std::string timeout;
};

Status run_logs(Invocation& invocation, const LogsFlags& flags) {
  if (auto st = check_utf8("environment name", flags.name); !st) return st;
  if (auto st = refuse_closed_stdout("the logs"); !st) return st;
  auto target = resolve_runner(invocation);
  if (!target) return target.error();
  json::object args{{"name", flags.name}, {"follow", flags.follow}};
  if (flags.tail >= 0) args["tail"] = flags.tail;
  // Logs are data: written straight to stdout, never in raw mode.
  TerminalLease terminal;
  plugin::RunnerStdio stdio = terminal.stdio();
  stdio.in_fd = -1;
  stdio.make_raw = [] {};
  // A followed log has no deadline unless one is given.
  auto timeout =
      runner_timeout(flags.timeout, flags.follow ? std::chrono::milliseconds(0) : kReachTimeout);
  if (!timeout) return timeout.error();
  auto shown = target->driver.logs(runner_request(*target, *timeout, args), stdio);
  // Ctrl-C is how a followed log ends: with the signal's status and no
  // error, as docker logs -f and kubectl logs -f end.
  if (!shown && shown.error().code() == Errc::cancelled && flags.follow &&
      SignalWatcher::received() != 0) {
    invocation.exit_code = 128 + SignalWatcher::received();
    return {};
  }
  return shown;
}

Status run_attach(Invocation& invocation, const std::string& name, const std::string& shell,
                  const std::string& timeout_flag) {
  if (auto st = check_utf8("environment name", name); !st) return st;
  if (auto st = check_utf8("--shell", shell); !st) return st;
  if (auto st = refuse_closed_stdout("the shell's output"); !st) return st;
  auto timeout = runner_timeout(timeout_flag, kReachTimeout);
  if (!timeout) return timeout.error();
  auto target = resolve_runner(invocation);
  if (!target) return target.error();
  return attach_to(invocation, *target, name, shell, *timeout);
}

}  // namespace

Status refuse_closed_stdout(const char* what) {
  if (!util::was_closed_at_start(STDOUT_FILENO)) return {};
  return Error(Errc::invalid_argument, std::string("standard output is closed, so ") + what +
                                           " would be lost; give it a file or a pipe");
}

Status attach_to(Invocation& invocation, const RunnerTarget& target, const std::string& name,
                 const std::string& shell, std::chrono::milliseconds timeout) {
  json::object args{{"name", name}};
  if (!shell.empty()) {
    auto split = split_command_line("--shell", shell);
    if (!split) return split.error();
    if (split->empty()) return Error(Errc::invalid_argument, "--shell names no program");
    json::array words;
    for (auto& word : *split) words.emplace_back(std::move(word));
    args["shell"] = std::move(words);
  }
  TerminalLease terminal;
  if (timeout.count() <= 0) timeout = kReachTimeout;
  auto code = target.driver.attach(runner_request(target, timeout, args), terminal.stdio());
  if (!code) return code.error();
  invocation.exit_code = *code;
  return {};
}

void add_logs_command(CLI::App& envs, Invocation& invocation, Action& action) {
  auto flags = std::make_shared<LogsFlags>();
  CLI::App* logs = envs.add_subcommand("logs", "Show an environment's output");
  logs->add_option("name", flags->name, "Name of the environment")
      ->required()
      ->check(non_empty_word("an environment name"));
  logs->add_flag("-f,--follow", flags->follow,
                 "Keep showing new output until the environment stops (or Ctrl-C)");
  // CLI::NonNegativeNumber would answer "-1" with a 300-digit upper bound.
  const CLI::Validator line_count(
      [](const std::string& value) {
        std::int64_t n = 0;
        auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (value.empty() || ec != std::errc{} || end != value.data() + value.size() || n < 0 ||
            n > std::numeric_limits<int>::max()) {
          return "'" + util::printable(value, 40) + "' is not a number of lines (0 or more)";
        }
        return std::string();
      },
      "", "line-count");
  logs->add_option("-n,--tail", flags->tail, "Show only the last K lines")->check(line_count);
  add_runner_timeout_flag(*logs, flags->timeout, "the logs", "30s; with --follow, none");
  logs->callback([&invocation, &action, flags] {
    action = [&invocation, flags] { return run_logs(invocation, *flags); };
  });
}

void add_attach_command(CLI::App& app, Invocation& invocation, Action& action) {
  auto name = std::make_shared<std::string>();
  auto shell = std::make_shared<std::string>();
  CLI::App* attach = app.add_subcommand(
      "attach", "Open a shell in an environment (docker: an Engine exec; envd-server: ssh)");
  attach->alias("ssh");
  attach->add_option("name", *name, "Name of the environment")
      ->required()
      ->check(non_empty_word("an environment name"));
  // A command line that cannot be split, or holds no word, is a usage error
  // like any malformed value; attach_to splits it again, the same way.
  const CLI::Validator shell_words(
      [](const std::string& value) {
        auto split = split_command_line("--shell", value);
        if (!split) {
          std::string reason = split.error().message();
          if (reason.rfind("--shell: ", 0) == 0) reason.erase(0, 9);  // CLI11 names the flag
          return reason;
        }
        return split->empty() ? std::string("it names no program") : std::string();
      },
      "", "shell-words");
  attach
      ->add_option("--shell", *shell,
                   "Shell command line to run, split into words as a shell splits it "
                   "(quotes and backslashes; no expansions) (default: the runner's; docker: "
                   "bash if the image has it, else sh)")
      ->check(shell_words);
  auto timeout = std::make_shared<std::string>();
  add_runner_timeout_flag(*attach, *timeout, "the shell to start", "30s");
  attach->callback([&invocation, &action, name, shell, timeout] {
    action = [&invocation, name, shell, timeout] {
      return run_attach(invocation, *name, *shell, *timeout);
    };
  });
}

}  // namespace envd::cli
