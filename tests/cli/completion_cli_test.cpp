// Shell completion as a user's shell runs it: the bash script sourced in a
// real bash, whose completion function is called with COMP_WORDS and
// COMP_CWORD as bash sets them, and COMPREPLY read back; the zsh and fish
// scripts checked by their own shells' parsers. And `envd version`.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "cli_harness.hpp"

namespace envd::test {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool have(const char* tool) {
  return std::system((std::string("command -v ") + tool + " >/dev/null 2>&1").c_str()) == 0;
}

class CompletionTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    auto script = envd_ok({"completion", "bash"});
    write_text(home() / "envd.bash", script.out);
  }

  // COMPREPLY for the command line `words` (after "envd"), the cursor in the
  // last word, computed by the real bash with the sourced script.
  std::vector<std::string> complete(const std::vector<std::string>& words) {
    std::string array = "(envd";
    for (const auto& w : words) array += " '" + w + "'";
    array += ")";
    std::string program = "source '" + (home() / "envd.bash").string() +
                          "'\n"
                          "COMP_WORDS=" +
                          array + "\nCOMP_CWORD=" + std::to_string(words.size()) +
                          "\n_envd_complete\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n";
    sdk::ProcessOptions options;
    options.argv = {"bash", "--norc", "--noprofile", "-c", program};
    options.env = base_env();
    options.env["PATH"] = fs::path(envd_binary()).parent_path().string() + ":/usr/bin:/bin";
    options.timeout = std::chrono::seconds(30);
    auto r = sdk::run_process(options);
    EXPECT_TRUE(r && r->succeeded()) << (r ? r->err : r.error().message());
    auto lines = r ? lines_of(r->out) : std::vector<std::string>{};
    if (lines.size() == 1 && lines[0].empty()) lines.clear();
    return lines;
  }
};

TEST_F(CompletionTest, CommandsAndSubcommands) {
  auto top = complete({""});
  for (const char* c : {"build", "builder", "context", "plugin", "version", "completion"}) {
    EXPECT_NE(std::find(top.begin(), top.end(), c), top.end()) << c;
  }
  EXPECT_EQ(std::find(top.begin(), top.end(), "__complete"), top.end());
  EXPECT_EQ(complete({"bui"}), (std::vector<std::string>{"build", "builder"}));
  EXPECT_EQ(complete({"context", "r"}), (std::vector<std::string>{"rename", "rm"}));
  // `help` takes command words, completed as the commands themselves are.
  EXPECT_EQ(complete({"help", "bui"}), (std::vector<std::string>{"build", "builder"}));
  EXPECT_EQ(complete({"help", "context", "r"}), (std::vector<std::string>{"rename", "rm"}));
  EXPECT_EQ(complete({"help", "nope", ""}), std::vector<std::string>{});
}

TEST_F(CompletionTest, FlagsAndTheirValues) {
  EXPECT_EQ(complete({"build", "--prog"}), (std::vector<std::string>{"--progress"}));
  EXPECT_EQ(complete({"build", "--progress", ""}),
            (std::vector<std::string>{"auto", "plain", "quiet", "tty"}));
  EXPECT_EQ(complete({"context", "ls", "--format", "j"}), (std::vector<std::string>{"json"}));
  // A flag takes no value: the word after it is the command's own.
  EXPECT_EQ(complete({"--help", "bui"}), (std::vector<std::string>{"build", "builder"}));
  EXPECT_EQ(complete({"build", "--no-cache", "--prog"}), (std::vector<std::string>{"--progress"}));
  auto outputs = complete({"build", "-o", "type=l"});
  EXPECT_EQ(outputs, (std::vector<std::string>{"type=local,dest="}));
  // bash splits "--format=j" at the '=' (it is in COMP_WORDBREAKS): the value
  // still completes, every value right after the '=', and the words after a
  // value given so are the command's own.
  EXPECT_EQ(complete({"context", "ls", "--format", "=", "j"}), (std::vector<std::string>{"json"}));
  EXPECT_EQ(complete({"context", "ls", "--format", "="}),
            (std::vector<std::string>{"json", "table"}));
  EXPECT_EQ(complete({"build", "--progress", "=", "plain", "--no-c"}),
            (std::vector<std::string>{"--no-cache"}));
  // zsh and fish pass the word whole: the candidates are whole words too.
  EXPECT_EQ(envd_ok({"__complete", "context", "ls", "--format=j"}).out, "--format=json\n");
  EXPECT_EQ(envd_ok({"__complete", "build", "--progress=", "--no-c"}).out, "--no-cache\n");
  EXPECT_EQ(envd_ok({"__complete", "build", "--no-cache=t"}).out, "");
  // Global flags are offered under a subcommand too.
  auto flags = complete({"build", "--con"});
  EXPECT_NE(std::find(flags.begin(), flags.end(), "--context"), flags.end());
  EXPECT_NE(std::find(flags.begin(), flags.end(), "--connect-timeout"), flags.end());
  // ...but not one the subcommand refuses: --buildkitd-image is the builder
  // commands'.
  EXPECT_EQ(complete({"build", "--buildkitd"}), (std::vector<std::string>{"--buildkitd-image"}));
  EXPECT_EQ(complete({"builder", "status", "--buildkitd"}),
            (std::vector<std::string>{"--buildkitd-image"}));
  EXPECT_EQ(complete({"context", "create", "--buildkitd"}),
            (std::vector<std::string>{"--buildkitd-config"}));
  EXPECT_EQ(complete({"envs", "ls", "--buildkitd"}), std::vector<std::string>{});
}

TEST_F(CompletionTest, ContextNamesComeFromTheStore) {
  ENVD_REQUIRE_MODULES("tcp builder");
  envd_ok({"context", "create", "--name", "staging-remote", "--builder", "tcp", "--builder-address",
           "tcp://127.0.0.1:1234"});
  envd_ok({"context", "create", "--name", "staging-local", "--builder", "tcp", "--builder-address",
           "tcp://127.0.0.1:1235"});
  EXPECT_EQ(complete({"context", "use", "stag"}),
            (std::vector<std::string>{"staging-local", "staging-remote"}));
  EXPECT_EQ(complete({"--context", "staging-r"}), (std::vector<std::string>{"staging-remote"}));
  EXPECT_EQ(complete({"build", "-c", "staging-l"}), (std::vector<std::string>{"staging-local"}));
  // A context name only where one goes: export's second word is a file (bash
  // then completes file names, `complete -o default`), rename's a new name.
  EXPECT_EQ(complete({"context", "export", "staging-local", ""}), std::vector<std::string>{});
  EXPECT_EQ(complete({"context", "rename", "staging-local", ""}), std::vector<std::string>{});
  EXPECT_EQ(complete({"context", "use", "staging-local", ""}), std::vector<std::string>{});
  EXPECT_EQ(complete({"context", "inspect", "staging-local", ""}), std::vector<std::string>{});
  // --NAME, the user's guide's form, is an existing context; create's is new.
  EXPECT_EQ(complete({"context", "rm", "--name", "staging-r"}),
            (std::vector<std::string>{"staging-remote"}));
  EXPECT_EQ(complete({"context", "use", "--name=staging-l"}),
            (std::vector<std::string>{"--name=staging-local"}));
  EXPECT_EQ(complete({"context", "create", "--name", "stag"}), std::vector<std::string>{});
  // rm takes several: those already named are not offered again.
  EXPECT_EQ(complete({"context", "rm", "staging-local", "stag"}),
            (std::vector<std::string>{"staging-remote"}));
  EXPECT_EQ(complete({"context", "rm", "-f", "staging-local", "stag"}),
            (std::vector<std::string>{"staging-remote"}));
}

TEST_F(CompletionTest, TheCompletionCommandOffersItsShells) {
  EXPECT_EQ(complete({"completion", ""}), (std::vector<std::string>{"bash", "fish", "zsh"}));
  EXPECT_EQ(complete({"completion", "z"}), (std::vector<std::string>{"zsh"}));
  EXPECT_EQ(complete({"completion", "bash", ""}), std::vector<std::string>{});
}

TEST_F(CompletionTest, DriverTypesComeFromTheModules) {
  auto builders = complete({"context", "create", "--builder", ""});
  for (const auto& type : built_builders()) {
    EXPECT_NE(std::find(builders.begin(), builders.end(), type), builders.end()) << type;
  }
}

TEST_F(CompletionTest, CompletingCreatesNoStore) {
  complete({"context", "use", ""});
  EXPECT_FALSE(fs::exists(store_file()));
}

TEST_F(CompletionTest, ZshAndFishScriptsParse) {
  std::string skipped;
  for (const char* shell : {"zsh", "fish"}) {
    if (!have(shell)) {
      skipped += std::string(skipped.empty() ? "" : "; ") + shell + " is not installed";
      continue;
    }
    auto script = envd_ok({"completion", shell});
    fs::path file = home() / (std::string("envd.") + shell);
    write_text(file, script.out);
    sdk::ProcessOptions options;
    options.argv = {shell, "-n", file.string()};
    options.timeout = std::chrono::seconds(30);
    auto r = sdk::run_process(options);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->exit_code, 0) << shell << ": " << r->err;
  }
  if (!skipped.empty()) GTEST_SKIP() << skipped;
}

// zsh and fish run their scripts for real, with the shells' completion
// builtins (compadd, compdef, _files) replaced by functions that print what
// they were given: the candidates, the registration and the file fallback.
class ShellScriptTest : public CompletionTest {
 protected:
  std::string shell_out(const std::string& shell, const std::string& program) {
    sdk::ProcessOptions options;
    options.argv = shell == "zsh" ? std::vector<std::string>{"zsh", "-f", "-c", program}
                                  : std::vector<std::string>{"fish", "--no-config", "-c", program};
    options.env = base_env();
    options.env["PATH"] = fs::path(envd_binary()).parent_path().string() + ":/usr/bin:/bin";
    options.cwd = home().string();
    options.timeout = std::chrono::seconds(30);
    auto r = sdk::run_process(options);
    EXPECT_TRUE(r && r->succeeded()) << (r ? r->err : r.error().message());
    return r ? r->out : std::string();
  }
};

TEST_F(ShellScriptTest, ZshCompletesAtTheFirstTabAndFallsBackToFiles) {
  fs::path functions = home() / "zsh-functions";
  fs::create_directories(functions);
  write_text(functions / "_envd", envd_ok({"completion", "zsh"}).out);
  write_text(home() / "notes.txt", "");
  const std::string stubs =
      "compadd() { shift; print -rl -- \"$@\" }\n"
      "_files() { print -r -- '<files>' }\n"
      "compdef() { print -r -- \"compdef $*\" }\n";
  // Autoloaded from $fpath (how the packages install it): the first call
  // completes; the function it defines completes from then on.
  const std::string autoloaded = stubs + "fpath=(" + functions.string() +
                                 " $fpath)\nautoload -Uz _envd\n"
                                 "words=(envd context ls --format j); CURRENT=5; _envd\n"
                                 "words=(envd bui); CURRENT=2; _envd\n"
                                 "words=(envd context export dev ''); CURRENT=5; _envd\n";
  EXPECT_EQ(shell_out("zsh", autoloaded), "json\nbuild\nbuilder\n<files>\n");
  // Sourced: it registers itself and completes nothing yet.
  EXPECT_EQ(shell_out("zsh", stubs + "source " + (functions / "_envd").string() + "\n"),
            "compdef _envd envd\n");
}

// fish's own completion engine (`complete -C LINE`) with the script loaded.
TEST_F(ShellScriptTest, FishCompletesWordsAndFallsBackToFiles) {
  write_text(home() / "envd.fish", envd_ok({"completion", "fish"}).out);
  write_text(home() / "notes.txt", "");
  auto fish_complete = [&](const std::string& line) {
    return lines_of(shell_out(
        "fish", "source " + (home() / "envd.fish").string() + "\ncomplete -C '" + line + "'\n"));
  };
  EXPECT_EQ(fish_complete("envd context ls --format=j"),
            (std::vector<std::string>{"--format=json"}));
  EXPECT_EQ(fish_complete("envd bui"), (std::vector<std::string>{"build", "builder"}));
  EXPECT_EQ(fish_complete("envd build --progress q"), (std::vector<std::string>{"quiet"}));
  EXPECT_EQ(fish_complete("envd context export dev not"), (std::vector<std::string>{"notes.txt"}));
  // The first word after envd, still empty: the commands, not files.
  auto first = fish_complete("envd ");
  EXPECT_NE(std::find(first.begin(), first.end(), "build"), first.end());
  EXPECT_NE(std::find(first.begin(), first.end(), "context"), first.end());
  EXPECT_EQ(std::find(first.begin(), first.end(), "notes.txt"), first.end());
}

TEST_F(CompletionTest, AnUnknownShellIsRefused) {
  auto r = envd({"completion", "tcsh"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("tcsh"), std::string::npos) << r.err;
}

class VersionTest : public CliTest {};

TEST_F(VersionTest, TableAndJson) {
  auto r = envd_ok({"version"});
  EXPECT_EQ(r.out.rfind("envd:         ", 0), 0U) << r.out;
  EXPECT_NE(r.out.find("Plugin ABI:   1."), std::string::npos) << r.out;
  auto j = envd_ok({"version", "--format", "json"});
  auto v = json::parse(j.out).as_object();
  EXPECT_FALSE(v.at("version").as_string().empty());
  EXPECT_FALSE(v.at("git_revision").as_string().empty());
  EXPECT_EQ(std::string(v.at("plugin_abi").as_string()).substr(0, 2), "1.");
  std::vector<std::string> builders;
  for (const auto& p : v.at("plugins").as_array()) {
    const auto& o = p.as_object();
    if (o.at("kind").as_string() == "builder" && o.at("status").as_string() == "ok") {
      builders.emplace_back(o.at("type").as_string());
      EXPECT_EQ(std::string(o.at("abi").as_string()).substr(0, 2), "1.");
    }
  }
  std::sort(builders.begin(), builders.end());
  EXPECT_EQ(builders, built_builders());
}

}  // namespace
}  // namespace envd::test
