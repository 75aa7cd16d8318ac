// `envd build` end to end through the moby-worker builder: a real Docker
// Engine (started by the `engine` test fixture, tests/services), its embedded
// BuildKit, real files on disk. RUN steps use --network none: the test engine
// runs without a bridge network.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "cli_harness.hpp"
#include "services/test_services.hpp"

namespace envd::test {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr const char* kBase = "envd-test/busybox:latest";

class BuildE2e : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    services_ = TestServices::load();
    ASSERT_TRUE(services_.ok()) << services_.error;
    envd_ok({"context", "create", "--name", "engine", "--builder", "moby-worker", "--use"});
  }

  std::map<std::string, std::optional<std::string>> env() const {
    return {{"DOCKER_HOST", services_.docker_host}, {"BUILDKIT_PROGRESS", std::nullopt}};
  }

  // Runs envd against the test engine.
  sdk::ProcessResult build(std::vector<std::string> args) {
    args.insert(args.begin(), "build");
    return envd(args, env());
  }

  // Runs the docker CLI against the test engine.
  sdk::ProcessResult docker(const std::vector<std::string>& args) {
    sdk::ProcessOptions options;
    options.argv = {"docker"};
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    options.env["DOCKER_HOST"] = services_.docker_host;
    options.timeout = std::chrono::seconds(120);
    auto r = sdk::run_process(options);
    EXPECT_TRUE(r) << (r ? "" : r.error().message());
    return r ? *r : sdk::ProcessResult{};
  }

  fs::path project(const std::string& name, const std::string& dockerfile) {
    fs::path dir = home() / name;
    write_text(dir / "Dockerfile", dockerfile);
    return dir;
  }

  TestServices services_;
};

// "<relative path> <size> <fnv hash>" for every regular file under `root`.
std::set<std::string> listing(const fs::path& root) {
  std::set<std::string> out;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    std::string data = read_text(entry.path());
    uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char c : data) h = (h ^ c) * 0x100000001b3ULL;
    out.insert(fs::relative(entry.path(), root).string() + " " + std::to_string(data.size()) + " " +
               std::to_string(h));
  }
  return out;
}

TEST_F(BuildE2e, RunAndCopyLandInTheEngineAndRun) {
  fs::path dir = project("hello", std::string("FROM ") + kBase +
                                      "\nCOPY greeting.txt /greeting.txt\n"
                                      "RUN echo built-by-envd > /built.txt\n");
  write_text(dir / "greeting.txt", "hello from the context\n");
  auto r = build({"--network", "none", "--progress", "plain", dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("Built hello:dev"), std::string::npos) << r.err;
  auto run = docker(
      {"run", "--rm", "--network", "none", "hello:dev", "cat", "/greeting.txt", "/built.txt"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "hello from the context\nbuilt-by-envd\n");
}

TEST_F(BuildE2e, DockerignoreExcludesFilesAndLocalExportWritesThem) {
  fs::path dir = project("ignore", std::string("FROM ") + kBase + "\nCOPY . /ctx\n");
  write_text(dir / "kept.txt", "kept\n");
  write_text(dir / "secret.txt", "secret\n");
  write_text(dir / "logs" / "a.log", "log\n");
  write_text(dir / ".dockerignore", "secret.txt\nlogs\n");
  fs::path out = home() / "out";
  auto r = build({"--network", "none", "--progress", "plain", "--output",
                  "type=local,dest=" + out.string(), dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_text(out / "ctx" / "kept.txt"), "kept\n");
  EXPECT_TRUE(fs::exists(out / "ctx" / "Dockerfile"));
  EXPECT_FALSE(fs::exists(out / "ctx" / "secret.txt"));
  EXPECT_FALSE(fs::exists(out / "ctx" / "logs"));
  EXPECT_TRUE(fs::exists(out / "bin" / "busybox")) << "the base image is part of the export";
}

TEST_F(BuildE2e, BuildArgsAndTargetReachTheFrontend) {
  fs::path dir = project("args", std::string("FROM ") + kBase +
                                     " AS first\nARG GREETING=unset\n"
                                     "RUN echo \"$GREETING\" > /greeting.txt\n"
                                     "FROM first AS second\nRUN echo second > /second.txt\n");
  fs::path out = home() / "out";
  // --build-arg takes one value each time: PATH after it stays the context.
  auto r = build({"--network", "none", "--progress", "plain", "--target", "first", "--output",
                  "type=local,dest=" + out.string(), "--build-arg", "GREETING=hello args",
                  dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_text(out / "greeting.txt"), "hello args\n");
  EXPECT_FALSE(fs::exists(out / "second.txt")) << "--target stops at the first stage";
}

TEST_F(BuildE2e, TwentyThousandFilesArriveIntact) {
  fs::path dir = project("many", "FROM scratch\nCOPY files /files\n");
  for (int i = 0; i < 20000; ++i) {
    write_text(dir / "files" / ("d" + std::to_string(i % 100)) / ("f" + std::to_string(i)),
               "content of file " + std::to_string(i * 7919) + "\n");
  }
  fs::path out = home() / "out";
  auto r =
      build({"--progress", "plain", "--output", "type=local,dest=" + out.string(), dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto sent = listing(dir / "files");
  EXPECT_EQ(sent.size(), 20000u);
  EXPECT_EQ(listing(out / "files"), sent);
}

TEST_F(BuildE2e, TarExportWritesATarball) {
  fs::path dir = project("tarball", "FROM scratch\nCOPY a.txt /a.txt\n");
  write_text(dir / "a.txt", "in the tarball\n");
  fs::path tar = home() / "out.tar";
  auto r =
      build({"--progress", "plain", "--output", "type=tar,dest=" + tar.string(), dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  sdk::ProcessOptions list;
  list.argv = {"tar", "-xOf", tar.string(), "a.txt"};
  auto extracted = sdk::run_process(list);
  ASSERT_TRUE(extracted);
  EXPECT_EQ(extracted->out, "in the tarball\n");
}

TEST_F(BuildE2e, ACachedRebuildReportsEveryStepCached) {
  fs::path dir = project(
      "cached", std::string("FROM ") + kBase + "\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\n");
  write_text(dir / "a.txt", "a\n");
  auto first = build({"--network", "none", "--progress", "plain", "-t", "cached:1", dir.string()});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto second = build({"--network", "none", "--progress", "plain", "-t", "cached:1", dir.string()});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  // Every Dockerfile step that runs ("#N [k/m] COPY|RUN ...", k > 1: the FROM
  // step only resolves the base image) is reported "#N CACHED".
  std::istringstream lines(second.err);
  std::map<std::string, bool> steps;  // "#N" -> cached
  for (std::string line; std::getline(lines, line);) {
    size_t space = line.find(' ');
    if (space == std::string::npos || line[0] != '#') continue;
    std::string id = line.substr(0, space);
    std::string rest = line.substr(space + 1);
    bool step = rest.rfind("[", 0) == 0 && rest.rfind("[internal]", 0) != 0 &&
                rest.rfind("[1/", 0) != 0 && rest.find("] ") != std::string::npos;
    if (step) steps.emplace(id, false);
    if (rest == "CACHED" && steps.count(id)) steps[id] = true;
  }
  EXPECT_GE(steps.size(), 2u) << second.err;
  for (const auto& [id, cached] : steps)
    EXPECT_TRUE(cached) << id << " not cached:\n" << second.err;
}

TEST_F(BuildE2e, AFailingRunExitsNonZeroAndShowsTheStepOutput) {
  fs::path dir =
      project("failing", std::string("FROM ") + kBase +
                             "\nRUN echo about-to-fail && echo on-stderr >&2 && false\n");
  auto r = build({"--network", "none", "--progress", "plain", dir.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("about-to-fail"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("------\n > [2/2] RUN echo about-to-fail"), std::string::npos) << r.err;
  auto last_line = r.err.substr(r.err.rfind('\n', r.err.size() - 2) + 1);
  EXPECT_EQ(last_line.rfind("envd: error: build failed on moby-worker://envd_buildkitd: ", 0), 0u)
      << last_line;
}

TEST_F(BuildE2e, CtrlCCancelsTheBuildAndExits130) {
  fs::path dir = project("interrupted",
                         std::string("FROM ") + kBase + "\nRUN echo 'sleep-'began && sleep 30\n");
  sdk::ProcessOptions options;
  options.argv = {envd_binary(), "build", "--network",  "none",
                  "--progress",  "plain", "--no-cache", dir.string()};
  options.env = base_env();
  for (const auto& [key, value] : env()) options.env[key] = value;
  int err_pipe[2];
  ASSERT_EQ(::pipe2(err_pipe, O_CLOEXEC), 0);
  auto pid = sdk::spawn_process(options, -1, -1, err_pipe[1]);
  ::close(err_pipe[1]);
  ASSERT_TRUE(pid) << pid.error().message();
  // Interrupt once the RUN step has printed, i.e. while it sleeps on the daemon.
  std::string err;
  char buf[4096];
  // The log line reads "sleep-began"; the step's name ("'sleep-'began") does not.
  while (err.find("sleep-began") == std::string::npos) {
    ssize_t n = ::read(err_pipe[0], buf, sizeof buf);
    if (n <= 0) break;
    err.append(buf, static_cast<size_t>(n));
  }
  ASSERT_NE(err.find("sleep-began"), std::string::npos) << err;
  auto interrupted_at = std::chrono::steady_clock::now();
  ::kill(*pid, SIGINT);
  for (ssize_t n; (n = ::read(err_pipe[0], buf, sizeof buf)) > 0;) {
    err.append(buf, static_cast<size_t>(n));
  }
  ::close(err_pipe[0]);
  auto code = sdk::wait_process(*pid);
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 130) << err;
  EXPECT_LT(std::chrono::steady_clock::now() - interrupted_at, std::chrono::seconds(15));
  EXPECT_NE(err.find("envd: error: build cancelled"), std::string::npos) << err;
}

TEST_F(BuildE2e, BuilderStatusReportsTheEngine) {
  auto r = envd({"builder", "status", "--format", "json"}, env());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto v = json::parse(r.out).as_object();
  EXPECT_EQ(v.at("reachable"), true);
  EXPECT_EQ(v.at("builder"), "moby-worker");
  auto workers = v.at("workers").as_array();
  ASSERT_FALSE(workers.empty());
  EXPECT_EQ(workers[0].at("id"), "moby");
  auto table = envd({"builder", "status"}, env());
  EXPECT_NE(table.out.find("Reachable:  yes"), std::string::npos) << table.out;
}

TEST_F(BuildE2e, AnUnreachableEngineFailsWithinTheDeadline) {
  fs::path dir = project("unreachable", "FROM scratch\n");
  auto start = std::chrono::steady_clock::now();
  auto r = envd({"build", "--connect-timeout", "2s", dir.string()},
                {{"DOCKER_HOST", "unix://" + (home() / "no-such.sock").string()}});
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(
      r.err.rfind("envd: error: cannot connect to buildkitd at moby-worker://envd_buildkitd: ", 0),
      0u)
      << r.err;
  EXPECT_LT(elapsed, std::chrono::seconds(10));

  // A socket that accepts but never answers: the deadline still holds.
  fs::path silent = home() / "silent.sock";
  int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", silent.c_str());
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 8), 0);
  start = std::chrono::steady_clock::now();
  auto hung = envd({"builder", "status", "--connect-timeout", "2s"},
                   {{"DOCKER_HOST", "unix://" + silent.string()}});
  elapsed = std::chrono::steady_clock::now() - start;
  ::close(listener);
  EXPECT_EQ(hung.exit_code, 1);
  EXPECT_NE(hung.err.find("cannot connect to buildkitd at moby-worker://envd_buildkitd"),
            std::string::npos)
      << hung.err;
  EXPECT_LT(elapsed, std::chrono::seconds(10));
}

}  // namespace
}  // namespace envd::test
