// The docker-container builder against the real Docker Engine of
// tests/services. No moby/buildkit image can be pulled here, so SetUp imports
// envd-test/buildkit-standin:{1,2} (standin-image.sh, standin.cpp): its
// `buildctl dial-stdio` forwards to the engine's embedded BuildKit through the
// engine socket mounted into the container, and its `buildkitd` logs its
// arguments and config. Every test bootstraps its own uniquely named container
// through the real envd binary and removes it (and its volume) afterwards.
//
// Containers run with privileged=false (this machine cannot run privileged
// ones) and network=none (the test engine has no bridge).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <future>
#include <map>
#include <string>
#include <vector>

#include "cli_harness.hpp"
#include "pty_session.hpp"
#include "services/password_registry.hpp"
#include "services/test_services.hpp"

namespace envd::test {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr const char* kStandin = "envd-test/buildkit-standin:1";
constexpr const char* kStandin2 = "envd-test/buildkit-standin:2";
constexpr const char* kEngineSocketInContainer = "/run/envd-test/docker.sock";

class DockerContainer : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    services_ = TestServices::load();
    ASSERT_TRUE(services_.ok()) << services_.error;
    sdk::ProcessOptions image;
    image.argv = {"bash",   ENVD_STANDIN_SCRIPT, services_.env_file, ENVD_STANDIN_BINARY, kStandin,
                  kStandin2};
    image.timeout = std::chrono::seconds(120);
    auto made = sdk::run_process(image);
    ASSERT_TRUE(made && made->exit_code == 0) << (made ? made->err : made.error().message());
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    name_ = std::string("envd_dc_") + info->name() + "_" + std::to_string(::getpid());
  }

  void TearDown() override {
    for (const auto& name : containers_) {
      docker({"rm", "-f", name});
      docker({"volume", "rm", "-f", name + "_state"});
    }
    CliTest::TearDown();
  }

  std::map<std::string, std::optional<std::string>> env() const {
    return {{"DOCKER_HOST", services_.docker_host},
            {"DOCKER_CONFIG", (home() / ".docker").string()},
            {"BUILDKIT_PROGRESS", std::nullopt},
            {"BUILDKIT_CONNECTING_TIMEOUT", std::nullopt}};
  }

  // The options every test context needs here, plus `extra`.
  std::vector<std::string> options(const std::vector<std::string>& extra = {},
                                   bool privileged_false = true) const {
    std::vector<std::string> out = {
        "--builder-opt", "network=none", "--builder-opt",
        "mount=" + services_.docker_socket() + ":" + kEngineSocketInContainer};
    if (privileged_false) {
      out.insert(out.end(), {"--builder-opt", "privileged=false"});
    }
    out.insert(out.end(), extra.begin(), extra.end());
    return out;
  }

  // Creates and uses context `dc` with a builder container named `name`.
  void create_context(const std::string& name, const std::vector<std::string>& opts) {
    containers_.push_back(name);
    std::vector<std::string> args = {
        "context",           "create", "--name", "dc", "--builder", "docker-container",
        "--builder-address", name,     "--use"};
    args.insert(args.end(), opts.begin(), opts.end());
    envd_ok(args, env());
  }

  sdk::ProcessResult run(std::vector<std::string> args, const std::string& image = kStandin) {
    if (!image.empty()) args.insert(args.begin(), {"--buildkitd-image", image});
    return envd(args, env());
  }

  json::object run_json(std::vector<std::string> args, const std::string& image = kStandin) {
    args.insert(args.end(), {"--format", "json"});
    auto r = run(args, image);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    boost::system::error_code ec;
    auto v = json::parse(r.out, ec);
    EXPECT_FALSE(ec) << r.out;
    return !ec && v.is_object() ? v.as_object() : json::object{};
  }

  sdk::ProcessResult docker(const std::vector<std::string>& args) {
    return run_docker(services_.docker_host, args);
  }

  // `docker inspect` of a container (or {} when it does not exist).
  json::object inspect(const std::string& name) {
    auto r = docker({"inspect", "--type", "container", name});
    if (r.exit_code != 0) return {};
    return json::parse(r.out).as_array().at(0).as_object();
  }

  std::string state_of(const std::string& name) {
    auto c = inspect(name);
    return c.empty() ? "missing" : std::string(c.at("State").at("Status").as_string());
  }

  std::string logs(const std::string& name) {
    auto r = docker({"logs", name});
    return r.out + r.err;
  }

  TestServices services_;
  std::string name_;
  std::vector<std::string> containers_;
};

std::string str(const json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : json::serialize(v);
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

int lines_of(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

TEST_F(DockerContainer, FirstUseBootstrapCreatesTheContainerWithVolumeLabelsAndConfig) {
  create_context(name_, options({"--builder-opt", "gc-keep-storage=1GB"}));
  auto out = run_json({"bootstrap"});
  EXPECT_EQ(out["action"], "created");
  EXPECT_EQ(str(out["container"]), name_);
  EXPECT_EQ(str(out["volume"]), name_ + "_state");
  ASSERT_TRUE(out.contains("workers")) << json::serialize(out);
  EXPECT_EQ(out["workers"].as_array().at(0).at("id"), "moby");

  auto c = inspect(name_);
  ASSERT_FALSE(c.empty());
  EXPECT_EQ(c.at("State").at("Status"), "running");
  const auto& labels = c.at("Config").at("Labels").as_object();
  EXPECT_EQ(labels.at("dev.envd.builder.image"), kStandin);
  EXPECT_EQ(labels.at("dev.envd.context"), "dc");
  EXPECT_EQ(labels.at("dev.envd.builder.config-sha256").as_string().size(), 64u);
  EXPECT_EQ(c.at("Config").at("Cmd"), (json::array{"--config", "/etc/buildkit/buildkitd.toml"}));
  EXPECT_EQ(c.at("HostConfig").at("Privileged"), false);
  EXPECT_EQ(c.at("HostConfig").at("NetworkMode"), "none");
  bool volume = false;
  bool config = false;
  for (const auto& m : c.at("Mounts").as_array()) {
    if (m.at("Destination") == "/var/lib/buildkit") {
      volume = m.at("Type") == "volume" && str(m.at("Name")) == name_ + "_state";
    }
    if (m.at("Destination") == "/etc/buildkit/buildkitd.toml") {
      config = m.at("Type") == "bind" && m.at("RW") == false;
      std::string source(m.at("Source").as_string());
      EXPECT_TRUE(has(source, home().string())) << source << " is not in the context's dir";
      // The context's directory, whoever made it, is private to the user.
      EXPECT_EQ(fs::status(fs::path(source).parent_path()).permissions(), fs::perms::owner_all)
          << source;
      EXPECT_TRUE(has(read_text(source), "gckeepstorage = 1000000000")) << read_text(source);
    }
  }
  EXPECT_TRUE(volume) << json::serialize(c.at("Mounts"));
  EXPECT_TRUE(config) << json::serialize(c.at("Mounts"));
  // The stand-in's buildkitd logs the config it was started with.
  auto log = logs(name_);
  EXPECT_TRUE(has(log, "[worker.oci]\n  gckeepstorage = 1000000000")) << log;

  // A second use finds it running and changes nothing.
  auto again = run_json({"bootstrap"});
  EXPECT_EQ(again["action"], "running");
  EXPECT_EQ(inspect(name_).at("Id"), c.at("Id"));

  auto status = run_json({"builder", "status"});
  EXPECT_EQ(status["state"], "running");
  EXPECT_EQ(status["reachable"], true);
  EXPECT_EQ(status["driver"].at("image"), kStandin);
}

TEST_F(DockerContainer, AUserConfigFileIsMountedInstead) {
  fs::path config = home() / "my-buildkitd.toml";
  write_text(config, "# user config marker\ndebug = true\n");
  create_context(name_, options({"--buildkitd-config", config.string()}));
  write_text(config, "# changed after the context was made\n");
  auto out = run_json({"bootstrap"});
  EXPECT_EQ(out["action"], "created");
  auto log = logs(name_);
  EXPECT_TRUE(has(log, "# user config marker\ndebug = true")) << log;
  EXPECT_FALSE(has(log, "changed after")) << "the stored copy is used, not the original";
}

TEST_F(DockerContainer, PrivilegedByDefaultFailsHereWithTheEnginesMessage) {
  create_context(name_, options({}, /*privileged_false=*/false));
  auto r = run({"bootstrap"});
  EXPECT_EQ(r.exit_code, 1);
  auto last = r.err.substr(r.err.rfind("envd: error: "));
  EXPECT_EQ(lines_of(last), 1) << last;
  EXPECT_TRUE(has(last, "cannot start buildkitd container '" + name_ + "'")) << last;
  EXPECT_TRUE(has(last, "the Docker Engine at " + services_.docker_host)) << last;
  EXPECT_TRUE(has(last, "unable to apply caps")) << last;
  EXPECT_EQ(state_of(name_), "missing") << "a container that never ran is not left behind";
  EXPECT_NE(docker({"volume", "inspect", name_ + "_state"}).exit_code, 0)
      << "nor the volume made for it";
}

TEST_F(DockerContainer, EachExistingStateIsHandled) {
  create_context(name_, options());
  EXPECT_EQ(run_json({"bootstrap"})["action"], "created");

  ASSERT_EQ(docker({"pause", name_}).exit_code, 0);
  auto status = run_json({"builder", "status"});
  EXPECT_EQ(status["state"], "stopped");
  EXPECT_EQ(status["driver"].at("container_state"), "paused");
  EXPECT_EQ(run_json({"bootstrap"})["action"], "unpaused");
  EXPECT_EQ(state_of(name_), "running");

  ASSERT_EQ(docker({"stop", "-t", "1", name_}).exit_code, 0);
  status = run_json({"builder", "status"});
  EXPECT_EQ(status["state"], "stopped");
  EXPECT_EQ(status["reachable"], false);
  EXPECT_EQ(run_json({"bootstrap"})["action"], "started");

  ASSERT_EQ(docker({"kill", name_}).exit_code, 0);
  // Any builder-using command brings it back, not only bootstrap.
  auto probed = run_json({"builder", "status"});
  EXPECT_EQ(probed["state"], "stopped");
  fs::path dir = home() / "ctx";
  write_text(dir / "Dockerfile", "FROM scratch\nCOPY a.txt /a.txt\n");
  write_text(dir / "a.txt", "a\n");
  auto build = run({"build", "--progress", "plain", "--output",
                    "type=local,dest=" + (home() / "out").string(), dir.string()});
  ASSERT_EQ(build.exit_code, 0) << build.err;
  EXPECT_TRUE(has(build.err, "starting " + name_)) << build.err;
  EXPECT_EQ(read_text(home() / "out" / "a.txt"), "a\n");
  EXPECT_EQ(state_of(name_), "running");
}

TEST_F(DockerContainer, AChangedImageOrConfigIsDetectedAndRecreateReplacesIt) {
  create_context(name_, options());
  EXPECT_EQ(run_json({"bootstrap"})["action"], "created");
  auto first_id = inspect(name_).at("Id");
  ASSERT_EQ(docker({"exec", name_, "sh", "-c", "echo cached > /var/lib/buildkit/marker"}).exit_code,
            0);

  auto r = run({"bootstrap"}, kStandin2);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has(r.err,
                  "envd: error: cannot bootstrap the builder of context 'dc': builder "
                  "'docker-container': buildkitd container '" +
                      name_ + "' does not match the context: it runs image " + kStandin +
                      " but the context asks for " + kStandin2 +
                      "; run 'envd bootstrap --recreate' to replace it"))
      << r.err;
  // A build does not silently use the stale container either.
  fs::path dir = home() / "ctx";
  write_text(dir / "Dockerfile", "FROM scratch\n");
  auto build = run({"build", dir.string()}, kStandin2);
  EXPECT_EQ(build.exit_code, 1);
  EXPECT_TRUE(has(build.err, "does not match the context")) << build.err;
  EXPECT_EQ(inspect(name_).at("Id"), first_id);

  auto recreated = run_json({"bootstrap", "--recreate"}, kStandin2);
  EXPECT_EQ(recreated["action"], "recreated");
  auto c = inspect(name_);
  EXPECT_NE(c.at("Id"), first_id);
  EXPECT_EQ(c.at("Config").at("Labels").at("dev.envd.builder.image"), kStandin2);
  EXPECT_EQ(docker({"exec", name_, "cat", "/var/lib/buildkit/marker"}).out, "cached\n")
      << "the cache volume survives recreation";

  // Changed driver options make it stale too. A list item in double quotes
  // holds commas (a proxy's NO_PROXY list).
  envd_ok({"context", "update", "dc", "--builder-opt", R"(env="NO_PROXY=a,b")", "--builder-opt",
           "env=A=1"},
          env());
  auto stale = run({"bootstrap"}, kStandin2);
  EXPECT_EQ(stale.exit_code, 1);
  EXPECT_TRUE(has(stale.err, "its buildkitd.toml or driver options differ")) << stale.err;
  auto status = run_json({"builder", "status"}, kStandin2);
  EXPECT_EQ(status["state"], "running");
  EXPECT_EQ(status["reachable"], false);
  EXPECT_TRUE(has(str(status["detail"]), "envd bootstrap --recreate")) << json::serialize(status);
  EXPECT_TRUE(status["driver"].as_object().contains("stale")) << json::serialize(status);
  EXPECT_EQ(run_json({"bootstrap", "--recreate"}, kStandin2)["action"], "recreated");
  const auto container_env = json::value(inspect(name_).at("Config").at("Env")).as_array();
  ASSERT_GE(container_env.size(), 2u) << json::serialize(container_env);
  EXPECT_EQ(container_env[0], "NO_PROXY=a,b");
  EXPECT_EQ(container_env[1], "A=1");
}

// --recreate with no container to replace makes one, once: it made one, and
// then replaced the one it had just made.
TEST_F(DockerContainer, RecreateWithNothingToReplaceCreatesOnce) {
  create_context(name_, options());
  auto r = run({"bootstrap", "--recreate", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out).as_object().at("action"), "created") << r.out;
  EXPECT_FALSE(has(r.err, "to recreate it")) << r.err;
  EXPECT_EQ(r.err.find("creating container"), r.err.rfind("creating container")) << r.err;
  EXPECT_EQ(state_of(name_), "running");
}

// Two --recreate at once (two CI jobs): each may replace the container once,
// but neither replaces the one the other just made, and neither fails
// because the container it waited for was replaced under it ("buildkitd
// container ... disappeared").
TEST_F(DockerContainer, TwoRecreatesAtOnceBothSucceed) {
  create_context(name_, options());
  EXPECT_EQ(run_json({"bootstrap"})["action"], "created");
  for (int round = 0; round < 3; ++round) {
    auto first = std::async(std::launch::async, [&] { return run({"bootstrap", "--recreate"}); });
    auto second = run({"bootstrap", "--recreate"});
    auto other = first.get();
    EXPECT_EQ(other.exit_code, 0) << "round " << round << ": " << other.err;
    EXPECT_EQ(second.exit_code, 0) << "round " << round << ": " << second.err;
  }
  EXPECT_EQ(state_of(name_), "running");
}

TEST_F(DockerContainer, OnATerminalAStaleBuilderIsRecreatedWhenTheUserConfirms) {
  create_context(name_, options());
  EXPECT_EQ(run_json({"bootstrap"})["action"], "created");
  fs::path dir = home() / "ctx";
  write_text(dir / "Dockerfile", "FROM scratch\n");
  // script(1) gives envd a terminal on stdin and stderr, fed from our stdin.
  auto on_terminal = [&](const std::string& answer) {
    sdk::ProcessOptions options;
    std::string command =
        sdk::format_command({envd_binary(), "--buildkitd-image", kStandin2, "build", "--output",
                             "type=local,dest=" + (home() / "out").string(), dir.string()});
    options.argv = {"script", "-qec", command, "/dev/null"};
    options.env = base_env();
    for (const auto& [key, value] : env()) options.env[key] = value;
    options.stdin_data = answer + "\n";
    options.timeout = std::chrono::seconds(60);
    auto r = sdk::run_process(options);
    EXPECT_TRUE(r) << (r ? "" : r.error().message());
    return r ? *r : sdk::ProcessResult{};
  };
  auto declined = on_terminal("n");
  EXPECT_NE(declined.exit_code, 0);
  EXPECT_TRUE(has(declined.out, "Recreate it now? [y/N]")) << declined.out;
  EXPECT_EQ(str(inspect(name_).at("Config").at("Labels").at("dev.envd.builder.image")), kStandin);

  auto confirmed = on_terminal("y");
  EXPECT_EQ(confirmed.exit_code, 0) << confirmed.out;
  EXPECT_TRUE(has(confirmed.out, "removing container " + name_ + " to recreate it"))
      << confirmed.out;
  EXPECT_EQ(str(inspect(name_).at("Config").at("Labels").at("dev.envd.builder.image")), kStandin2);
}

// Ctrl-C at the question ends envd at once: the signal is taken by envd's
// watcher thread, so a blocking read of the answer was never interrupted and
// envd waited for its 10 s watchdog.
TEST_F(DockerContainer, CtrlCAtTheRecreateQuestionEndsAtOnce) {
  create_context(name_, options());
  EXPECT_EQ(run_json({"bootstrap"})["action"], "created");
  fs::path dir = home() / "ctx";
  write_text(dir / "Dockerfile", "FROM scratch\n");
  std::map<std::string, std::string> environment;
  for (const auto& [key, value] : base_env()) {
    if (value) environment[key] = *value;
  }
  for (const auto& [key, value] : env()) {
    if (value) environment[key] = *value;
  }
  environment["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin";
  auto session =
      PtySession::start({envd_binary(), "--buildkitd-image", kStandin2, "build", "--output",
                         "type=local,dest=" + (home() / "out").string(), dir.string()},
                        environment, 24, 80);
  ASSERT_NE(session, nullptr);
  ASSERT_TRUE(session->wait_for("Recreate it now? [y/N]", std::chrono::seconds(60)))
      << session->output();
  const auto asked = std::chrono::steady_clock::now();
  session->type("\x03");
  auto code = session->wait_exit(std::chrono::seconds(20));
  ASSERT_TRUE(code) << session->output();
  EXPECT_EQ(*code, 130) << session->output();
  EXPECT_LT(std::chrono::steady_clock::now() - asked, std::chrono::seconds(3)) << session->output();
  EXPECT_EQ(str(inspect(name_).at("Config").at("Labels").at("dev.envd.builder.image")), kStandin);
}

TEST_F(DockerContainer, AFailingEntrypointShowsItsLogsAndExitCode) {
  create_context(name_, options({"--builder-opt", "env=STANDIN_EXIT_CODE=3"}));
  auto r = run({"bootstrap"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has(r.err, "buildkitd container '" + name_ + "' exited with code 3")) << r.err;
  // Its stdout and stderr lines interleave in either order.
  EXPECT_TRUE(has(r.err, "its last log lines:\n  ")) << r.err;
  EXPECT_TRUE(has(
      r.err, "\n  buildkitd (envd test stand-in) args: --config /etc/buildkit/buildkitd.toml\n"))
      << r.err;
  EXPECT_TRUE(has(r.err, "\n  standin: failing on purpose with exit code 3")) << r.err;
  EXPECT_TRUE(has(r.err, "\n  standin: fatal: configured to fail")) << r.err;
  auto status = run_json({"builder", "status"});
  EXPECT_EQ(status["driver"].at("exit_code"), 3);
}

TEST_F(DockerContainer, ABuildkitdThatNeverAnswersTimesOutWithItsLogs) {
  // Without the engine socket the stand-in's buildctl cannot reach "buildkitd".
  create_context(name_, {"--builder-opt", "network=none", "--builder-opt", "privileged=false"});
  auto start = std::chrono::steady_clock::now();
  auto r = run({"bootstrap", "--connect-timeout", "4s"});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(15));
  EXPECT_EQ(r.exit_code, 1);
  const std::string timed_out =
      "buildkitd in container '" + name_ + "' did not answer within 4000 ms (";
  EXPECT_TRUE(has(r.err, timed_out)) << r.err;
  // The reason is the last finished probe's: the stand-in's refusal, or, when
  // the machine is so loaded that no probe finished in time, the deadline of
  // the probe's exec or of one of its Engine calls.
  EXPECT_TRUE(
      has(r.err, timed_out + "buildctl (envd test stand-in): cannot connect to buildkitd: dial "
                             "unix /run/envd-test/docker.sock: No such file or directory)") ||
      has(r.err, timed_out + "'buildctl' in container '" + name_ + "' did not finish in time)") ||
      has(r.err, timed_out + "the Docker Engine at " + services_.docker_host + " did not answer "))
      << r.err;
  EXPECT_TRUE(has(r.err, "its last log lines:\n  buildkitd (envd test stand-in) args:")) << r.err;
}

// Ctrl-C while `envd bootstrap` waits for a buildkitd that never answers:
// envd stops within a second, exits 130, and removes the container it created
// (its cache volume stays), so nothing half made is left.
TEST_F(DockerContainer, CtrlCDuringBootstrapStopsAtOnceAndRemovesWhatItCreated) {
  create_context(name_, {"--builder-opt", "network=none", "--builder-opt", "privileged=false"});
  auto running = envd_background(
      {"--buildkitd-image", kStandin, "bootstrap", "--connect-timeout", "60s"}, env());
  ASSERT_TRUE(running->start_error().empty()) << running->start_error();
  ASSERT_TRUE(running->wait_for("waiting for buildkitd in " + name_, std::chrono::seconds(60)))
      << running->err();
  ASSERT_EQ(state_of(name_), "running");
  auto interrupted_at = std::chrono::steady_clock::now();
  ::kill(running->pid(), SIGINT);
  auto status = running->wait_exit(std::chrono::seconds(20));
  const std::string& err = running->err();
  ASSERT_TRUE(status) << "envd did not exit after Ctrl-C:\n" << err;
  auto took = std::chrono::steady_clock::now() - interrupted_at;
  ASSERT_TRUE(WIFEXITED(*status)) << err;
  EXPECT_EQ(WEXITSTATUS(*status), 130) << err;
  // Within a second of the signal, plus the removal of the container.
  EXPECT_LT(took, std::chrono::seconds(3)) << err;
  EXPECT_TRUE(has(err, "envd: error: ")) << err;
  EXPECT_TRUE(has(err, "cancelled")) << err;
  EXPECT_EQ(state_of(name_), "missing") << err;
  EXPECT_EQ(docker({"volume", "inspect", name_ + "_state"}).exit_code, 0) << "the cache stays";
}

// Ctrl-C while `envd build` dials a stopped builder whose buildkitd never
// answers (the dial starts it and waits): the same, and a container that was
// already there is kept.
TEST_F(DockerContainer, CtrlCDuringDialStopsAtOnceAndLeavesTheExistingContainer) {
  create_context(name_, {"--builder-opt", "network=none", "--builder-opt", "privileged=false"});
  // A first bootstrap that times out leaves the container created and running.
  auto first = run({"bootstrap", "--connect-timeout", "2s"}, kStandin);
  ASSERT_EQ(first.exit_code, 1) << first.err;
  ASSERT_EQ(run({"builder", "stop"}).exit_code, 0);
  ASSERT_EQ(state_of(name_), "exited");
  fs::path dir = home() / "never-built";
  write_text(dir / "Dockerfile", "FROM scratch\n");
  auto running =
      envd_background({"--buildkitd-image", kStandin, "build", "--connect-timeout", "60s",
                       "--output", "type=local,dest=" + (home() / "o").string(), dir.string()},
                      env());
  ASSERT_TRUE(running->start_error().empty()) << running->start_error();
  ASSERT_TRUE(running->wait_for("waiting for buildkitd in " + name_, std::chrono::seconds(60)))
      << running->err();
  auto interrupted_at = std::chrono::steady_clock::now();
  ::kill(running->pid(), SIGINT);
  auto status = running->wait_exit(std::chrono::seconds(20));
  const std::string& err = running->err();
  ASSERT_TRUE(status) << "envd did not exit after Ctrl-C:\n" << err;
  ASSERT_TRUE(WIFEXITED(*status)) << err;
  EXPECT_EQ(WEXITSTATUS(*status), 130) << err;
  EXPECT_LT(std::chrono::steady_clock::now() - interrupted_at, std::chrono::seconds(1)) << err;
  EXPECT_NE(state_of(name_), "missing") << "a container this run did not create is kept";
  EXPECT_FALSE(fs::exists(home() / "o"));
}

TEST_F(DockerContainer, AFailingDialStdioReportsItsExitCodeAndStderr) {
  create_context(name_, options());
  EXPECT_EQ(run_json({"bootstrap"})["action"], "created");
  ASSERT_EQ(docker({"exec", name_, "busybox", "rm", "/usr/bin/buildctl"}).exit_code, 0);
  auto r = run({"builder", "status", "--format", "json"});
  EXPECT_EQ(r.exit_code, 1);
  // Caught by dial() when the engine marks the exec failed before it returns,
  // else by the core's diagnosis after the stream closed: both name the exit
  // code (126 or 127) and the engine's reason.
  EXPECT_TRUE(
      has(r.err, "envd: error: cannot connect to buildkitd at docker-container://" + name_ + ": "))
      << r.err;
  EXPECT_TRUE(has(r.err, "buildctl dial-stdio exited with 12")) << r.err;
  EXPECT_TRUE(has(r.err, "\"buildctl\": executable file not found")) << r.err;
}

TEST_F(DockerContainer, AStreamThatClosesAfterDialShowsTheBuildersLogs) {
  create_context(name_, options({"--builder-opt", "env=STANDIN_DIAL_CLOSE=1"}));
  auto r = run({"bootstrap"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has(r.err, "envd: error: cannot connect to buildkitd at docker-container://" + name_))
      << r.err;
  EXPECT_TRUE(
      has(r.err,
          "; buildctl dial-stdio exited with 1: buildctl (envd test stand-in): closing on purpose "
          "(STANDIN_DIAL_CLOSE); the builder's last log lines:\n  buildkitd (envd test "
          "stand-in) args: --config /etc/buildkit/buildkitd.toml"))
      << r.err;
}

TEST_F(DockerContainer, StopAndRmManageTheContainerAndItsCache) {
  create_context(name_, options());
  EXPECT_EQ(run_json({"bootstrap"})["action"], "created");
  auto stop = run({"builder", "stop"});
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_EQ(state_of(name_), "exited");

  auto keep = run({"builder", "rm", "--keep-cache"});
  EXPECT_EQ(keep.exit_code, 0) << keep.err;
  EXPECT_EQ(state_of(name_), "missing");
  EXPECT_EQ(docker({"volume", "inspect", name_ + "_state"}).exit_code, 0);

  auto rm = run({"builder", "rm"});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_NE(docker({"volume", "inspect", name_ + "_state"}).exit_code, 0);

  auto again = run({"builder", "rm"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_TRUE(has(again.err, "there is no buildkitd container '" + name_ + "' nor volume"))
      << again.err;
  auto stop_missing = run({"builder", "stop"});
  EXPECT_EQ(stop_missing.exit_code, 1);
  EXPECT_TRUE(has(stop_missing.err, "there is no buildkitd container '" + name_ + "' to stop"));
  auto status = run_json({"builder", "status"});
  EXPECT_EQ(status["state"], "missing");
}

// The Engine takes /containers/{x} as an id prefix when no container has the
// name x: a builder named like the start of another container's id stopped
// and removed that container. And a container of the builder's name that
// envd did not make is not envd's to stop or remove.
TEST_F(DockerContainer, StopAndRmLeaveContainersThatAreNotTheBuildersAlone) {
  const std::string innocent = name_ + "_innocent";
  containers_.push_back(innocent);
  auto made = docker({"create", "--name", innocent, "--network", "none", "envd-test/busybox:latest",
                      "sleep", "1000"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string prefix = made.out.substr(0, 10);
  create_context(prefix, options());
  auto rm = run({"builder", "rm"});
  EXPECT_EQ(rm.exit_code, 1) << rm.err;
  EXPECT_TRUE(has(rm.err, "there is no buildkitd container '" + prefix + "' nor volume")) << rm.err;
  auto stop = run({"builder", "stop"});
  EXPECT_EQ(stop.exit_code, 1) << stop.err;
  EXPECT_TRUE(has(stop.err, "there is no buildkitd container '" + prefix + "' to stop"))
      << stop.err;
  EXPECT_EQ(state_of(innocent), "created") << "another container was touched";
  envd_ok({"context", "rm", "--force", "dc"}, env());

  // A container of the builder's name made by someone else.
  made = docker({"create", "--name", name_, "--network", "none", "envd-test/busybox:latest",
                 "sleep", "1000"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  create_context(name_, options());
  for (const std::string verb : {"stop", "rm"}) {
    auto r = run({"builder", verb});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_TRUE(has(r.err, "container '" + name_ + "' was not created by envd")) << r.err;
  }
  EXPECT_EQ(state_of(name_), "created");
}

// A stopped builder bind-mounts files of the context that made it: once that
// context is removed, the Engine refuses to start it ("bind source path does
// not exist"). It is said to be stale, with the way out, instead.
TEST_F(DockerContainer, AStoppedBuilderOfARemovedContextIsStale) {
  create_context(name_, options());
  EXPECT_EQ(run_json({"bootstrap"})["action"], "created");
  ASSERT_EQ(run({"builder", "stop"}).exit_code, 0);
  envd_ok({"context", "rm", "--force", "dc"}, env());
  create_context(name_, options());
  auto up = run({"bootstrap"});
  EXPECT_EQ(up.exit_code, 1) << up.err;
  EXPECT_TRUE(has(up.err, "which no longer exists (the context that made it was removed)"))
      << up.err;
  EXPECT_TRUE(has(up.err, "envd bootstrap --recreate")) << up.err;
  EXPECT_FALSE(has(up.err, "bind source path")) << up.err;
  auto status = run_json({"builder", "status"});
  EXPECT_TRUE(has(str(status["driver"].as_object()["stale"]), "no longer exists"))
      << json::serialize(status);
  EXPECT_EQ(run_json({"bootstrap", "--recreate"})["action"], "recreated");
}

TEST_F(DockerContainer, AFullBuildRunsThroughTheDockerContainerContext) {
  create_context(name_, options());
  fs::path dir = home() / "hello";
  write_text(dir / "Dockerfile",
             "FROM envd-test/busybox:latest\nCOPY greeting.txt /g.txt\n"
             "RUN echo built-through-docker-container > /built.txt\n");
  write_text(dir / "greeting.txt", "hello\n");
  std::string tag = "dc-e2e:" + std::to_string(::getpid());
  auto r = run({"build", "--network", "none", "--progress", "plain", "-t", tag, dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.err, "creating container " + name_)) << "the first build bootstraps";
  EXPECT_EQ(state_of(name_), "running");
  auto run_image = docker({"run", "--rm", "--network", "none", tag, "cat", "/g.txt", "/built.txt"});
  EXPECT_EQ(run_image.exit_code, 0) << run_image.err;
  EXPECT_EQ(run_image.out, "hello\nbuilt-through-docker-container\n");
  docker({"rmi", tag});
}

// Prune is proven against the real BuildKit image
// (tests/buildkit/docker_container_real_test.cpp), whose cache is its own:
// the stand-in's daemon is the Engine's, whose cache other tests share.

TEST_F(DockerContainer, RootlessFlagsAppearInTheContainer) {
  create_context(name_, options({"--builder-opt", "rootless=true"}, /*privileged_false=*/false));
  auto out = run_json({"bootstrap"});
  EXPECT_EQ(out["action"], "created");
  auto c = inspect(name_);
  ASSERT_FALSE(c.empty());
  const auto& host = c.at("HostConfig").as_object();
  EXPECT_EQ(host.at("Privileged"), false);
  const auto& security = host.at("SecurityOpt").as_array();
  EXPECT_NE(std::find(security.begin(), security.end(), json::value("seccomp=unconfined")),
            security.end());
  EXPECT_NE(std::find(security.begin(), security.end(), json::value("apparmor=unconfined")),
            security.end());
  EXPECT_EQ(host.at("Devices").as_array().at(0).at("PathOnHost"), "/dev/fuse");
  const auto& cmd = c.at("Config").at("Cmd").as_array();
  EXPECT_EQ(cmd.back(), "--oci-worker-no-process-sandbox");
  bool state_volume = false;
  for (const auto& m : c.at("Mounts").as_array()) {
    if (m.at("Destination") == "/home/user/.local/share/buildkit") {
      state_volume = str(m.at("Name")) == name_ + "_state";
    }
  }
  EXPECT_TRUE(state_volume) << json::serialize(c.at("Mounts"));
}

// A seccomp profile the options name that cannot be read any more stops a
// container from being made or checked against the context, but not a look
// at the builder: status shows the state with the reason, and exits 1, as
// the next build would fail.
TEST_F(DockerContainer, StatusLooksEvenWhenAProfileTheOptionsNameIsGone) {
  const fs::path profile = home() / "seccomp.json";
  write_text(profile, R"({"defaultAction":"SCMP_ACT_ALLOW"})");
  create_context(name_, options({"--builder-opt", "security-opt=seccomp=" + profile.string()}));
  fs::remove(profile);
  auto missing = run({"builder", "status", "--format", "json"});
  EXPECT_EQ(missing.exit_code, 1) << missing.err;
  auto out = json::parse(missing.out).as_object();
  EXPECT_EQ(out.at("state"), "missing");
  const std::string why =
      "cannot read the seccomp profile '" + profile.string() + "' of driver option security-opt";
  EXPECT_EQ(out.at("driver").at("unusable"), why.c_str());
  EXPECT_EQ(out.at("detail"), ("container '" + name_ +
                               "' does not exist; it cannot be created until this is "
                               "mended: " +
                               why)
                                  .c_str());
  auto boot = run({"bootstrap"});
  EXPECT_EQ(boot.exit_code, 1);
  EXPECT_TRUE(has(boot.err, why)) << boot.err;

  write_text(profile, R"({"defaultAction":"SCMP_ACT_ALLOW"})");
  EXPECT_EQ(run_json({"bootstrap"})["action"], "created");
  fs::remove(profile);
  auto running = run({"builder", "status"});
  EXPECT_EQ(running.exit_code, 1) << running.err;
  EXPECT_TRUE(has(running.out, "State:      running")) << running.out;
  EXPECT_TRUE(has(running.err, why)) << running.err;
}

TEST_F(DockerContainer, AMissingImageIsPulledThroughTheEngineApiWithProgress) {
  std::string image =
      services_.registry + "/envd-test/buildkit-standin:pull-" + std::to_string(::getpid());
  ASSERT_EQ(docker({"tag", kStandin, image}).exit_code, 0);
  auto push = docker({"push", image});
  ASSERT_EQ(push.exit_code, 0) << push.err;
  ASSERT_EQ(docker({"rmi", image}).exit_code, 0);
  create_context(name_, options());
  auto r = run({"bootstrap"}, image);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.err, "pulling " + image)) << r.err;
  EXPECT_TRUE(has(r.err, "pulling " + image + ": Status: Downloaded newer image")) << r.err;
  EXPECT_EQ(docker({"image", "inspect", image}).exit_code, 0);
  EXPECT_EQ(state_of(name_), "running");

  auto quiet_missing =
      run({"bootstrap", "--recreate"}, services_.registry + "/envd-test/no-such-image:1");
  EXPECT_EQ(quiet_missing.exit_code, 1);
  EXPECT_TRUE(has(quiet_missing.err,
                  "cannot pull image " + services_.registry + "/envd-test/no-such-image:1"))
      << quiet_missing.err;
  docker({"rmi", image});
}

// The pull sends the docker CLI's credentials for the image's registry; here
// they come from a credential helper (credHelpers), as on most CI machines.
TEST_F(DockerContainer, APullFromAPrivateRegistryUsesTheCredentialHelper) {
  PasswordRegistry registry(home() / "password-registry");
  ASSERT_TRUE(registry.wait_until_up()) << "the password-protected registry did not start";
  std::string image = registry.address() + "/envd-test/buildkit-standin:private";
  fs::path push_config = home() / "push-config";
  write_text(push_config / "config.json", R"({"auths":{")" + registry.address() + R"(":{"auth":")" +
                                              PasswordRegistry::kAuth + R"("}}})");
  ASSERT_EQ(docker({"tag", kStandin, image}).exit_code, 0);
  auto push = docker({"--config", push_config.string(), "push", image});
  ASSERT_EQ(push.exit_code, 0) << push.err;
  ASSERT_EQ(docker({"rmi", image}).exit_code, 0);
  create_context(name_, options());

  // Without credentials: the registry's refusal, and no container.
  auto refused = run({"bootstrap"}, image);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(has(refused.err, "cannot pull image " + image)) << refused.err;
  EXPECT_EQ(state_of(name_), "missing");

  fs::path bin = home() / "bin";
  fs::path asked = home() / "helper-asked";
  write_text(bin / "docker-credential-envdtest",
             "#!/bin/sh\n[ \"$1\" = get ] || exit 1\ncat > '" + asked.string() +
                 "'\necho '{\"ServerURL\":\"x\",\"Username\":\"envd\",\"Secret\":\"secret\"}'\n");
  fs::permissions(bin / "docker-credential-envdtest", fs::perms::owner_all);
  write_text(home() / ".docker" / "config.json",
             R"({"credHelpers":{")" + registry.address() + R"(":"envdtest"}})");
  auto vars = env();
  vars["PATH"] = bin.string() + ":" + std::getenv("PATH");
  auto pulled = envd({"--buildkitd-image", image, "bootstrap"}, vars);
  ASSERT_EQ(pulled.exit_code, 0) << pulled.err;
  EXPECT_TRUE(has(pulled.err, "pulling " + image)) << pulled.err;
  EXPECT_TRUE(has(read_text(asked), registry.address())) << "the helper was asked for the registry";
  EXPECT_EQ(state_of(name_), "running");
}

TEST_F(DockerContainer, ADockerContextInTheAddressIsRefusedClearly) {
  create_context(name_ + "?context=remote", options());
  containers_.back() = name_;
  auto r = run({"bootstrap"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has(r.err, "names the docker context 'remote', which envd does not support"))
      << r.err;
  EXPECT_EQ(state_of(name_), "missing");
}

}  // namespace
}  // namespace envd::test
