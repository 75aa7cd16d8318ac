// What envd maps at start-up. Commands that talk to no daemon and read no
// archive load none of the BuildKit client's libraries (gRPC, protobuf,
// Abseil), TLS (OpenSSL) or libarchive: those commands run in envd-client,
// which envd executes in its place (core/cli/client/program.hpp), and which
// links gRPC, protobuf, Abseil and OpenSSL in. The dynamic loader's own trace
// (LD_DEBUG=files) names every object it maps, dlopen'ed ones included, for
// envd and then for envd-client in the same process.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli_harness.hpp"

namespace envd::test {
namespace {

namespace fs = std::filesystem;

using StartupCli = CliTest;

// The file names the loader mapped into envd itself during `envd <args>`
// (LD_DEBUG=files prints "<pid>: file=<name> [0];  generating link map" for
// each). Lines of other processes (the module scanner envd may start) are not
// envd's: its own pid is the first in the trace.
std::set<std::string> mapped(const std::string& trace) {
  std::set<std::string> names;
  std::istringstream lines(trace);
  std::string pid;
  for (std::string line; std::getline(lines, line);) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string prefix = line.substr(0, colon);
    prefix.erase(0, prefix.find_first_not_of(" \t"));
    if (prefix.empty() || prefix.find_first_not_of("0123456789") != std::string::npos) continue;
    if (pid.empty()) pid = prefix;
    if (prefix != pid) continue;
    auto at = line.find("file=");
    if (at == std::string::npos || line.find("generating link map") == std::string::npos) continue;
    std::string name = line.substr(at + 5);
    name = name.substr(0, name.find_first_of(" \t"));
    names.insert(fs::path(name).filename().string());
  }
  return names;
}

// The libraries among `names` that only the client's commands need: the
// BuildKit client's (which envd-client links in: never mapped), libarchive
// (opened for export and import), and the libraries earlier builds of envd
// loaded them from.
std::vector<std::string> client_only(const std::set<std::string>& names) {
  std::vector<std::string> found;
  for (const auto& name : names) {
    for (const char* prefix : {"libgrpc", "libgpr", "libprotobuf", "libabsl", "libarchive",
                               "libenvd-client", "libenvd-buildkit-proto"}) {
      if (name.rfind(prefix, 0) == 0) found.push_back(name);
    }
  }
  return found;
}

// Those and OpenSSL: what a command that loads no driver module must not map.
std::vector<std::string> heavy(const std::set<std::string>& names) {
  std::vector<std::string> found = client_only(names);
  for (const auto& name : names) {
    if (name.rfind("libssl", 0) == 0 || name.rfind("libcrypto", 0) == 0) found.push_back(name);
  }
  return found;
}

const std::map<std::string, std::optional<std::string>> kTrace{{"LD_DEBUG", "files"}};

TEST_F(StartupCli, CommandsThatTalkToNoDaemonMapNoneOfTheClientLibraries) {
  ENVD_REQUIRE_MODULES("tcp builder");
  // Commands that load no driver module into envd map nothing heavy at all.
  const std::vector<std::vector<std::string>> plain = {
      {"--help"},
      {"context", "ls"},
      {"context", "--help"},
      {"build", "--help"},
      {"completion", "bash"},
      {"__complete", "context", "use", ""},
      {"context", "ls", "--format", "json"},
      {"plugin", "ls"},
      {"version"},
  };
  // Commands that load the context's modules (to check addresses) map what
  // those bring (the docker runner links OpenSSL for TLS to the Engine), but
  // still nothing only the client's commands need.
  std::vector<std::vector<std::string>> with_modules = {
      {"context", "create", "remote", "--builder", "tcp", "--builder-address", "127.0.0.1:8888"},
      {"context", "use", "remote"},
      {"context", "inspect", "remote"},
      {"context", "use", "default"},
      {"context", "rm", "remote"},
  };
  // The default builder's module too, which every command on the default
  // context loads: it opens libarchive only to copy a config into a
  // container (plugins/docker-container/config_archive.hpp).
  const auto builders = built_builders();
  if (std::find(builders.begin(), builders.end(), "docker-container") != builders.end()) {
    with_modules.push_back({"context", "create", "dc", "--builder", "docker-container"});
    with_modules.push_back({"context", "rm", "dc"});
  }
  auto check = [&](const std::vector<std::string>& args, bool modules) {
    std::string line;
    for (const auto& a : args) line += " " + a;
    auto r = envd(args, kTrace);
    EXPECT_EQ(r.exit_code, 0) << "envd" << line << "\n" << r.err;
    auto names = mapped(r.err);
    // The trace is there: the C library is always among the mapped files.
    ASSERT_EQ(names.count("libc.so.6"), 1u) << "envd" << line << ": no loader trace\n" << r.err;
    EXPECT_EQ(modules ? client_only(names) : heavy(names), std::vector<std::string>{})
        << "envd" << line;
    // `context create` loads the tcp module to check the address: the module
    // brings its own shared C++ run-time beside envd's linked-in one, and the
    // command works (only C types cross the plugin ABI).
    if (ENVD_TEST_STATIC_CXX_RUNTIME && args.size() > 1 && args[1] == "create") {
      EXPECT_EQ(names.count("libstdc++.so.6"), 1u) << "envd" << line;
    }
    // Boost.JSON is linked into the executable (core/cli/CMakeLists.txt),
    // and so are libstdc++ and fmt (ENVD_STATIC_CXX_RUNTIME; the unwinder,
    // libgcc_s, stays shared).
    if (!modules) {
      for (const auto& name : names) {
        EXPECT_NE(name.rfind("libboost", 0), 0U) << "envd" << line << " maps " << name;
        if (ENVD_TEST_STATIC_CXX_RUNTIME) {
          for (const char* runtime : {"libstdc++", "libfmt"}) {
            EXPECT_NE(name.rfind(runtime, 0), 0U) << "envd" << line << " maps " << name;
          }
        }
      }
    }
  };
  for (const auto& args : plain) check(args, false);
  for (const auto& args : with_modules) check(args, true);
}

TEST_F(StartupCli, ExportRunsInTheClientProgram) {
  ENVD_REQUIRE_MODULES("tcp builder");
  envd_ok(
      {"context", "create", "local", "--builder", "tcp", "--builder-address", "127.0.0.1:8888"});
  auto r = envd({"context", "export", "local", (home() / "local.tar").string()}, kTrace);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::is_regular_file(home() / "local.tar"));
  auto names = mapped(r.err);
  // libarchive: only envd-client opens it, so envd-client ran the command.
  EXPECT_EQ(names.count("libarchive.so.13"), 1u);
  // And it binds none of gRPC, protobuf, Abseil or OpenSSL at run time.
  std::vector<std::string> shared_client;
  for (const auto& name : client_only(names)) {
    if (name != "libarchive.so.13") shared_client.push_back(name);
  }
  for (const auto& name : names) {
    if (name.rfind("libssl", 0) == 0 || name.rfind("libcrypto", 0) == 0) {
      shared_client.push_back(name);
    }
  }
  EXPECT_EQ(shared_client, std::vector<std::string>{});
}

TEST_F(StartupCli, AMissingClientProgramIsOneLineAndAFailure) {
  // An install without libexec/envd/envd-client: envd itself still lists
  // contexts, and a command that needs it says which file is missing.
  fs::path prefix = home() / "prefix";
  fs::create_directories(prefix / "bin");
  std::error_code ec;
  fs::create_hard_link(envd_binary(), prefix / "bin" / "envd",
                       ec);  // /proc/self/exe names the link
  if (ec) fs::copy_file(envd_binary(), prefix / "bin" / "envd");
  sdk::ProcessOptions options;
  options.argv = {(prefix / "bin" / "envd").string(), "context", "ls"};
  options.env = base_env();
  auto ls = sdk::run_process(options);
  ASSERT_TRUE(ls) << ls.error().message();
  EXPECT_EQ(ls->exit_code, 0) << ls->err;

  const std::string expected =
      "envd: error: cannot run '" + (prefix / "libexec" / "envd" / "envd-client").string() + "': ";
  for (const std::vector<std::string>& args : {
           std::vector<std::string>{"context", "export", "default", (home() / "out.tar").string()},
           std::vector<std::string>{"--context", "default", "build", home().string()},
           std::vector<std::string>{"builder", "status"},
       }) {
    options.argv = {(prefix / "bin" / "envd").string()};
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    auto r = sdk::run_process(options);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->exit_code, 1) << args.front();
    EXPECT_EQ(r->err.rfind(expected, 0), 0u) << r->err;
    EXPECT_NE(r->err.find("No such file"), std::string::npos) << r->err;
    EXPECT_EQ(std::count(r->err.begin(), r->err.end(), '\n'), 1) << r->err;
  }
  EXPECT_FALSE(fs::exists(home() / "out.tar"));

  // Help is envd's own: it needs no envd-client.
  options.argv = {(prefix / "bin" / "envd").string(), "build", "--help"};
  auto help = sdk::run_process(options);
  ASSERT_TRUE(help) << help.error().message();
  EXPECT_EQ(help->exit_code, 0) << help->err;
  EXPECT_NE(help->out.find("Usage: envd build"), std::string::npos) << help->out;
}

TEST_F(StartupCli, ABuildRunsInTheClientProgramWithNoneOfItsLibrariesShared) {
  // Past the option that takes a value, `build` is the command: envd hands it
  // over to envd-client before parsing, and the check that fails is
  // envd-client's (envd holds no build code).
  auto r = envd({"--context", "default", "build", (home() / "no-such-dir").string()}, kTrace);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("build context '" + (home() / "no-such-dir").string() + "' does not exist"),
            std::string::npos)
      << r.err;
  // Nothing heavy: envd-client links gRPC, protobuf, Abseil and OpenSSL in,
  // and opens libarchive only for export and import.
  EXPECT_EQ(heavy(mapped(r.err)), std::vector<std::string>{});
}

// envd links its C++ library in (ENVD_STATIC_CXX_RUNTIME) while a module it
// loads uses the shared one. A module built without the SDK's glue may let an
// exception escape a verb, against the ABI's rules: it must still end in the
// core's catch, not abort the process (the unwinder is shared for that).
TEST_F(StartupCli, AModuleThatThrowsIsAnErrorInEnvdsOwnProcess) {
  fs::path dir = home() / "plugins";
  fs::create_directories(dir);
  fs::copy_file(ENVD_TEST_THROWING_MODULE, dir / "throwing-builder.so");
  std::map<std::string, std::optional<std::string>> env{{"ENVD_PLUGIN_PATH", dir.string()},
                                                        {"LD_DEBUG", "files"}};
  auto r =
      envd({"context", "create", "t", "--builder", "test-throwing", "--builder-address", "x"}, env);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("envd: error: builder 'test-throwing': normalize_address threw an "
                       "exception: boom from normalize_address\n"),
            std::string::npos)
      << r.err;
  // envd loaded the module into its own process (the throw was not in the
  // scanner's), and that process had the module's shared C++ library.
  auto names = mapped(r.err);
  EXPECT_EQ(names.count("throwing-builder.so"), 1u) << r.err;
  if (ENVD_TEST_STATIC_CXX_RUNTIME) {
    EXPECT_EQ(names.count("libstdc++.so.6"), 1u) << r.err;
  }
  // Nothing was stored.
  auto ls = envd_ok({"context", "ls", "--format", "json"});
  EXPECT_EQ(ls.out.find("\"t\""), std::string::npos) << ls.out;
}

}  // namespace
}  // namespace envd::test
