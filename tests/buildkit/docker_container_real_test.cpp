// The docker-container builder with a real BuildKit image: envd-test/buildkit
// (tests/buildkit/image.sh: BuildKit's own buildkitd and buildctl, Debian's
// runc and busybox, imported offline) on the Engine of tests/services, created
// with the non-privileged options ../shared/tools/buildkit/README.md lists.
// Each test bootstraps a uniquely named container through the real envd and
// removes it, and its cache volume, afterwards.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "buildkit/real_buildkit_test.hpp"
#include "cli_harness.hpp"
#include "envd/process.hpp"
#include "services/test_services.hpp"

namespace envd::test {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string last_line(const std::string& text) {
  if (text.size() < 2) return text;
  return text.substr(text.rfind('\n', text.size() - 2) + 1);
}

// What buildkitd reads from the user's --buildkitd-config: the plain-HTTP
// test registry (a push there works only because of it) and the GC cap.
constexpr std::int64_t kKeepStorage = 3'000'000'000;

class RealDockerContainer : public RealBuildkitTestBase {
 protected:
  void SetUp() override {
    RealBuildkitTestBase::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    name_ = std::string("envd_real_") + info->name() + "_" + std::to_string(::getpid());
    config_ = home() / "buildkitd.toml";
    write_text(config_, "[worker.oci]\n  gckeepstorage = " + std::to_string(kKeepStorage) +
                            "\n\n[registry.\"" + services_.registry +
                            "\"]\n  http = true\n  insecure = true\n");
  }

  void TearDown() override {
    if (!name_.empty()) {
      docker({"rm", "-f", name_});
      docker({"volume", "rm", "-f", name_ + "_state"});
    }
    CliTest::TearDown();
  }

  std::map<std::string, std::optional<std::string>> env() const {
    return {{"DOCKER_HOST", services_.docker_host},
            {"DOCKER_CONFIG", (home() / ".docker").string()}};
  }

  std::vector<std::string> options(const std::string& seccomp = "unconfined") const {
    return docker_container_options(config_, seccomp);
  }

  // A context `name` on this test's container, made the one in use.
  void create_context(const std::string& name = "dc", const std::string& seccomp = "unconfined") {
    std::vector<std::string> args = {
        "context",           "create", "--name", name, "--builder", "docker-container",
        "--builder-address", name_,    "--use"};
    auto opts = options(seccomp);
    args.insert(args.end(), opts.begin(), opts.end());
    envd_ok(args, env());
  }

  sdk::ProcessResult run(const std::vector<std::string>& args) { return envd(args, env()); }

  json::object run_json(std::vector<std::string> args) {
    args.insert(args.end(), {"--format", "json"});
    auto r = run(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    boost::system::error_code ec;
    auto v = json::parse(r.out, ec);
    EXPECT_FALSE(ec) << r.out;
    return !ec && v.is_object() ? v.as_object() : json::object{};
  }

  sdk::ProcessResult docker(const std::vector<std::string>& args) const {
    return run_docker(services_.docker_host, args);
  }

  json::object inspect() const {
    auto r = docker({"inspect", "--type", "container", name_});
    if (r.exit_code != 0) return {};
    return json::parse(r.out).as_array().at(0).as_object();
  }

  std::string state() const {
    auto c = inspect();
    return c.empty() ? "missing" : std::string(c.at("State").at("Status").as_string());
  }

  fs::path project(const std::string& name, const std::string& marker) {
    fs::path dir = home() / name;
    write_text(dir / "Dockerfile", "FROM " + bk_.base +
                                       "\nCOPY greeting.txt /greeting.txt\n"
                                       "RUN echo " +
                                       marker + " > /built.txt\n");
    write_text(dir / "greeting.txt", "hello from " + name + "\n");
    return dir;
  }

  // A build with a local output; checks what the RUN step wrote.
  // Returns the build's stderr, with ENVD_TIMINGS's lines.
  std::string build_local(const std::string& name,
                          const std::string& marker = "built-in-a-container") {
    fs::path out = home() / (name + "-out");
    auto vars = env();
    vars["ENVD_TIMINGS"] = "1";
    auto r = envd({"build", "--progress", "plain", "--output", "type=local,dest=" + out.string(),
                   project(name, marker).string()},
                  vars);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_text(out / "built.txt"), marker + "\n");
    return r.err;
  }

  std::string name_;
  fs::path config_;
};

TEST_F(RealDockerContainer, BootstrapsBuildsPushesAndReadsTheUsersConfig) {
  create_context();
  auto boot = run_json({"bootstrap"});
  EXPECT_EQ(boot["action"], "created") << json::serialize(boot);
  EXPECT_EQ(state(), "running");
  // systempaths=unconfined as the docker CLI sends it: empty path lists.
  auto host = inspect().at("HostConfig").as_object();
  EXPECT_EQ(host.at("MaskedPaths"), json::array()) << json::serialize(host);
  EXPECT_EQ(host.at("ReadonlyPaths"), json::array()) << json::serialize(host);
  EXPECT_EQ(host.at("Privileged"), false);

  auto status = run_json({"builder", "status"});
  EXPECT_EQ(status["reachable"], true) << json::serialize(status);
  EXPECT_EQ(status["version"], json::value(bk_.version)) << json::serialize(status);
  // buildkitd read gckeepstorage from the user's config.
  bool capped = false;
  for (const auto& worker : status["workers"].as_array()) {
    for (const auto& rule : worker.at("gc_policy").as_array()) {
      capped = capped || rule.at("keep_bytes").to_number<std::int64_t>() == kKeepStorage;
    }
  }
  EXPECT_TRUE(capped) << json::serialize(status);

  build_local("first");
  // The plain-HTTP registry is reachable only through the config's http = true.
  const std::string name = services_.registry + "/envd-real/dc:" + std::to_string(::getpid());
  auto pushed = run({"build", "--output", "type=image,name=" + name + ",push=true",
                     project("pushed", "pushed").string()});
  ASSERT_EQ(pushed.exit_code, 0) << pushed.err;
  EXPECT_EQ(last_line(pushed.err).rfind("Pushed " + name + " (sha256:", 0), 0u) << pushed.err;

  // Without --output: the `docker` exporter, loaded into the Engine.
  const std::string image = "envd-real/dc-loaded:" + std::to_string(::getpid());
  auto loaded = run({"build", "-t", image, project("loaded", "loaded").string()});
  ASSERT_EQ(loaded.exit_code, 0) << loaded.err;
  auto ran = docker({"run", "--rm", "--network", "none", image, "cat", "/built.txt"});
  EXPECT_EQ(ran.out, "loaded\n") << ran.err;
  docker({"rmi", "-f", image});
}

// Several envd processes bringing up the same builder at once (parallel CI
// jobs, `make -j`): one creates the container, the others wait for it and
// use it. Before, the Engine's 304 to a second start was taken for a failed
// start, and that envd removed the container the first had just started;
// one that found the name taken asked again without a pause, hundreds of
// times; and one that found it freshly started dialled a buildkitd that did
// not listen yet.
TEST_F(RealDockerContainer, ConcurrentBootstrapsAndBuildsShareOneBuilder) {
  create_context();
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::vector<std::future<sdk::ProcessResult>> boots;
    for (int i = 0; i < 3; ++i) {
      boots.push_back(std::async(std::launch::async, [this] { return run({"bootstrap"}); }));
    }
    for (auto& boot : boots) {
      auto r = boot.get();
      EXPECT_EQ(r.exit_code, 0) << r.err;
      auto lines = std::count_if(r.err.begin(), r.err.end(), [](char c) { return c == '\n'; });
      EXPECT_LT(lines, 20) << "a busy loop? " << r.err;
    }
    EXPECT_EQ(state(), "running");
    ASSERT_EQ(run({"builder", "rm"}).exit_code, 0);
  }
  std::vector<std::future<std::string>> builds;
  for (const std::string name : {"parallel-a", "parallel-b"}) {
    builds.push_back(std::async(std::launch::async, [this, name] { return build_local(name); }));
  }
  for (auto& build : builds) build.get();
  EXPECT_EQ(state(), "running");
}

// The Engine shares this disk, so the container is made with the context's
// run/ directory mounted where buildkitd makes its socket, and a build dials
// that socket: no `buildctl dial-stdio` exec, which costs about 100 ms a
// build (docs/performance.md). A context whose directory holds no socket
// (here a second context on the same container, as a container made before
// the mount would be) still builds, through the exec. The Engine's own
// event log counts the execs.
TEST_F(RealDockerContainer, BuildsThroughTheMountedSocketAndFallsBackToTheExec) {
  create_context();
  auto boot = run({"bootstrap"});
  ASSERT_EQ(boot.exit_code, 0) << boot.err;
  std::vector<fs::path> sockets;
  for (const auto& entry : fs::recursive_directory_iterator(home() / ".config/envd/contexts.d")) {
    if (entry.is_socket()) sockets.push_back(entry.path());
  }
  ASSERT_EQ(sockets.size(), 1u);
  EXPECT_EQ(sockets[0].filename(), "buildkitd.sock");
  EXPECT_EQ(sockets[0].parent_path().filename(), "run");

  auto now = [] {
    auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
    return std::to_string(std::chrono::duration<double>(since_epoch).count());
  };
  auto dial_execs = [&](const std::string& since, const std::string& until) {
    auto events =
        docker({"events", "--since", since, "--until", until, "--filter", "container=" + name_,
                "--filter", "event=exec_create", "--format", "{{.Action}}"});
    EXPECT_EQ(events.exit_code, 0) << events.err;
    int count = 0;
    for (std::size_t at = 0; (at = events.out.find("dial-stdio", at)) != std::string::npos; ++at) {
      ++count;
    }
    return count;
  };
  std::string since = now();
  // The mounted socket is buildkitd's own: nothing of the driver runs for it
  // (ABI 1.5), and the process ends without tearing it down.
  const std::string kLeft = "(the connection left to the process's end)";
  std::string err = build_local("through-the-socket");
  EXPECT_EQ(dial_execs(since, now()), 0);
  EXPECT_NE(err.find(kLeft), std::string::npos) << err;

  create_context("dc2");
  since = now();
  err = build_local("through-the-exec", "fell-back");
  EXPECT_EQ(dial_execs(since, now()), 1);
  // The exec's stdio is relayed by the driver: torn down in order.
  EXPECT_EQ(err.find(kLeft), std::string::npos) << err;
}

// A builder whose container started a moment ago, by `docker start`, a
// restart policy or another envd, is found running before its buildkitd
// listens (15 ms here; seconds on a loaded machine with a big cache). A
// build then waits for it, through the mounted socket and, for a context
// with no socket of its own, through the exec, instead of dialling a
// buildkitd that is not there. Here buildkitd is held (SIGSTOP) before it
// listens, and let go 1.5 s later.
TEST_F(RealDockerContainer, ABuilderStartedAMomentAgoIsWaitedFor) {
  create_context();
  ASSERT_EQ(run({"bootstrap"}).exit_code, 0);
  fs::path run_dir;
  for (const auto& entry : fs::recursive_directory_iterator(home() / ".config/envd/contexts.d")) {
    if (entry.is_socket()) run_dir = entry.path().parent_path();
  }
  ASSERT_FALSE(run_dir.empty()) << "no mounted socket after the bootstrap";
  const std::string socket_path = services_.docker_host.substr(std::string("unix://").size());
  // Started and stopped in one curl: the two requests are a millisecond
  // apart. When buildkitd made its socket in between all the same, again.
  auto start_held = [&] {
    for (int attempt = 0; attempt < 5; ++attempt) {
      if (docker({"stop", "-t", "1", name_}).exit_code != 0) return false;
      // A buildkitd killed at the stop's timeout (a loaded machine) leaves
      // its socket behind; the one to look for is the next buildkitd's.
      fs::remove(run_dir / "buildkitd.sock");
      sdk::ProcessOptions curl;
      curl.argv = {"curl",
                   "-fsS",
                   "--unix-socket",
                   socket_path,
                   "-X",
                   "POST",
                   "http://engine/containers/" + name_ + "/start",
                   "http://engine/containers/" + name_ + "/kill?signal=STOP"};
      curl.timeout = std::chrono::seconds(30);
      auto r = sdk::run_process(curl);
      if (!r || r->exit_code != 0) {
        ADD_FAILURE() << (r ? r->err : r.error().message());
        return false;
      }
      if (!fs::exists(run_dir / "buildkitd.sock")) return true;
    }
    ADD_FAILURE() << "buildkitd listened before it could be held, five times";
    return false;
  };
  auto build_while_held = [&](const std::string& name, const std::string& marker) {
    std::string err;
    auto build = std::async(std::launch::async, [&] { err = build_local(name, marker); });
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    EXPECT_EQ(docker({"kill", "-s", "CONT", name_}).exit_code, 0);
    build.get();
    EXPECT_TRUE(contains(err, "waiting for buildkitd in " + name_)) << err;
  };
  ASSERT_TRUE(start_held());
  build_while_held("held-socket", "through-the-socket");

  create_context("dc2");
  ASSERT_TRUE(start_held());
  build_while_held("held-exec", "through-the-exec");
}

TEST_F(RealDockerContainer, BuildsAfterStopPauseAndKill) {
  create_context();
  build_local("fresh", "one");
  auto stopped = run({"builder", "stop"});
  ASSERT_EQ(stopped.exit_code, 0) << stopped.err;
  EXPECT_EQ(state(), "exited");
  build_local("after-stop", "two");
  EXPECT_EQ(state(), "running");
  ASSERT_EQ(docker({"pause", name_}).exit_code, 0);
  build_local("after-pause", "three");
  EXPECT_EQ(state(), "running");
  ASSERT_EQ(docker({"kill", name_}).exit_code, 0);
  build_local("after-kill", "four");
  EXPECT_EQ(state(), "running");
}

TEST_F(RealDockerContainer, DriftIsRefusedUntilRecreatedAndTheCacheIsKept) {
  create_context();
  build_local("cached", "kept");
  ASSERT_EQ(run({"context", "update", "dc", "--builder-opt", "env=ENVD_DRIFT=1"}).exit_code, 0);
  auto refused = run({"build", "--output", "type=local,dest=" + (home() / "x").string(),
                      project("drift", "x").string()});
  EXPECT_EQ(refused.exit_code, 1) << refused.err;
  EXPECT_TRUE(contains(refused.err, "does not match the context")) << refused.err;
  EXPECT_TRUE(contains(refused.err, "envd bootstrap --recreate")) << refused.err;
  EXPECT_EQ(refused.err, last_line(refused.err));

  auto recreated = run_json({"bootstrap", "--recreate"});
  EXPECT_EQ(recreated["action"], "recreated") << json::serialize(recreated);
  // The same build again is answered from the cache the volume kept.
  fs::path out = home() / "again";
  auto again = run({"build", "--progress", "plain", "--output", "type=local,dest=" + out.string(),
                    project("cached", "kept").string()});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(contains(again.err, "CACHED")) << again.err;
}

// prune reaches this container's own daemon (not a cache other tests share).
TEST_F(RealDockerContainer, PruneOptionsReachTheDaemonAndRemoveKeepsOrDropsTheCache) {
  create_context();
  fs::path dir = home() / "prune";
  write_text(dir / "Dockerfile", "FROM scratch\nCOPY big.bin /big.bin\n");
  write_text(dir / "big.bin", std::string(1 << 20, 'p') + std::to_string(::getpid()));
  auto build =
      run({"build", "--output", "type=local,dest=" + (home() / "out").string(), dir.string()});
  ASSERT_EQ(build.exit_code, 0) << build.err;
  auto kept_recent = run_json({"prune", "--all", "--keep-duration", "1h"});
  EXPECT_EQ(kept_recent["records"], 0) << json::serialize(kept_recent);
  auto kept_small = run_json({"prune", "--all", "--keep-storage", "1TB"});
  EXPECT_EQ(kept_small["records"], 0) << json::serialize(kept_small);
  auto pruned = run_json({"prune", "--all"});
  EXPECT_GT(pruned["records"].as_int64(), 0) << json::serialize(pruned);
  EXPECT_GE(pruned["reclaimed_bytes"].as_int64(), 1 << 20) << json::serialize(pruned);

  auto kept = run({"builder", "rm", "--keep-cache"});
  ASSERT_EQ(kept.exit_code, 0) << kept.err;
  EXPECT_EQ(state(), "missing");
  EXPECT_EQ(docker({"volume", "inspect", name_ + "_state"}).exit_code, 0);
  build_local("back", "back");
  auto removed = run({"builder", "rm"});
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  EXPECT_EQ(state(), "missing");
  EXPECT_NE(docker({"volume", "inspect", name_ + "_state"}).exit_code, 0);
}

// seccomp=<file> sends the profile's JSON, as the docker CLI does.
TEST_F(RealDockerContainer, ASeccompProfileFileIsSentAsItsJson) {
  fs::path profile = home() / "profile.json";
  write_text(profile, "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n");
  create_context("dc", profile.string());
  auto boot = run_json({"bootstrap"});
  EXPECT_EQ(boot["action"], "created") << json::serialize(boot);
  // The inspected value is kept: a reference into the temporary would dangle.
  const json::value inspected = inspect();
  const auto& opts = inspected.at("HostConfig").at("SecurityOpt").as_array();
  EXPECT_NE(std::find(opts.begin(), opts.end(),
                      json::value(R"(seccomp={"defaultAction":"SCMP_ACT_ALLOW"})")),
            opts.end())
      << json::serialize(opts);
  // A profile that disappears is named before anything is created.
  fs::remove(profile);
  auto missing = run({"bootstrap", "--recreate"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(contains(missing.err, "cannot read the seccomp profile '" + profile.string() + "'"))
      << missing.err;
}

}  // namespace
}  // namespace envd::test
