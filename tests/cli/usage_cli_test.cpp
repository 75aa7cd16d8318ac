// Mistakes on the command line itself: an unknown command is named, and a
// command's flag values are checked before anything they would act on.
#include <gtest/gtest.h>

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

TEST_F(UsageCli, AnUnknownFlagPointsToItsCommandsHelp) {
  auto r = envd({"context", "ls", "--bogus"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, kError +
                       "The following argument was not expected: --bogus (see 'envd context ls "
                       "--help')\n");
}

TEST_F(UsageCli, BuildChecksItsFlagValuesBeforeTheDirectory) {
  fs::path empty = home() / "empty";
  fs::create_directories(empty);
  auto r = envd({"build", "--progress", "fancy", empty.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, kError + "invalid progress mode 'fancy': expected auto, tty, plain or quiet\n");
  r = envd({"build", "--connect-timeout", "soon", empty.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.find("Dockerfile"), std::string::npos) << r.err;
}

// A run registers only the group of commands its first word names
// (core/cli/command_groups.cpp). Every command and alias `envd --help` lists
// must reach its own command that way, not an unknown-command error.
TEST_F(UsageCli, EveryCommandIsReachedThroughItsGroup) {
  auto help = envd_ok({"--help"});
  std::istringstream lines(help.out);
  std::string line;
  while (std::getline(lines, line) && line != "Subcommands:") {
  }
  std::vector<std::pair<std::string, std::string>> words;  // word, the command's name
  while (std::getline(lines, line) && line.size() > 2) {
    // "  attach, ssh    Open a shell ...": the names end at the first run of two blanks.
    std::string names = line.substr(2, line.find("  ", 2) - 2);
    std::string primary = names.substr(0, names.find(','));
    std::istringstream each(names);
    for (std::string word; std::getline(each, word, ',');) {
      words.emplace_back(word.substr(word.find_first_not_of(' ')), primary);
    }
  }
  ASSERT_GE(words.size(), 16U) << help.out;
  for (const auto& [word, primary] : words) {
    SCOPED_TRACE(word);
    auto r = envd({word, "--bogus"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("(see 'envd " + primary + " --help')"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace envd::test
