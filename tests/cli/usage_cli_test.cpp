// Mistakes on the command line itself: an unknown command is named, and a
// command's flag values are checked before anything they would act on.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cli_harness.hpp"
#include "envd/process.hpp"

namespace envd::test {
namespace {

namespace fs = std::filesystem;

using UsageCli = CliTest;

const std::string kError = "envd: error: ";

TEST_F(UsageCli, AnUnknownCommandIsNamed) {
  auto r = envd({"nosuch"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, kError + "unknown command 'nosuch' for 'envd' (see 'envd --help')\n");
}

TEST_F(UsageCli, AnUnknownCommandAfterGlobalFlagsIsNamed) {
  auto r = envd({"--context", "default", "nosuch", "--flag"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, kError + "unknown command 'nosuch' for 'envd' (see 'envd --help')\n");
}

TEST_F(UsageCli, AnUnknownSubcommandIsNamedWithItsGroup) {
  auto r = envd({"context", "nosuch"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            kError + "unknown command 'nosuch' for 'envd context' (see 'envd context --help')\n");
}

TEST_F(UsageCli, AMissingCommandPointsToItsGroupsHelp) {
  auto r = envd({"context"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, kError + "A subcommand is required (see 'envd context --help')\n");
}

// Before any command: the flag is named, not the missing command.
TEST_F(UsageCli, AnUnknownFlagWhereACommandBelongsIsNamed) {
  auto r = envd({"--bogus"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, kError + "unknown flag '--bogus' for 'envd' (see 'envd --help')\n");
  r = envd({"context", "--nope=1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            kError + "unknown flag '--nope' for 'envd context' (see 'envd context --help')\n");
}

TEST_F(UsageCli, AnUnknownFlagPointsToItsCommandsHelp) {
  auto r = envd({"context", "ls", "--bogus"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, kError +
                       "The following argument was not expected: --bogus (see 'envd context ls "
                       "--help')\n");
}

// A command that takes a context name, given only an unknown flag: the flag
// is the mistake, not the name it did not reach.
TEST_F(UsageCli, AnUnknownFlagIsNamedBeforeAMissingName) {
  for (const char* command : {"create", "use", "update", "inspect", "rm"}) {
    auto r = envd({"context", command, "-x"});
    EXPECT_EQ(r.exit_code, 2) << command;
    EXPECT_EQ(r.err, kError + "The following argument was not expected: -x (see 'envd context " +
                         command + " --help')\n");
  }
}

// A flag that takes one value, given twice, is said in envd's words, not as
// CLI11's "At Most 1 required but received 2".
TEST_F(UsageCli, AOneValueFlagGivenTwiceIsNamed) {
  auto r = envd({"build", "--target", "a", "--target", "b", "."});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            kError + "--target is given 2 times; it takes one value (see 'envd build --help')\n");
  auto builder = envd({"context", "create", "x", "--builder", "tcp", "--builder", "unix"});
  EXPECT_EQ(builder.exit_code, 2);
  EXPECT_EQ(builder.err, kError +
                             "--builder is given 2 times; it takes one value (see 'envd context "
                             "create --help')\n");
}

// An environment named '' (a script's unset variable) is a command line envd
// cannot use: exit 2 before the runner is asked, as an empty flag value.
TEST_F(UsageCli, AnEmptyEnvironmentNameIsAUsageError) {
  for (const auto& [args, expected] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"down", "dev", ""}, "'' is not an environment name (see 'envd down --help')"},
           {{"attach", ""}, "'' is not an environment name (see 'envd attach --help')"},
           {{"envs", "logs", ""}, "'' is not an environment name (see 'envd envs logs --help')"},
           {{"envs", "describe", ""},
            "'' is not an environment name (see 'envd envs describe --help')"},
           // None at all: said with the noun, not CLI11's "names is required".
           {{"down"}, "at least one environment name is required (see 'envd down --help')"},
           {{"attach"}, "an environment name is required (see 'envd attach --help')"},
           {{"envs", "logs"}, "an environment name is required (see 'envd envs logs --help')"},
           {{"envs", "describe"},
            "an environment name is required (see 'envd envs describe --help')"},
           {{"context", "export"},
            "a context name is required (see 'envd context export --help')"}}) {
    auto r = envd(args);
    EXPECT_EQ(r.exit_code, 2) << args[0];
    EXPECT_EQ(r.err, kError + expected + "\n");
  }
}

// attach's --shell is split as the command line is read: one that cannot
// be split, or names no program, is a usage error like any malformed value.
TEST_F(UsageCli, AnAttachShellThatCannotBeSplitIsAUsageError) {
  for (const auto& [shell, expected] : std::vector<std::pair<std::string, std::string>>{
           {"sh -c \"unterminated", "--shell: a \" is not closed"},
           {"sh -c 'x", "--shell: a ' is not closed"},
           {"   ", "--shell: it names no program"}}) {
    auto r = envd({"attach", "dev", "--shell", shell});
    EXPECT_EQ(r.exit_code, 2) << shell;
    EXPECT_EQ(r.err, kError + expected + " (see 'envd attach --help')\n");
  }
}

// Sizes and durations are checked as the command line is read, prune's as
// every other command's: exit 2, nothing contacted.
TEST_F(UsageCli, ASizeOrDurationThatIsNotOneIsAUsageError) {
  auto negative = envd({"prune", "--keep-duration", "-5h"});
  EXPECT_EQ(negative.exit_code, 2);
  EXPECT_EQ(negative.err, kError +
                              "--keep-duration: '-5h' is not a duration (e.g. 30s, 1m30s, 500ms; "
                              "at most 277777h) (see 'envd prune --help')\n");
  auto storage = envd({"prune", "--keep-storage", "abc"});
  EXPECT_EQ(storage.exit_code, 2);
  EXPECT_EQ(storage.err, kError +
                             "--keep-storage: 'abc' is not a size (e.g. 10GB, 512MiB, 2g or a "
                             "number of bytes) (see 'envd prune --help')\n");
  auto huge = envd({"prune", "--keep-storage", "99999999999999999TB"});
  EXPECT_EQ(huge.exit_code, 2);
  EXPECT_EQ(huge.err, kError +
                          "--keep-storage: '99999999999999999TB' is larger than the 8 EiB a size "
                          "can be (see 'envd prune --help')\n");
  auto shm = envd({"up", "--shm-size", "zz", "."});
  EXPECT_EQ(shm.exit_code, 2);
  EXPECT_NE(shm.err.find("--shm-size: 'zz' is not a size"), std::string::npos) << shm.err;
}

// `envd help COMMAND...` is `envd COMMAND... --help`, as in the docker CLI,
// global options kept; `envd help` alone is the top level's help.
TEST_F(UsageCli, HelpNamesTheCommandWhoseHelpToShow) {
  EXPECT_EQ(envd_ok({"help", "context", "create"}).out,
            envd_ok({"context", "create", "--help"}).out);
  EXPECT_EQ(envd_ok({"-c", "default", "help", "build"}).out, envd_ok({"build", "--help"}).out);
  EXPECT_EQ(envd_ok({"help", "--", "build"}).out, envd_ok({"build", "--help"}).out);
  auto top = envd_ok({"help"});
  EXPECT_EQ(top.out, envd_ok({"--help"}).out);
  EXPECT_NE(top.out.find("\n  help "), std::string::npos) << "listed with the commands";
  auto bogus = envd({"help", "--bogus"});
  EXPECT_EQ(bogus.exit_code, 2);
  EXPECT_EQ(bogus.err,
            kError + "The following argument was not expected: --bogus (see 'envd help --help')\n");
  // Help for a command that does not exist is an error, not the help of the
  // group it was looked for in.
  for (const auto& [args, expected] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"help", "nope"}, "unknown command 'nope' for 'envd' (see 'envd --help')"},
           {{"nope", "--help"}, "unknown command 'nope' for 'envd' (see 'envd --help')"},
           {{"help", "builder", "nope"},
            "unknown command 'nope' for 'envd builder' (see 'envd builder --help')"},
           {{"context", "nope", "-h"},
            "unknown command 'nope' for 'envd context' (see 'envd context --help')"}}) {
    auto r = envd(args);
    EXPECT_EQ(r.exit_code, 2) << args[1];
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, kError + expected + "\n");
  }
}

// A value holding a newline is quoted escaped: the error stays one line.
TEST_F(UsageCli, AValueWithANewlineIsQuotedOnOneLine) {
  for (const auto& [args, expected] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"context", "ls", "--format", "a\nb"},
            "--format: 'a\\x0ab' is not one of table or json"},
           {{"context", "create", "--name", "x", "--builder", "a\nb"},
            "unknown builder type 'a\\x0ab'; available: "},
           {{"context", "ls", "a\nb"}, "The following argument was not expected: a\\x0ab"}}) {
    auto r = envd(args);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(r.err.rfind(kError + expected, 0), 0u) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  }
}

TEST_F(UsageCli, BuildChecksItsFlagValuesBeforeTheDirectory) {
  fs::path empty = home() / "empty";
  fs::create_directories(empty);
  // A value outside a flag's choices is a usage error (exit 2), found as the
  // command line is read.
  auto r = envd({"build", "--progress", "fancy", empty.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, kError +
                       "--progress: 'fancy' is not one of auto, tty, plain or quiet (see 'envd "
                       "build --help')\n");
  r = envd({"build", "--network", "bridge", empty.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, kError +
                       "--network: 'bridge' is not one of default, none or host (see 'envd build "
                       "--help')\n");
  // The duration flags are usage errors (exit 2), --connect-timeout as
  // --timeout, on every command that has it; 0 is no deadline to keep.
  r = envd({"build", "--connect-timeout", "soon", empty.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, kError +
                       "--connect-timeout: 'soon' is not a duration (e.g. 30s, 1m30s, 500ms; at "
                       "most 277777h) (see 'envd build --help')\n");
  for (const auto& command : std::vector<std::vector<std::string>>{{"build", empty.string()},
                                                                   {"bootstrap"},
                                                                   {"prune"},
                                                                   {"builder", "status"},
                                                                   {"builder", "stop"},
                                                                   {"builder", "rm"}}) {
    auto args = command;
    args.insert(args.end() - (command[0] == "build" ? 1 : 0), {"--connect-timeout", "0"});
    r = envd(args);
    EXPECT_EQ(r.exit_code, 2) << command[0] << ": " << r.err;
    EXPECT_NE(r.err.find("--connect-timeout: '0' is not a duration of 1ms or more"),
              std::string::npos)
        << r.err;
  }
  r = envd({"builder", "status"}, {{"BUILDKIT_CONNECTING_TIMEOUT", "0"}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, kError + "invalid BUILDKIT_CONNECTING_TIMEOUT '0': it must be 1ms or more\n");
}

// What is wrong with --output or the Dockerfile is told before any builder
// is resolved: the current context here names a daemon nobody could reach.
TEST_F(UsageCli, BuildChecksItsOutputAndDockerfileBeforeAnyBuilder) {
  ENVD_REQUIRE_MODULES("tcp builder");
  envd_ok({"context", "create", "--name", "nowhere", "--builder", "tcp", "--builder-address",
           "127.0.0.1:1", "--use"});
  fs::path project = home() / "project";
  fs::create_directories(project / "sub");
  write_text(project / "Dockerfile", "FROM scratch\n");
  ASSERT_EQ(::mkfifo((project / "fifo").c_str(), 0600), 0);
  // Kept read-only: refused before the build, not after it (or removed).
  write_text(project / "kept.json", "{}");
  ASSERT_EQ(::chmod((project / "kept.json").c_str(), 0444), 0);
  const std::string kept = (project / "kept.json").string();
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"-o", "type=tar,garbage"}, "--output 'type=tar,garbage': invalid value garbage"},
      {{"-o", "type=local"},
       "--output 'type=local': output directory is required for local "
       "exporter"},
      {{"-f", (project / "sub").string()},
       "Dockerfile '" + (project / "sub").string() + "' is a directory"},
      {{"-f", (project / "fifo").string()},
       "Dockerfile '" + (project / "fifo").string() +
           "' is not a regular file (a Dockerfile on standard input is given as -f -)"},
      {{"-f", "/dev/null"},
       "Dockerfile '/dev/null' is not a regular file (a Dockerfile on standard input is given "
       "as -f -)"},
      {{"-f", (project / "none").string()},
       "Dockerfile '" + (project / "none").string() + "' does not exist"},
      {{"--metadata-file", kept},
       "cannot replace '" + kept + "': the file is read-only (mode 0444)"},
      {{"--iidfile", kept}, "cannot replace '" + kept + "': the file is read-only (mode 0444)"},
  };
  for (const auto& [flags, message] : cases) {
    SCOPED_TRACE(message);
    std::vector<std::string> args = {"build"};
    args.insert(args.end(), flags.begin(), flags.end());
    args.push_back(project.string());
    auto r = envd(args);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, kError + message + "\n");
  }
  EXPECT_EQ(read_text(project / "kept.json"), "{}");
}

TEST_F(UsageCli, ATailIsANumberOfLines) {
  for (const std::string value : {"-1", "ten", "99999999999", "3x"}) {
    SCOPED_TRACE(value);
    auto r = envd({"envs", "logs", "--tail", value, "web"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, kError + "--tail: '" + value +
                         "' is not a number of lines (0 or more) (see 'envd envs logs --help')\n");
  }
}

// The commands and aliases a help text lists, each with its command's name:
// "  attach, ssh    Open a shell ..." gives (attach, attach) and (ssh, attach).
std::vector<std::pair<std::string, std::string>> listed_commands(const std::string& help) {
  std::istringstream lines(help);
  std::string line;
  while (std::getline(lines, line) && line != "Subcommands:") {
  }
  std::vector<std::pair<std::string, std::string>> words;
  while (std::getline(lines, line) && line.size() > 2) {
    // The names end at the first run of two blanks.
    std::string names = line.substr(2, line.find("  ", 2) - 2);
    std::string primary = names.substr(0, names.find(','));
    std::istringstream each(names);
    for (std::string word; std::getline(each, word, ',');) {
      words.emplace_back(word.substr(word.find_first_not_of(' ')), primary);
    }
  }
  return words;
}

// A run registers only the commands its first words name
// (core/cli/command_groups.cpp). Every command, subcommand and alias that
// help lists must reach its own command that way, not an unknown-command
// error.
TEST_F(UsageCli, EveryCommandIsReachedThroughItsGroup) {
  auto commands = listed_commands(envd_ok({"--help"}).out);
  ASSERT_GE(commands.size(), 16U);
  std::size_t subcommands = 0;
  for (const auto& [word, primary] : commands) {
    SCOPED_TRACE(word);
    auto r = envd({word, "--bogus"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("(see 'envd " + primary + " --help')"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
    if (word != primary) continue;
    for (const auto& [sub, sub_primary] : listed_commands(envd_ok({word, "--help"}).out)) {
      SCOPED_TRACE(sub);
      ++subcommands;
      r = envd({word, sub, "--bogus"});
      EXPECT_EQ(r.exit_code, 2);
      EXPECT_NE(r.err.find("(see 'envd " + word + " " + sub_primary + " --help')"),
                std::string::npos)
          << r.err;
      EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
    }
  }
  EXPECT_GE(subcommands, 10U);  // context's alone
}

// The flags a help text lists that take a value, each with its description:
// "  -f,--file TEXT    Dockerfile ..." gives ("--file", "Dockerfile ...").
// A long flag's description may be on the line below its name.
std::vector<std::pair<std::string, std::string>> value_flags(const std::string& help) {
  std::istringstream lines(help);
  std::string line;
  while (std::getline(lines, line) && line != "Options:") {
  }
  std::vector<std::pair<std::string, std::string>> flags;
  while (std::getline(lines, line) && !line.empty()) {
    if (line.rfind("  -", 0) != 0) {
      if (!flags.empty() && flags.back().second.empty()) flags.back().second = line;
      continue;
    }
    std::istringstream words(line);
    std::string names;
    std::string type;
    words >> names >> type;
    // A type follows the names after one blank; a flag's description after many.
    if (line.size() < names.size() + 4 || line[2 + names.size() + 1] == ' ') continue;
    std::string first_long = names.substr(names.find("--"));
    first_long = first_long.substr(0, first_long.find(','));
    std::string::size_type gap = line.find("  ", 2 + names.size() + 1 + type.size());
    flags.emplace_back(first_long, gap == std::string::npos ? "" : line.substr(gap));
  }
  return flags;
}

// `--file ''` from a script's unset variable is a mistake, not the default
// (core/cli/empty_values.hpp). Every flag that takes a value refuses '',
// except those whose help says what '' does; and those do not.
TEST_F(UsageCli, EveryValueFlagRefusesAnEmptyValueUnlessItsHelpSaysWhatItMeans) {
  std::vector<std::vector<std::string>> commands = {{}};
  for (const auto& [word, primary] : listed_commands(envd_ok({"--help"}).out)) {
    if (word != primary) continue;
    commands.push_back({word});
    for (const auto& [sub, sub_primary] : listed_commands(envd_ok({word, "--help"}).out)) {
      if (sub == sub_primary) commands.push_back({word, sub});
    }
  }
  std::size_t refused = 0;
  std::size_t allowed = 0;
  for (const auto& command : commands) {
    std::vector<std::string> help_args = command;
    help_args.emplace_back("--help");
    for (const auto& [flag, description] : value_flags(envd_ok(help_args).out)) {
      std::string path = "envd";
      for (const auto& word : command) path += " " + word;
      // The help named is the deepest command reached: `version` after a
      // top-level flag's word.
      auto refusal = [&](const std::string& reached) {
        return kError + flag + ": the value is empty (leave the flag out instead) (see '" +
               reached + " --help')\n";
      };
      const bool empty_allowed = description.find("''") != std::string::npos;
      empty_allowed ? ++allowed : ++refused;
      // "--flag ''", and "--flag=" followed by a word, which CLI11 alone
      // would take for the value ("--tag= sub" tagged the build "sub"); at
      // the top level the word is a command.
      const std::string word = command.empty() ? "version" : "word";
      for (const std::vector<std::string>& given :
           {std::vector<std::string>{flag, ""}, std::vector<std::string>{flag + "=", word}}) {
        std::vector<std::string> args = command;
        args.insert(args.end(), given.begin(), given.end());
        SCOPED_TRACE(path + " " + given[0] + " '" + given[1] + "'");
        auto r = envd(args);
        if (empty_allowed) {
          EXPECT_EQ(r.err.find("the value is empty"), std::string::npos) << r.err;
        } else {
          EXPECT_EQ(r.exit_code, 2);
          EXPECT_EQ(r.out, "");
          EXPECT_EQ(r.err, refusal(given[1] == "version" ? "envd version" : path));
        }
      }
    }
  }
  EXPECT_GE(refused, 40U);
  // context create's --builder-address and --runner-address, and update's
  // two addresses, five builder files (or name) and --runner-tls-ca.
  EXPECT_EQ(allowed, 10U);
}

// CLI11 checks a value before it sees --help; asking for help wins over a bad
// value, as it already did over an unknown flag.
TEST_F(UsageCli, HelpIsShownEvenWhenAValueIsBad) {
  const std::string run_help = envd_ok({"run", "--help"}).out;
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"run", "-i", "", "--help"},
        std::vector<std::string>{"run", "--help", "--image="},
        std::vector<std::string>{"run", "-i", "", "-h"}}) {
    std::string given;
    for (const auto& arg : args) given += " '" + arg + "'";
    SCOPED_TRACE(given);
    auto r = envd(args);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out, run_help);
    EXPECT_EQ(r.err, "");
  }
  auto logs = envd({"envs", "logs", "dev", "--tail", "-1", "--help"});
  EXPECT_EQ(logs.exit_code, 0);
  EXPECT_EQ(logs.out, envd_ok({"envs", "logs", "--help"}).out);

  auto unknown = envd({"run", "--bogus", "--help"});
  EXPECT_EQ(unknown.exit_code, 0);
  EXPECT_EQ(unknown.out, run_help);
  // A flag's value "-h" is a value, not a request for help.
  auto value = envd({"run", "-i", "img", "--timeout", "0", "--name", "-h"});
  EXPECT_EQ(value.exit_code, 2);
  EXPECT_EQ(value.out, "");
  EXPECT_EQ(value.err,
            "envd: error: --timeout: '0' is not a duration of 1ms or more (see 'envd run "
            "--help')\n");
  // Less than a millisecond is as good as none; past 277777h is refused too.
  EXPECT_NE(envd({"envs", "ls", "--timeout", "1ns"})
                .err.find("--timeout: '1ns' is not a duration of 1ms or more"),
            std::string::npos);
  auto half = envd({"builder", "status", "--connect-timeout", "500us"});
  EXPECT_EQ(half.exit_code, 2);
  EXPECT_NE(half.err.find("--connect-timeout: '500us' is not a duration of 1ms or more"),
            std::string::npos)
      << half.err;
  EXPECT_NE(envd({"envs", "ls", "--timeout", "99999999h"})
                .err.find("--timeout: '99999999h' is not a duration (e.g. 30s, 1m30s, 500ms; at "
                          "most 277777h)"),
            std::string::npos);
  // After "--", --help is an argument, not a request.
  auto after = envd({"run", "-i", "", "--", "--help"});
  EXPECT_EQ(after.exit_code, 2);
  EXPECT_NE(after.err.find("--image: the value is empty"), std::string::npos) << after.err;
}

// Help and the version to a full disk: the system's reason, as for every
// other command's output (they once said only "a write failed").
TEST_F(UsageCli, HelpToAFullDiskSaysWhy) {
  for (const std::string& args : {std::string("--help"), std::string("--version"),
                                  std::string("context --help"), std::string("build --help")}) {
    SCOPED_TRACE(args);
    sdk::ProcessOptions options;
    options.argv = {"sh", "-c", "exec \"$0\" " + args + " >/dev/full", envd_binary()};
    options.env = base_env();
    options.timeout = std::chrono::seconds(30);
    auto r = sdk::run_process(options);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->exit_code, 1);
    EXPECT_EQ(r->err, "envd: error: cannot write the output: No space left on device\n");
  }
}

// With stdout closed (>&-) a listing has nowhere to go: said, exit 1, as for
// a full disk, not a success with the data gone. A command whose only output
// is a message (on stderr) is not affected.
TEST_F(UsageCli, DataForAClosedStandardOutputIsAnError) {
  auto closed = [&](const std::string& args) {
    sdk::ProcessOptions options;
    options.argv = {"sh", "-c", "exec \"$0\" " + args + " >&-", envd_binary()};
    options.env = base_env();
    options.timeout = std::chrono::seconds(30);
    auto r = sdk::run_process(options);
    EXPECT_TRUE(r) << r.error().message();
    return r ? *r : sdk::ProcessResult{};
  };
  for (const std::string& args :
       {std::string("context ls"), std::string("version --format json"),
        std::string("context inspect default"), std::string("--help"), std::string("--version")}) {
    SCOPED_TRACE(args);
    auto r = closed(args);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err,
              "envd: error: standard output is closed, so the output was lost; give it a file or "
              "a pipe\n");
  }
  auto use = closed("context use default");
  EXPECT_EQ(use.exit_code, 0) << use.err;
  // The runner writes logs and a shell's output straight to the descriptor:
  // refused before the runner is asked.
  auto logs = closed("envs logs dev");
  EXPECT_EQ(logs.exit_code, 1);
  EXPECT_EQ(logs.err,
            "envd: error: standard output is closed, so the logs would be lost; give it a file or "
            "a pipe\n");
  auto attach = closed("attach dev");
  EXPECT_EQ(attach.exit_code, 1);
  EXPECT_EQ(attach.err,
            "envd: error: standard output is closed, so the shell's output would be lost; give it "
            "a file or a pipe\n");
  // An environment made or removed and then reported as a failure (its name
  // could not be printed) is refused before the runner is asked, too.
  for (const std::string& args :
       {std::string("run --image busybox"), std::string("up ."), std::string("up -d .")}) {
    SCOPED_TRACE(args);
    auto r = closed(args);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err,
              "envd: error: standard output is closed, so the environment's name would be lost; "
              "give it a file or a pipe\n");
  }
  auto down = closed("down dev");
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_EQ(down.err,
            "envd: error: standard output is closed, so the names of the removed environments "
            "would be lost; give it a file or a pipe\n");
}

}  // namespace
}  // namespace envd::test
