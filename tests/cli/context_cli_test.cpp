// `envd context ...` end to end: every command and flag, each error message,
// golden outputs for `ls`, and the commands of the user's guide as written.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "cli_harness.hpp"
#include "envd/process.hpp"

namespace envd::test {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

const std::string kError = "envd: error: ";

class ContextCli : public CliTest {
 protected:
  // Runs `script` with /bin/sh, $0 being envd and $1... `args`, in the test's
  // environment, for what needs a redirection.
  sdk::ProcessResult in_shell(const std::string& script,
                              const std::vector<std::string>& args = {}) {
    sdk::ProcessOptions options;
    options.argv = {"/bin/sh", "-c", script, envd_binary()};
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    options.env = base_env();
    options.timeout = std::chrono::seconds(60);
    auto r = sdk::run_process(options);
    EXPECT_TRUE(r.ok()) << r.error().message();
    return r.ok() ? *r : sdk::ProcessResult{};
  }

  // `context ls` to a full disk, as a table and as JSON: one error line that
  // says why, and exit 1.
  void expect_listing_fails_on_a_full_disk() {
    for (std::string format : {"table", "json"}) {
      SCOPED_TRACE(format);
      auto r = in_shell("exec \"$0\" context ls --format \"$1\" >/dev/full", {format});
      EXPECT_EQ(r.exit_code, 1);
      EXPECT_EQ(r.err.find(kError), 0U) << r.err;
      EXPECT_NE(r.err.find("No space left on device"), std::string::npos) << r.err;
      EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    }
  }
};

// ---- first use and ls --------------------------------------------------------

TEST_F(ContextCli, FirstUseCreatesTheStoreWithTheDefaultContext) {
  auto r = envd_ok({"context", "ls"});
  EXPECT_EQ(r.out, golden("ls_default.txt"));
  EXPECT_EQ(r.err, "");
  ASSERT_TRUE(fs::exists(store_file()));
  EXPECT_EQ(mode_of(config_dir()), 0700u);
  EXPECT_EQ(mode_of(store_file()), 0600u);
  auto store = read_store();
  EXPECT_EQ(store.at("current"), "default");
  auto& ctx = store.at("contexts").as_array().at(0).as_object();
  EXPECT_EQ(ctx.at("name"), "default");
  EXPECT_EQ(ctx.at("builder"), "docker-container");
  EXPECT_EQ(ctx.at("builder_address"), "envd_buildkitd");
  EXPECT_EQ(ctx.at("runner"), "docker");
  EXPECT_FALSE(ctx.contains("runner_address"));
}

TEST_F(ContextCli, LsJsonMatchesGolden) {
  auto r = envd_ok({"context", "ls", "--format", "json"});
  EXPECT_EQ(r.out, golden("ls_default.json"));
  auto short_flag = envd_ok({"context", "ls", "-f", "json"});
  EXPECT_EQ(short_flag.out, r.out);
}

// A value outside the flag's choices is a usage error, as the parser finds it.
TEST_F(ContextCli, LsRejectsAnUnknownFormat) {
  auto r = envd({"context", "ls", "--format", "yaml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, kError +
                       "--format: 'yaml' is not one of table or json (see 'envd context ls "
                       "--help')\n");
}

TEST_F(ContextCli, LsWithSeveralContextsMatchesGolden) {
  ENVD_REQUIRE_MODULES("docker-container builder", "tcp builder", "kube-pod builder",
                       "docker runner", "envd-server runner");
  envd_ok({"context", "create", "--name", "demo", "--builder-address", "buildkitd-demo", "--use",
           "--builder", "docker-container", "--runner", "docker"});
  envd_ok({"context", "create", "--name", "remote-context", "--builder", "tcp", "--builder-address",
           "10.0.0.5:8888"});
  envd_ok({"context", "create", "--name", "k8s", "--builder", "kube-pod", "--builder-address",
           "buildkitd-0?namespace=ci", "--runner", "envd-server", "--runner-address",
           "http://localhost:8080"});
  EXPECT_EQ(envd_ok({"context", "ls"}).out, golden("ls_several.txt"));
  EXPECT_EQ(envd_ok({"context", "ls", "--format", "json"}).out, golden("ls_several.json"));
}

TEST_F(ContextCli, AListingThatCannotBeWrittenIsAnError) {
  envd_ok({"context", "ls"});  // the store exists: only the write can fail
  expect_listing_fails_on_a_full_disk();
}

// Longer than stdio's buffer, the listing's write fails while it is printed,
// not at the final flush.
TEST_F(ContextCli, ALongListingThatCannotBeWrittenIsAnError) {
  envd_ok({"context", "ls"});
  json::object store = read_store();
  auto& contexts = store.at("contexts").as_array();
  for (int i = 0; i < 130; ++i) {
    contexts.push_back({{"name", "ctx-" + std::to_string(i)},
                        {"builder", "tcp"},
                        {"builder_address", "10.0.0." + std::to_string(i) + ":1234"},
                        {"runner", "docker"}});
  }
  write_text(store_file(), json::serialize(store));
  ASSERT_GT(envd_ok({"context", "ls"}).out.size(), 8192U);
  expect_listing_fails_on_a_full_disk();
}

// A closed or full stderr loses the messages, never the command's status nor
// what it did.
TEST_F(ContextCli, AClosedOrFullStderrKeepsTheExitStatus) {
  for (std::string redirect : {"2>/dev/full", "2>&-"}) {
    SCOPED_TRACE(redirect);
    EXPECT_EQ(in_shell("exec \"$0\" context ls --format yaml " + redirect).exit_code, 2);
    EXPECT_EQ(in_shell("exec \"$0\" context use no-such-context " + redirect).exit_code, 1);
    EXPECT_EQ(in_shell("exec \"$0\" --no-such-flag " + redirect).exit_code, 2);
    const std::string name = redirect == "2>&-" ? "closed" : "full";
    auto created = in_shell(
        "exec \"$0\" context create --name \"$1\" --builder tcp "
        "--builder-address 127.0.0.1:1234 --use " +
            redirect,
        {name});
    EXPECT_EQ(created.exit_code, 0);
    EXPECT_EQ(envd_ok({"context", "show"}).out, name + "\n");
  }
}

// ---- the user's guide, command by command ---------------------------------

TEST_F(ContextCli, GuideCreateDemoWithUse) {
  ENVD_REQUIRE_MODULES("docker-container builder", "docker runner");
  auto r = envd_ok({"context", "create", "--name", "demo", "--builder-address", "buildkitd-demo",
                    "--use", "--builder", "docker-container", "--runner", "docker"});
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "Context demo is created\nCurrent context is now \"demo\"\n");
  auto rows = ls_json();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].at("context"), "demo");
  EXPECT_EQ(rows[1].at("builder_addr"), "docker-container://buildkitd-demo");
  EXPECT_EQ(rows[1].at("current"), true);
  EXPECT_EQ(rows[0].at("current"), false);
}

TEST_F(ContextCli, GuideRemoveDemo) {
  ENVD_REQUIRE_MODULES("docker-container builder", "docker runner");
  envd_ok({"context", "create", "--name", "demo", "--builder-address", "buildkitd-demo",
           "--builder", "docker-container", "--runner", "docker"});
  auto r = envd_ok({"context", "rm", "--name", "demo"});
  EXPECT_EQ(r.err, "Context demo is removed\n");
  EXPECT_EQ(ls_json().size(), 1u);
}

TEST_F(ContextCli, GuideUseSwitchesBetweenContexts) {
  ENVD_REQUIRE_MODULES("docker-container builder", "docker runner");
  envd_ok({"context", "create", "--name", "demo", "--builder-address", "buildkitd-demo"});
  auto r = envd_ok({"context", "use", "demo"});
  EXPECT_EQ(r.err, "Current context is now \"demo\"\n");
  EXPECT_EQ(envd_ok({"context", "show"}).out, "demo\n");
  envd_ok({"context", "use", "--name", "default"});
  EXPECT_EQ(envd_ok({"context", "show"}).out, "default\n");
}

TEST_F(ContextCli, GuideRemoteContext) {
  ENVD_REQUIRE_MODULES("tcp builder", "docker runner");
  auto r = envd_ok({"context", "create", "--name", "remote-context", "--builder", "tcp",
                    "--builder-address", "192.0.2.10:8888", "--use"});
  EXPECT_EQ(r.err,
            "Context remote-context is created\nCurrent context is now \"remote-context\"\n");
  auto rows = ls_json();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].at("builder"), "tcp");
  EXPECT_EQ(rows[1].at("builder_addr"), "tcp://192.0.2.10:8888");
  EXPECT_EQ(rows[1].at("current"), true);
}

// ---- create ------------------------------------------------------------------

TEST_F(ContextCli, CreateUsesEnvdDefaults) {
  ENVD_REQUIRE_MODULES("docker-container builder", "docker runner");
  auto r = envd_ok({"context", "create", "--name", "plain"});
  EXPECT_EQ(r.err, "Context plain is created\n");
  auto store = read_store();
  EXPECT_EQ(store.at("current"), "default");
  auto& ctx = store.at("contexts").as_array().at(1).as_object();
  EXPECT_EQ(ctx.at("builder"), "docker-container");
  EXPECT_EQ(ctx.at("builder_address"), "envd_buildkitd");
  EXPECT_EQ(ctx.at("runner"), "docker");
  EXPECT_FALSE(ctx.contains("runner_address"));
}

TEST_F(ContextCli, CreateTakesThePositionalName) {
  ENVD_REQUIRE_MODULES("docker-container builder", "docker runner");
  envd_ok({"context", "create", "positional"});
  EXPECT_EQ(ls_json().at(1).at("context"), "positional");
}

TEST_F(ContextCli, CreateRefusesADuplicateName) {
  ENVD_REQUIRE_MODULES("docker-container builder", "docker runner");
  envd_ok({"context", "create", "--name", "twice"});
  std::string before = read_text(store_file());
  auto r = envd({"context", "create", "--name", "twice"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, kError + "context 'twice' already exists\n");
  EXPECT_EQ(read_text(store_file()), before);
}

TEST_F(ContextCli, CreateRejectsInvalidNames) {
  ENVD_REQUIRE_MODULES("docker-container builder", "docker runner");
  for (const std::string& name : std::vector<std::string>{"-dash", "a/b", "sp ace", "dots/..",
                                                          "_under", std::string(65, 'a')}) {
    auto r = envd({"context", "create", "--name", name});
    EXPECT_EQ(r.exit_code, 1) << name;
    EXPECT_EQ(r.err.rfind(kError + "invalid context name '" + name + "'", 0), 0u) << r.err;
    EXPECT_NE(r.err.find("at most 64"), std::string::npos) << r.err;
  }
  envd_ok({"context", "create", "--name", std::string(64, 'a')});
  envd_ok({"context", "create", "--name", "a1_.+-z"});
}

// No name, or two, is a command line envd cannot use as given: exit 2, as
// a missing operand of export or rename is, for every command that takes
// NAME or --name NAME.
TEST_F(ContextCli, CreateRequiresAName) {
  auto r = envd({"context", "create", "--builder", "tcp"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, kError +
                       "a context name is required (NAME or --name NAME) (see 'envd context "
                       "create --help')\n");
  auto two = envd({"context", "create", "one", "--name", "two"});
  EXPECT_EQ(two.exit_code, 2);
  EXPECT_EQ(two.err,
            kError + "expected one context name, got 2 (see 'envd context create --help')\n");
  for (const char* command : {"use", "update"}) {
    auto none = envd({"context", command});
    EXPECT_EQ(none.exit_code, 2) << command;
    EXPECT_EQ(none.err, kError + "a context name is required (NAME or --name NAME) (see 'envd " +
                            "context " + command + " --help')\n");
  }
  auto rm = envd({"context", "rm"});
  EXPECT_EQ(rm.exit_code, 2);
  EXPECT_EQ(rm.err, kError +
                        "a context name is required (NAME... or --name NAME) (see 'envd context "
                        "rm --help')\n");
  // Two or three given positionally: the same words, and the usage line
  // shows one name (CLI11 shows a list's as "[name...]").
  for (const char* command : {"create", "use", "inspect", "update"}) {
    auto three = envd({"context", command, "a", "b", "c"});
    EXPECT_EQ(three.exit_code, 2) << command;
    EXPECT_EQ(three.err, kError + "expected one context name, got 3 (see 'envd context " + command +
                             " --help')\n");
    auto help = envd({"context", command, "--help"});
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_NE(help.out.find("Usage: envd context " + std::string(command) + " [OPTIONS] [name]\n"),
              std::string::npos)
        << help.out;
  }
  EXPECT_NE(envd_ok({"context", "rm", "--help"}).out.find("[names...]"), std::string::npos);
}

// `--` ends the flags, as everywhere else: the name after it is the NAME of
// every command that takes one (CLI11 passed `--` up to the group when the
// name was optional, and the name was lost).
TEST_F(ContextCli, TheNameMayFollowADoubleDash) {
  // The modules the ci-subset build makes too.
  ENVD_REQUIRE_MODULES("tcp builder", "docker runner");
  envd_ok(
      {"context", "create", "--builder", "tcp", "--builder-address", "127.0.0.1:1", "--", "dd"});
  envd_ok({"context", "update", "--runner", "docker", "--", "dd"});
  envd_ok({"context", "use", "--", "dd"});
  EXPECT_NE(envd_ok({"context", "inspect", "--", "dd"}).out.find("\"name\": \"dd\""),
            std::string::npos);
  envd_ok({"context", "use", "default"});
  envd_ok({"context", "rm", "--", "dd"});
  auto gone = envd({"context", "inspect", "dd"});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_EQ(gone.err,
            kError + "context 'dd' does not exist; 'envd context ls' lists the contexts\n");
  // After `--` a flag is a name too, so this is two names.
  auto two = envd({"context", "create", "--", "a", "--builder"});
  EXPECT_EQ(two.exit_code, 2);
  EXPECT_EQ(two.err,
            kError + "expected one context name, got 2 (see 'envd context create --help')\n");
}

TEST_F(ContextCli, CreateRejectsUnknownDriverTypes) {
  ENVD_REQUIRE_MODULES("docker-container builder", "docker runner");
  auto r = envd({"context", "create", "--name", "x", "--builder", "podman-container"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.rfind(kError + "unknown builder type 'podman-container'; available: ", 0), 0u)
      << r.err;
  std::string available;  // every builder this build makes
  for (const auto& type : built_builders()) available += (available.empty() ? "" : ", ") + type;
  EXPECT_NE(r.err.find("available: " + available + "\n"), std::string::npos) << r.err;
  auto runner = envd({"context", "create", "--name", "x", "--runner", "k8s"});
  EXPECT_EQ(runner.exit_code, 1);
  EXPECT_EQ(runner.err.rfind(kError + "unknown runner type 'k8s'; available: ", 0), 0u)
      << runner.err;
  // A runner type is not a builder type.
  auto swapped = envd({"context", "create", "--name", "x", "--builder", "docker"});
  EXPECT_EQ(swapped.exit_code, 1);
  EXPECT_NE(swapped.err.find("runner"), std::string::npos) << swapped.err;
  EXPECT_EQ(ls_json().size(), 1u);
}

TEST_F(ContextCli, CreateValidatesAddressesThroughTheDriver) {
  ENVD_REQUIRE_MODULES("tcp builder", "kube-pod builder", "docker-container builder",
                       "envd-server runner");
  auto bad_tcp = envd({"context", "create", "--name", "x", "--builder", "tcp", "--builder-address",
                       "http://host:8888"});
  EXPECT_EQ(bad_tcp.exit_code, 1);
  EXPECT_NE(bad_tcp.err.find("host:port"), std::string::npos) << bad_tcp.err;
  auto no_address = envd({"context", "create", "--name", "x", "--builder", "tcp"});
  EXPECT_EQ(no_address.exit_code, 1);
  EXPECT_NE(no_address.err.find("--builder-address"), std::string::npos) << no_address.err;
  auto bad_pod = envd({"context", "create", "--name", "x", "--builder", "kube-pod",
                       "--builder-address", "Pod_Name"});
  EXPECT_EQ(bad_pod.exit_code, 1);
  auto bad_server = envd({"context", "create", "--name", "x", "--runner", "envd-server",
                          "--runner-address", "localhost:2222"});
  EXPECT_EQ(bad_server.exit_code, 1);
  EXPECT_NE(bad_server.err.find("http://localhost:8080"), std::string::npos) << bad_server.err;
  for (const auto& r : {bad_tcp, no_address, bad_pod, bad_server}) {
    EXPECT_EQ(r.err.rfind(kError, 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  EXPECT_EQ(ls_json().size(), 1u);
}

TEST_F(ContextCli, CreateNormalisesAddresses) {
  ENVD_REQUIRE_MODULES("tcp builder", "docker-container builder", "docker runner",
                       "envd-server runner");
  envd_ok({"context", "create", "--name", "t", "--builder", "tcp", "--builder-address",
           "tcp://[::1]:8888"});
  envd_ok({"context", "create", "--name", "s", "--runner", "envd-server", "--runner-address",
           "http://localhost:8080"});
  auto rows = ls_json();
  EXPECT_EQ(rows[1].at("builder_addr"), "tcp://[::1]:8888");
  EXPECT_EQ(rows[2].at("runner"), "envd-server");
  EXPECT_EQ(rows[2].at("runner_addr"), "http://localhost:8080");
  EXPECT_EQ(read_store().at("contexts").as_array().at(1).at("builder_address"), "[::1]:8888");
}

// ---- use ---------------------------------------------------------------------

TEST_F(ContextCli, UseRejectsUnknownContexts) {
  auto r = envd({"context", "use", "ghost"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err,
            kError + "context 'ghost' does not exist; 'envd context ls' lists the contexts\n");
  auto none = envd({"context", "use"});
  EXPECT_EQ(none.exit_code, 2);  // see CreateRequiresAName
}

TEST_F(ContextCli, UseWarnsWhenEnvdContextOverridesIt) {
  ENVD_REQUIRE_MODULES("docker-container builder", "docker runner");
  envd_ok({"context", "create", "--name", "demo"});
  auto r = envd_ok({"context", "use", "demo"}, {{"ENVD_CONTEXT", "default"}});
  EXPECT_NE(r.err.find("envd: warning: ENVD_CONTEXT is set to 'default'"), std::string::npos)
      << r.err;
}

// ---- rm ----------------------------------------------------------------------

TEST_F(ContextCli, RmRefusesTheCurrentContextWithoutForce) {
  auto r = envd({"context", "rm", "default"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, kError +
                       "cannot remove the current context 'default'; switch with 'envd context "
                       "use NAME' first, or pass --force\n");
  EXPECT_EQ(ls_json().size(), 1u);
}

// The context in use through ENVD_CONTEXT or --context is as current as the
// store's (context ls marks it so): removed only with --force.
TEST_F(ContextCli, RmRefusesTheContextInUseFromTheEnvironmentOrTheFlag) {
  ENVD_REQUIRE_MODULES("docker-container builder", "docker runner");
  envd_ok({"context", "create", "other"});
  auto env = envd({"context", "rm", "other"}, {{"ENVD_CONTEXT", "other"}});
  EXPECT_EQ(env.exit_code, 1);
  EXPECT_EQ(env.err, kError +
                         "cannot remove context 'other': it is the one in use (from "
                         "ENVD_CONTEXT); pass --force to remove it anyway\n");
  auto flag = envd({"-c", "other", "context", "rm", "other"});
  EXPECT_EQ(flag.exit_code, 1);
  EXPECT_EQ(flag.err, kError +
                          "cannot remove context 'other': it is the one in use (from "
                          "--context); pass --force to remove it anyway\n");
  EXPECT_EQ(ls_json().size(), 2u);
  envd_ok({"context", "rm", "--force", "other"}, {{"ENVD_CONTEXT", "other"}});
  EXPECT_EQ(ls_json().size(), 1u);
}

TEST_F(ContextCli, RmForceOnTheCurrentContextFallsBackToDefault) {
  ENVD_REQUIRE_MODULES("docker-container builder", "docker runner");
  envd_ok({"context", "create", "--name", "demo", "--use"});
  auto r = envd_ok({"context", "rm", "--force", "demo"});
  EXPECT_EQ(r.err, "Context demo is removed\nCurrent context is now \"default\"\n");
  EXPECT_EQ(envd_ok({"context", "show"}).out, "default\n");
}

TEST_F(ContextCli, RmTakesSeveralNamesAllOrNothing) {
  ENVD_REQUIRE_MODULES("docker-container builder", "docker runner");
  envd_ok({"context", "create", "a"});
  envd_ok({"context", "create", "b"});
  envd_ok({"context", "create", "c"});
  auto missing = envd({"context", "rm", "a", "ghost", "b"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("context 'ghost' does not exist"), std::string::npos);
  EXPECT_EQ(ls_json().size(), 4u);
  auto r = envd_ok({"context", "rm", "a", "b", "--name", "c"});
  EXPECT_EQ(r.err, "Context a is removed\nContext b is removed\nContext c is removed\n");
  EXPECT_EQ(ls_json().size(), 1u);
  // --force ignores names that do not exist.
  envd_ok({"context", "rm", "-f", "ghost"});
}

TEST_F(ContextCli, RmDeletesThePrivateDirectory) {
  ENVD_REQUIRE_MODULES("docker-container builder", "docker runner");
  envd_ok({"context", "create", "demo"});
  auto inspect = envd_ok({"context", "inspect", "demo"});
  fs::path data_dir(std::string(json::parse(inspect.out).at("storage").at("data_dir").as_string()));
  write_text(data_dir / "ca.pem", "x");
  envd_ok({"context", "rm", "demo"});
  EXPECT_FALSE(fs::exists(data_dir));
}

TEST_F(ContextCli, DefaultCanBeRemovedWhenNotCurrent) {
  ENVD_REQUIRE_MODULES("docker-container builder", "docker runner");
  envd_ok({"context", "create", "demo", "--use"});
  envd_ok({"context", "rm", "default"});
  auto rows = ls_json();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].at("context"), "demo");
}

// ---- inspect / show ----------------------------------------------------------

TEST_F(ContextCli, InspectPrintsTheContextAsJson) {
  ENVD_REQUIRE_MODULES("tcp builder", "envd-server runner");
  envd_ok({"context", "create", "--name", "remote", "--builder", "tcp", "--builder-address",
           "build.example.com:8888", "--runner", "envd-server", "--runner-address",
           "https://envd.example.com"});
  auto r = envd_ok({"context", "inspect", "remote"});
  auto v = json::parse(r.out).as_object();
  EXPECT_EQ(v.at("name"), "remote");
  EXPECT_EQ(v.at("current"), false);
  EXPECT_EQ(v.at("builder"), "tcp");
  EXPECT_EQ(v.at("builder_address"), "build.example.com:8888");
  EXPECT_EQ(v.at("builder_addr"), "tcp://build.example.com:8888");
  EXPECT_EQ(v.at("runner"), "envd-server");
  EXPECT_EQ(v.at("runner_address"), "https://envd.example.com");
  EXPECT_TRUE(v.at("material").as_array().empty());
  EXPECT_EQ(v.at("storage").at("store").as_string(), store_file().string());
  // Without a name: the context in use.
  auto current = json::parse(envd_ok({"context", "inspect"}).out).as_object();
  EXPECT_EQ(current.at("name"), "default");
  EXPECT_EQ(current.at("current"), true);
  auto missing = envd({"context", "inspect", "ghost"});
  EXPECT_EQ(missing.exit_code, 1);
}

TEST_F(ContextCli, InspectListsMaterialNamesButNeverContents) {
  ENVD_REQUIRE_MODULES("docker-container builder", "docker runner");
  envd_ok({"context", "create", "demo"});
  auto v = json::parse(envd_ok({"context", "inspect", "demo"}).out);
  fs::path data_dir(std::string(v.at("storage").at("data_dir").as_string()));
  write_text(data_dir / "builder" / "key.pem", "SECRET-KEY-BYTES");
  auto r = envd_ok({"context", "inspect", "demo"});
  EXPECT_EQ(r.out.find("SECRET-KEY-BYTES"), std::string::npos);
  auto material = json::parse(r.out).at("material").as_array();
  ASSERT_EQ(material.size(), 1u);
  EXPECT_EQ(material[0], "builder/key.pem");

  // A link in the store is named where it is, not resolved to where it
  // points (export refuses it).
  fs::create_directories(data_dir / "files");
  fs::create_symlink("/etc/passwd", data_dir / "files" / "tls-ca");
  material = json::parse(envd_ok({"context", "inspect", "demo"}).out).at("material").as_array();
  EXPECT_EQ(material, (json::array{"builder/key.pem", "files/tls-ca"}));
  // What export leaves out is not listed: this machine's runtime directory
  // and an interrupted update's staged file.
  write_text(data_dir / "run" / "state", "x");
  write_text(data_dir / "files" / ".tls-ca.new", "x");
  material = json::parse(envd_ok({"context", "inspect", "demo"}).out).at("material").as_array();
  EXPECT_EQ(material, (json::array{"builder/key.pem", "files/tls-ca"}));
}

TEST_F(ContextCli, ResolutionOrderIsFlagThenEnvironmentThenStoreThenDefault) {
  ENVD_REQUIRE_MODULES("docker-container builder", "docker runner");
  envd_ok({"context", "create", "stored"});
  envd_ok({"context", "create", "from-env"});
  envd_ok({"context", "create", "from-flag"});
  EXPECT_EQ(envd_ok({"context", "show"}).out, "default\n");
  envd_ok({"context", "use", "stored"});
  EXPECT_EQ(envd_ok({"context", "show"}).out, "stored\n");
  EXPECT_EQ(envd_ok({"context", "show"}, {{"ENVD_CONTEXT", "from-env"}}).out, "from-env\n");
  EXPECT_EQ(
      envd_ok({"--context", "from-flag", "context", "show"}, {{"ENVD_CONTEXT", "from-env"}}).out,
      "from-flag\n");
  EXPECT_EQ(envd_ok({"context", "show", "--context", "from-flag"}).out, "from-flag\n");
  // An empty ENVD_CONTEXT counts as unset.
  EXPECT_EQ(envd_ok({"context", "show"}, {{"ENVD_CONTEXT", ""}}).out, "stored\n");
  // ls marks the context in use, wherever the choice came from.
  auto rows =
      json::parse(
          envd_ok({"context", "ls", "--format", "json"}, {{"ENVD_CONTEXT", "from-env"}}).out)
          .as_array();
  for (const auto& row : rows) {
    EXPECT_EQ(row.at("current").as_bool(), row.at("context") == "from-env");
  }
}

TEST_F(ContextCli, ResolutionErrorsSayWhereTheNameCameFrom) {
  auto env = envd({"context", "show"}, {{"ENVD_CONTEXT", "ghost"}});
  EXPECT_EQ(env.exit_code, 1);
  EXPECT_NE(env.err.find("ENVD_CONTEXT"), std::string::npos) << env.err;
  auto flag = envd({"--context", "ghost", "context", "show"});
  EXPECT_EQ(flag.exit_code, 1);
  EXPECT_NE(flag.err.find("--context"), std::string::npos) << flag.err;
  auto invalid = envd({"--context", "bad/name", "context", "show"});
  EXPECT_EQ(invalid.exit_code, 2);
  EXPECT_EQ(invalid.err.rfind(kError + "invalid context name 'bad/name'", 0), 0u) << invalid.err;
  // ls lists the contexts all the same, and warns in the same words.
  auto listed = envd_ok({"context", "ls"}, {{"ENVD_CONTEXT", "bad name!"}});
  EXPECT_EQ(
      listed.err.rfind("envd: warning: invalid context name 'bad name!' (from ENVD_CONTEXT)", 0),
      0u)
      << listed.err;
  EXPECT_NE(listed.out.find("default"), std::string::npos) << listed.out;
  auto ghost = envd_ok({"context", "ls"}, {{"ENVD_CONTEXT", "ghost"}});
  EXPECT_EQ(ghost.err,
            "envd: warning: context 'ghost' (from ENVD_CONTEXT) does not exist; unset "
            "ENVD_CONTEXT or set it to one of 'envd context ls'\n");
}

// A global flag the command has no use for is refused, not ignored: --context
// must name a context for every command (as it must for those that use it),
// and --buildkitd-image is for the commands that use a builder. Nothing is
// done: the context named for removal is still there.
TEST_F(ContextCli, GlobalFlagsACommandDoesNotUseAreCheckedNotIgnored) {
  ENVD_REQUIRE_MODULES("docker-container builder", "docker runner");
  envd_ok({"context", "create", "kept"});
  const std::string missing =
      kError +
      "context 'ghost' (from --context) does not exist; 'envd context ls' lists the "
      "contexts\n";
  for (const std::vector<std::string>& command : {std::vector<std::string>{"version"},
                                                  {"plugin", "ls"},
                                                  {"completion", "bash"},
                                                  {"context", "rm", "kept"},
                                                  {"context", "inspect", "kept"}}) {
    std::vector<std::string> args{"-c", "ghost"};
    args.insert(args.end(), command.begin(), command.end());
    auto r = envd(args);
    EXPECT_EQ(r.exit_code, 1) << command[0];
    EXPECT_EQ(r.err, missing) << command[0];
    EXPECT_EQ(r.out, "") << command[0];
  }
  EXPECT_NE(envd_ok({"context", "ls"}).out.find("kept"), std::string::npos);
  // A context that exists is fine, though these commands do not use it.
  EXPECT_EQ(envd_ok({"-c", "kept", "version"}).out.rfind("envd:", 0), 0u);
  const std::vector<std::pair<std::vector<std::string>, std::string>> refused = {
      {{"version"}, "envd version"},
      {{"plugin", "ls"}, "envd plugin ls"},
      {{"context", "rm", "kept"}, "envd context rm"},
      {{"run", "--image", "busybox"}, "envd run"},
      {{"envs", "ls"}, "envd envs ls"}};
  for (const auto& [command, shown] : refused) {
    std::vector<std::string> args{"--buildkitd-image", "moby/buildkit:v0.11.6"};
    args.insert(args.end(), command.begin(), command.end());
    auto r = envd(args);
    EXPECT_EQ(r.exit_code, 2) << shown;
    EXPECT_EQ(r.err, kError +
                         "--buildkitd-image is for the commands that use a builder (build, up, "
                         "bootstrap, builder, prune), not '" +
                         shown + "'\n");
  }
  EXPECT_NE(envd_ok({"context", "ls"}).out.find("kept"), std::string::npos);
}

// ---- update ------------------------------------------------------------------

TEST_F(ContextCli, UpdateChangesAddressesThroughTheDriver) {
  ENVD_REQUIRE_MODULES("tcp builder", "docker runner");
  envd_ok({"context", "create", "remote", "--builder", "tcp", "--builder-address", "10.0.0.1:1"});
  auto r = envd_ok({"context", "update", "remote", "--builder-address", "tcp://10.0.0.2:8888"});
  EXPECT_EQ(r.err, "Context remote is updated\n");
  EXPECT_EQ(ls_json().at(1).at("builder_addr"), "tcp://10.0.0.2:8888");
  auto bad = envd({"context", "update", "remote", "--builder-address", "nope"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_EQ(ls_json().at(1).at("builder_addr"), "tcp://10.0.0.2:8888");
}

TEST_F(ContextCli, UpdateOfTheBuilderTypeRevalidatesTheAddress) {
  ENVD_REQUIRE_MODULES("docker-container builder", "tcp builder", "docker runner");
  envd_ok({"context", "create", "demo"});
  auto r = envd({"context", "update", "demo", "--builder", "tcp"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("pass --builder-address"), std::string::npos) << r.err;
  envd_ok({"context", "update", "--name", "demo", "--builder", "tcp", "--builder-address",
           "127.0.0.1:8888"});
  EXPECT_EQ(ls_json().at(1).at("builder_addr"), "tcp://127.0.0.1:8888");
}

TEST_F(ContextCli, UpdateSetsAndClearsTheRunnerAddress) {
  ENVD_REQUIRE_MODULES("docker-container builder", "docker runner", "envd-server runner");
  envd_ok({"context", "create", "demo"});
  envd_ok({"context", "update", "demo", "--runner", "envd-server", "--runner-address",
           "http://127.0.0.1:8080"});
  EXPECT_EQ(ls_json().at(1).at("runner_addr"), "http://127.0.0.1:8080");
  envd_ok({"context", "update", "demo", "--runner-address", ""});
  EXPECT_FALSE(ls_json().at(1).as_object().contains("runner_addr"));
}

TEST_F(ContextCli, UpdateNeedsSomethingToChangeAndAnExistingContext) {
  auto nothing = envd({"context", "update", "default"});
  EXPECT_EQ(nothing.exit_code, 1);
  EXPECT_EQ(nothing.err, kError +
                             "nothing to update for context 'default': pass --builder, "
                             "--builder-address, --builder-opt, a --builder-tls-* flag, --runner, "
                             "--runner-address, --runner-opt or --runner-tls-ca\n");
  // --runner-opt goes to the runner's driver, which checks it: docker takes none.
  auto opt = envd({"context", "update", "default", "--runner-opt", "ssh-port=2222"});
  EXPECT_EQ(opt.exit_code, 1);
  EXPECT_EQ(opt.err, kError + "runner 'docker': unknown option 'ssh-port' (it takes no options)\n");
  // A newline typed into a value is shown escaped: the error stays one line.
  auto newline = envd({"context", "update", "default", "--runner-opt", "ssh\nport=1"});
  EXPECT_EQ(newline.exit_code, 1);
  EXPECT_EQ(newline.err, kError +
                             "runner 'docker': unknown option 'ssh\\x0aport' (it takes no "
                             "options)\n");
  auto malformed = envd({"context", "update", "default", "--runner-opt", "ssh-port"});
  EXPECT_EQ(malformed.exit_code, 1);
  EXPECT_EQ(malformed.err,
            kError + "invalid --runner-opt 'ssh-port': expected KEY=VALUE (KEY= removes KEY)\n");
  auto ghost = envd({"context", "update", "ghost", "--runner", "docker"});
  EXPECT_EQ(ghost.exit_code, 1);
  EXPECT_NE(ghost.err.find("context 'ghost' does not exist"), std::string::npos);
}

// ---- rename ------------------------------------------------------------------

TEST_F(ContextCli, RenameMovesTheCurrentPointerAndKeepsMaterial) {
  ENVD_REQUIRE_MODULES("docker-container builder", "docker runner");
  envd_ok({"context", "create", "old", "--use"});
  auto before = json::parse(envd_ok({"context", "inspect", "old"}).out);
  fs::path data_dir(std::string(before.at("storage").at("data_dir").as_string()));
  write_text(data_dir / "ca.pem", "ca");
  auto r = envd_ok({"context", "rename", "old", "new"});
  EXPECT_EQ(r.err, "Context old is renamed to new\n");
  EXPECT_EQ(envd_ok({"context", "show"}).out, "new\n");
  auto after = json::parse(envd_ok({"context", "inspect", "new"}).out);
  EXPECT_EQ(after.at("storage").at("data_dir"), before.at("storage").at("data_dir"));
  EXPECT_EQ(after.at("material").as_array().size(), 1u);
}

TEST_F(ContextCli, RenameRefusesTakenAndMissingNames) {
  ENVD_REQUIRE_MODULES("docker-container builder", "docker runner");
  envd_ok({"context", "create", "a"});
  auto taken = envd({"context", "rename", "a", "default"});
  EXPECT_EQ(taken.exit_code, 1);
  EXPECT_EQ(taken.err, kError + "context 'default' already exists\n");
  auto missing = envd({"context", "rename", "ghost", "b"});
  EXPECT_EQ(missing.exit_code, 1);
  auto invalid = envd({"context", "rename", "a", "b/c"});
  EXPECT_EQ(invalid.exit_code, 1);
  auto usage = envd({"context", "rename", "a"});
  EXPECT_EQ(usage.exit_code, 2);
}

// ---- the store's failure modes ---------------------------------------------

TEST_F(ContextCli, CorruptStoreIsReportedAndNeverOverwritten) {
  envd_ok({"context", "ls"});
  const std::string corrupt = "{\"current\": \"default\", \"contexts\": [\n  {\"name\": ";
  write_text(store_file(), corrupt);
  for (const std::vector<std::string>& args : {std::vector<std::string>{"context", "ls"},
                                               {"context", "create", "x"},
                                               {"context", "use", "default"},
                                               {"context", "rm", "-f", "default"}}) {
    auto r = envd(args);
    EXPECT_EQ(r.exit_code, 1) << args[1];
    EXPECT_EQ(r.err.rfind(kError + "context store '" + store_file().string() + "' is corrupt", 0),
              0u)
        << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(read_text(store_file()), corrupt);
  }
}

// Commands that write the store, on a store holding the context "kept".
std::vector<std::vector<std::string>> store_writes() {
  return {{"context", "create", "--name", "new", "--builder", "tcp", "--builder-address",
           "tcp://127.0.0.1:9"},
          {"context", "use", "kept"},
          {"context", "rm", "kept"}};
}

// A store envd may not read, or a directory in its place, is one error
// naming it; a config directory it may not write refuses every change in one
// line and is left as it was. (As root, envd runs without the capabilities
// that override permissions: what a user meets.)
TEST_F(ContextCli, UnreadableStoreIsAnError) {
  ENVD_REQUIRE_MODULES("tcp builder", "docker runner");
  envd_ok({"context", "create", "--name", "kept", "--builder", "tcp", "--builder-address",
           "tcp://127.0.0.1:1234"});
  const std::string before = read_text(store_file());
  fs::permissions(store_file(), fs::perms::none);
  auto r = envd_bound_by_permissions({"context", "ls"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "envd: error: the context store is unreadable: cannot read '" +
                       store_file().string() + "': Permission denied; check the owner and " +
                       "permissions of the file and of '" + config_dir().string() + "'\n");
  fs::permissions(store_file(), fs::perms::owner_read | fs::perms::owner_write);

  fs::permissions(config_dir(), fs::perms::owner_read | fs::perms::owner_exec);
  auto ls = envd_bound_by_permissions({"context", "ls", "--format", "json"});
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find("\"kept\""), std::string::npos) << ls.out;
  for (const auto& args : store_writes()) {
    auto refused = envd_bound_by_permissions(args);
    EXPECT_EQ(refused.exit_code, 1) << sdk::format_command(args);
    EXPECT_EQ(refused.err, "envd: error: cannot create a file in '" + config_dir().string() +
                               "': Permission denied (to replace '" + store_file().string() +
                               "')\n")
        << sdk::format_command(args);
  }
  fs::permissions(config_dir(), fs::perms::owner_all);
  EXPECT_EQ(read_text(store_file()), before);

  fs::remove(store_file());
  fs::create_directories(store_file());
  auto directory = envd({"context", "ls"});
  EXPECT_EQ(directory.exit_code, 1);
  EXPECT_NE(directory.err.find(store_file().string()), std::string::npos) << directory.err;
}

// A store write that fails part-way (here: a file-size limit, as a full disk
// would) is one error line, and leaves the store as it was with no temporary
// file behind; envd is not killed by SIGXFSZ.
TEST_F(ContextCli, AWriteThatFailsPartWayLeavesTheStoreIntact) {
  ENVD_REQUIRE_MODULES("tcp builder", "docker runner");
  for (int i = 0; i < 3; ++i) {
    envd_ok({"context", "create", "--name", "c" + std::to_string(i), "--builder", "tcp",
             "--builder-address", "tcp://127.0.0.1:100" + std::to_string(i)});
  }
  const std::string before = read_text(store_file());
  sdk::ProcessOptions limited;
  limited.argv = {"prlimit",
                  "--fsize=" + std::to_string(before.size()),
                  envd_binary(),
                  "context",
                  "create",
                  "--name",
                  "one-more-context-with-a-long-name",
                  "--builder",
                  "tcp",
                  "--builder-address",
                  "tcp://127.0.0.1:9"};
  limited.env = base_env();
  limited.timeout = std::chrono::seconds(30);
  auto r = sdk::run_process(limited);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->term_signal, 0) << r->err;
  EXPECT_EQ(r->exit_code, 1) << r->err;
  EXPECT_NE(r->err.find("File too large"), std::string::npos) << r->err;
  EXPECT_EQ(std::count(r->err.begin(), r->err.end(), '\n'), 1) << r->err;
  EXPECT_EQ(read_text(store_file()), before);
  for (const auto& entry : fs::directory_iterator(config_dir())) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos)
        << entry.path() << " was left behind";
  }
  // Without the limit the same command works.
  envd_ok({"context", "create", "--name", "one-more-context-with-a-long-name", "--builder", "tcp",
           "--builder-address", "tcp://127.0.0.1:9"});
}

// A config directory on a read-only file system (a bind mount remounted
// read-only in a private mount namespace: root writes through permissions,
// not through that): reading works, every write is one error line naming the
// store and why, and the store is unchanged.
TEST_F(ContextCli, AReadOnlyConfigDirectoryReadsAndRefusesWritesCleanly) {
  ENVD_REQUIRE_MODULES("tcp builder", "docker runner");
  envd_ok({"context", "create", "--name", "kept", "--builder", "tcp", "--builder-address",
           "tcp://127.0.0.1:1234"});
  const std::string before = read_text(store_file());
  const std::string dir = config_dir().string();
  auto read_only = [&](const std::vector<std::string>& args) {
    sdk::ProcessOptions options;
    options.argv = {"unshare",
                    "--mount",
                    "sh",
                    "-c",
                    "mount --bind \"$0\" \"$0\" && mount -o remount,bind,ro \"$0\" && "
                    "exec \"$@\"",
                    dir,
                    envd_binary()};
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    options.env = base_env();
    options.timeout = std::chrono::seconds(30);
    auto r = sdk::run_process(options);
    EXPECT_TRUE(r) << r.error().message();
    return r ? *r : sdk::ProcessResult{};
  };
  // The mount works here (the test runs as root, as CI does); if it did not,
  // sh's error would be on stderr and the exit status 1 or 32, not envd's.
  auto ls = read_only({"context", "ls", "--format", "json"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find("\"kept\""), std::string::npos) << ls.out;

  for (const auto& args : store_writes()) {
    auto r = read_only(args);
    EXPECT_EQ(r.term_signal, 0) << r.err;
    EXPECT_EQ(r.exit_code, 1) << sdk::format_command(args) << "\n" << r.err;
    EXPECT_NE(r.err.find("Read-only file system"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(dir), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  EXPECT_EQ(read_text(store_file()), before);
}

// A hand-edited store with a path for a name and a terminal escape: one
// clean error line, nothing written.
TEST_F(ContextCli, AHostileStoreIsOneCleanErrorAndIsNotRewritten) {
  const std::string hostile =
      R"({"version":1,"current":"x\u001b[31m","contexts":[{"name":"../../x","id":"1",)"
      R"("builder":"tcp","builder_address":"127.0.0.1:1","runner":"docker"}]})";
  write_text(store_file(), hostile);
  auto r = envd({"context", "ls"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(store_file().string()), std::string::npos) << r.err;
  EXPECT_EQ(read_text(store_file()), hostile);
  EXPECT_FALSE(fs::exists(home() / ".config" / "x"));
}

// JSON holds only UTF-8: a Latin-1 byte a shell passed on used to be written
// into contexts.json, which envd then called corrupt. It is refused where it
// is read, naming the flag, and the store stays as it was.
TEST_F(ContextCli, ValuesThatAreNotUtf8AreRefusedAndTheStoreStaysReadable) {
  ENVD_REQUIRE_MODULES("tcp builder", "unix builder", "envd-server runner", "docker runner");
  envd_ok({"context", "create", "--name", "ok", "--builder", "tcp", "--builder-address",
           "tcp://127.0.0.1:1"});
  const std::string before = read_text(store_file());
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"context", "create", "u", "--builder", "unix", "--builder-address", "/tmp/a\xff.sock"},
       "invalid --builder-address '/tmp/a\\xff.sock': it is not UTF-8 text"},
      {{"context", "update", "ok", "--builder-address", "tcp://127.0.0.1:1\xe9"},
       "invalid --builder-address 'tcp://127.0.0.1:1\\xe9': it is not UTF-8 text"},
      {{"context", "create", "v", "--runner", "envd-server", "--runner-address",
        "http://127.0.0.1:1/p\xff"},
       "invalid --runner-address 'http://127.0.0.1:1/p\\xff': it is not UTF-8 text"},
      {{"context", "update", "ok", "--builder-opt", "image=im\xff"},
       "invalid --builder-opt 'image=im\\xff': it is not UTF-8 text"},
      {{"context", "update", "ok", "--builder-tls-servername", "x\xff"},
       "invalid --builder-tls-servername 'x\\xff': it is not UTF-8 text"},
      {{"context", "update", "ok", "--runner-opt", "a=\xff"},
       "invalid --runner-opt 'a=\\xff': it is not UTF-8 text"},
      {{"down", "x\xff"}, "invalid environment name 'x\\xff': it is not UTF-8 text"}};
  for (const auto& [args, said] : cases) {
    SCOPED_TRACE(args[0] + " " + args[1]);
    auto r = envd(args);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "envd: error: " + said + "\n");
    EXPECT_EQ(read_text(store_file()), before);
  }
  // --image and --env are read as the command line is read: exit 2.
  for (const auto& [args, said] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"run", "-i", "alp\xffine"}, "invalid --image 'alp\\xffine': it is not UTF-8 text"},
           {{"run", "-i", "alpine", "-e", "K=\xff"},
            "invalid --env 'K=\\xff': it is not UTF-8 text"}}) {
    auto r = envd(args);
    EXPECT_EQ(r.exit_code, 2) << said;
    EXPECT_EQ(r.err, "envd: error: " + said + " (see 'envd run --help')\n");
  }
  envd_ok({"context", "ls"});
  // A file's path reaches the driver as JSON text too: the message says how
  // to give such a file.
  auto tls = envd({"context", "update", "ok", "--builder-tls-ca", "/tmp/ca\xe9.pem"});
  EXPECT_EQ(tls.exit_code, 1);
  EXPECT_EQ(tls.err,
            "envd: error: invalid --builder-tls-ca '/tmp/ca\\xe9.pem': it is not UTF-8 text (give "
            "the file by a path that is, e.g. through a symbolic link)\n");
  EXPECT_EQ(read_text(store_file()), before);
}

TEST_F(ContextCli, ConfigDirectoryFollowsTheEnvironment) {
  ENVD_REQUIRE_MODULES("docker-container builder", "docker runner");
  fs::path custom = home() / "custom";
  envd_ok({"context", "create", "x"}, {{"ENVD_CONFIG_DIR", custom.string()}});
  EXPECT_TRUE(fs::exists(custom / "contexts.json"));
  fs::path xdg = home() / "xdg";
  envd_ok({"context", "ls"}, {{"XDG_CONFIG_HOME", xdg.string()}});
  EXPECT_TRUE(fs::exists(xdg / "envd" / "contexts.json"));
  EXPECT_FALSE(fs::exists(store_file()));
}

// ---- usage errors and help ---------------------------------------------------

TEST_F(ContextCli, UsageErrorsAreOneLineAndExitTwo) {
  auto unknown_flag = envd({"context", "ls", "--bogus"});
  EXPECT_EQ(unknown_flag.exit_code, 2);
  EXPECT_EQ(unknown_flag.err.rfind(kError, 0), 0u) << unknown_flag.err;
  EXPECT_EQ(std::count(unknown_flag.err.begin(), unknown_flag.err.end(), '\n'), 1);
  auto unknown_command = envd({"context", "frobnicate"});
  EXPECT_EQ(unknown_command.exit_code, 2);
  auto nothing = envd({});
  EXPECT_EQ(nothing.exit_code, 2);
}

TEST_F(ContextCli, HelpGoesToStdoutEverywhere) {
  for (const std::vector<std::string>& args : {std::vector<std::string>{"--help"},
                                               {"context", "--help"},
                                               {"context", "create", "--help"},
                                               {"context", "ls", "--help"},
                                               {"context", "rm", "--help"},
                                               {"context", "export", "--help"},
                                               {"plugin", "ls", "--help"}}) {
    auto r = envd(args);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << r.out;
  }
  auto version = envd_ok({"--version"});
  EXPECT_EQ(version.out.rfind("envd ", 0), 0u);
  // --version answers under every command, before the command's own checks
  // of its arguments (a name that create and rm require), as --help does.
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"context", "create", "--version"},
                                             {"context", "rm", "--version"},
                                             {"context", "ls", "--version"},
                                             {"build", "--version"}}) {
    auto r = envd(args);
    EXPECT_EQ(r.exit_code, 0) << args[1] << ": " << r.err;
    EXPECT_EQ(r.out, version.out) << args[1];
    EXPECT_EQ(r.err, "") << args[1];
  }
}

}  // namespace
}  // namespace envd::test
