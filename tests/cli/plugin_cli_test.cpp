// `envd plugin ls` and how commands live with broken modules on the path.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>

#include "cli_harness.hpp"
#include "envd/plugin_abi.h"
#include "envd/process.hpp"

namespace envd::test {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

class PluginCli : public CliTest {
 protected:
  // The environment of a context "t" on the test module's builder (its
  // status answers `status`), which this creates and uses; with `extra` too.
  std::map<std::string, std::optional<std::string>> use_test_builder(
      const std::string& status, std::map<std::string, std::optional<std::string>> extra = {}) {
    fs::path plugins = home() / "plugins";
    fs::create_directories(plugins);
    fs::copy_file(ENVD_TEST_LOGGING_MODULE, plugins / "test-builder.so");
    extra["ENVD_PLUGIN_PATH"] = plugins.string();
    extra["ENVD_TEST_BUILDER_STATUS"] = status;
    envd_ok({"context", "create", "--name", "t", "--builder", "test-builder", "--builder-address",
             "x", "--use"},
            extra);
    return extra;
  }

  // `envd plugin ls --format json` with an empty tmpfs over `dir` (/proc,
  // /dev) in a mount namespace of its own: hidden from envd alone. The test
  // runs as root, as CI does.
  sdk::ProcessResult plugin_ls_without(const std::string& dir) {
    std::string hide = "mount -t tmpfs none " + dir;
    sdk::ProcessOptions options;
    options.env = base_env();
    // An instrumented envd (the sanitizer suite's) reads its sanitizer
    // options from /proc/self/environ, not from libc; LeakSanitizer stops
    // threads through /proc/PID/task at exit, and AddressSanitizer warns that
    // it cannot find a stack's bounds (no /proc/self/maps). So under
    // AddressSanitizer the empty /proc holds that one file, with the exit
    // scan off and reports on stderr, not in the suite's report files that
    // the warnings would fail; what envd itself looks for is still absent.
    if (dir == "/proc" && std::getenv("ASAN_OPTIONS") != nullptr) {
      std::string asan;
      std::string all = asan_options_without_leak_scan();
      for (std::size_t start = 0; start <= all.size();) {
        std::size_t end = std::min(all.find(':', start), all.size());
        std::string option = all.substr(start, end - start);
        if (option.rfind("log_path=", 0) != 0) asan += (asan.empty() ? "" : ":") + option;
        start = end + 1;
      }
      options.env["ENVD_TEST_ASAN_OPTIONS"] = asan;
      hide +=
          " && mkdir /proc/self && printf 'ASAN_OPTIONS=%s\\000' \"$ENVD_TEST_ASAN_OPTIONS\" "
          "> /proc/self/environ";
    }
    options.argv = {"unshare", "--mount",     "sh",     "-c", hide + " && exec \"$@\"",
                    "sh",      envd_binary(), "plugin", "ls", "--format",
                    "json"};
    options.timeout = std::chrono::seconds(30);
    auto r = sdk::run_process(options);
    EXPECT_TRUE(r) << r.error().message();
    return r ? *r : sdk::ProcessResult{};
  }
};

TEST_F(PluginCli, ListsTheBackendsAsUsable) {
  auto r = envd_ok({"plugin", "ls", "--format", "json"});
  auto modules = json::parse(r.out).as_array();
  std::set<std::string> builders;
  std::set<std::string> runners;
  for (const auto& m : modules) {
    EXPECT_EQ(m.at("status"), "ok") << json::serialize(m);
    EXPECT_EQ(m.at("abi").as_string(),
              std::to_string(ENVD_ABI_MAJOR) + "." + std::to_string(ENVD_ABI_MINOR));
    EXPECT_EQ(m.at("version"), "0.1.0");
    EXPECT_TRUE(fs::path(std::string(m.at("path").as_string())).is_absolute());
    (m.at("kind") == "builder" ? builders : runners).insert(std::string(m.at("type").as_string()));
  }
  // Exactly the modules this build makes (envd_add_plugin's record).
  auto built = [](const std::vector<std::string>& types) {
    return std::set<std::string>(types.begin(), types.end());
  };
  EXPECT_EQ(builders, built(built_builders()));
  EXPECT_EQ(runners, built(built_runners()));

  auto table = envd_ok({"plugin", "ls"});
  EXPECT_EQ(table.out.rfind("TYPE", 0), 0u);
  EXPECT_NE(table.out.find("MATURITY"), std::string::npos);
  for (const auto& m : modules) {  // a row per module, with its file and maturity
    EXPECT_NE(table.out.find(std::string(m.at("path").as_string())), std::string::npos);
    EXPECT_NE(table.out.find(" " + std::string(m.at("maturity").as_string()) + " "),
              std::string::npos);
  }
}

// Without /proc (a chroot, a bare container) envd still finds where it was
// started from, and so the modules beside it; it used to list none, exit 0.
TEST_F(PluginCli, ModulesBesideEnvdAreFoundWithoutProc) {
  auto r = plugin_ls_without("/proc");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> types;
  const json::value listed = json::parse(r.out);
  for (const auto& m : listed.as_array()) {
    EXPECT_EQ(m.at("status"), "ok") << json::serialize(m);
    types.insert(std::string(m.at("type").as_string()));
  }
  std::set<std::string> built;
  for (const auto& type : built_builders()) built.insert(type);
  for (const auto& type : built_runners()) built.insert(type);
  EXPECT_EQ(types, built) << r.out << r.err;
}

// Without /dev the scan helper cannot be given /dev/null: said so, not taken
// for the helper itself missing (the spawn's ENOENT used to read that way).
TEST_F(PluginCli, WithoutDevTheScanSaysWhatIsMissing) {
  auto r = plugin_ls_without("/dev");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json::value listed = json::parse(r.out);
  ASSERT_FALSE(listed.as_array().empty()) << r.out;
  for (const auto& m : listed.as_array()) {
    EXPECT_EQ(m.at("status"), "refused");
    const std::string status(m.at("reason").as_string());
    EXPECT_NE(status.find("cannot open /dev/null for the streams it is not given: No such file "
                          "or directory (is /dev mounted?)"),
              std::string::npos)
        << status;
    EXPECT_EQ(status.find("envd-plugin-scan': No such file"), std::string::npos) << status;
  }
}

// A relative ENVD_PLUGIN_PATH entry is never searched (it would load modules
// from whatever directory envd runs in): the reports that list modules say
// so too, as every command that loads modules does; completion stays
// silent.
TEST_F(PluginCli, ARelativePluginPathEntryIsSaidToBeIgnored) {
  ENVD_REQUIRE_MODULES("tcp builder");
  const std::string warning =
      "envd: warning: ENVD_PLUGIN_PATH entry 'plugins' is not an absolute path: ignored (plugins "
      "are never loaded relative to the working directory)\n";
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{"plugin", "ls"},
        {"version"},
        {"context", "create", "--name", "t", "--builder", "tcp", "--builder-address", "h:1"}}) {
    auto r = envd(command, {{"ENVD_PLUGIN_PATH", "plugins:" + home().string()}});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err.substr(0, r.err.find('\n') + 1), warning) << command[0];
  }
  auto completed =
      envd({"__complete", "context", "create", "--builder", ""}, {{"ENVD_PLUGIN_PATH", "plugins"}});
  EXPECT_EQ(completed.err, "");
}

TEST_F(PluginCli, AGarbageModuleIsRefusedWithOneWarningAndNothingElseBreaks) {
  ENVD_REQUIRE_MODULES("tcp builder", "docker runner");
  fs::path dir = home() / "plugins";
  write_text(dir / "garbage.so", "this is not an ELF file\n");
  std::map<std::string, std::optional<std::string>> env{{"ENVD_PLUGIN_PATH", dir.string()}};

  auto create = envd(
      {"context", "create", "remote", "--builder", "tcp", "--builder-address", "127.0.0.1:8888"},
      env);
  EXPECT_EQ(create.exit_code, 0) << create.err;
  std::string warning = "envd: warning: skipping plugin '" + (dir / "garbage.so").string() + "': ";
  EXPECT_EQ(create.err.rfind(warning, 0), 0u) << create.err;
  EXPECT_NE(create.err.find("Context remote is created"), std::string::npos);

  auto ls = envd_ok({"plugin", "ls", "--format", "json"}, env);
  auto modules = json::parse(ls.out).as_array();
  // the modules of the build tree and garbage.so
  ASSERT_EQ(modules.size(), built_builders().size() + built_runners().size() + 1);
  EXPECT_EQ(modules[0].at("path").as_string(), (dir / "garbage.so").string());
  EXPECT_EQ(modules[0].at("status"), "refused");
  EXPECT_FALSE(modules[0].at("reason").as_string().empty());
  // plugin ls reports refusals in its table, not as warnings.
  EXPECT_EQ(ls.err, "");
}

// A module envd may not read is refused, but not remembered so: who may
// read it changes without touching the file (a user joins its group), and
// the next run, able to read it, takes it. (envd first runs without the
// capabilities that override permissions, as a user would.)
TEST_F(PluginCli, AModuleThatCannotBeReadIsNotRememberedAsRefused) {
  fs::path plugins = home() / "plugins";
  fs::create_directories(plugins);
  const fs::path module = plugins / "logging-builder.so";
  fs::copy_file(ENVD_TEST_LOGGING_MODULE, module);
  fs::permissions(module, fs::perms::none);
  std::map<std::string, std::optional<std::string>> env{{"ENVD_PLUGIN_PATH", plugins.string()}};
  auto listed = [](const sdk::ProcessResult& r, const fs::path& path) {
    const json::value modules = json::parse(r.out);
    for (const auto& entry : modules.as_array()) {
      if (entry.at("path").as_string() == path.string()) return entry.as_object();
    }
    return json::object{};
  };
  auto refused = envd_bound_by_permissions({"plugin", "ls", "--format", "json"}, env);
  ASSERT_EQ(refused.exit_code, 0) << refused.err;
  json::object entry = listed(refused, module);
  EXPECT_EQ(entry["status"], "refused") << refused.out;
  EXPECT_EQ(entry["reason"], "cannot be read: Permission denied") << refused.out;

  // The file is untouched (its stamp is the cached one); what changed is who
  // reads it: here a root that permissions do not bind, as a user who joined
  // the file's group would be.
  auto taken = envd({"plugin", "ls", "--format", "json"}, env);
  ASSERT_EQ(taken.exit_code, 0) << taken.err;
  entry = listed(taken, module);
  EXPECT_EQ(entry["status"], "ok") << taken.out;
}

// A plugin directory envd may not list would hide its modules silently: it
// is listed as a refused entry, and commands warn of it.
TEST_F(PluginCli, APluginDirectoryThatCannotBeListedIsSaid) {
  ENVD_REQUIRE_MODULES("tcp builder", "docker runner");
  fs::path plugins = home() / "closed-plugins";
  fs::create_directories(plugins);
  fs::copy_file(ENVD_TEST_LOGGING_MODULE, plugins / "logging-builder.so");
  fs::permissions(plugins, fs::perms::none);
  std::map<std::string, std::optional<std::string>> env{{"ENVD_PLUGIN_PATH", plugins.string()}};
  auto ls = envd_bound_by_permissions({"plugin", "ls", "--format", "json"}, env);
  auto create = envd_bound_by_permissions(
      {"context", "create", "remote", "--builder", "tcp", "--builder-address", "127.0.0.1:8888"},
      env);
  fs::permissions(plugins, fs::perms::owner_all);
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  const json::value modules = json::parse(ls.out);
  const json::object& first = modules.as_array().at(0).as_object();
  EXPECT_EQ(first.at("path").as_string(), plugins.string()) << ls.out;
  EXPECT_EQ(first.at("status"), "refused") << ls.out;
  EXPECT_EQ(first.at("reason"), "the directory cannot be listed: Permission denied") << ls.out;
  EXPECT_EQ(create.exit_code, 0) << create.err;
  EXPECT_EQ(create.err, "envd: warning: skipping plugin '" + plugins.string() +
                            "': the directory cannot be listed: Permission denied\n"
                            "Context remote is created\n");
}

// An envd whose scan helper is missing (a broken or half-done install)
// refuses every module, naming both places it looked; that is not a fact
// about the modules, so it is not cached: once the helper is back, the same
// modules load, without touching them.
TEST_F(PluginCli, AMissingScanHelperIsNotRememberedAsTheModulesRefusal) {
  fs::path plugins = home() / "plugins";
  fs::create_directories(plugins);
  fs::copy_file(ENVD_TEST_LOGGING_MODULE, plugins / "logging-builder.so");
  // A moved installation whose libexec/ lost the helper.
  fs::path tree = home() / "tree";
  fs::create_directories(tree / "bin");
  fs::copy_file(envd_binary(), tree / "bin" / "envd");
  const fs::path helper =
      fs::path(envd_binary()).parent_path().parent_path() / "libexec" / "envd" / "envd-plugin-scan";
  ASSERT_TRUE(fs::exists(helper)) << helper;
  sdk::ProcessOptions options;
  options.argv = {(tree / "bin" / "envd").string(), "plugin", "ls", "--format", "json"};
  options.env = base_env();
  options.env["ENVD_PLUGIN_PATH"] = plugins.string();
  options.timeout = std::chrono::seconds(60);
  auto module_status = [&]() -> json::object {
    auto r = sdk::run_process(options);
    EXPECT_TRUE(r) << r.error().message();
    if (!r) return {};
    EXPECT_EQ(r->exit_code, 0) << r->err;
    json::value listed = json::parse(r->out);
    for (const auto& m : listed.as_array()) {
      if (m.at("path").as_string().ends_with("/logging-builder.so")) return m.as_object();
    }
    ADD_FAILURE() << "the module is not listed: " << r->out;
    return {};
  };
  auto missing = module_status();
  EXPECT_EQ(missing["status"], "refused") << json::serialize(missing);
  const std::string reason(missing["reason"].is_string() ? missing["reason"].as_string() : "");
  EXPECT_EQ(reason.rfind("cannot be scanned: cannot run '", 0), 0u) << reason;
  EXPECT_NE(
      reason.find("(nor can '" + (tree / "libexec" / "envd" / "envd-plugin-scan").string() + "')"),
      std::string::npos)
      << reason;

  fs::create_directories(tree / "libexec" / "envd");
  fs::copy_file(helper, tree / "libexec" / "envd" / "envd-plugin-scan");
  auto back = module_status();
  EXPECT_EQ(back["status"], "ok") << json::serialize(back);
}

// A driver's facts are shown as text: an escape sequence in them would drive
// the terminal (retitle it, clear it) if printed as it came.
TEST_F(PluginCli, BuilderStatusShowsADriversFactsPrintable) {
  ENVD_REQUIRE_MODULES("docker runner");
  auto env = use_test_builder(R"({"state":"stopped","detail":"gone\u001b]0;pwned\u0007\u001b[2J",)"
                              R"("image":"img\u001b[5mblink","volume":"v\nw"})");
  auto r = envd({"builder", "status"}, env);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find('\a'), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Detail:     gone\\x1b]0;pwned\\x07\\x1b[2J\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Image:      img\\x1b[5mblink\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Volume:     v\\x0aw\n"), std::string::npos) << r.out;
}

// The ABI gives a driver its context's private directory (0700) to keep
// files in: it exists when a verb runs, also for a context that stores no
// file (which has not needed one before).
TEST_F(PluginCli, ADriverVerbFindsItsPrivateDirectory) {
  ENVD_REQUIRE_MODULES("docker runner");
  auto env = use_test_builder(R"({"state":"stopped","detail":"here"})");
  json::object ctx = stored_context(read_store(), "t");
  const fs::path dir = config_dir() / "contexts.d" / std::string(ctx.at("id").as_string());
  ASSERT_FALSE(fs::exists(dir)) << "a context without stored files has no directory yet";
  auto r = envd({"builder", "status"}, env);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::is_directory(dir));
  EXPECT_EQ(mode_of(dir), 0700u);
}

// A driver whose look took nearly the whole --connect-timeout leaves the
// probe a moment; the failure says where the time went rather than only
// "no answer within 1ms", which would blame the daemon.
TEST_F(PluginCli, BuilderStatusSaysWhenTheDriversLookTookTheDeadline) {
  ENVD_REQUIRE_MODULES("docker runner");
  auto env = use_test_builder(R"({"state":"running","detail":"slow to say"})",
                              {{"ENVD_TEST_BUILDER_STATUS_DELAY_MS", "960"}});
  auto r = envd({"builder", "status", "--connect-timeout", "1s"}, env);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(
      r.err.rfind("envd: error: cannot connect to buildkitd at test-builder://test-builder:x: "
                  "looking at the builder took all but ",
                  0),
      0u)
      << r.err;
  EXPECT_NE(r.err.find(" ms of the 1000 ms --connect-timeout; give it longer\n"), std::string::npos)
      << r.err;
}

TEST_F(PluginCli, AWorldWritableModuleIsRefused) {
  ENVD_REQUIRE_MODULES("tcp builder");
  fs::path dir = home() / "plugins";
  auto listing = json::parse(envd_ok({"plugin", "ls", "--format", "json"}).out).as_array();
  fs::path tcp;
  for (const auto& m : listing) {
    if (m.at("type") == "tcp") tcp = std::string(m.at("path").as_string());
  }
  ASSERT_FALSE(tcp.empty());
  fs::create_directories(dir);
  fs::copy_file(tcp, dir / "copy-of-tcp.so");
  ::chmod((dir / "copy-of-tcp.so").c_str(), 0666);
  auto r = envd_ok({"plugin", "ls", "--format", "json"}, {{"ENVD_PLUGIN_PATH", dir.string()}});
  auto modules = json::parse(r.out).as_array();
  EXPECT_EQ(modules[0].at("status"), "refused");
  EXPECT_NE(modules[0].at("reason").as_string().find("world-writable"), json::string::npos)
      << json::serialize(modules[0]);
}

TEST_F(PluginCli, AnEarlierModuleShadowsALaterOneOfTheSameType) {
  ENVD_REQUIRE_MODULES("tcp builder");
  auto listing = json::parse(envd_ok({"plugin", "ls", "--format", "json"}).out).as_array();
  fs::path tcp;
  for (const auto& m : listing) {
    if (m.at("type") == "tcp") tcp = std::string(m.at("path").as_string());
  }
  fs::path dir = home() / "plugins";
  fs::create_directories(dir);
  fs::copy_file(tcp, dir / "my-tcp.so");
  auto r = envd_ok({"plugin", "ls", "--format", "json"}, {{"ENVD_PLUGIN_PATH", dir.string()}});
  int ok = 0;
  auto modules = json::parse(r.out).as_array();
  for (const auto& m : modules) {
    if (m.at("type") != "tcp") continue;
    if (m.at("status") == "ok") {
      ++ok;
      EXPECT_EQ(m.at("path").as_string(), (dir / "my-tcp.so").string());
    } else {
      EXPECT_NE(m.at("reason").as_string().find("already provided by"), json::string::npos);
    }
  }
  EXPECT_EQ(ok, 1);
}

TEST_F(PluginCli, CommandsThatNeedNoDriverDoNotEvenScan) {
  ENVD_REQUIRE_MODULES("docker-container builder", "docker runner");
  fs::path dir = home() / "plugins";
  write_text(dir / "garbage.so", "not a module");
  std::map<std::string, std::optional<std::string>> env{{"ENVD_PLUGIN_PATH", dir.string()}};
  envd_ok({"context", "create", "demo"});  // needs drivers: scans and caches
  fs::path cache = home() / ".cache" / "envd" / "plugin-manifests.json";
  ASSERT_TRUE(fs::exists(cache));
  fs::remove(cache);
  for (const std::vector<std::string>& args : {std::vector<std::string>{"context", "ls"},
                                               {"context", "use", "demo"},
                                               {"context", "show"},
                                               {"context", "inspect"},
                                               {"context", "rename", "demo", "demo2"},
                                               {"context", "rm", "-f", "demo2"}}) {
    auto r = envd(args, env);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    // A scan would have warned about garbage.so.
    EXPECT_EQ(r.err.find("skipping plugin"), std::string::npos) << args[1] << ": " << r.err;
  }
  EXPECT_FALSE(fs::exists(cache));
}

}  // namespace
}  // namespace envd::test

namespace envd::test {
namespace {

// A module whose entry function logs each call (tests/plugins/modules) proves
// when envd runs module code: a listing with a current manifest cache runs
// none, and a command loads only the driver it needs.
TEST_F(PluginCli, ModuleCodeRunsOnlyWhenTheCacheIsStaleOrTheDriverIsUsed) {
  ENVD_REQUIRE_MODULES("docker runner");  // of `context create`
  fs::path dir = home() / "plugins";
  fs::create_directories(dir);
  fs::copy_file(ENVD_TEST_LOGGING_MODULE, dir / "logging-builder.so");
  fs::path log = home() / "entry.log";
  std::map<std::string, std::optional<std::string>> env{{"ENVD_PLUGIN_PATH", dir.string()},
                                                        {"ENVD_TEST_ENTRY_LOG", log.string()}};
  auto calls = [&] {
    std::string text = read_text(log);
    return std::count(text.begin(), text.end(), '\n');
  };

  auto first = envd_ok({"plugin", "ls", "--format", "json"}, env);
  EXPECT_NE(first.out.find("\"type\":\"test-builder\""), std::string::npos) << first.out;
  const auto after_scan = calls();
  EXPECT_GE(after_scan, 1);

  envd_ok({"plugin", "ls"}, env);
  envd_ok({"context", "ls"}, env);
  EXPECT_EQ(calls(), after_scan) << "a current cache must spare module code";

  envd_ok({"context", "create", "t", "--builder", "test-builder", "--builder-address", "x"}, env);
  EXPECT_EQ(calls(), after_scan + 1) << "using the driver loads it once";
  EXPECT_EQ(ls_json().at(1).at("builder_addr"), "test-builder://test-builder:x");

  // A changed file (new mtime) is scanned again.
  fs::last_write_time(dir / "logging-builder.so",
                      fs::last_write_time(dir / "logging-builder.so") + std::chrono::seconds(5));
  envd_ok({"plugin", "ls"}, env);
  EXPECT_EQ(calls(), after_scan + 2);
}

// A module runs in envd's process, so a debugging printf left in one would
// land in the middle of `envs ls --format json`. envd keeps its data on a
// descriptor of its own (core/util/data_out.hpp): what the module prints,
// buffered or written to descriptor 1, goes to stderr, and the data stays
// whole, for data the core prints as for data the module writes (logs).
TEST_F(PluginCli, WhatAModulePrintsGoesToStderrNotIntoTheData) {
  ENVD_REQUIRE_MODULES("tcp builder");
  fs::path plugins = home() / "plugins";
  fs::create_directories(plugins);
  fs::copy_file(ENVD_TEST_CHATTY_RUNNER_MODULE, plugins / "chatty-runner.so");
  std::map<std::string, std::optional<std::string>> env{{"ENVD_PLUGIN_PATH", plugins.string()}};
  envd_ok({"context", "create", "c", "--builder", "tcp", "--builder-address", "tcp://127.0.0.1:1",
           "--runner", "chatty-runner", "--runner-address", "x", "--use"},
          env);

  auto ls = envd_ok({"envs", "ls", "--format", "json"}, env);
  json::value listed = json::parse(ls.out);  // throws, failing the test, if spoilt
  ASSERT_TRUE(listed.is_array()) << ls.out;
  ASSERT_EQ(listed.as_array().size(), 1u) << ls.out;
  EXPECT_EQ(listed.as_array()[0].at("name"), "dev") << ls.out;
  EXPECT_NE(ls.err.find("printf from list\n"), std::string::npos) << ls.err;
  EXPECT_NE(ls.err.find("write(1) from list\n"), std::string::npos) << ls.err;

  auto table = envd_ok({"envs", "ls"}, env);
  EXPECT_EQ(table.out.find("from list"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("dev"), std::string::npos) << table.out;

  // The module writes the request to the descriptor envd hands it for the
  // output, and "err" to the one for errors.
  auto logs = envd_ok({"envs", "logs", "dev"}, env);
  EXPECT_EQ(logs.out.find("from logs"), std::string::npos) << logs.out;
  EXPECT_NO_THROW((void)json::parse(logs.out)) << logs.out;
  EXPECT_NE(logs.err.find("write(1) from logs\n"), std::string::npos) << logs.err;
  EXPECT_NE(logs.err.find("err\n"), std::string::npos) << logs.err;
}

}  // namespace
}  // namespace envd::test
