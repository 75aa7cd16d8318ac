// The user guide's remote walkthrough against BuildKit's own daemon: the
// standalone buildkitd v0.11.6 of ../shared/tools/buildkit, started by the
// fixture `buildkitd` (tests/buildkit/start.sh) on loopback TCP (plaintext,
// server TLS, mutual TLS) and on a unix socket, with its `oci` worker. Nothing
// stands in for the daemon here: TLS, the session's Auth service, the image
// exporter's push and the `docker` exporter are buildkitd's own.
//
// Where the binaries are absent every test is reported SKIPPED with the
// reason (ENVD_TEST_BUILDKIT_DIR says where to look), never passed.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <ios>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "buildkit/real_buildkit_test.hpp"
#include "buildkit/standalone_buildkitd.hpp"
#include "cli_harness.hpp"
#include "pty_session.hpp"
#include "services/password_registry.hpp"
#include "services/registry_probe.hpp"
#include "services/test_services.hpp"

namespace envd::test {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The last line of `text` (which ends with a newline).
std::string last_line(const std::string& text) {
  if (text.size() < 2) return text;
  return text.substr(text.rfind('\n', text.size() - 2) + 1);
}

// Runs a command that must succeed; returns its stdout.
std::string must(const std::vector<std::string>& argv) {
  sdk::ProcessOptions options;
  options.argv = argv;
  options.timeout = std::chrono::seconds(60);
  auto r = sdk::run_process(options);
  EXPECT_TRUE(r && r->succeeded()) << sdk::format_command(argv) << "\n"
                                   << (r ? r->err : r.error().message());
  return r ? r->out : std::string();
}

class RealBuildkitTest : public RealBuildkitTestBase {
 protected:
  void SetUp() override {
    RealBuildkitTestBase::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    tag_ = std::to_string(::getpid());
  }

  // envd for a remote builder: the Engine at DOCKER_HOST only where the
  // `docker` exporter's result is loaded into it.
  std::map<std::string, std::optional<std::string>> env(bool with_engine = false) const {
    return {{"DOCKER_HOST", with_engine ? services_.docker_host
                                        : "unix://" + (home() / "no-docker.sock").string()},
            {"DOCKER_CONFIG", (home() / ".docker").string()}};
  }

  sdk::ProcessResult run(const std::vector<std::string>& args, bool with_engine = false) {
    return envd(args, env(with_engine));
  }

  void use_context(const std::string& name, std::vector<std::string> args) {
    std::vector<std::string> argv = {"context", "create", "--name", name};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.emplace_back("--use");
    auto r = run(argv);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  std::vector<std::string> tls_flags(const fs::path& ca, const fs::path& cert = {},
                                     const fs::path& key = {}) const {
    std::vector<std::string> flags = {"--builder-tls-ca", ca.string()};
    if (!cert.empty()) {
      flags.insert(flags.end(),
                   {"--builder-tls-cert", cert.string(), "--builder-tls-key", key.string()});
    }
    return flags;
  }

  // A project with a RUN step (runc in the daemon's worker) and a COPY (the
  // session's FileSync), on the base image the fixture pushed.
  fs::path project(const std::string& name) {
    fs::path dir = home() / name;
    write_text(dir / "Dockerfile", "FROM " + bk_.base +
                                       "\nCOPY greeting.txt /greeting.txt\n"
                                       "RUN echo built-by-buildkitd > /built.txt\n");
    write_text(dir / "greeting.txt", "hello from " + name + "\n");
    return dir;
  }

  void build_local(const std::string& name) {
    fs::path out = home() / (name + "-out");
    auto r = run({"build", "--progress", "plain", "--output", "type=local,dest=" + out.string(),
                  project(name).string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_text(out / "greeting.txt"), "hello from " + name + "\n");
    EXPECT_EQ(read_text(out / "built.txt"), "built-by-buildkitd\n");
  }

  // A build that fails before it starts: exit 1 within `limit`, and stderr
  // is one line naming `endpoint` and containing `reason`.
  void expect_connect_failure(const std::string& endpoint, const std::string& reason,
                              std::chrono::seconds limit = std::chrono::seconds(4)) {
    auto start = Clock::now();
    auto r = run({"build", "--connect-timeout", "5s", "--output",
                  "type=local,dest=" + (home() / "never").string(), project("refused").string()});
    EXPECT_LT(Clock::now() - start, limit);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(r.err.rfind("envd: error: cannot connect to buildkitd at " + endpoint + ": ", 0), 0u)
        << r.err;
    EXPECT_TRUE(contains(r.err, reason)) << "expected '" << reason << "' in: " << r.err;
    EXPECT_EQ(r.err, last_line(r.err)) << "one line, nothing else";
    EXPECT_FALSE(fs::exists(home() / "never"));
  }

  json::object status_json() {
    auto r = run({"builder", "status", "--format", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    boost::system::error_code ec;
    auto v = json::parse(r.out, ec);
    EXPECT_FALSE(ec) << r.out;
    return !ec && v.is_object() ? v.as_object() : json::object{};
  }

  std::string tag_;
};

// ---- the walkthrough, plaintext tcp ---------------------------------------------

TEST_F(RealBuildkitTest, PushGoesStraightFromBuildkitdToTheRegistry) {
  use_context("remote-context", {"--builder", "tcp", "--builder-address", bk_.tcp});
  const std::string repository = "envd-real/walkthrough";
  const std::string name = services_.registry + "/" + repository + ":" + tag_;
  auto r = run({"build", "--progress", "plain", "--output",
                "type=image,name=" + name + ",push=true", project("walkthrough").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // No Engine was reachable (DOCKER_HOST leads nowhere): buildkitd pushed.
  std::string line = last_line(r.err);
  ASSERT_EQ(line.rfind("Pushed " + name + " (sha256:", 0), 0u) << r.err;
  std::string printed = line.substr(line.find("(") + 1, line.find(")") - line.find("(") - 1);
  EXPECT_EQ(registry_digest(services_.registry, repository, tag_), printed);
}

TEST_F(RealBuildkitTest, LocalAndTarOutputsOverTcp) {
  use_context("remote-context", {"--builder", "tcp", "--builder-address", "tcp://" + bk_.tcp});
  build_local("local");
  fs::path tar = home() / "out.tar";
  auto r = run({"build", "--output", "type=tar,dest=" + tar.string(), project("tarred").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(must({"tar", "-xOf", tar.string(), "built.txt", "greeting.txt"}),
            "built-by-buildkitd\nhello from tarred\n");

  // tcp's connection is self-contained (ABI 1.5): the process ends without
  // tearing it down, after the whole tarball went out on stdout.
  auto vars = env(false);
  vars["ENVD_TIMINGS"] = "1";
  auto piped = envd({"build", "--output", "type=tar,dest=-", project("piped").string()}, vars);
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_NE(piped.err.find("(the connection left to the process's end)"), std::string::npos)
      << piped.err;
  fs::path piped_tar = home() / "piped.tar";
  write_text(piped_tar, piped.out);
  EXPECT_EQ(must({"tar", "-xOf", piped_tar.string(), "built.txt", "greeting.txt"}),
            "built-by-buildkitd\nhello from piped\n");
  // dest=/dev/stdout is the same stream (inside envd descriptor 1 is
  // stderr, util/data_out.hpp: the path is not opened).
  auto named = envd({"build", "--output", "type=tar,dest=/dev/stdout", project("piped").string()},
                    env(false));
  ASSERT_EQ(named.exit_code, 0) << named.err;
  write_text(piped_tar, named.out);
  EXPECT_EQ(must({"tar", "-xOf", piped_tar.string(), "built.txt", "greeting.txt"}),
            "built-by-buildkitd\nhello from piped\n");
  EXPECT_EQ(named.err.find("ustar"), std::string::npos) << "no archive on stderr";

  // An export that names its image (no -t): the summary says that name, the
  // one the tarball carries, not the directory's default.
  fs::path docker_tar = home() / "docker.tar";
  r = run({"build", "--output", "type=docker,name=envd-real/named:1,dest=" + docker_tar.string(),
           project("named").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_line(r.err),
            "Built envd-real/named:1, exported to file " + docker_tar.string() + "\n")
      << r.err;
  EXPECT_NE(must({"tar", "-xOf", docker_tar.string(), "manifest.json"}).find("envd-real/named:1"),
            std::string::npos);

  // -t names the image in a tarball too, as buildx does: `docker load`
  // makes the image the summary names, not an untagged one.
  r = run({"build", "-t", "envd-real/tagged:2", "--output",
           "type=docker,dest=" + docker_tar.string(), project("tagged").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(must({"tar", "-xOf", docker_tar.string(), "manifest.json"})
                .find("\"RepoTags\":[\"envd-real/tagged:2\"]"),
            std::string::npos);

  // An image kept on the builder (no push) is said to be only there.
  r = run({"build", "-t", "envd-real/kept:1", "--output", "type=image", project("kept").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_line(r.err),
            "Built envd-real/kept:1, exported to the builder's own image store (not pushed; "
            "push=true pushes it)\n");
}

// Without --output, a daemon without a moby worker exports with `docker` and
// envd loads the tarball into the Engine at DOCKER_HOST, under every -t.
TEST_F(RealBuildkitTest, TheDefaultExportIsLoadedIntoTheEngine) {
  use_context("remote-context", {"--builder", "tcp", "--builder-address", bk_.tcp});
  const std::string image = "envd-real/loaded:" + tag_;
  const std::string also = "envd-real/loaded:also-" + tag_;
  auto r =
      run({"build", "--progress", "plain", "-t", image, "-t", also, project("loaded").string()},
          /*with_engine=*/true);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_line(r.err), "Loaded " + image + " and " + also + " into the Docker Engine at " +
                                  services_.docker_host + "\n");
  auto ran = run_docker(services_.docker_host, {"run", "--rm", "--network", "none", image, "cat",
                                                "/built.txt", "/greeting.txt"});
  EXPECT_EQ(ran.exit_code, 0) << ran.err;
  EXPECT_EQ(ran.out, "built-by-buildkitd\nhello from loaded\n");
  auto ids =
      run_docker(services_.docker_host, {"image", "inspect", "--format", "{{.Id}}", image, also});
  ASSERT_EQ(ids.exit_code, 0) << ids.err;
  std::string first = ids.out.substr(0, ids.out.find('\n') + 1);
  EXPECT_TRUE(first.size() > 10) << ids.out;
  EXPECT_EQ(ids.out, first + first) << "one image under both names";
  run_docker(services_.docker_host, {"rmi", "-f", image, also});
}

// The answer remembered from the last build (<cache dir>/envd/daemons/) is
// checked by the probe of every build that uses it. One that says this
// buildkitd has a moby worker (as if the context had reached an Engine last
// time) gets the `moby` exporter, which buildkitd lacks; the probe refutes
// it and the build starts again with `docker`, loading into the Engine.
TEST_F(RealBuildkitTest, AStaleRememberedAnswerIsCorrectedWithinTheBuild) {
  use_context("remote-context", {"--builder", "tcp", "--builder-address", bk_.tcp});
  const std::string image = "envd-real/replanned:" + tag_;
  fs::path dir = project("replanned");
  auto first = run({"build", "--progress", "plain", "-t", image, dir.string()}, true);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto files = remembered_daemon_answers();
  ASSERT_EQ(files.size(), 1u);
  const std::string remembered = read_text(files[0]);
  auto answer = json::parse(remembered).as_object();
  EXPECT_EQ(answer["endpoint"], json::value("tcp://" + bk_.tcp)) << remembered;
  const auto& workers = answer["workers"].as_array();
  ASSERT_EQ(workers.size(), 1u) << remembered;
  EXPECT_NE(workers[0].as_object().at("id"), "moby") << remembered;

  write_text(files[0], R"({"format": 1, "endpoint": "tcp://)" + bk_.tcp +
                           R"(", "workers": [{"id": "moby", "platforms": ["linux/amd64"]}]})");
  write_text(dir / "greeting.txt", "hello again\n");
  auto second = run({"build", "--progress", "plain", "-t", image, dir.string()}, true);
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_TRUE(contains(second.err, "the builder at tcp://" + bk_.tcp +
                                       " is not the daemon of the last build; starting the "
                                       "build again"))
      << second.err;
  EXPECT_EQ(last_line(second.err),
            "Loaded " + image + " into the Docker Engine at " + services_.docker_host + "\n");
  EXPECT_EQ(read_text(files[0]), remembered) << "the probe's answer replaced the stale one";
  auto ran = run_docker(services_.docker_host,
                        {"run", "--rm", "--network", "none", image, "cat", "/greeting.txt"});
  EXPECT_EQ(ran.out, "hello again\n") << ran.err;
  run_docker(services_.docker_host, {"rmi", "-f", image});
}

// A build that remembers this daemon's worker asks ListWorkers only for the
// other workers (buildkitd runs its platform detection for each worker it
// lists, on the CPUs the build needs): the empty answer confirms the
// remembered worker, which stays as written, platforms included (a full
// answer would have replaced them with the daemon's).
TEST_F(RealBuildkitTest, ARememberedWorkerIsConfirmedWithoutBeingListed) {
  use_context("remote-context", {"--builder", "tcp", "--builder-address", bk_.tcp});
  const std::string image = "envd-real/confirmed:" + tag_;
  fs::path dir = project("confirmed");
  auto first = run({"build", "--progress", "plain", "-t", image, dir.string()}, true);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto files = remembered_daemon_answers();
  ASSERT_EQ(files.size(), 1u);
  auto answer = json::parse(read_text(files[0])).as_object();
  const auto& workers = answer["workers"].as_array();
  ASSERT_EQ(workers.size(), 1u) << read_text(files[0]);
  const std::string id(workers[0].as_object().at("id").as_string());
  EXPECT_TRUE(contains(json::serialize(workers[0]), "linux/amd64")) << read_text(files[0]);

  const std::string remembered = R"({"format": 1, "endpoint": "tcp://)" + bk_.tcp +
                                 R"(", "workers": [{"id": ")" + id +
                                 R"(", "platforms": ["test/remembered"]}]})";
  write_text(files[0], remembered);
  write_text(dir / "greeting.txt", "hello again\n");
  auto second = run({"build", "--progress", "plain", "-t", image, dir.string()}, true);
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_FALSE(contains(second.err, "is not the daemon of the last build")) << second.err;
  auto after = json::parse(read_text(files[0])).as_object();
  EXPECT_EQ(json::serialize(after["workers"]),
            R"([{"id":")" + id + R"(","platforms":["test/remembered"]}])")
      << read_text(files[0]);
  auto ran = run_docker(services_.docker_host,
                        {"run", "--rm", "--network", "none", image, "cat", "/greeting.txt"});
  EXPECT_EQ(ran.out, "hello again\n") << ran.err;
  run_docker(services_.docker_host, {"rmi", "-f", image});
}

// The remembered answer and the build node's id are caches: a FIFO in
// either place (a user's mkfifo, a restored backup) is read without waiting
// and left as it is, never opened for writing, which would wait for a reader
// for ever after the build was done.
TEST_F(RealBuildkitTest, FifosInTheCacheDirectoryAreNeitherWaitedOnNorReplaced) {
  use_context("remote-context", {"--builder", "tcp", "--builder-address", bk_.tcp});
  fs::path dir = project("fifos");
  fs::path out = home() / "fifos-out";
  auto first =
      run({"build", "--progress", "plain", "-o", "type=local,dest=" + out.string(), dir.string()});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto files = remembered_daemon_answers();
  ASSERT_EQ(files.size(), 1u);
  const fs::path node_id = home() / ".cache/envd/build-node-id";
  ASSERT_TRUE(fs::is_regular_file(node_id));
  for (const fs::path& file : {files[0], node_id}) {
    fs::remove(file);
    ASSERT_EQ(::mkfifo(file.c_str(), 0600), 0) << file << ": " << std::strerror(errno);
  }
  fs::remove_all(out);
  auto second =
      run({"build", "--progress", "plain", "-o", "type=local,dest=" + out.string(), dir.string()});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(read_text(out / "greeting.txt"), "hello from fifos\n");
  for (const fs::path& file : {files[0], node_id}) {
    EXPECT_EQ(fs::status(file).type(), fs::file_type::fifo) << file;
  }
}

// The Dockerfile frontend resolves a link among the Dockerfile's directory
// and name inside that directory: a link leading out of it named a path
// inside the daemon's mount ("failed to read dockerfile: open
// /tmp/buildkit-mount.../srv/df"). envd sends such a Dockerfile from where
// the link leads; a link inside the directory is sent as it is.
TEST_F(RealBuildkitTest, ADockerfileLinkedFromElsewhereIsRead) {
  use_context("remote-context", {"--builder", "tcp", "--builder-address", bk_.tcp});
  fs::path dir = project("linked");
  write_text(home() / "elsewhere" / "real.Dockerfile",
             "FROM " + bk_.base + "\nCOPY greeting.txt /linked.txt\n");
  fs::create_directories(home() / "links");
  fs::create_symlink(home() / "elsewhere" / "real.Dockerfile", home() / "links" / "Dockerfile");
  fs::path out = home() / "linked-out";
  auto r = run({"build", "--progress", "plain", "-f", (home() / "links" / "Dockerfile").string(),
                "-o", "type=local,dest=" + out.string(), dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_text(out / "linked.txt"), "hello from linked\n");
  fs::create_symlink("../elsewhere/real.Dockerfile", home() / "links" / "Relative");
  fs::remove_all(out);
  r = run({"build", "--progress", "plain", "-f", (home() / "links" / "Relative").string(), "-o",
           "type=local,dest=" + out.string(), dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_text(out / "linked.txt"), "hello from linked\n");
}

// COPY's wildcard sources (sent to the session as followpaths) copy what
// they match, as buildctl copies them; a symlink a wildcard matches is
// copied as the link, its target sent with it.
TEST_F(RealBuildkitTest, WildcardCopySourcesCopyWhatTheyMatch) {
  use_context("remote-context", {"--builder", "tcp", "--builder-address", bk_.tcp});
  fs::path dir = home() / "wildcards";
  write_text(dir / "Dockerfile", "FROM scratch\nCOPY *.txt /o/\nCOPY src/*.go /o/\n");
  write_text(dir / "a.txt", "a\n");
  write_text(dir / "b.txt", "b\n");
  write_text(dir / "c.md", "c\n");
  write_text(dir / "src" / "d.go", "d\n");
  write_text(dir / "src" / "e.txt", "e\n");
  write_text(dir / "real" / "r", "r\n");
  fs::create_symlink("real/r", dir / "link.txt");
  fs::path out = home() / "wildcards-out";
  auto r = run({"build", "--progress", "plain", "--output", "type=local,dest=" + out.string(),
                dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> copied;
  for (const auto& entry : fs::directory_iterator(out / "o")) {
    copied.insert(entry.path().filename().string());
  }
  EXPECT_EQ(copied, (std::set<std::string>{"a.txt", "b.txt", "d.go", "link.txt"}));
  EXPECT_EQ(read_text(out / "o" / "b.txt"), "b\n");
}

// Names are bytes: a file name and a link target that are not UTF-8 go to
// buildkitd and come back in a local export as they are.
TEST_F(RealBuildkitTest, NamesThatAreNotUtf8GoAndComeBackAsTheyAre) {
  use_context("remote-context", {"--builder", "tcp", "--builder-address", bk_.tcp});
  fs::path dir = home() / "bytes";
  write_text(dir / "Dockerfile", "FROM scratch\nCOPY . /ctx/\n");
  write_text(dir / "bad\xff\xfe", "bytes\n");
  fs::create_symlink("tar\xffget", dir / "link");
  fs::path out = home() / "bytes-out";
  auto r = run({"build", "--progress", "plain", "--output", "type=local,dest=" + out.string(),
                dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(contains(r.err, "libprotobuf")) << r.err;
  EXPECT_EQ(read_text(out / "ctx" / "bad\xff\xfe"), "bytes\n");
  EXPECT_EQ(fs::read_symlink(out / "ctx" / "link").string(), "tar\xffget");
}

// A named pipe in the context goes as one (fsutil's mode bits, never
// opened: an open would wait for a writer) and comes back from buildkitd's
// COPY as a named pipe with its permissions. (The Docker Engine 20.10's
// embedded BuildKit receives it too, a bind mount of the context shows it,
// but its COPY leaves named pipes out: docs/building.md.)
TEST_F(RealBuildkitTest, ANamedPipeInTheContextArrivesAsANamedPipe) {
  use_context("remote-context", {"--builder", "tcp", "--builder-address", bk_.tcp});
  fs::path dir = home() / "fifo";
  write_text(dir / "Dockerfile", "FROM scratch\nCOPY . /ctx/\n");
  write_text(dir / "a.txt", "a\n");
  ASSERT_EQ(::mkfifo((dir / "pipe").c_str(), 0640), 0) << std::strerror(errno);
  fs::path out = home() / "fifo-out";
  auto r = run({"build", "--progress", "plain", "--output", "type=local,dest=" + out.string(),
                dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  struct stat st {};
  ASSERT_EQ(::lstat((out / "ctx" / "pipe").c_str(), &st), 0) << std::strerror(errno);
  EXPECT_TRUE(S_ISFIFO(st.st_mode)) << std::oct << st.st_mode;
  EXPECT_EQ(st.st_mode & 07777, 0640u) << std::oct << st.st_mode;
  EXPECT_EQ(read_text(out / "ctx" / "a.txt"), "a\n");
}

// A rebuild of a context holding a hard link (and a directory) has the
// image hold exactly the context: buildkitd compares each incoming stat with
// its copy of the last transfer, and a link sent with another size than
// fsutil sends was relinked, leaving a stray .tmp.N file in the image.
TEST_F(RealBuildkitTest, ARebuildWithAHardLinkAddsNothing) {
  use_context("remote-context", {"--builder", "tcp", "--builder-address", bk_.tcp});
  fs::path dir = home() / "hardlinks";
  write_text(dir / "Dockerfile", "FROM scratch\nCOPY . /ctx/\n");
  write_text(dir / "a.txt", "hi\n");
  fs::create_hard_link(dir / "a.txt", dir / "hard");
  write_text(dir / "d" / "f", "x\n");
  for (int run_number = 1; run_number <= 3; ++run_number) {
    SCOPED_TRACE(run_number);
    fs::path out = home() / ("hardlinks-out-" + std::to_string(run_number));
    auto r = run({"build", "--progress", "quiet", "--no-cache", "--output",
                  "type=local,dest=" + out.string(), dir.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(out / "ctx")) {
      names.insert(entry.path().filename().string());
    }
    EXPECT_EQ(names, (std::set<std::string>{"Dockerfile", "a.txt", "d", "hard"}));
  }
}

// The Info API (v0.11+) gives the version; the worker is `oci`, with the GC
// policy buildkitd derived from its config.
TEST_F(RealBuildkitTest, StatusShowsTheVersionTheWorkerAndItsGcPolicy) {
  use_context("remote-context", {"--builder", "tcp", "--builder-address", bk_.tcp});
  auto status = status_json();
  EXPECT_EQ(status["reachable"], true) << json::serialize(status);
  EXPECT_EQ(status["version"], json::value(bk_.version)) << json::serialize(status);
  ASSERT_TRUE(status.contains("workers")) << json::serialize(status);
  const auto& workers = status["workers"].as_array();
  ASSERT_EQ(workers.size(), 1u) << json::serialize(status);
  const auto& worker = workers[0].as_object();
  EXPECT_TRUE(contains(json::serialize(worker.at("platforms")), "linux/amd64"));
  EXPECT_FALSE(worker.at("gc_policy").as_array().empty()) << json::serialize(worker);

  auto table = run({"builder", "status"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_TRUE(contains(table.out, "BuildKit:   " + bk_.version + "\n")) << table.out;
  EXPECT_TRUE(contains(table.out, "GC rule:    keep ")) << table.out;
}

// Load: four builds at once on one builder while eight processes write
// contexts into the store the builds read. Every build succeeds with its own
// result, and no context is lost: the store's lock serialises the writers,
// and a build holds no lock on the store while it runs.
TEST_F(RealBuildkitTest, FourBuildsAtOnceWhileEightProcessesWriteContexts) {
  use_context("remote-context", {"--builder", "tcp", "--builder-address", bk_.tcp});
  constexpr int kBuilds = 4;
  constexpr int kWriters = 8;
  constexpr int kContextsPerWriter = 12;
  auto writer_context = [](int w, int k) {
    return "w" + std::to_string(w) + "-" + std::to_string(k);
  };
  std::vector<fs::path> projects;
  for (int i = 0; i < kBuilds; ++i) projects.push_back(project("load-" + std::to_string(i)));

  std::vector<sdk::ProcessResult> builds(kBuilds);
  std::vector<std::string> writer_errors(kWriters);
  std::vector<std::thread> threads;
  for (int i = 0; i < kBuilds; ++i) {
    threads.emplace_back([&, i] {
      builds[i] = run({"build", "--progress", "plain", "--output",
                       "type=local,dest=" + (home() / ("load-out-" + std::to_string(i))).string(),
                       projects[i].string()});
    });
  }
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int k = 0; k < kContextsPerWriter; ++k) {
        auto r = run({"context", "create", "--name", writer_context(w, k), "--builder", "tcp",
                      "--builder-address", "tcp://127.0.0.1:" + std::to_string(2000 + k)});
        if (r.exit_code != 0) writer_errors[w] += r.err;
      }
    });
  }
  for (auto& t : threads) t.join();

  for (int i = 0; i < kBuilds; ++i) {
    EXPECT_EQ(builds[i].exit_code, 0) << "build " << i << ": " << builds[i].err;
    fs::path out = home() / ("load-out-" + std::to_string(i));
    EXPECT_EQ(read_text(out / "greeting.txt"), "hello from load-" + std::to_string(i) + "\n");
    EXPECT_EQ(read_text(out / "built.txt"), "built-by-buildkitd\n");
  }
  for (int w = 0; w < kWriters; ++w) EXPECT_EQ(writer_errors[w], "") << "writer " << w;
  json::object store = read_store();
  std::set<std::string> names;
  for (const auto& c : store.at("contexts").as_array()) {
    names.insert(std::string(c.as_object().at("name").as_string()));
  }
  for (int w = 0; w < kWriters; ++w) {
    for (int k = 0; k < kContextsPerWriter; ++k) {
      EXPECT_TRUE(names.count(writer_context(w, k))) << "lost " << writer_context(w, k);
    }
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(kWriters * kContextsPerWriter + 2));  // + default
  EXPECT_EQ(store.at("current").as_string(), "remote-context");
}

TEST_F(RealBuildkitTest, UnixSocketBuildsAndReportsStatus) {
  use_context("rootless", {"--builder", "unix", "--builder-address", "unix://" + bk_.unix_socket});
  build_local("unix");
  auto status = status_json();
  EXPECT_EQ(status["reachable"], true) << json::serialize(status);
  EXPECT_EQ(status["version"], json::value(bk_.version));
}

// ---- TLS, as buildkitd does it (no ALPN) ------------------------------------------

TEST_F(RealBuildkitTest, ServerOnlyTlsBuildsByAddressAndByName) {
  use_context("tls", {"--builder", "tcp", "--builder-address", bk_.tls, "--builder-tls-ca",
                      bk_.pki("ca.pem")});
  build_local("tls");
  auto port = bk_.tls.substr(bk_.tls.find(':') + 1);
  use_context("by-name", {"--builder", "tcp", "--builder-address", "localhost:" + port,
                          "--builder-tls-ca", bk_.pki("ca.pem")});
  EXPECT_EQ(status_json()["reachable"], true);
}

TEST_F(RealBuildkitTest, MutualTlsBuildsPushesAndReportsStatus) {
  auto flags = tls_flags(bk_.pki("ca.pem"), bk_.pki("client-cert.pem"), bk_.pki("client-key.pem"));
  flags.insert(flags.begin(), {"--builder", "tcp", "--builder-address", bk_.mtls});
  use_context("ci", flags);
  build_local("mtls");
  const std::string name = services_.registry + "/envd-real/mtls:" + tag_;
  auto r = run({"build", "--output", "type=image,name=" + name + ",push=true",
                project("mtls-push").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_line(r.err).rfind("Pushed " + name, 0), 0u) << r.err;
  auto status = status_json();
  EXPECT_EQ(status["reachable"], true) << json::serialize(status);
  EXPECT_EQ(status["version"], json::value(bk_.version));
}

// The CI job of docs/building.md (examples/ci/build-on-remote-buildkitd.sh),
// run as a CI system would run it: envd on PATH, the job's variables set, a
// buildkitd with mutual TLS, the cache in the registry, a secret, a push.
// Other tests build on the same daemon at the same time, so whether its own
// cache still holds the first run's steps is not asserted.
TEST_F(RealBuildkitTest, TheDocumentedCiJobRunsEndToEnd) {
  fs::path dir = home() / "ci-project";
  write_text(dir / "Dockerfile", "FROM " + bk_.base +
                                     "\nCOPY greeting.txt /greeting.txt\n"
                                     "RUN --mount=type=secret,id=npm_token,required=true "
                                     "test -s /run/secrets/npm_token && echo ok > /secret-seen\n");
  write_text(dir / "greeting.txt", "hello from ci\n");
  const std::string repository = "envd-real/ci-job";
  auto job_env = env();
  job_env["PATH"] = fs::path(envd_binary()).parent_path().string() + ":" +
                    std::string(std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin");
  job_env["BUILDKIT_ADDR"] = "tcp://" + bk_.mtls;
  job_env["BUILDKIT_CA"] = bk_.pki("ca.pem");
  job_env["BUILDKIT_CERT"] = bk_.pki("client-cert.pem");
  job_env["BUILDKIT_KEY"] = bk_.pki("client-key.pem");
  job_env["IMAGE"] = services_.registry + "/" + repository;
  job_env["TAG"] = tag_;
  job_env["NPM_TOKEN"] = "npm-secret-" + tag_;
  for (const auto& [key, value] : base_env()) job_env.emplace(key, value);

  auto job = [&] {
    sdk::ProcessOptions options;
    options.argv = {"bash",
                    std::string(ENVD_SOURCE_DIR) + "/examples/ci/build-on-remote-buildkitd.sh",
                    dir.string()};
    options.env = job_env;
    options.cwd = home().string();
    options.timeout = std::chrono::seconds(300);
    auto r = sdk::run_process(options);
    EXPECT_TRUE(r) << r.error().message();
    return r ? *r : sdk::ProcessResult{};
  };
  auto first = job();
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto second = job();
  ASSERT_EQ(second.exit_code, 0) << second.err;
  // The second run imports the cache the first exported (that a fresh daemon
  // then runs no step is CiBuildTest.RegistryCacheMakesAFreshDaemonRunNothing).
  EXPECT_TRUE(contains(second.err, "importing cache manifest from " + services_.registry + "/" +
                                       repository + ":buildcache"))
      << second.err;
  EXPECT_FALSE(contains(first.err + second.err, "npm-secret-" + tag_));

  // The metadata names what the registry holds; the cache is there too.
  auto metadata = json::parse(read_text(home() / "build-metadata.json")).as_object();
  EXPECT_EQ(metadata.at("containerimage.digest").as_string(),
            registry_digest(services_.registry, repository, tag_));
  EXPECT_FALSE(registry_digest(services_.registry, repository, "buildcache").empty());
  // The job removed its context.
  auto ls = run({"context", "ls", "--format", "json"});
  EXPECT_FALSE(contains(ls.out, "ci-")) << ls.out;
}

TEST_F(RealBuildkitTest, AWrongCaIsNamed) {
  auto flags =
      tls_flags(bk_.pki("other-ca.pem"), bk_.pki("client-cert.pem"), bk_.pki("client-key.pem"));
  flags.insert(flags.begin(), {"--builder", "tcp", "--builder-address", bk_.mtls});
  use_context("ci", flags);
  expect_connect_failure("tcp://" + bk_.mtls,
                         "TLS handshake failed: the daemon's certificate is not signed by the "
                         "configured CA (tls-ca)");
}

TEST_F(RealBuildkitTest, AMissingClientCertificateIsNamed) {
  use_context("ci", {"--builder", "tcp", "--builder-address", bk_.mtls, "--builder-tls-ca",
                     bk_.pki("ca.pem")});
  expect_connect_failure("tcp://" + bk_.mtls,
                         "the daemon requires a client certificate (set --builder-tls-cert and "
                         "--builder-tls-key)");
}

TEST_F(RealBuildkitTest, AForeignClientCertificateIsRejectedByTheDaemon) {
  auto flags =
      tls_flags(bk_.pki("ca.pem"), bk_.pki("stranger-cert.pem"), bk_.pki("stranger-key.pem"));
  flags.insert(flags.begin(), {"--builder", "tcp", "--builder-address", bk_.mtls});
  use_context("ci", flags);
  expect_connect_failure("tcp://" + bk_.mtls, "the daemon rejected the client certificate");
}

// A client certificate the daemon rejects for its dates (signed by the CA
// the daemon trusts all the same) is said so, not taken for one from another
// CA: envd reads its own certificate when the daemon's alert comes.
TEST_F(RealBuildkitTest, AnExpiredClientCertificateIsNamedAsExpired) {
  const fs::path csr = home() / "expired.csr";
  const fs::path expired = home() / "expired-cert.pem";
  sdk::ProcessOptions request;
  request.argv = {"openssl", "req",         "-new", "-key",      bk_.pki("client-key.pem"),
                  "-subj",   "/CN=envd-ci", "-out", csr.string()};
  auto requested = sdk::run_process(request);
  ASSERT_TRUE(requested && requested->exit_code == 0)
      << (requested ? requested->err : requested.error().message());
  // "-days -1": valid until a day before it was issued.
  write_text(home() / "client.ext", "extendedKeyUsage=clientAuth\n");
  sdk::ProcessOptions sign;
  sign.argv = {"openssl",
               "x509",
               "-req",
               "-in",
               csr.string(),
               "-CA",
               bk_.pki("ca.pem"),
               "-CAkey",
               bk_.pki("ca-key.pem"),
               "-set_serial",
               "7",
               "-days",
               "-1",
               "-extfile",
               (home() / "client.ext").string(),
               "-out",
               expired.string()};
  auto signed_cert = sdk::run_process(sign);
  ASSERT_TRUE(signed_cert && signed_cert->exit_code == 0)
      << (signed_cert ? signed_cert->err : signed_cert.error().message());

  auto flags = tls_flags(bk_.pki("ca.pem"), expired, bk_.pki("client-key.pem"));
  flags.insert(flags.begin(), {"--builder", "tcp", "--builder-address", bk_.mtls});
  use_context("ci", flags);
  expect_connect_failure("tcp://" + bk_.mtls,
                         "the daemon rejected the client certificate (tls-cert expired on ");
}

// envd never asks for a passphrase: an encrypted client key is refused when
// the context is made, and one that reached the store anyway (an older envd,
// a hand-copied file) fails the connection at once. OpenSSL's default, which
// the connection used, printed "Enter PEM pass phrase:" on the terminal and
// waited there past --connect-timeout.
TEST_F(RealBuildkitTest, AnEncryptedClientKeyIsRefusedAndNeverPrompts) {
  const fs::path encrypted = home() / "encrypted-key.pem";
  sdk::ProcessOptions openssl;
  openssl.argv = {
      "openssl",     "pkcs8", "-topk8",          "-in", bk_.pki("client-key.pem"), "-passout",
      "pass:secret", "-out",  encrypted.string()};
  auto made = sdk::run_process(openssl);
  ASSERT_TRUE(made && made->exit_code == 0) << (made ? made->err : made.error().message());

  auto flags = tls_flags(bk_.pki("ca.pem"), bk_.pki("client-cert.pem"), encrypted);
  flags.insert(flags.begin(), {"context", "create", "--name", "enc", "--builder", "tcp",
                               "--builder-address", bk_.mtls});
  auto refused = run(flags);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(refused.err, "envd: error: --builder-tls-key '" + encrypted.string() +
                             "' is encrypted with a passphrase, which envd does not ask for: give "
                             "the key without one (openssl pkey -in KEY -out PLAIN-KEY)\n");

  use_context("enc", [&] {
    auto plain =
        tls_flags(bk_.pki("ca.pem"), bk_.pki("client-cert.pem"), bk_.pki("client-key.pem"));
    plain.insert(plain.begin(), {"--builder", "tcp", "--builder-address", bk_.mtls});
    return plain;
  }());
  auto store = read_store();
  std::string id;
  for (const auto& ctx : store.at("contexts").as_array()) {
    if (ctx.at("name").as_string() == "enc") id = ctx.at("id").as_string().c_str();
  }
  ASSERT_FALSE(id.empty());
  write_text(config_dir() / "contexts.d" / id / "files" / "tls-key", read_text(encrypted));
  auto env = full_env(this->env());
  auto session = PtySession::start({envd_binary(), "builder", "status", "--connect-timeout", "5s"},
                                   env, 24, 120);
  ASSERT_NE(session, nullptr);
  auto code = session->wait_exit(std::chrono::seconds(20));
  ASSERT_TRUE(code) << "envd waited at a prompt: " << session->output();
  EXPECT_EQ(*code, 1) << session->output();
  EXPECT_EQ(session->output().find("pass phrase"), std::string::npos) << session->output();
  EXPECT_NE(session->output().find("tls-key is encrypted with a passphrase"), std::string::npos)
      << session->output();
}

TEST_F(RealBuildkitTest, AServerNameMismatchIsNamed) {
  auto flags = tls_flags(bk_.pki("ca.pem"), bk_.pki("client-cert.pem"), bk_.pki("client-key.pem"));
  flags.insert(flags.begin(), {"--builder", "tcp", "--builder-address", bk_.mtls,
                               "--builder-tls-servername", "wrong.example"});
  use_context("ci", flags);
  expect_connect_failure("tcp://" + bk_.mtls,
                         "TLS handshake failed: the daemon's certificate is not valid for "
                         "'wrong.example' (check the address or --builder-tls-servername)");
}

TEST_F(RealBuildkitTest, APlaintextClientAgainstATlsDaemonIsTold) {
  use_context("ci", {"--builder", "tcp", "--builder-address", bk_.mtls});
  expect_connect_failure("tcp://" + bk_.mtls, "(does it expect TLS? set --builder-tls-ca)",
                         std::chrono::seconds(10));
}

TEST_F(RealBuildkitTest, ATlsClientAgainstAPlaintextDaemonIsTold) {
  use_context("ci", {"--builder", "tcp", "--builder-address", bk_.tcp, "--builder-tls-ca",
                     bk_.pki("ca.pem")});
  expect_connect_failure("tcp://" + bk_.tcp,
                         "TLS handshake failed: the daemon does not speak TLS on this address "
                         "(is it plaintext?)");
}

// ---- registry credentials through the session's Auth service -------------------------

// A buildkitd of the test's own, whose config lets it reach a registry that
// wants a password over plain HTTP; envd's session answers its Auth calls.
class RealBuildkitAuth : public RealBuildkitTest {
 protected:
  void SetUp() override {
    RealBuildkitTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    registry_ = std::make_unique<PasswordRegistry>(home() / "password-registry");
    ASSERT_TRUE(registry_->wait_until_up());
    daemon_ = std::make_unique<StandaloneBuildkitd>(
        bk_, home() / "bk",
        "[registry.\"" + registry_->address() + "\"]\n  http = true\n" + "[registry.\"" +
            services_.registry + "\"]\n  http = true\n");
    ASSERT_TRUE(daemon_->wait_until_ready()) << daemon_->log();
    use_context("auth", {"--builder", "unix", "--builder-address", daemon_->socket()});
  }

  void TearDown() override {
    daemon_.reset();
    registry_.reset();
    RealBuildkitTest::TearDown();
  }

  sdk::ProcessResult push(const std::string& repository,
                          std::map<std::string, std::optional<std::string>> extra = {}) {
    auto vars = env();
    for (auto& [k, v] : extra) vars[k] = v;
    return envd(
        {"build", "--output",
         "type=image,name=" + registry_->address() + "/" + repository + ":" + tag_ + ",push=true",
         project("auth").string()},
        vars);
  }

  std::unique_ptr<PasswordRegistry> registry_;
  std::unique_ptr<StandaloneBuildkitd> daemon_;
};

TEST_F(RealBuildkitAuth, APushWithoutCredentialsIsRefusedInOneLine) {
  auto r = push("team/app");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  std::string line = last_line(r.err);
  EXPECT_EQ(line.rfind("envd: error: ", 0), 0u) << r.err;
  EXPECT_TRUE(contains(line, "401") || contains(line, "nauthorized")) << line;
}

TEST_F(RealBuildkitAuth, CredentialsFromConfigJsonReachTheDaemon) {
  write_text(home() / ".docker" / "config.json", std::string(R"({"auths":{")") +
                                                     registry_->address() + R"(":{"auth":")" +
                                                     PasswordRegistry::kAuth + R"("}}})");
  auto r = push("team/app");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(registry_digest(registry_->address(), "team/app", tag_, "envd:secret").empty());
}

TEST_F(RealBuildkitAuth, CredentialsFromAHelperReachTheDaemon) {
  fs::path bin = home() / "bin";
  fs::path asked = home() / "helper-was-asked";
  write_text(bin / "docker-credential-envdtest",
             "#!/bin/sh\n"
             "read -r server\n"
             "echo \"$1 $server\" >> '" +
                 asked.string() +
                 "'\n"
                 "echo '{\"ServerURL\":\"'\"$server\"'\",\"Username\":\"envd\",\"Secret\":"
                 "\"secret\"}'\n");
  fs::permissions(bin / "docker-credential-envdtest", fs::perms::owner_all);
  write_text(home() / ".docker" / "config.json",
             std::string(R"({"credHelpers":{")") + registry_->address() + R"(":"envdtest"}})");
  const char* path = std::getenv("PATH");
  auto r = push("team/helped", {{"PATH", bin.string() + ":" + (path ? path : "/usr/bin:/bin")}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(read_text(asked), "get " + registry_->address())) << read_text(asked);
  EXPECT_FALSE(registry_digest(registry_->address(), "team/helped", tag_, "envd:secret").empty());
}

}  // namespace
}  // namespace envd::test
