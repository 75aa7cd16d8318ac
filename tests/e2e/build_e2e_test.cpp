// `envd build` end to end through the moby-worker builder: a real Docker
// Engine (started by the `engine` test fixture, tests/services), its embedded
// BuildKit, real files on disk. RUN steps use --network none: the test engine
// runs without a bridge network.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli_harness.hpp"
#include "envd/docker_engine.hpp"
#include "services/loopback.hpp"
#include "services/password_registry.hpp"
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
    return run_docker(services_.docker_host, args);
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

// Each -t names the image once more, as docker build's does (the moby
// exporter takes them as one comma-separated name); a repeat is dropped.
TEST_F(BuildE2e, EveryTagNamesTheSameImage) {
  fs::path dir = project("tagged", std::string("FROM ") + kBase + "\nRUN echo tagged > /t.txt\n");
  auto r = build({"--network", "none", "--progress", "plain", "-t", "envd-e2e/tagged:1", "-t",
                  "envd-e2e/tagged:latest", "--tag", "envd-e2e/tagged:1", dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("Built envd-e2e/tagged:1 and envd-e2e/tagged:latest, exported to the "
                       "Docker Engine as envd-e2e/tagged:1 and envd-e2e/tagged:latest\n"),
            std::string::npos)
      << r.err;
  auto ids = docker({"image", "inspect", "--format", "{{.Id}} {{len .RepoTags}}",
                     "envd-e2e/tagged:1", "envd-e2e/tagged:latest"});
  ASSERT_EQ(ids.exit_code, 0) << ids.err;
  // One image ID, twice, with its two names.
  std::string first = ids.out.substr(0, ids.out.find('\n') + 1);
  EXPECT_EQ(ids.out, first + first);
  EXPECT_TRUE(first.size() > 3 && first.substr(first.size() - 3) == " 2\n") << ids.out;
  docker({"rmi", "envd-e2e/tagged:1", "envd-e2e/tagged:latest"});
}

// The test Engine runs without a bridge (dockerd --bridge=none), as many CI
// machines do: a RUN step on the default network fails, and says how to
// build there instead of only that the network is missing.
TEST_F(BuildE2e, ARunStepOnAnEngineWithoutABridgeSaysWhatToDo) {
  fs::path dir = project("no-bridge", std::string("FROM ") + kBase + "\nRUN echo hi\n");
  auto r = build({"--progress", "quiet", "--output",
                  "type=local,dest=" + (home() / "no-bridge-out").string(), dir.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("network bridge not found (the Engine has no bridge network: build with "
                       "--network none or --network host)\n"),
            std::string::npos)
      << r.err;
}

// `-f -` builds PATH with the Dockerfile piped in; `-` builds with no
// context, as docker build does. The Dockerfile's private directory (under
// TMPDIR) is gone when the build ends.
TEST_F(BuildE2e, ADockerfileOnStandardInputIsBuilt) {
  fs::path dir = home() / "piped";
  write_text(dir / "greeting.txt", "piped context\n");
  write_text(dir / "Dockerfile", "FROM scratch\nthis file is not the one used\n");
  fs::path tmp = home() / "tmp";
  fs::create_directories(tmp);
  auto with_tmp = env();
  with_tmp["TMPDIR"] = tmp.string();
  auto piped = envd(
      {"build", "--network", "none", "--progress", "plain", "-f", "-", "-t", "envd-e2e/piped:1",
       dir.string()},
      with_tmp,
      std::string("FROM ") + kBase + "\nCOPY greeting.txt /g.txt\nRUN echo from-stdin >> /g.txt\n");
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  auto ran = docker({"run", "--rm", "--network", "none", "envd-e2e/piped:1", "cat", "/g.txt"});
  EXPECT_EQ(ran.out, "piped context\nfrom-stdin\n") << ran.err;
  auto bare = envd({"build", "--network", "none", "-q", "-t", "envd-e2e/piped:2", "-"}, with_tmp,
                   std::string("FROM ") + kBase + "\nRUN ls / > /listing\n");
  ASSERT_EQ(bare.exit_code, 0) << bare.err;
  EXPECT_EQ(bare.out.rfind("sha256:", 0), 0U) << bare.out;
  auto listing =
      docker({"run", "--rm", "--network", "none", "envd-e2e/piped:2", "cat", "/listing"});
  EXPECT_EQ(listing.exit_code, 0) << listing.err;
  EXPECT_NE(listing.out.find("bin\n"), std::string::npos) << listing.out;
  EXPECT_TRUE(fs::is_empty(tmp)) << "the Dockerfile's directory is left in " << tmp;
  docker({"rmi", "envd-e2e/piped:1", "envd-e2e/piped:2"});
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

// A bad pattern in the ignore file is told before the build, naming the file
// and the line; a Dockerfile's own ignore file beside it is the one the
// frontend reads instead, so the context's bad one is not in the way then.
TEST_F(BuildE2e, AnIgnoreFileIsCheckedAsTheFrontendPicksIt) {
  fs::path dir = project("bad-ignore", std::string("FROM ") + kBase + "\nCOPY . /ctx\n");
  write_text(dir / "kept.txt", "kept\n");
  write_text(dir / "other.txt", "other\n");
  write_text(dir / ".dockerignore", "# comment\nlogs\n[a-]*.txt\n");
  fs::path out = home() / "bad-ignore-out";
  auto r =
      build({"--progress", "plain", "--output", "type=local,dest=" + out.string(), dir.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "envd: error: ignore file '" + (dir / ".dockerignore").string() +
                       "': line 3: pattern '[a-]*.txt' is invalid: ']' in a character class "
                       "must be escaped with '\\'\n");
  EXPECT_FALSE(fs::exists(out)) << "nothing was built";

  write_text(dir / "Dockerfile.dockerignore", "other.txt\n");
  r = build({"--progress", "plain", "--output", "type=local,dest=" + out.string(), dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_text(out / "ctx" / "kept.txt"), "kept\n");
  EXPECT_FALSE(fs::exists(out / "ctx" / "other.txt"));
  EXPECT_TRUE(fs::exists(out / "ctx" / ".dockerignore")) << "the context's file is not used";
}

// A named directory context on the Engine: its own Dockerfile frontend
// knows named contexts from Engine 23 (BuildKit v0.10) on. Before that it
// takes the name for an image on Docker Hub, and the failure says so.
TEST_F(BuildE2e, ANamedContextIsServedOrItsOldFrontendIsNamed) {
  fs::path dir = project("named", "FROM scratch\nCOPY --from=extra f.txt /f.txt\n");
  fs::path extra = home() / "extra";
  write_text(extra / "f.txt", "extra\n");
  auto version = docker({"version", "--format", "{{.Server.Version}}"});
  ASSERT_EQ(version.exit_code, 0) << version.err;
  const int major = std::stoi(version.out);
  fs::path out = home() / "named-out";
  auto r = build({"--progress", "plain", "--build-context", "extra=" + extra.string(), "--output",
                  "type=local,dest=" + out.string(), dir.string()});
  if (major >= 23) {
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_text(out / "f.txt"), "extra\n");
    return;
  }
  EXPECT_EQ(r.exit_code, 1) << "Engine " << version.out;
  EXPECT_NE(r.err.find("(the builder's Dockerfile frontend took --build-context 'extra' for an "
                       "image: it predates named contexts, which need BuildKit v0.10 or later"),
            std::string::npos)
      << r.err;
}

// COPY's wildcard sources (sent to the session as followpaths) copy what
// they match on the Engine's BuildKit, as docker build copies it.
TEST_F(BuildE2e, WildcardCopySourcesCopyWhatTheyMatch) {
  fs::path dir = project("wildcards", "FROM scratch\nCOPY *.txt /o/\nCOPY src/*.go /o/\n");
  write_text(dir / "a.txt", "a\n");
  write_text(dir / "b.txt", "b\n");
  write_text(dir / "c.md", "c\n");
  write_text(dir / "src" / "d.go", "d\n");
  write_text(dir / "src" / "e.txt", "e\n");
  fs::path out = home() / "wildcards-out";
  auto r =
      build({"--progress", "plain", "--output", "type=local,dest=" + out.string(), dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> copied;
  for (const auto& entry : fs::directory_iterator(out / "o")) {
    copied.insert(entry.path().filename().string());
  }
  EXPECT_EQ(copied, (std::set<std::string>{"a.txt", "b.txt", "d.go"}));
  EXPECT_EQ(read_text(out / "o" / "d.go"), "d\n");

  // A class is Docker's: '!' is one of its characters (only '^' negates),
  // and a class Go's filepath.Match refuses fails the build, said without
  // grpc-go's "rpc error: code = ..." in front.
  write_text(dir / "!.txt", "bang\n");
  write_text(dir / "Dockerfile", "FROM scratch\nCOPY [!a]*.txt /o/\nCOPY [^a].txt /n/\n");
  fs::path classes = home() / "classes-out";
  r = build(
      {"--progress", "plain", "--output", "type=local,dest=" + classes.string(), dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> matched;
  for (const auto& entry : fs::directory_iterator(classes / "o")) {
    matched.insert(entry.path().filename().string());
  }
  EXPECT_EQ(matched, (std::set<std::string>{"a.txt", "!.txt"}));
  std::set<std::string> negated;
  for (const auto& entry : fs::directory_iterator(classes / "n")) {
    negated.insert(entry.path().filename().string());
  }
  EXPECT_EQ(negated, (std::set<std::string>{"b.txt", "!.txt"}));
  write_text(dir / "Dockerfile", "FROM scratch\nCOPY [a-]*.txt /o/\n");
  r = build({"--progress", "quiet", "--output", "type=local,dest=" + (home() / "x").string(),
             dir.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("pattern '[a-]*.txt' is invalid: ']' in a character class must be "
                       "escaped with '\\'\n"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("rpc error"), std::string::npos) << r.err;
}

TEST_F(BuildE2e, BuildArgsAndTargetReachTheFrontend) {
  fs::path dir = project("args", std::string("FROM ") + kBase +
                                     " AS first\nARG GREETING=unset\n"
                                     "ARG FROM_ENV=unset\nARG NOT_SET=default\n"
                                     "RUN echo \"$GREETING\" > /greeting.txt\n"
                                     "RUN echo \"$FROM_ENV $NOT_SET\" > /env.txt\n"
                                     "FROM first AS second\nRUN echo second > /second.txt\n");
  fs::path out = home() / "out";
  // --build-arg takes one value each time: PATH after it stays the context.
  // A bare KEY takes envd's environment's value, and is left out when unset
  // (the Dockerfile's default stays), as docker build does.
  auto vars = env();
  vars["FROM_ENV"] = "from the environment";
  vars["NOT_SET"] = std::nullopt;
  auto r =
      envd({"build", "--network", "none", "--progress", "plain", "--target", "first", "--output",
            "type=local,dest=" + out.string(), "--build-arg", "GREETING=hello args", "--build-arg",
            "FROM_ENV", "--build-arg", "NOT_SET", dir.string()},
           vars);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_text(out / "greeting.txt"), "hello args\n");
  EXPECT_EQ(read_text(out / "env.txt"), "from the environment default\n");
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

// BuildKit keeps the last transfer of a context under the session's shared
// key and asks only for the files whose size, time or mode changed. With one
// key for every directory (envd sent none), the Engine built a project from
// another directory's files when they matched in size and time. Each
// directory now has its own key: two directories that differ only in
// content are each sent in full and built from their own files, and a
// rebuild of the first after one file changed (with the other built in
// between) sends that file and the listing, not the rest.
TEST_F(BuildE2e, AContextTransferIsNeverReusedForAnotherDirectory) {
  const std::string dockerfile = "FROM scratch\nCOPY . /ctx\n";
  const auto when = fs::file_time_type::clock::now() - std::chrono::hours(1);
  auto make = [&](const std::string& name, char fill) {
    fs::path dir = project(name, dockerfile);
    for (int i = 0; i < 64; ++i) {
      fs::path file = dir / ("f" + std::to_string(i));
      write_text(file, std::string(16384, fill));
      fs::last_write_time(file, when);
    }
    fs::last_write_time(dir / "Dockerfile", when);
    return dir;
  };
  fs::path a = make("reuse-a", 'a');
  fs::path b = make("reuse-b", 'b');
  // Builds `dir` into export `out`; returns the bytes the daemon reports
  // for the context's transfer ("#N [internal] load build context", then
  // "#N transferring context: 1.05MB"; the export's own transfer is another
  // vertex).
  auto export_of = [&](const fs::path& dir, const std::string& out) {
    auto r = build({"--progress", "plain", "--output", "type=local,dest=" + (home() / out).string(),
                    dir.string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string vertex;
    double bytes = -1;
    std::istringstream in(r.err);
    for (std::string line; std::getline(in, line);) {
      if (line.find(" [internal] load build context") != std::string::npos) {
        vertex = line.substr(0, line.find(' ') + 1);
      } else if (!vertex.empty() && line.rfind(vertex + "transferring context: ", 0) == 0) {
        std::istringstream figure(line.substr(vertex.size() + 22));
        std::string unit;
        figure >> bytes >> unit;
        if (unit.rfind("kB", 0) == 0) bytes *= 1e3;
        if (unit.rfind("MB", 0) == 0) bytes *= 1e6;
      }
    }
    EXPECT_GE(bytes, 0) << "no transfer of the build context in: " << r.err;
    return bytes;
  };
  // Whether file `name` of export `out` holds 16 KiB of `fill`.
  auto holds = [&](const std::string& out, const std::string& name, char fill) {
    return read_text(home() / out / "ctx" / name) == std::string(16384, fill);
  };
  EXPECT_GT(export_of(a, "out-a"), 1e6);
  EXPECT_TRUE(holds("out-a", "f7", 'a'));
  EXPECT_GT(export_of(b, "out-b"), 1e6) << "another directory's transfer was reused";
  EXPECT_TRUE(holds("out-b", "f7", 'b')) << "another directory's transfer was reused";

  write_text(a / "f7", std::string(16384, 'c'));
  EXPECT_LT(export_of(a, "out-a2"), 100e3) << "one changed file of 16 KiB, the rest reused";
  EXPECT_TRUE(holds("out-a2", "f7", 'c'));
  EXPECT_TRUE(holds("out-a2", "f8", 'a'));
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

TEST_F(BuildE2e, TimingsCountFromProcessStartAndMarkTheFirstSolveByte) {
  fs::path dir = project("timings", "FROM scratch\nCOPY a.txt /a.txt\n");
  write_text(dir / "a.txt", "a\n");
  auto vars = env();
  vars["ENVD_TIMINGS"] = "1";
  auto r = envd({"build", "--progress", "quiet", "--output",
                 "type=local,dest=" + (home() / "timings-out").string(), dir.string()},
                vars);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // "envd: timings: since process start (<method>, +-<resolution>): main
  // 3.5 ms, build ..., first Solve byte ..., end ..." in the order they happened.
  const std::string prefix = "envd: timings: since process start (";
  auto at = r.err.find(prefix);
  ASSERT_NE(at, std::string::npos) << r.err;
  std::string line = r.err.substr(at, r.err.find('\n', at) - at);
  std::vector<std::pair<std::string, double>> steps;
  std::istringstream items(line.substr(line.find("): ") + 3));
  for (std::string item; std::getline(items, item, ',');) {
    if (item.front() == ' ') item.erase(0, 1);
    auto ms = item.rfind(" ms");
    auto space = item.rfind(' ', ms - 1);
    ASSERT_TRUE(ms != std::string::npos && space != std::string::npos) << line;
    steps.emplace_back(item.substr(0, space), std::stod(item.substr(space + 1, ms - space - 1)));
  }
  std::vector<std::string> names;
  names.reserve(steps.size());
  for (const auto& [name, ms] : steps) names.push_back(name);
  // "session connected": the Engine's BuildKit called the session (which
  // read the context and wrote the local output) on a POST /session
  // connection of its own, not through Control.Session ("session started").
  for (const char* expected :
       {"main", "build", "connected", "session connected", "first Solve byte", "solved", "end"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end())
        << expected << ": " << line;
  }
  EXPECT_EQ(std::find(names.begin(), names.end(), "session started"), names.end()) << line;
  ASSERT_FALSE(steps.empty());
  // main() comes after exec and the loader: later than the process's start.
  EXPECT_EQ(steps.front().first, "main") << line;
  EXPECT_GT(steps.front().second, 0.0) << line;
  for (size_t i = 1; i < steps.size(); ++i) EXPECT_GE(steps[i].second, steps[i - 1].second);
  EXPECT_EQ(steps.back().first, "end") << line;
  // moby-worker on the Engine's unix socket hands over the Engine's own
  // connections (ABI 1.5's self-contained transport): nothing of the driver
  // runs after the build, and the process ends without tearing them down.
  EXPECT_NE(r.err.find("(the connection left to the process's end)"), std::string::npos) << r.err;
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
  auto running = envd_background(
      {"build", "--network", "none", "--progress", "plain", "--no-cache", dir.string()}, env());
  ASSERT_TRUE(running->start_error().empty()) << running->start_error();
  // Interrupt once the RUN step has printed, i.e. while it sleeps on the daemon.
  // The log line reads "sleep-began"; the step's name ("'sleep-'began") does not.
  ASSERT_TRUE(running->wait_for("sleep-began")) << running->err();
  auto interrupted_at = std::chrono::steady_clock::now();
  ::kill(running->pid(), SIGINT);
  auto status = running->wait_exit(std::chrono::seconds(30));
  const std::string& err = running->err();
  ASSERT_TRUE(status) << "envd did not exit after Ctrl-C:\n" << err;
  ASSERT_TRUE(WIFEXITED(*status)) << err;
  EXPECT_EQ(WEXITSTATUS(*status), 130) << err;
  EXPECT_LT(std::chrono::steady_clock::now() - interrupted_at, std::chrono::seconds(15));
  EXPECT_NE(err.find("envd: error: build cancelled"), std::string::npos) << err;
}

// The last line of `text` (which ends with a newline).
std::string last_line(const std::string& text) {
  if (text.size() < 2) return text;
  return text.substr(text.rfind('\n', text.size() - 2) + 1);
}

// Runs curl against the test registry (plain HTTP on loopback).
sdk::ProcessResult curl(const std::vector<std::string>& args) {
  sdk::ProcessOptions options;
  options.argv = {"curl", "-sS", "--max-time", "20"};
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  options.timeout = std::chrono::seconds(30);
  auto r = sdk::run_process(options);
  EXPECT_TRUE(r) << (r ? "" : r.error().message());
  return r ? *r : sdk::ProcessResult{};
}

TEST_F(BuildE2e, ImageOutputWithPushLandsInTheRegistry) {
  fs::path dir = project("pushed", std::string("FROM ") + kBase + "\nCOPY a.txt /a.txt\n");
  write_text(dir / "a.txt", "pushed by envd\n");
  // Credentials for the registry are looked up and sent; this registry needs
  // none and ignores them (the header's encoding is unit-tested).
  fs::path docker_config = home() / "docker-config";
  write_text(docker_config / "config.json",
             R"({"auths": {")" + services_.registry + R"(": {"auth": "ZW52ZDpzZWNyZXQ="}}})");
  std::string repo = services_.registry + "/envd-e2e/pushed";
  auto vars = env();
  vars["DOCKER_CONFIG"] = docker_config.string();
  fs::path metadata = home() / "metadata.json";
  fs::path iidfile = home() / "iid";
  auto r = envd({"build", "--progress", "plain", "--metadata-file", metadata.string(), "--iidfile",
                 iidfile.string(), "--output",
                 "type=image,\"name=" + repo + ":v1," + repo + ":also\",push=true", dir.string()},
                vars);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Each name with the manifest digest the registry has for it, as the
  // Engine reported it (what `docker push` prints).
  const std::string pushed_v1 = "Pushed " + repo + ":v1 (sha256:";
  auto at = r.err.find(pushed_v1);
  ASSERT_NE(at, std::string::npos) << r.err;
  const std::string digest = r.err.substr(at + pushed_v1.size() - 7, 7 + 64);
  EXPECT_EQ(r.err.substr(at + pushed_v1.size() + 64, 2), ")\n") << r.err;
  EXPECT_NE(r.err.find("Pushed " + repo + ":also (" + digest + ")\n"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("The push refers to repository [" + repo + "]"), std::string::npos) << r.err;
  // Both names, said as -t's are ("a and b"), not as the attribute's text.
  EXPECT_NE(r.err.find("Built " + repo + ":v1 and " + repo +
                       ":also, exported to the Docker Engine "
                       "as " +
                       repo + ":v1 and " + repo + ":also\n"),
            std::string::npos)
      << r.err;
  auto head = curl({"-fI", "-H", "Accept: application/vnd.docker.distribution.manifest.v2+json",
                    "http://" + services_.registry + "/v2/envd-e2e/pushed/manifests/v1"});
  EXPECT_NE(head.out.find("Docker-Content-Digest: " + digest), std::string::npos) << head.out;

  auto tags = curl({"-f", "http://" + services_.registry + "/v2/envd-e2e/pushed/tags/list"});
  ASSERT_EQ(tags.exit_code, 0) << tags.err;
  auto listed = json::parse(tags.out).as_object().at("tags").as_array();
  std::set<std::string> names;
  for (const auto& tag : listed) names.insert(std::string(tag.as_string()));
  EXPECT_TRUE(names.count("v1")) << tags.out;
  EXPECT_TRUE(names.count("also")) << tags.out;
  auto manifest = curl({"-o", "/dev/null", "-w", "%{http_code}", "-H",
                        "Accept: application/vnd.docker.distribution.manifest.v2+json",
                        "http://" + services_.registry + "/v2/envd-e2e/pushed/manifests/v1"});
  EXPECT_EQ(manifest.out, "200");
  // The image is in the engine's store under the name, too.
  EXPECT_EQ(docker({"image", "inspect", repo + ":v1"}).exit_code, 0);
  // --metadata-file names what the registry holds (as buildx's docker driver
  // writes it): the manifest's digest, with the image ID as the config's.
  auto image = docker({"image", "inspect", "--format", "{{.Id}}", repo + ":v1"});
  std::string image_id = image.out.substr(0, image.out.find('\n'));
  ASSERT_EQ(image_id.rfind("sha256:", 0), 0U) << image.out;
  auto meta = json::parse(read_text(metadata)).as_object();
  EXPECT_EQ(meta.at("containerimage.digest").as_string(), digest) << read_text(metadata);
  EXPECT_EQ(meta.at("containerimage.config.digest").as_string(), image_id) << read_text(metadata);
  EXPECT_EQ(meta.at("image.name").as_string(), repo + ":v1," + repo + ":also");
  EXPECT_EQ(read_text(iidfile), image_id);
}

TEST_F(BuildE2e, PushSendsTheDockerConfigCredentials) {
  PasswordRegistry registry(home() / "password-registry");
  ASSERT_TRUE(registry.wait_until_up()) << "the password-protected registry did not start";
  fs::path dir = project("private", std::string("FROM ") + kBase + "\nCOPY a.txt /a.txt\n");
  write_text(dir / "a.txt", "private\n");
  std::string ref = registry.address() + "/envd-e2e/private:v1";
  std::vector<std::string> args = {"--progress", "plain", "--output",
                                   "type=image,name=" + ref + ",push=true", dir.string()};

  // Without credentials the registry refuses the push.
  fs::path no_creds = home() / "no-creds";
  write_text(no_creds / "config.json", "{}");
  auto vars = env();
  vars["DOCKER_CONFIG"] = no_creds.string();
  auto refused = envd({"build", args[0], args[1], args[2], args[3], args[4]}, vars);
  EXPECT_EQ(refused.exit_code, 1) << refused.err;
  EXPECT_EQ(last_line(refused.err)
                .rfind("envd: error: cannot push " + ref + " to " + registry.address() + ": ", 0),
            0u)
      << refused.err;

  // With the auths entry ("envd:secret") it is accepted.
  fs::path creds = home() / "creds";
  write_text(creds / "config.json", R"({"auths": {")" + registry.address() + R"(": {"auth": ")" +
                                        PasswordRegistry::kAuth + R"("}}})");
  vars["DOCKER_CONFIG"] = creds.string();
  auto pushed = envd({"build", args[0], args[1], args[2], args[3], args[4]}, vars);
  ASSERT_EQ(pushed.exit_code, 0) << pushed.err;
  EXPECT_NE(pushed.err.find("Pushed " + ref + " (sha256:"), std::string::npos) << pushed.err;
  auto tags = curl({"-f", "-u", "envd:secret",
                    "http://" + registry.address() + "/v2/envd-e2e/private/tags/list"});
  ASSERT_EQ(tags.exit_code, 0) << tags.err;
  EXPECT_NE(tags.out.find("\"v1\""), std::string::npos) << tags.out;
}

TEST_F(BuildE2e, PushToAnUnreachableRegistryFailsNamingIt) {
  fs::path dir = project("nowhere", std::string("FROM ") + kBase + "\n");
  std::string registry = "127.0.0.1:" + std::to_string(closed_port());
  std::string ref = registry + "/envd-e2e/nowhere:v1";
  auto start = std::chrono::steady_clock::now();
  auto r = build(
      {"--progress", "quiet", "--output", "type=image,name=" + ref + ",push=true", dir.string()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  std::string line = last_line(r.err);
  EXPECT_EQ(line.rfind("envd: error: cannot push " + ref + " to " + registry + ": ", 0), 0u)
      << r.err;
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line: " << line;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(120));
}

// A BuildKit at a TCP address, for builder types other than moby-worker: each
// connection to 127.0.0.1:<port> is hijacked to the engine's POST /grpc and
// the bytes are pumped both ways.
class GrpcForwarder {
 public:
  explicit GrpcForwarder(const std::string& docker_host) {
    auto endpoint = sdk::parse_docker_host(docker_host);
    EXPECT_TRUE(endpoint);
    endpoint_ = *endpoint;
    listener_ = listen_loopback(&port_);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  GrpcForwarder(const GrpcForwarder&) = delete;
  GrpcForwarder& operator=(const GrpcForwarder&) = delete;
  ~GrpcForwarder() {
    stop_ = true;
    ::shutdown(listener_, SHUT_RDWR);  // wakes accept()
    acceptor_.join();
    ::close(listener_);
    std::lock_guard lock(mutex_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    for (auto& pump : pumps_) pump.join();
    for (int fd : fds_) ::close(fd);
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  static void pump(int from, int to) {
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(from, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      for (ssize_t off = 0; off < n;) {
        ssize_t w = ::send(to, buf + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        off += w;
      }
    }
    ::shutdown(to, SHUT_WR);
  }

  void accept_loop() {
    for (;;) {
      int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) {
        if (errno == EINTR && !stop_) continue;
        return;
      }
      sdk::DockerEngine engine(endpoint_);
      auto upstream = engine.hijack("POST", "/grpc", "", {}, "h2c",
                                    sdk::deadline_after(std::chrono::seconds(10)));
      if (!upstream) {
        ::close(client);
        continue;
      }
      std::lock_guard lock(mutex_);
      fds_.push_back(client);
      fds_.push_back(*upstream);
      pumps_.emplace_back(pump, client, *upstream);
      pumps_.emplace_back(pump, *upstream, client);
    }
  }

  sdk::DockerEndpoint endpoint_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::mutex mutex_;
  std::vector<int> fds_;
  std::vector<std::thread> pumps_;
};

TEST_F(BuildE2e, ATcpContextOnTheEnginesBuildkitStoresTheImageWithoutOutput) {
  // Its ListWorkers names the worker "moby": the image goes to that engine's
  // store through the `moby` exporter, whatever the builder type.
  GrpcForwarder forwarder(services_.docker_host);
  envd_ok({"context", "create", "--name", "forwarded", "--builder", "tcp", "--builder-address",
           forwarder.address(), "--use"});
  fs::path dir = project("viatcp", std::string("FROM ") + kBase + "\nCOPY a.txt /a.txt\n");
  write_text(dir / "a.txt", "through tcp\n");
  auto vars = env();
  vars["ENVD_TIMINGS"] = "1";
  auto r = envd({"build", "--progress", "plain", "-t", "envd-e2e/viatcp:v1", dir.string()}, vars);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The tcp driver's connection is self-contained (ABI 1.5): the process
  // ends without tearing it down, after everything below was written.
  EXPECT_NE(r.err.find("(the connection left to the process's end)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Built envd-e2e/viatcp:v1, exported to the Docker Engine as "
                       "envd-e2e/viatcp:v1"),
            std::string::npos)
      << r.err;
  auto run = docker({"run", "--rm", "--network", "none", "envd-e2e/viatcp:v1", "cat", "/a.txt"});
  EXPECT_EQ(run.out, "through tcp\n") << run.err;
}

// Without --output the exporter follows the daemon's workers. What the last
// build's probe said is remembered (<cache dir>/envd/daemons/), so the next
// build's Solve need not wait for the probe; the probe still runs beside it,
// and a remembered answer it refutes (made stale by hand here: no moby
// worker, so the `docker` exporter and a load into the Engine) is corrected
// within the build, which starts again with the right exporter.
TEST_F(BuildE2e, ARememberedDaemonAnswerIsUsedAndAStaleOneIsCorrected) {
  fs::path dir = project("remembered", std::string("FROM ") + kBase + "\nCOPY a.txt /a.txt\n");
  write_text(dir / "a.txt", "remembered\n");
  const std::vector<std::string> args = {"--progress", "plain", "-t", "envd-e2e/remembered:v1",
                                         dir.string()};
  auto first = build(args);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto files = remembered_daemon_answers();
  ASSERT_EQ(files.size(), 1u);
  const std::string remembered = read_text(files[0]);
  auto answer = json::parse(remembered).as_object();
  EXPECT_EQ(answer["endpoint"], "moby-worker://envd_buildkitd") << remembered;
  EXPECT_EQ(answer["workers"].as_array().at(0).as_object().at("id"), "moby") << remembered;

  // Used: the probe runs beside the Solve (only then is its answer timed).
  auto vars = env();
  vars["ENVD_TIMINGS"] = "1";
  std::vector<std::string> timed = {"build"};
  timed.insert(timed.end(), args.begin(), args.end());
  auto second = envd(timed, vars);
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.err.find(", probe answered "), std::string::npos) << second.err;
  EXPECT_EQ(second.err.find("starting the build again"), std::string::npos) << second.err;

  write_text(files[0], R"({"format": 1, "endpoint": "moby-worker://envd_buildkitd",
                           "workers": [{"id": "stale", "platforms": ["linux/amd64"]}]})");
  write_text(dir / "a.txt", "corrected\n");
  auto third = build(args);
  ASSERT_EQ(third.exit_code, 0) << third.err;
  EXPECT_NE(third.err.find("the builder at moby-worker://envd_buildkitd is not the daemon of the "
                           "last build; starting the build again"),
            std::string::npos)
      << third.err;
  EXPECT_EQ(last_line(third.err),
            "Built envd-e2e/remembered:v1, exported to the Docker Engine as "
            "envd-e2e/remembered:v1\n");
  EXPECT_EQ(read_text(files[0]), remembered) << "the probe's answer replaced the stale one";
  auto run =
      docker({"run", "--rm", "--network", "none", "envd-e2e/remembered:v1", "cat", "/a.txt"});
  EXPECT_EQ(run.out, "corrected\n") << run.err;
}

TEST_F(BuildE2e, OtherBuildersPassImageAndDockerOutputsToTheDaemonUnchanged) {
  // Outside moby-worker, type=image stays `image` and `docker` stays
  // `docker`; BuildKit v0.8 inside dockerd has neither and says so itself.
  GrpcForwarder forwarder(services_.docker_host);
  envd_ok({"context", "create", "--name", "forwarded", "--builder", "tcp", "--builder-address",
           forwarder.address(), "--use"});
  fs::path dir = project("passthrough", std::string("FROM ") + kBase + "\n");
  for (std::string type : {"image", "docker"}) {
    std::string output = type == "image" ? "type=image,name=" + services_.registry + "/x:v1"
                                         : "type=docker,dest=" + (home() / "x.tar").string();
    auto r = build({"--progress", "plain", "--output", output, dir.string()});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    std::string line = last_line(r.err);
    EXPECT_EQ(line.rfind("envd: error: build failed on tcp://" + forwarder.address() + ": ", 0), 0u)
        << r.err;
    EXPECT_NE(line.find("exporter \"" + type + "\" could not be found"), std::string::npos)
        << r.err;
    EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line: " << line;
  }
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
  // The driver's look at the Engine took the deadline: that is the error.
  EXPECT_NE(hung.err.find("cannot look at the builder moby-worker://envd_buildkitd: "),
            std::string::npos)
      << hung.err;
  EXPECT_NE(hung.err.find("(connect timeout: 2000 ms)"), std::string::npos) << hung.err;
  EXPECT_LT(elapsed, std::chrono::seconds(10));
}

}  // namespace
}  // namespace envd::test
