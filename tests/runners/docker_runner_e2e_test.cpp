// The docker runner end to end: the built envd against the test Engine
// (tests/services; it runs without a bridge network, so environments get the
// Engine's default network mode, which there means no network, and published
// ports are recorded but not reachable). Every container a test makes is named
// with this process's id and removed in TearDown, also on failure.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "cli_harness.hpp"
#include "pty_session.hpp"
#include "services/loopback.hpp"
#include "services/test_services.hpp"

namespace envd::test {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr const char* kBase = "envd-test/busybox:latest";

class DockerRunnerE2e : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    services_ = TestServices::load();
    ASSERT_TRUE(services_.ok()) << services_.error;
  }

  void TearDown() override {
    if (!names_.empty()) {
      std::vector<std::string> args{"rm", "-f", "-v"};
      args.insert(args.end(), names_.begin(), names_.end());
      docker(args);
    }
    CliTest::TearDown();
  }

  // A container name for this test, removed in TearDown.
  // The ports the Engine published for a container, as `docker port`
  // lists them, in envd's endpoint form ("127.0.0.1:18080->80/tcp,...",
  // sorted as envd sorts them); "" when none is.
  std::string published_as_envd_shows_it(const std::string& container) {
    auto listed = docker({"port", container});
    std::vector<std::tuple<int, int, std::string, std::string>> ports;
    std::istringstream in(listed.out);
    for (std::string line; std::getline(in, line);) {
      // "80/tcp -> 127.0.0.1:18080"
      auto arrow = line.find(" -> ");
      auto slash = line.find('/');
      auto colon = line.rfind(':');
      if (arrow == std::string::npos || slash == std::string::npos || colon == std::string::npos) {
        continue;
      }
      std::string ip = line.substr(arrow + 4, colon - arrow - 4);
      if (ip.find(':') != std::string::npos && ip.front() != '[') ip = "[" + ip + "]";
      ports.emplace_back(std::stoi(line.substr(colon + 1)), std::stoi(line.substr(0, slash)),
                         line.substr(slash + 1, arrow - slash - 1), ip);
    }
    std::sort(ports.begin(), ports.end());
    std::string out;
    for (const auto& [host_port, container_port, protocol, ip] : ports) {
      if (!out.empty()) out += ",";
      out += ip + ":" + std::to_string(host_port) + "->" + std::to_string(container_port) + "/" +
             protocol;
    }
    return out;
  }

  std::string name(const std::string& what) {
    names_.push_back("envd-e2e-" + std::to_string(::getpid()) + "-" + what);
    return names_.back();
  }

  std::map<std::string, std::optional<std::string>> env() const {
    return {{"DOCKER_HOST", services_.docker_host}};
  }

  sdk::ProcessResult run(std::vector<std::string> args) { return envd(args, env()); }

  sdk::ProcessResult docker(const std::vector<std::string>& args) {
    return run_docker(services_.docker_host, args);
  }

  // stderr from the error line on (progress lines such as "waiting for
  // environment 'x' to run" come before it).
  std::string error_of(const sdk::ProcessResult& r) {
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_EQ(r.out, "");
    auto at = r.err.find("envd: error: ");
    return at == std::string::npos ? r.err : r.err.substr(at);
  }

  // `envd <args>` with its stdout on /dev/full (every write fails ENOSPC).
  sdk::ProcessResult to_full_device(const std::vector<std::string>& args,
                                    const std::string& stdin_data = "") {
    sdk::ProcessOptions options;
    options.argv = {"/bin/sh", "-c", "exec \"$@\" >/dev/full", "sh", envd_binary()};
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    options.env = base_env();
    for (const auto& [key, value] : env()) options.env[key] = value;
    options.stdin_data = stdin_data;
    options.timeout = std::chrono::seconds(60);
    auto r = sdk::run_process(options);
    EXPECT_TRUE(r.ok()) << r.error().message();
    return r.ok() ? *r : sdk::ProcessResult{};
  }

  TestServices services_;
  std::vector<std::string> names_;
};

json::value parse(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  EXPECT_FALSE(ec) << text;
  return v;
}

TEST_F(DockerRunnerE2e, RunListDescribeDown) {
  std::string n = name("dev");
  auto r = run({"run",
                "--image",
                kBase,
                "--name",
                n,
                "-e",
                "GREETING=hello",
                "-p",
                "127.0.0.1:18080:80",
                "-p",
                "5353:53/udp",
                "-p",
                "7000-7001",
                "-p",
                "9090",
                "--cpus",
                "0.5",
                "--memory",
                "64m",
                "--timeout",
                "30s"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, n + "\n");

  // The Engine sees a running, labelled container with the limits.
  auto inspected =
      docker({"inspect", "-f",
              "{{.State.Status}} {{index .Config.Labels \"ai.tensorchord.envd.name\"}} "
              "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}} "
              "{{.HostConfig.RestartPolicy.Name}}",
              n});
  ASSERT_EQ(inspected.exit_code, 0) << inspected.err;
  EXPECT_EQ(inspected.out, "running " + n + " 500000000 67108864 always\n");

  // A container envd did not make is not listed.
  std::string other = name("other");
  ASSERT_EQ(docker({"run", "-d", "--name", other, kBase, "sleep", "60"}).exit_code, 0);

  auto ls = run({"envs", "ls", "--format", "json"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  json::value listed = parse(ls.out);
  ASSERT_TRUE(listed.is_array()) << ls.out;
  int mine = 0;
  for (const auto& e : listed.as_array()) {
    EXPECT_NE(e.at("name"), json::value(other));
    if (e.at("name") == json::value(n)) {
      ++mine;
      EXPECT_EQ(e.at("image"), kBase);
      EXPECT_EQ(e.at("status"), "running");
      // What the Engine published, as `docker port` says it (this test
      // machine's Engine has no bridge: nothing is published, and envd used
      // to show what was asked for all the same).
      EXPECT_EQ(e.at("endpoint").as_string(), published_as_envd_shows_it(n)) << ls.out;
      EXPECT_EQ(e.at("created").as_string().size(), 20U) << e.at("created");
    }
  }
  EXPECT_EQ(mine, 1) << ls.out;

  auto table = run({"envs", "ls"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.out.rfind("NAME", 0), 0U) << table.out;
  EXPECT_NE(table.out.find("ENDPOINT"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(n + "  "), std::string::npos) << table.out;
  EXPECT_EQ(table.out.find(other), std::string::npos) << table.out;

  auto described = run({"envs", "describe", n, "--format", "json"});
  ASSERT_EQ(described.exit_code, 0) << described.err;
  json::value d = parse(described.out);
  EXPECT_EQ(d.at("env").at("GREETING"), "hello");
  EXPECT_EQ(d.at("resources").at("cpus"), 0.5);
  EXPECT_EQ(d.at("resources").at("memory"), 67108864);
  EXPECT_EQ(d.at("labels").at("ai.tensorchord.envd.name"), json::value(n));
  EXPECT_EQ(d.at("labels").at("ai.tensorchord.envd.vendor"), "envd");
  EXPECT_EQ(d.at("ports").as_array().empty(), published_as_envd_shows_it(n).empty())
      << described.out;
  // What was asked for is in the container's HostConfig, for its next start.
  EXPECT_EQ(docker({"inspect", "-f", "{{json .HostConfig.PortBindings}}", n}).out,
            R"({"53/udp":[{"HostIp":"","HostPort":"5353"}],)"
            R"("7000/tcp":[{"HostIp":"","HostPort":""}],"7001/tcp":[{"HostIp":"","HostPort":""}],)"
            R"("80/tcp":[{"HostIp":"127.0.0.1","HostPort":"18080"}],)"
            R"("9090/tcp":[{"HostIp":"","HostPort":""}]})"
            "\n");

  auto text = run({"envs", "describe", n});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("Status:    running\n"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("Resources: cpus 0.5, memory 64.0 MiB, gpus none, shm 2.0 GiB\n"),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("  GREETING=hello\n"), std::string::npos) << text.out;

  // down refuses what envd did not make, and removes what it did.
  EXPECT_EQ(error_of(run({"down", other})),
            "envd: error: runner 'docker': container '" + other + "' on the Docker Engine at " +
                services_.docker_host +
                " is not an envd environment (it has no label ai.tensorchord.envd.name)\n");
  auto down = run({"down", n, "--volumes"});
  ASSERT_EQ(down.exit_code, 0) << down.err;
  EXPECT_EQ(down.out, n + "\n");
  EXPECT_NE(docker({"inspect", n}).exit_code, 0);
  EXPECT_EQ(error_of(run({"envs", "describe", n})),
            "envd: error: runner 'docker': no environment '" + n + "' on the Docker Engine at " +
                services_.docker_host + "\n");
  EXPECT_EQ(error_of(run({"down", n})), "envd: error: runner 'docker': no environment '" + n +
                                            "' on the Docker Engine at " + services_.docker_host +
                                            "\n");

  // A stopped environment shows what its next start asks for, an IPv6
  // binding in brackets by describe as by envs ls.
  std::string six = name("six");
  ASSERT_EQ(run({"run", "--image", kBase, "--name", six, "-p", "[::1]:18082:82"}).exit_code, 0);
  ASSERT_EQ(docker({"stop", "-t", "0", six}).exit_code, 0);
  auto six_text = run({"envs", "describe", six});
  EXPECT_NE(six_text.out.find("  [::1]:18082 -> 82/tcp\n"), std::string::npos) << six_text.out;
  auto six_ls = run({"envs", "ls", "--format", "json"});
  EXPECT_NE(six_ls.out.find("[::1]:18082->82/tcp"), std::string::npos) << six_ls.out;
}

TEST_F(DockerRunnerE2e, NamesDefaultToTheImageAndCommandsReplaceItsOwn) {
  names_.push_back("busybox");
  docker({"rm", "-f", "busybox"});
  auto r = run({"run", "--image", kBase, "--", "sleep", "60"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "busybox\n");
  auto d = run({"envs", "describe", "busybox", "--format", "json"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_EQ(parse(d.out).at("command"), (json::array{"sleep", "60"}));
}

// Without `--` too, the command is everything from its first word on, as in
// docker run: a repeatable flag before it takes one value (`-e A=1 sleep 60`
// did set A, sleep and 60), and a word after it is never envd's (`sh -c X`
// was envd's -c, --context).
TEST_F(DockerRunnerE2e, TheCommandIsTheRestOfTheLineWithoutDashDash) {
  std::string n = name("rest");
  auto r = run({"run", "--image", kBase, "--name", n, "-e", "A=1", "-p", "18090:90", "-v",
                "/tmp:/host-tmp", "--cap-add", "SYS_PTRACE", "sh", "-c", "sleep 60", "-e", "B=2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto d = run({"envs", "describe", n, "--format", "json"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_EQ(parse(d.out).at("command"), (json::array{"sh", "-c", "sleep 60", "-e", "B=2"}));
  auto env = docker({"inspect", "-f", "{{json .Config.Env}}", n});
  EXPECT_NE(env.out.find("\"A=1\""), std::string::npos) << env.out;
  EXPECT_EQ(env.out.find("B=2"), std::string::npos) << env.out;
}

TEST_F(DockerRunnerE2e, AMissingImageOffersUpOrPull) {
  std::string n = name("noimage");
  EXPECT_EQ(error_of(run({"run", "--image", "envd-test/absent:1", "--name", n})),
            "envd: error: runner 'docker': image 'envd-test/absent:1' is not on the Docker "
            "Engine at " +
                services_.docker_host +
                ": build it with 'envd up', or pull it with 'docker pull envd-test/absent:1'\n");
  EXPECT_NE(docker({"inspect", n}).exit_code, 0);
}

// A context that names its runner's Engine: the docker CLI the hints name
// is told it with -H (without the context, the CLI finds the Engine envd
// used, from DOCKER_HOST, as above).
TEST_F(DockerRunnerE2e, HintsNameTheContextsEngine) {
  envd_ok({"context", "create", "--name", "named-engine", "--runner", "docker", "--runner-address",
           services_.docker_host, "--use"});
  std::string n = name("hint");
  EXPECT_EQ(error_of(envd({"run", "--image", "envd-test/absent:1", "--name", n})),
            "envd: error: runner 'docker': image 'envd-test/absent:1' is not on the Docker "
            "Engine at " +
                services_.docker_host + ": build it with 'envd up', or pull it with 'docker -H " +
                services_.docker_host + " pull envd-test/absent:1'\n");
  ASSERT_EQ(envd({"run", "--image", kBase, "--name", n}).exit_code, 0);
  ASSERT_EQ(docker({"pause", n}).exit_code, 0);
  EXPECT_EQ(error_of(envd({"attach", n}, {}, "")),
            "envd: error: runner 'docker': environment '" + n +
                "' is paused: resume it with 'docker -H " + services_.docker_host + " unpause " +
                n + "', then attach\n");
  ASSERT_EQ(docker({"unpause", n}).exit_code, 0);
}

TEST_F(DockerRunnerE2e, ANameInUseOffersForce) {
  std::string n = name("taken");
  ASSERT_EQ(run({"run", "--image", kBase, "--name", n}).exit_code, 0);
  auto first = docker({"inspect", "-f", "{{.Id}}", n});
  auto again = run({"run", "--image", kBase, "--name", n});
  std::string err = error_of(again);
  EXPECT_EQ(
      err.rfind("envd: error: runner 'docker': the name '" + n + "' is in use by container " +
                    first.out.substr(0, 12) + " (running) on the Docker Engine at " +
                    services_.docker_host + ": choose another --name, or replace it with --force\n",
                0),
      0U)
      << err;
  auto forced = run({"run", "--image", kBase, "--name", n, "--force"});
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_EQ(forced.out, n + "\n");
  EXPECT_NE(docker({"inspect", "-f", "{{.Id}}", n}).out, first.out);
}

// Replacements of one name at once: one takes the name; any other says so in
// one line, and names the replaced container as the Engine has it then (it
// said "kept as" a container the winner had removed). Nothing is left aside.
TEST_F(DockerRunnerE2e, ConcurrentForcedReplacementsLeaveOneEnvironment) {
  std::string n = name("forced");
  ASSERT_EQ(run({"run", "--image", kBase, "--name", n, "--", "sleep", "600"}).exit_code, 0);
  std::vector<sdk::ProcessResult> results(3);
  std::vector<std::thread> threads;
  for (auto& result : results) {
    threads.emplace_back([&, slot = &result] {
      *slot = run({"run", "--image", kBase, "--name", n, "--force", "--", "sleep", "600"});
    });
  }
  for (auto& thread : threads) thread.join();
  int succeeded = 0;
  const std::string taken = "envd: error: runner 'docker': cannot replace container '" + n +
                            "': the name '" + n + "' was taken on the Docker Engine at " +
                            services_.docker_host + " by another command meanwhile; the ";
  for (const auto& r : results) {
    if (r.exit_code == 0) {
      ++succeeded;
      continue;
    }
    std::string err = error_of(r);
    EXPECT_EQ(err.rfind(taken, 0), 0U) << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
    bool left = err.find("container it was to replace is left as '" + n + "-replaced-") !=
                    std::string::npos &&
                err.find("' (a concurrent --force of that name removes it)\n") != std::string::npos;
    bool gone = err.find(
                    "the container it was to replace is gone: another command replaced it "
                    "meanwhile, and removed it\n") != std::string::npos;
    EXPECT_TRUE(left || gone) << err;
  }
  EXPECT_GE(succeeded, 1);
  auto names = docker({"ps", "-a", "--filter", "name=" + n, "--format", "{{.Names}}"});
  EXPECT_EQ(names.out, n + "\n") << "a container was left aside";
  EXPECT_EQ(docker({"inspect", "-f", "{{.State.Running}}", n}).out, "true\n");
}

// --force makes the new container before it touches the old one: an Engine
// refusing the new one (here a memory limit under its minimum) leaves the old
// environment as it was, running, with what was written in it.
TEST_F(DockerRunnerE2e, AFailedForceKeepsTheOldEnvironment) {
  std::string n = name("kept");
  ASSERT_EQ(run({"run", "--image", kBase, "--name", n, "--network", "none"}).exit_code, 0);
  const std::string id = docker({"inspect", "-f", "{{.Id}}", n}).out;
  ASSERT_EQ(docker({"exec", n, "sh", "-c", "echo written > /marker"}).exit_code, 0);

  auto refused =
      run({"run", "--image", kBase, "--name", n, "--network", "none", "--force", "--memory", "1k"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("cannot create environment '" + n + "'"), std::string::npos)
      << refused.err;
  EXPECT_EQ(docker({"inspect", "-f", "{{.Id}}", n}).out, id);
  EXPECT_EQ(docker({"inspect", "-f", "{{.State.Running}}", n}).out, "true\n");
  EXPECT_EQ(docker({"exec", n, "cat", "/marker"}).out, "written\n");
  // Nothing else is left: the one container labelled with the name is it.
  auto labelled = docker(
      {"ps", "-aq", "--no-trunc", "--filter", std::string("label=ai.tensorchord.envd.name=") + n});
  EXPECT_EQ(labelled.out, id);

  // A start the Engine refuses (GPUs on an Engine without a GPU device
  // driver: it creates the container, and its start fails) puts the old one
  // back too: its name, and running.
  auto unstarted =
      run({"run", "--image", kBase, "--name", n, "--network", "none", "--force", "--gpus", "all"});
  EXPECT_NE(unstarted.err.find("cannot start environment '" + n + "'"), std::string::npos)
      << unstarted.err;
  EXPECT_NE(unstarted.exit_code, 0);
  EXPECT_EQ(docker({"inspect", "-f", "{{.Id}}", n}).out, id) << unstarted.err;
  EXPECT_EQ(docker({"inspect", "-f", "{{.State.Running}}", n}).out, "true\n") << unstarted.err;
  EXPECT_EQ(docker({"exec", n, "cat", "/marker"}).out, "written\n");
  labelled = docker(
      {"ps", "-aq", "--no-trunc", "--filter", std::string("label=ai.tensorchord.envd.name=") + n});
  EXPECT_EQ(labelled.out, id) << unstarted.err;

  // A replacement that works replaces it.
  auto forced = run({"run", "--image", kBase, "--name", n, "--network", "none", "--force"});
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_NE(docker({"inspect", "-f", "{{.Id}}", n}).out, id);
  EXPECT_NE(docker({"inspect", id.substr(0, 64)}).exit_code, 0) << "the old one is removed";
}

// The container --force replaces is removed as `docker rm -f` removes it: its
// anonymous volumes stay (they held a database in the audit that found it).
TEST_F(DockerRunnerE2e, ForceKeepsTheReplacedContainersVolumes) {
  std::string n = name("volume");
  ASSERT_EQ(docker({"run", "-d", "--network", "none", "--name", n, "-v", "/data", kBase, "sh", "-c",
                    "echo important > /data/db; sleep 600"})
                .exit_code,
            0);
  auto volume = docker({"inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", n});
  std::string volume_name = volume.out.substr(0, volume.out.find('\n'));
  ASSERT_FALSE(volume_name.empty()) << volume.out;
  auto forced = run({"run", "--image", kBase, "--name", n, "--network", "none", "--force"});
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_EQ(docker({"volume", "inspect", volume_name}).exit_code, 0) << "the volume was removed";
  docker({"volume", "rm", volume_name});
}

// A name of hex digits is a name, never the prefix of a container's id (the
// Engine resolves /containers/{x}/json by id prefix when no name matches):
// envd neither describes, replaces nor removes another container for it.
// -v on the real Engine: a host directory read-write and read-only, a named
// volume and an anonymous one, and on-failure's retry count; describe shows
// the mounts; down --volumes keeps the named volume, as docker rm -v does.
TEST_F(DockerRunnerE2e, VolumesMountHostDirectoriesAndVolumes) {
  std::string n = name("mounts");
  const std::string volume = n + "-cache";
  const fs::path dir = home() / "work";
  fs::create_directories(dir);
  std::ofstream(dir / "in") << "from the host\n";
  auto r = run({"run",
                "--image",
                kBase,
                "--name",
                n,
                "--network",
                "none",
                "-v",
                dir.string() + ":/work",
                "-v",
                dir.string() + "/:/ro:ro",
                "-v",
                volume + ":/cache",
                "-v",
                "/scratch",
                "--restart",
                "on-failure:2",
                "--",
                "sh",
                "-c",
                "cat /work/in > /work/copy; (echo x > /ro/denied) 2>/dev/null || echo refused > "
                "/work/ro; echo kept > /cache/f; sleep 600"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (int i = 0; i < 100 && !fs::exists(dir / "ro"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(read_text(dir / "copy"), "from the host\n");
  EXPECT_EQ(read_text(dir / "ro"), "refused\n");
  EXPECT_FALSE(fs::exists(dir / "denied"));
  EXPECT_EQ(docker({"inspect", "-f",
                    "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy."
                    "MaximumRetryCount}}",
                    n})
                .out,
            "on-failure:2\n");

  auto described = run({"envs", "describe", n, "--format", "json"});
  ASSERT_EQ(described.exit_code, 0) << described.err;
  json::value d = parse(described.out);
  EXPECT_EQ(d.at("restart"), "on-failure:2");
  std::map<std::string, json::value> by_target;
  for (const auto& m : d.at("volumes").as_array()) {
    by_target[std::string(m.at("target").as_string())] = m;
  }
  ASSERT_EQ(by_target.size(), 4U) << described.out;
  EXPECT_EQ(
      by_target["/work"],
      (json::object{
          {"type", "bind"}, {"source", dir.string()}, {"target", "/work"}, {"read_only", false}}));
  EXPECT_EQ(by_target["/ro"].at("read_only"), true);
  EXPECT_EQ(by_target["/cache"].at("source"), json::value(volume));
  const std::string anonymous(by_target["/scratch"].at("source").as_string());
  EXPECT_EQ(anonymous.size(), 64U) << described.out;
  auto text = run({"envs", "describe", n});
  EXPECT_NE(text.out.find("  " + dir.string() + " -> /ro (read-only)\n"), std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("  volume " + volume + " -> /cache\n"), std::string::npos) << text.out;

  ASSERT_EQ(run({"down", n, "--volumes"}).exit_code, 0);
  EXPECT_NE(docker({"volume", "inspect", anonymous}).exit_code, 0) << "the anonymous one stays";
  auto kept = docker(
      {"run", "--rm", "--network", "none", "-v", volume + ":/cache", kBase, "cat", "/cache/f"});
  EXPECT_EQ(kept.out, "kept\n") << kept.err;
  docker({"volume", "rm", volume});

  // A host directory that is not there is refused, not made (as docker
  // run -v would make it, owned by root); no container is left.
  std::string missing = name("missing");
  auto refused = run({"run", "--image", kBase, "--name", missing, "--network", "none", "-v",
                      (home() / "nope").string() + ":/x"});
  EXPECT_NE(
      error_of(refused).find("bind source path does not exist: " + (home() / "nope").string()),
      std::string::npos)
      << refused.err;
  EXPECT_FALSE(fs::exists(home() / "nope"));
  EXPECT_NE(docker({"inspect", missing}).exit_code, 0);
}

// --shm-size, --cpu-set and --cap-add reach the container: the Engine's
// HostConfig, and /dev/shm's size as the environment sees it.
TEST_F(DockerRunnerE2e, ShmCpuSetAndCapabilitiesReachTheContainer) {
  std::string n = name("limits");
  auto r = run({"run", "--image", kBase, "--name", n, "--network", "none", "--shm-size", "96m",
                "--cpu-set", "0", "--cap-add", "sys_ptrace", "--cap", "CAP_NET_ADMIN"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(docker({"inspect", "-f",
                    "{{.HostConfig.ShmSize}} {{.HostConfig.CpusetCpus}} {{.HostConfig.CapAdd}}", n})
                .out,
            "100663296 0 [SYS_PTRACE NET_ADMIN]\n");
  auto shm = docker({"exec", n, "df", "-k", "/dev/shm"});
  EXPECT_NE(shm.out.find(" 98304 "), std::string::npos) << shm.out << shm.err;
  auto text = run({"envs", "describe", n});
  EXPECT_NE(text.out.find(", cpu set 0, shm 96.0 MiB\n"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("Caps:      SYS_PTRACE, NET_ADMIN\n"), std::string::npos) << text.out;

  // Without --shm-size, upstream's 2 GiB rather than the Engine's 64 MiB.
  std::string plain = name("plain");
  ASSERT_EQ(run({"run", "--image", kBase, "--name", plain, "--network", "none"}).exit_code, 0);
  auto plain_shm = docker({"exec", plain, "df", "-k", "/dev/shm"});
  EXPECT_NE(plain_shm.out.find(" 2097152 "), std::string::npos) << plain_shm.out;

  // A bare number is neither guessed as MiB (upstream) nor as bytes (Docker).
  // A usage error (exit 2), found as the command line is read.
  auto bare = run({"run", "--image", kBase, "--shm-size", "2048"});
  EXPECT_EQ(bare.exit_code, 2);
  EXPECT_EQ(bare.err,
            "envd: error: invalid --shm-size '2048': give a unit, e.g. 2048MiB or 2g (upstream "
            "envd read a bare number as MiB, Docker as bytes) (see 'envd run --help')\n");
}

TEST_F(DockerRunnerE2e, AHexNameIsNeverTakenForAnIdPrefix) {
  const std::string victim = name("victim");
  ASSERT_EQ(
      docker({"run", "-d", "--network", "none", "--name", victim, kBase, "sleep", "600"}).exit_code,
      0);
  const std::string id = docker({"inspect", "-f", "{{.Id}}", victim}).out;
  ASSERT_GT(id.size(), 12u);
  const std::string prefix = id.substr(0, 6);
  names_.push_back(prefix);

  EXPECT_EQ(error_of(run({"envs", "describe", prefix})),
            "envd: error: runner 'docker': no environment '" + prefix +
                "' on the Docker Engine at " + services_.docker_host + "\n");
  EXPECT_EQ(error_of(run({"down", prefix})), "envd: error: runner 'docker': no environment '" +
                                                 prefix + "' on the Docker Engine at " +
                                                 services_.docker_host + "\n");
  auto made = run({"run", "--image", kBase, "--name", prefix, "--force"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  EXPECT_EQ(made.err.find("replacing the existing container"), std::string::npos) << made.err;
  EXPECT_EQ(docker({"inspect", "-f", "{{.Id}}", victim}).out, id) << "the other container is kept";
  EXPECT_EQ(docker({"inspect", "-f", "{{.State.Running}}", prefix}).out, "true\n");

  // And the environment's own id prefix names nothing either.
  const std::string own = docker({"inspect", "-f", "{{.Id}}", prefix}).out.substr(0, 8);
  EXPECT_EQ(error_of(run({"down", own})), "envd: error: runner 'docker': no environment '" + own +
                                              "' on the Docker Engine at " + services_.docker_host +
                                              "\n");
  EXPECT_EQ(docker({"inspect", "-f", "{{.State.Running}}", prefix}).out, "true\n");
}

// A --timeout that ends while a new environment runs but has not yet run
// long enough to be seen to stay up says so (it said "was not running in
// time (it is running ...)"), and leaves it running as it says.
TEST_F(DockerRunnerE2e, ATimeoutBeforeTheEnvironmentSettledSaysSo) {
  const std::string n = name("settle");
  auto r = run({"run", "--image", kBase, "--name", n, "--network", "none", "--timeout", "300ms"});
  if (r.exit_code == 0) {
    // A fast Engine: started and seen to stay up within the 300 ms.
    EXPECT_EQ(r.out, n + "\n");
    return;
  }
  const std::string err = error_of(r);
  EXPECT_EQ(err.find("(it is running;"), std::string::npos) << err;
  const std::string settling = "envd: error: runner 'docker': environment '" + n +
                               "' is running, but the timeout ended before it had run for the "
                               "200 ms envd watches a new environment for an early exit; it is "
                               "left running (remove it with 'envd down " +
                               n + "'), or give it longer with --timeout\n";
  if (err == settling) {
    EXPECT_EQ(docker({"inspect", "-f", "{{.State.Running}}", n}).out, "true\n");
  } else {
    // A slower Engine: the create or the start itself took the 300 ms.
    EXPECT_NE(err.find("in time"), std::string::npos) << err;
  }
}

// docker run's warning for ports with the host's network; a name given
// twice to down is removed once; an empty fact in describe is "-".
TEST_F(DockerRunnerE2e, HostNetworkPortsWarnAndDownTakesANameOnce) {
  const std::string n = name("host");
  auto r = run({"run", "--image", kBase, "--name", n, "--network", "host", "-p", "18081:80"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("envd: warning: published ports (-p) are discarded with --network host"),
            std::string::npos)
      << r.err;
  auto text = run({"envs", "describe", n});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_EQ(text.out.find(" \n"), std::string::npos) << "no trailing blanks:\n" << text.out;
  // The Engine keeps the binding in HostConfig but publishes nothing.
  EXPECT_EQ(text.out.find("18081"), std::string::npos) << text.out;
  auto down = run({"down", n, n});
  EXPECT_EQ(down.exit_code, 0) << down.err;
  EXPECT_EQ(down.out, n + "\n");
}

TEST_F(DockerRunnerE2e, AnEnvironmentThatExitsShowsItsLastLogLines) {
  std::string n = name("exits");
  auto r = run({"run", "--image", kBase, "--name", n, "--restart", "no", "--", "sh", "-c",
                "echo starting; echo 'no config found' >&2; exit 3"});
  EXPECT_EQ(error_of(r), "envd: error: runner 'docker': environment '" + n +
                             "' exited with code 3 before it was up (remove it with 'envd down " +
                             n + "'); its last log lines:\n  starting\n  no config found\n");
  // It is kept, as the message says, so its logs stay readable.
  auto d = run({"envs", "describe", n, "--format", "json"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_EQ(parse(d.out).at("status"), "exited");
  EXPECT_EQ(parse(d.out).at("exit_code"), 3);

  // With the default restart policy it is caught restarting.
  std::string again = name("restarts");
  std::string err = error_of(
      run({"run", "--image", kBase, "--name", again, "--", "sh", "-c", "echo bye; exit 1"}));
  EXPECT_NE(err.find("envd: error: runner 'docker': environment '" + again + "' exited"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("its last log lines:\n  bye\n"), std::string::npos) << err;
}

// A container that crashes after `run` saw it up is restarted by its policy;
// the list and describe show how often, where a user looks next.
TEST_F(DockerRunnerE2e, ACrashAfterRunShowsItsRestarts) {
  std::string n = name("crash");
  auto r = run({"run", "--image", kBase, "--name", n, "--network", "none", "--restart",
                "on-failure:2", "--", "sh", "-c", "sleep 1; exit 3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json::value d;
  for (int i = 0; i < 300; ++i) {  // two restarts, Docker's back-off: about 4 s
    auto described = run({"envs", "describe", n, "--format", "json"});
    ASSERT_EQ(described.exit_code, 0) << described.err;
    d = parse(described.out);
    if (d.at("restarts") == 2 && d.at("status") == "exited") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(d.at("restarts"), 2) << json::serialize(d);
  EXPECT_EQ(d.at("status"), "exited");
  EXPECT_EQ(d.at("exit_code"), 3);
  auto listed = run({"envs", "ls"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find(" exited (2 restarts) "), std::string::npos) << listed.out;
  auto text = run({"envs", "describe", n});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("\nRestart:   on-failure:2, restarted 2 times\n"), std::string::npos)
      << text.out;
}

TEST_F(DockerRunnerE2e, GpusBecomeDeviceRequestsTheEngineCannotServeHere) {
  std::string n = name("gpu");
  std::string err = error_of(run({"run", "--image", kBase, "--name", n, "--gpus", "all"}));
  EXPECT_EQ(err.rfind("envd: error: runner 'docker': cannot start environment '" + n + "': ", 0),
            0U)
      << err;
  EXPECT_NE(err.find("gpu"), std::string::npos) << err;
  // What could not start is not left behind.
  EXPECT_NE(docker({"inspect", n}).exit_code, 0);

  // docker's CSV form (under upstream's --gpu-set, an alias): the
  // capabilities asked reach the Engine, whose refusal names them.
  err = error_of(run({"run", "--image", kBase, "--name", n, "--network", "none", "--gpu-set",
                      R"("device=0,1","capabilities=compute,utility")"}));
  EXPECT_NE(err.find("[[compute utility gpu]]"), std::string::npos) << err;
  EXPECT_NE(docker({"inspect", n}).exit_code, 0);
  // docker reads `0` as no GPU at all; refused before anything is created.
  err = error_of(run({"run", "--image", kBase, "--name", n, "--gpus", "0"}));
  EXPECT_EQ(err,
            "envd: error: runner 'docker': invalid environment spec: gpus '0' asks for no GPU (for "
            "GPU 0 give device=0; without --gpus there are none)\n");
  EXPECT_NE(docker({"inspect", n}).exit_code, 0);
}

TEST_F(DockerRunnerE2e, AnEngineThatIsDownIsNamed) {
  std::map<std::string, std::optional<std::string>> down{
      {"DOCKER_HOST", "unix:///nonexistent/envd-e2e/docker.sock"}};
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"run", "--image", kBase}, {"envs", "ls"}, {"envs", "describe", "xy"}, {"down", "xy"}}) {
    std::string err = error_of(envd(args, down));
    EXPECT_EQ(err.rfind("envd: error: runner 'docker': cannot connect to the Docker Engine at "
                        "unix:///nonexistent/envd-e2e/docker.sock",
                        0),
              0U)
        << err;
    EXPECT_EQ(err.find('\n'), err.size() - 1) << err;
  }
}

// An Engine that takes connections and never answers: every runner command
// gives up at its --timeout, a followed log included.
TEST_F(DockerRunnerE2e, ASilentEngineIsGivenUpAtTheTimeoutFlag) {
  int port = 0;
  int listener = listen_loopback(&port);
  envd_ok({"context", "create", "--name", "silent", "--runner", "docker", "--runner-address",
           "tcp://127.0.0.1:" + std::to_string(port)});
  for (const std::vector<std::string>& args : {std::vector<std::string>{"envs", "ls"},
                                               {"envs", "logs", "xy"},
                                               {"envs", "logs", "-f", "xy"},
                                               {"attach", "xy"},
                                               {"down", "xy"}}) {
    std::vector<std::string> full = {"--context", "silent"};
    full.insert(full.end(), args.begin(), args.end());
    full.insert(full.end(), {"--timeout", "1s"});
    SCOPED_TRACE(args[0] + " " + args[1]);
    const auto started = std::chrono::steady_clock::now();
    auto r = envd(full, {{"DOCKER_HOST", "unix:///nonexistent"}});
    const auto took = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(r.err.rfind("envd: error: runner 'docker': ", 0), 0U) << r.err;
    EXPECT_LT(took, std::chrono::seconds(10)) << "the 30 s default was used: " << r.err;
  }
  ::close(listener);
}

// The builder commands against the same silent Engine: `builder status`
// keeps to one connect deadline for the driver's look and the probe (it took
// each its own, twice the flag), and `builder stop` / `rm` take the flag too
// (they waited the default plus buildkitd's 10 s of grace for the first
// answer).
TEST_F(DockerRunnerE2e, ASilentEngineBoundsTheBuilderCommandsByTheirConnectTimeout) {
  int port = 0;
  int listener = listen_loopback(&port);
  const std::map<std::string, std::optional<std::string>> silent = {
      {"DOCKER_HOST", "tcp://127.0.0.1:" + std::to_string(port)}};
  envd_ok({"context", "create", "--name", "mw", "--builder", "moby-worker"});
  envd_ok({"context", "create", "--name", "dc", "--builder", "docker-container"});
  auto timed = [&](const std::vector<std::string>& args) {
    const auto started = std::chrono::steady_clock::now();
    auto r = envd(args, silent);
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    return std::chrono::steady_clock::now() - started;
  };
  EXPECT_LT(timed({"--context", "mw", "builder", "status", "--connect-timeout", "3s"}),
            std::chrono::milliseconds(5500));
  EXPECT_LT(timed({"--context", "dc", "builder", "stop", "--connect-timeout", "1s"}),
            std::chrono::seconds(5));
  EXPECT_LT(timed({"--context", "dc", "builder", "rm", "--connect-timeout", "1s"}),
            std::chrono::seconds(5));
  ::close(listener);
}

TEST_F(DockerRunnerE2e, TheContextsRunnerAddressChoosesTheEngine) {
  ASSERT_FALSE(services_.docker_tcp_host.empty()) << "the services' env file has no TCP host";
  envd_ok({"context", "create", "--name", "tcp-engine", "--runner", "docker", "--runner-address",
           services_.docker_tcp_host});
  std::string n = name("tcp");
  std::map<std::string, std::optional<std::string>> nowhere{
      {"DOCKER_HOST", "unix:///nonexistent/envd-e2e/docker.sock"}};
  auto r = envd({"--context", "tcp-engine", "run", "--image", kBase, "--name", n}, nowhere);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto ls = envd({"envs", "ls", "--format", "json"},
                 {{"DOCKER_HOST", "unix:///nonexistent"}, {"ENVD_CONTEXT", "tcp-engine"}});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find("\"name\":\"" + n + "\""), std::string::npos) << ls.out;
}

TEST_F(DockerRunnerE2e, FlagsAreCheckedBeforeTheRunnerIsContacted) {
  // A flag's value malformed in itself is found as the command line is
  // read: a usage error (exit 2), as a size or a duration that is not one.
  auto malformed = [&](const std::vector<std::string>& args) {
    auto r = envd(args, {{"DOCKER_HOST", "unix:///nonexistent"}});
    EXPECT_EQ(r.exit_code, 2);
    const std::string see = " (see 'envd " + args[0] + " --help')\n";
    EXPECT_TRUE(r.err.size() > see.size() && r.err.substr(r.err.size() - see.size()) == see)
        << r.err;
    return r.err.size() > see.size() ? r.err.substr(0, r.err.size() - see.size()) + "\n" : r.err;
  };
  // A required flag left out is a command line envd cannot use: exit 2.
  auto no_image = envd({"run", "--name", "x"}, {{"DOCKER_HOST", "unix:///nonexistent"}});
  EXPECT_EQ(no_image.exit_code, 2);
  EXPECT_EQ(no_image.err, "envd: error: --image is required (see 'envd run --help')\n");
  // The runner puts the image into the Engine's URLs: only a reference goes.
  EXPECT_EQ(malformed({"run", "--image", "a b"}),
            "envd: error: --image: invalid image reference 'a b': 'a b' must be lowercase letters "
            "and digits, separated by '.', '_', '__' or '-'\n");
  EXPECT_EQ(
      malformed({"run", "--image", "busybox/json HTTP/1.1\r\nX: y"})
          .rfind("envd: error: --image: invalid image reference 'busybox/json HTTP/1.1\\x0d\\x0aX: "
                 "y': ",
                 0),
      0u);
  EXPECT_EQ(malformed({"run", "--image", "../containers/x"}),
            "envd: error: --image: invalid image reference '../containers/x': '..' is not a valid "
            "registry host\n");
  EXPECT_EQ(
      malformed({"run", "--image", kBase, "-p", "80:http"}),
      "envd: error: invalid --publish '80:http': expected [[IP:]HOST:]CONTAINER[/tcp|udp|sctp], "
      "a port or a range\n");
  // -v is the volume's after a command's name, not envd's version flag.
  for (const auto& command : {std::vector<std::string>{"run", "--image", kBase},
                              std::vector<std::string>{"up", home().string()}}) {
    auto args = command;
    args.insert(args.end(), {"-v", "data"});
    EXPECT_EQ(malformed(args),
              "envd: error: invalid --volume 'data': TARGET is not an absolute path (expected "
              "[SOURCE:]TARGET[:ro|rw], SOURCE a host directory or a volume name)\n")
        << command[0];
  }
  EXPECT_EQ(malformed({"run", "--image", kBase, "-v", "/a:/d", "-v", "bb:/d/"}),
            "envd: error: --volume: two volumes are mounted at /d\n");
  EXPECT_EQ(malformed({"up", home().string(), "-v", "/a:/d", "-v", "bb:/d/"}),
            "envd: error: --volume: two volumes are mounted at /d\n");
  for (const auto& command : {std::vector<std::string>{"run", "--image", kBase},
                              std::vector<std::string>{"up", home().string()}}) {
    auto args = command;
    args.insert(args.end(), {"-e", "=x"});
    EXPECT_EQ(malformed(args), "envd: error: invalid --env '=x': expected KEY=VALUE or KEY\n")
        << command[0];
  }
  // A relative SOURCE needs the working directory, which can be gone.
  sdk::ProcessOptions gone;
  gone.argv = {"/bin/sh",
               "-c",
               "mkdir \"$0\" && cd \"$0\" && rmdir \"$0\" && exec \"$@\"",
               (home() / "gone").string(),
               envd_binary(),
               "run",
               "--image",
               kBase,
               "-v",
               "./x:/x"};
  gone.env = base_env();
  gone.env["DOCKER_HOST"] = "unix:///nonexistent";
  gone.timeout = std::chrono::seconds(30);
  auto in_gone = sdk::run_process(gone);
  ASSERT_TRUE(in_gone) << in_gone.error().message();
  EXPECT_EQ(in_gone->exit_code, 1);
  EXPECT_EQ(in_gone->err,
            "envd: error: --volume './x:/x': the current directory is gone: No such file or "
            "directory\n");
  // A value that is not a size is a usage error, as a bad duration is.
  auto lots =
      envd({"run", "--image", kBase, "--memory", "lots"}, {{"DOCKER_HOST", "unix:///nonexistent"}});
  EXPECT_EQ(lots.exit_code, 2);
  EXPECT_EQ(lots.err,
            "envd: error: --memory: 'lots' is not a size (e.g. 10GB, 512MiB, 2g or a number of "
            "bytes) (see 'envd run --help')\n");
  EXPECT_EQ(malformed({"run", "--image", kBase, "--cpus", "-1"}),
            "envd: error: invalid --cpus '-1': expected a number of CPUs from 0.001, e.g. 1.5\n");
  // A share that would round to no limit at all.
  EXPECT_EQ(malformed({"run", "--image", kBase, "--cpus", "0.0000000001"}),
            "envd: error: invalid --cpus '0.0000000001': expected a number of CPUs from 0.001, "
            "e.g. 1.5\n");
  // A malformed duration is a usage error, found as the command line is read.
  auto soon = envd({"run", "--image", kBase, "--timeout", "soon"},
                   {{"DOCKER_HOST", "unix:///nonexistent"}});
  EXPECT_EQ(soon.exit_code, 2);
  EXPECT_EQ(soon.err,
            "envd: error: --timeout: 'soon' is not a duration (e.g. 30s, 1m30s, 500ms; at most "
            "277777h) (see 'envd run --help')\n");
  // So is a value outside a flag's listed choices.
  auto yaml = envd({"envs", "ls", "--format", "yaml"}, {{"DOCKER_HOST", "unix:///nonexistent"}});
  EXPECT_EQ(yaml.exit_code, 2);
  EXPECT_EQ(yaml.err,
            "envd: error: --format: 'yaml' is not one of table or json (see 'envd envs ls "
            "--help')\n");
}

}  // namespace
}  // namespace envd::test

namespace envd::test {
namespace {

// envd up: built on the Engine's BuildKit (moby-worker), loaded into the
// `envd up` with no PATH builds the working directory ("<cwd>/."): the
// environment is named after that directory, as the image is, and `./`
// names the same one.
TEST_F(DockerRunnerE2e, UpWithoutAPathIsNamedAfterTheWorkingDirectory) {
  ASSERT_EQ(run({"context", "create", "--name", "local", "--builder", "moby-worker", "--runner",
                 "docker", "--use"})
                .exit_code,
            0);
  const std::string derived = "envd-up-" + std::to_string(::getpid());
  names_.push_back(derived);
  fs::path dir = home() / ("Envd-Up-" + std::to_string(::getpid()));
  write_text(dir / "Dockerfile", std::string("FROM ") + kBase + "\nCMD [\"/bin/sh\"]\n");
  auto up_in_dir = [&](std::vector<std::string> args) {
    sdk::ProcessOptions options;
    options.argv = {envd_binary()};
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    options.env = base_env();
    for (const auto& [key, value] : env()) options.env[key] = value;
    options.cwd = dir.string();
    options.timeout = std::chrono::seconds(120);
    auto r = sdk::run_process(options);
    EXPECT_TRUE(r.ok()) << r.error().message();
    return r.ok() ? *r : sdk::ProcessResult{};
  };
  auto r = up_in_dir({"up", "-d", "--progress", "quiet", "--network", "none"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, derived + "\n");
  EXPECT_EQ(docker({"inspect", "-f", "{{.Config.Image}}", derived}).out, derived + ":dev\n");
  auto again = up_in_dir({"up", "-d", "--progress", "quiet", "--network", "none", "./"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("the name '" + derived + "' is in use by an environment"),
            std::string::npos)
      << again.err;
  docker({"rm", "-f", derived});
  docker({"rmi", "-f", derived + ":dev"});
}

// Engine, run by the docker runner, seen in envs ls, removed.
TEST_F(DockerRunnerE2e, UpBuildsThenRuns) {
  ASSERT_EQ(run({"context", "create", "--name", "local", "--builder", "moby-worker", "--runner",
                 "docker", "--use"})
                .exit_code,
            0);
  std::string n = name("up");
  fs::path dir = home() / "project";
  write_text(dir / "Dockerfile", std::string("FROM ") + kBase +
                                     "\nRUN echo built-by-up > /built.txt\n"
                                     "CMD [\"/bin/sh\"]\n");
  const std::string tag = "envd-e2e/up:" + std::to_string(::getpid());
  // RUN steps on this Engine need --network none (it has no bridge).
  auto r = run({"up", dir.string(), "-t", tag, "--network", "none", "--name", n, "--timeout", "30s",
                "--restart", "on-failure:4", "--env-network", "host", "-p", "18095:95"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, n + "\n");
  // Said once, though the spec is made before the build and after it.
  const std::string discarded =
      "envd: warning: published ports (-p) are discarded with --env-network host";
  auto first_warning = r.err.find(discarded);
  EXPECT_NE(first_warning, std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(discarded, first_warning + 1), std::string::npos) << r.err;
  auto cat = docker({"exec", n, "cat", "/built.txt"});
  EXPECT_EQ(cat.out, "built-by-up\n") << cat.err;
  // --restart is the environment's, as run's is.
  EXPECT_EQ(docker({"inspect", "-f",
                    "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy."
                    "MaximumRetryCount}}",
                    n})
                .out,
            "on-failure:4\n");
  // --env-network is the environment's; --network stayed the build's.
  EXPECT_EQ(docker({"inspect", "-f", "{{.HostConfig.NetworkMode}}", n}).out, "host\n");
  auto ls = run({"envs", "ls", "--format", "json"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find("\"" + n + "\""), std::string::npos) << ls.out;
  EXPECT_EQ(run({"down", n}).exit_code, 0);
  docker({"rmi", "-f", tag});

  // --output makes no sense for the docker runner: refused before the build.
  r = run({"up", dir.string(), "-o", "type=local,dest=" + (home() / "out").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("envd up loads the image into the Docker Engine"), std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(home() / "out"));

  // A name the runner would refuse is refused before the build (ABI 1.6's
  // check_create), not after it: nothing is built or loaded.
  const std::string unbuilt = tag + "-unbuilt";
  r = run({"up", dir.string(), "-t", unbuilt, "--network", "none", "--name", "bad name"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err,
            "envd: error: runner 'docker': invalid environment spec: name 'bad name' is not a "
            "Docker container name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)\n");
  EXPECT_NE(docker({"image", "inspect", unbuilt}).exit_code, 0) << "the build ran";

  // So is a name already in use (without --force): nothing is built or
  // retagged, and the environment that has the name keeps running.
  std::string taken = name("taken");
  ASSERT_EQ(run({"run", "--image", kBase, "--name", taken}).exit_code, 0);
  r = run({"up", dir.string(), "-t", unbuilt, "--network", "none", "--name", taken});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "envd: error: runner 'docker': the name '" + taken +
                       "' is in use by an environment (running): choose another --name, or "
                       "replace it with --force\n");
  EXPECT_NE(docker({"image", "inspect", unbuilt}).exit_code, 0) << "the build ran";
  // A container envd did not make holds its name as firmly, and is said to.
  std::string foreign = name("foreign");
  ASSERT_EQ(docker({"run", "-d", "--network", "none", "--name", foreign, kBase, "sleep", "600"})
                .exit_code,
            0);
  r = run({"up", dir.string(), "-t", unbuilt, "--network", "none", "--name", foreign});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "envd: error: runner 'docker': container '" + foreign +
                       "' on the Docker Engine at " + services_.docker_host +
                       " is not an envd environment (it has no label ai.tensorchord.envd.name): "
                       "choose another --name, or replace it with --force\n");
  EXPECT_NE(docker({"image", "inspect", unbuilt}).exit_code, 0) << "the build ran";
  // --force replaces it, after the build.
  r = run({"up", dir.string(), "-t", unbuilt, "--network", "none", "--name", taken, "--force",
           "--timeout", "30s"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(docker({"exec", taken, "cat", "/built.txt"}).out, "built-by-up\n");
  // --quiet: the environment's name is the one line out (not the image ID
  // too, as build -q would print), and nothing goes to stderr.
  r = run({"up", dir.string(), "-q", "-t", unbuilt, "--network", "none", "--name", taken, "--force",
           "--timeout", "30s"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, taken + "\n");
  EXPECT_EQ(r.err, "");
  docker({"rmi", "-f", unbuilt});
}

}  // namespace
}  // namespace envd::test

namespace envd::test {
namespace {

// envs logs: all, the last K lines, and followed until the container ends
// (the Engine keeps a TTY's "\r\n").
TEST_F(DockerRunnerE2e, LogsShowAllTheTailAndFollowToTheEnd) {
  std::string n = name("logs");
  auto r = run({"run", "--image", kBase, "--name", n, "--restart", "no", "--", "sh", "-c",
                "echo one; echo two; echo three; sleep 4; echo four"});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  auto all = run({"envs", "logs", n});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(all.out, "one\r\ntwo\r\nthree\r\n");
  EXPECT_EQ(all.err, "");
  auto tail = run({"envs", "logs", n, "--tail", "1"});
  ASSERT_EQ(tail.exit_code, 0) << tail.err;
  EXPECT_EQ(tail.out, "three\r\n");

  // A followed log shows what there is at once, and a --timeout that ends
  // it while it flows says so (the SDK read a live stream 64 KiB at a time).
  auto cut = run({"envs", "logs", "-f", n, "--timeout", "1s"});
  EXPECT_EQ(cut.exit_code, 1);
  EXPECT_EQ(cut.out, "one\r\ntwo\r\nthree\r\n");
  EXPECT_EQ(cut.err,
            "envd: error: runner 'docker': stopped following the logs when --timeout ended (the "
            "environment was still running)\n");

  auto followed = run({"envs", "logs", "-f", n});
  ASSERT_EQ(followed.exit_code, 0) << followed.err;
  EXPECT_EQ(followed.out, "one\r\ntwo\r\nthree\r\nfour\r\n");

  auto missing = run({"envs", "logs", "no-such-env-" + std::to_string(::getpid())});
  EXPECT_NE(error_of(missing).find("no environment 'no-such-env-"), std::string::npos)
      << missing.err;
  auto bad = run({"envs", "logs", n, "--tail", "-3"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;

  // Logs that cannot be written (a full disk) are an error, not a success
  // with the data gone; a reader that leaves (`| head`) is not.
  auto full = to_full_device({"envs", "logs", n});
  EXPECT_EQ(full.exit_code, 1) << full.err;
  EXPECT_NE(full.err.find("cannot write the logs: No space left on device"), std::string::npos)
      << full.err;
  auto attached = to_full_device({"attach", n}, "echo hi; exit 0\n");
  EXPECT_EQ(attached.exit_code, 1) << attached.err;
}

// What `fd` gives until it has given `text`, or until 30 s pass without a
// byte or the writer closes it: then what came so far.
std::string read_until(int fd, std::string_view text) {
  std::string shown;
  while (shown.find(text) == std::string::npos) {
    pollfd ready{fd, POLLIN, 0};
    char c = 0;
    if (::poll(&ready, 1, 30000) <= 0 || ::read(fd, &c, 1) != 1) break;
    shown.push_back(c);
  }
  return shown;
}

// Ctrl-C is how a followed log ends: with the signal's status and no error
// line, as docker logs -f ends.
TEST_F(DockerRunnerE2e, CtrlCEndsAFollowedLogWithoutAnError) {
  std::string n = name("follow");
  ASSERT_EQ(run({"run", "--image", kBase, "--name", n, "--", "sh", "-c", "echo one; sleep 600"})
                .exit_code,
            0);
  for (int signal : {SIGINT, SIGTERM}) {
    SCOPED_TRACE(signal);
    int out[2];
    ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
    auto followed = envd_background({"envs", "logs", "-f", n}, env(), out[1]);
    ::close(out[1]);
    ASSERT_EQ(followed->start_error(), "");
    // The signal once the log flows: envd is following it by then, past
    // start-up (a signal before its watcher exists ends it by the default
    // action, which is another test).
    ASSERT_EQ(read_until(out[0], "one"), "one") << "no log line within 30 s";
    ASSERT_EQ(::kill(followed->pid(), signal), 0);
    auto status = followed->wait_exit(std::chrono::seconds(10));
    ASSERT_TRUE(status.has_value()) << "still following 10 s after the signal";
    EXPECT_TRUE(WIFEXITED(*status));
    EXPECT_EQ(WEXITSTATUS(*status), 128 + signal);
    EXPECT_EQ(followed->err(), "");
    ::close(out[0]);
  }
}

// Ctrl-C ends an attached session with the signal's status and says that
// what the session started may go on: the Engine cannot end an exec.
TEST_F(DockerRunnerE2e, CtrlCEndsAnAttachedSessionAndSaysWhatMayGoOn) {
  std::string n = name("ctrlc");
  ASSERT_EQ(run({"run", "--image", kBase, "--name", n}).exit_code, 0);
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  auto attached =
      envd_background({"attach", n, "--shell", "sh -c 'echo ready; sleep 600'"}, env(), out[1]);
  ::close(out[1]);
  ASSERT_EQ(attached->start_error(), "");
  ASSERT_EQ(read_until(out[0], "ready\n"), "ready\n") << "the shell said nothing within 30 s";
  ASSERT_EQ(::kill(attached->pid(), SIGINT), 0);
  auto status = attached->wait_exit(std::chrono::seconds(10));
  ASSERT_TRUE(status.has_value()) << "still attached 10 s after Ctrl-C";
  EXPECT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 130);
  EXPECT_EQ(attached->err(),
            "envd: error: runner 'docker': the shell session cancelled; what it started may go on "
            "running in the environment\n");
  ::close(out[0]);
}

// attach without a terminal: stdin, stdout and stderr as separate streams,
// the shell's exit code passed through.
TEST_F(DockerRunnerE2e, AttachWithoutATerminalPassesStreamsAndTheExitCode) {
  std::string n = name("pipe");
  ASSERT_EQ(run({"run", "--image", kBase, "--name", n}).exit_code, 0);
  auto r = envd({"attach", n}, env(), "echo out-$((6*7)); echo err-1 >&2; exit 4\n");
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_EQ(r.out, "out-42\n");
  EXPECT_EQ(r.err, "err-1\n");

  // `envd ssh` is the same command; --shell picks the program.
  r = envd({"ssh", n, "--shell", "cat"}, env(), "typed text\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "typed text\n");

  // A missing program: the Engine writes why on the exec's stream, as if the
  // program had said it; it reaches stderr as the error, stdout stays empty.
  r = envd({"attach", n, "--shell", "no-such-shell"}, env(), "");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(error_of(r).find("cannot start 'no-such-shell': OCI runtime exec failed: "),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("executable file not found"), std::string::npos) << r.err;
  // A program that runs and ends at once is not taken for one that could not start.
  r = envd({"attach", n, "--shell", "true"}, env(), "");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out + r.err, "");
  // The command line is split as a shell splits it: quotes keep a word whole.
  r = envd({"attach", n, "--shell", "sh -c 'echo \"a  b\"; exit 3'"}, env(), "");
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(r.out, "a  b\n");

  ASSERT_EQ(docker({"stop", "-t", "0", n}).exit_code, 0);
  r = run({"attach", n});
  EXPECT_NE(error_of(r).find("environment '" + n + "' is exited, not running"), std::string::npos)
      << r.err;
}

// attach on a real terminal: raw mode (keys reach the shell one by one), the
// window size at start and after a resize, the exit code, and the terminal's
// modes given back.
TEST_F(DockerRunnerE2e, AttachOnATerminalFollowsTheWindowAndRestoresIt) {
  std::string n = name("tty");
  ASSERT_EQ(run({"run", "--image", kBase, "--name", n}).exit_code, 0);
  auto session = PtySession::start(
      {"/bin/sh", "-c",
       std::string(envd_binary()) + " attach " + n + "; echo attach-exit=$?; stty -a"},
      full_env(env()), 33, 101);
  ASSERT_TRUE(session);
  session->type("busybox stty size\r");
  ASSERT_TRUE(session->wait_for("33 101", std::chrono::seconds(20))) << session->output();

  // SIGWINCH reaches envd, which resizes the exec; the shell sees it.
  session->resize(40, 120);
  bool resized = false;
  for (int attempt = 0; attempt < 10 && !resized; ++attempt) {
    std::size_t from = session->output().size();
    session->type("busybox stty size\r");
    resized = session->wait_for("40 120", std::chrono::seconds(1), from);
  }
  EXPECT_TRUE(resized) << session->output();

  session->type("echo sum-$((6*7))\r");
  EXPECT_TRUE(session->wait_for("sum-42", std::chrono::seconds(10))) << session->output();
  session->type("exit 3\r");
  ASSERT_TRUE(session->wait_for("attach-exit=3", std::chrono::seconds(20))) << session->output();
  auto code = session->wait_exit(std::chrono::seconds(10));
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 0);
  std::string after = session->output().substr(session->output().find("attach-exit=3"));
  EXPECT_NE(after.find(" icanon"), std::string::npos) << after;
  EXPECT_NE(after.find(" echo "), std::string::npos) << after;
  EXPECT_EQ(after.find("-icanon"), std::string::npos) << after;
}

// envd up on a terminal lands in the environment once it runs.
TEST_F(DockerRunnerE2e, UpOnATerminalAttaches) {
  ASSERT_EQ(run({"context", "create", "--name", "local", "--builder", "moby-worker", "--runner",
                 "docker", "--use"})
                .exit_code,
            0);
  std::string n = name("upterm");
  fs::path dir = home() / "project";
  write_text(dir / "Dockerfile", std::string("FROM ") + kBase +
                                     "\nRUN echo made-by-up > /made.txt\nCMD [\"/bin/sh\"]\n");
  const std::string tag = "envd-e2e/upterm:" + std::to_string(::getpid());
  auto session = PtySession::start({envd_binary(), "up", dir.string(), "-t", tag, "--network",
                                    "none", "--name", n, "--progress", "plain"},
                                   full_env(env()), 24, 80);
  ASSERT_TRUE(session);
  // The name is printed, then the shell's prompt.
  ASSERT_TRUE(session->wait_for(n + "\r\n", std::chrono::seconds(120))) << session->output();
  std::size_t from = session->output().size();
  session->type("cat /made.txt; exit 5\r");
  EXPECT_TRUE(session->wait_for("made-by-up", std::chrono::seconds(20), from)) << session->output();
  auto code = session->wait_exit(std::chrono::seconds(20));
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 5) << session->output();
  // The environment keeps running after the shell ends.
  auto state = docker({"inspect", "-f", "{{.State.Status}}", n});
  EXPECT_EQ(state.out, "running\n") << state.err;
  docker({"rmi", "-f", tag});
}

}  // namespace
}  // namespace envd::test
