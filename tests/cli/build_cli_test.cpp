// `envd build` failing before it reaches a daemon: nothing it was asked to
// write may appear, and nothing already there may be touched.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "cli_harness.hpp"
#include "envd/process.hpp"

namespace envd::test {
namespace {

namespace fs = std::filesystem;

// A loopback port nothing listens on (bound, then released).
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof addr;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), size), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &size), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// A loopback listener that never accepts: connections complete in the
// kernel's backlog and then hear nothing, as from a daemon that hangs.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof addr;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), size), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &size), 0);
    port_ = ntohs(addr.sin_port);
  }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  ~SilentListener() { ::close(fd_); }
  int port() const { return port_; }
  // Whether a client connected (and waits to be accepted) within `timeout`.
  bool connected_within(std::chrono::milliseconds timeout) const {
    pollfd ready{fd_, POLLIN, 0};
    return ::poll(&ready, 1, static_cast<int>(timeout.count())) == 1;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

class BuildCli : public CliTest {
 protected:
  fs::path project() {
    fs::path dir = home() / "project";
    write_text(dir / "Dockerfile", "FROM scratch\nCOPY a.txt /a.txt\n");
    write_text(dir / "a.txt", "a\n");
    return dir;
  }

  // Makes a tcp context for `silent` the current one, and returns its
  // endpoint as envd names it.
  std::string use_silent_daemon(const SilentListener& silent) {
    const std::string address = "127.0.0.1:" + std::to_string(silent.port());
    envd_ok({"context", "create", "--name", "silent", "--builder", "tcp", "--builder-address",
             address, "--use"});
    return "tcp://" + address;
  }

  // Fails the test unless `envd build <args>` fails to connect.
  void expect_unreachable(std::vector<std::string> args,
                          const std::map<std::string, std::optional<std::string>>& env = {}) {
    args.insert(args.begin(), {"build", "--connect-timeout", "1s", "--progress", "quiet"});
    auto r = envd(args, env);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("cannot connect to buildkitd"), std::string::npos) << r.err;
  }
};

TEST_F(BuildCli, AnUnreachableBuilderLeavesNoOutputBehind) {
  ENVD_REQUIRE_MODULES("tcp builder");
  envd_ok({"context", "create", "--name", "gone", "--builder", "tcp", "--builder-address",
           "127.0.0.1:" + std::to_string(closed_port()), "--use"});
  fs::path dir = project();
  fs::path out = home() / "out";
  // A tarball's directory is not made for it: said before anything is contacted.
  auto local = envd({"build", "--progress", "quiet", "--output",
                     "type=tar,dest=" + (out / "image.tar").string(), dir.string()});
  EXPECT_EQ(local.exit_code, 1) << local.err;
  EXPECT_EQ(local.err, "envd: error: cannot create '" + (out / "image.tar").string() +
                           "': No such file or directory\n");
  expect_unreachable({"--output", "type=local,dest=" + (out / "files").string(), dir.string()});
  expect_unreachable({"-t", "x:1", "--iidfile", (home() / "iid").string(), "--metadata-file",
                      (home() / "meta.json").string(), "--cache-to",
                      "type=local,dest=" + (out / "cache").string(), dir.string()});
  EXPECT_FALSE(fs::exists(out)) << "the build made " << out;
  EXPECT_FALSE(fs::exists(home() / "iid"));
  EXPECT_FALSE(fs::exists(home() / "meta.json"));

  // An earlier result at the destination is left as it was, not truncated.
  fs::create_directories(out);
  write_text(out / "image.tar", "earlier build");
  expect_unreachable({"--output", "type=tar,dest=" + (out / "image.tar").string(), dir.string()});
  EXPECT_EQ(read_text(out / "image.tar"), "earlier build");
  EXPECT_EQ(std::distance(fs::directory_iterator(out), fs::directory_iterator()), 1);
}

// --iidfile: an earlier ID goes before the build (a failed one leaves none);
// a FIFO (as /dev/stdout may be) is never unlinked, as the ID would be
// written into it after a build that succeeds.
TEST_F(BuildCli, AnEarlierIidfileGoesButAFifoStays) {
  ENVD_REQUIRE_MODULES("tcp builder");
  envd_ok({"context", "create", "--name", "gone", "--builder", "tcp", "--builder-address",
           "127.0.0.1:" + std::to_string(closed_port()), "--use"});
  fs::path dir = project();
  write_text(home() / "iid", "sha256:earlier");
  expect_unreachable({"--iidfile", (home() / "iid").string(), dir.string()});
  EXPECT_FALSE(fs::exists(fs::symlink_status(home() / "iid")));

  // A link to a file stays, the file it names emptied: unlinking would
  // remove the link.
  write_text(home() / "kept", "sha256:earlier");
  fs::create_symlink(home() / "kept", home() / "link");
  expect_unreachable({"--iidfile", (home() / "link").string(), dir.string()});
  EXPECT_TRUE(fs::is_symlink(home() / "link"));
  EXPECT_EQ(read_text(home() / "kept"), "");

  ASSERT_EQ(::mkfifo((home() / "fifo").c_str(), 0600), 0);
  expect_unreachable({"--iidfile", (home() / "fifo").string(), dir.string()});
  EXPECT_TRUE(fs::is_fifo(home() / "fifo"));

  // /dev/stdout with stdout a log file the shell redirected: left as it
  // is, neither emptied nor replaced (the ID would be written through the
  // descriptor, after what the log holds).
  write_text(home() / "build.log", "before\n");
  sdk::ProcessOptions logged;
  logged.argv = {"sh",
                 "-c",
                 "exec \"$0\" build --connect-timeout 1s --progress quiet --iidfile /dev/stdout "
                 "--metadata-file /dev/stdout \"$1\" >>\"$2\"",
                 envd_binary(),
                 dir.string(),
                 (home() / "build.log").string()};
  logged.env = base_env();
  logged.timeout = std::chrono::seconds(30);
  auto logged_run = sdk::run_process(logged);
  ASSERT_TRUE(logged_run) << logged_run.error().message();
  EXPECT_EQ(logged_run->exit_code, 1) << logged_run->err;
  EXPECT_NE(logged_run->err.find("cannot connect to buildkitd"), std::string::npos)
      << logged_run->err;
  EXPECT_EQ(read_text(home() / "build.log"), "before\n");
}

// --iidfile and --metadata-file are written beside themselves and renamed
// into place: a directory that takes no new file (read-only to envd) is
// refused before the build, not after the image was made.
TEST_F(BuildCli, AResultFileInADirectoryThatTakesNoFileIsRefusedFirst) {
  ENVD_REQUIRE_MODULES("tcp builder");
  envd_ok({"context", "create", "--name", "gone", "--builder", "tcp", "--builder-address",
           "127.0.0.1:" + std::to_string(closed_port()), "--use"});
  fs::path dir = project();
  fs::path locked = home() / "locked";
  fs::create_directories(locked);
  ASSERT_EQ(::mkfifo((locked / "pipe").c_str(), 0600), 0);
  fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_exec);
  for (const char* flag : {"--iidfile", "--metadata-file"}) {
    fs::path file = locked / "result";
    auto r = envd_bound_by_permissions(
        {"build", "--progress", "quiet", "-t", "x:1", flag, file.string(), dir.string()});
    EXPECT_EQ(r.exit_code, 1) << flag;
    EXPECT_EQ(r.err, "envd: error: cannot write '" + file.string() +
                         "': cannot create a file in '" + locked.string() +
                         "': Permission denied\n")
        << flag;
  }
  // What is written in place needs no new file there: a FIFO in that
  // directory, a descriptor's path (/dev/fd/1, whose directory takes none).
  auto in_place = envd_bound_by_permissions(
      {"build", "--connect-timeout", "1s", "--progress", "quiet", "-t", "x:1", "--iidfile",
       (locked / "pipe").string(), "--metadata-file", "/dev/fd/1", dir.string()});
  EXPECT_EQ(in_place.exit_code, 1);
  EXPECT_NE(in_place.err.find("cannot connect to buildkitd"), std::string::npos) << in_place.err;
  EXPECT_TRUE(fs::is_fifo(locked / "pipe"));
  fs::permissions(locked, fs::perms::owner_all);
}

// The session opens the context directory when the daemon asks for it,
// mid-build: one envd cannot list is said first (the Dockerfile is elsewhere,
// so its own check does not say it).
TEST_F(BuildCli, AContextDirectoryEnvdCannotReadIsSaidBeforeAnythingIsContacted) {
  ENVD_REQUIRE_MODULES("tcp builder");
  envd_ok({"context", "create", "--name", "gone", "--builder", "tcp", "--builder-address",
           "127.0.0.1:" + std::to_string(closed_port()), "--use"});
  fs::path dir = project();
  fs::path closed = home() / "closed";
  fs::create_directories(closed);
  fs::permissions(closed, fs::perms::none);
  auto r = envd_bound_by_permissions({"build", "--progress", "quiet", "-t", "x:1", "-f",
                                      (dir / "Dockerfile").string(), closed.string()});
  fs::permissions(closed, fs::perms::owner_all);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "envd: error: cannot read build context '" + closed.string() +
                       "': Permission denied\n");
}

// What goes into the Solve as text (protobuf strings) must be UTF-8: refused
// before anything is contacted, in one line, not logged by protobuf and
// refused by the daemon after the session was set up.
TEST_F(BuildCli, TextThatIsNotUtf8IsRefusedBeforeTheDaemon) {
  ENVD_REQUIRE_MODULES("tcp builder");
  envd_ok({"context", "create", "--name", "gone", "--builder", "tcp", "--builder-address",
           "127.0.0.1:" + std::to_string(closed_port()), "--use"});
  fs::path dir = project();
  const std::string latin1 = "Dock\xe9rfile";
  write_text(dir / latin1, "FROM scratch\n");
  auto refused = [&](std::vector<std::string> args,
                     const std::map<std::string, std::optional<std::string>>& env = {}) {
    args.insert(args.begin(), {"build", "--connect-timeout", "1s", "--progress", "quiet"});
    args.push_back(dir.string());
    auto r = envd(args, env);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    return r.err;
  };
  EXPECT_EQ(refused({"-f", (dir / latin1).string()}),
            "envd: error: invalid --file 'Dock\\xe9rfile': it is not UTF-8 text\n");
  EXPECT_EQ(refused({"--target", "x\xff"}),
            "envd: error: invalid --target 'x\\xff': it is not UTF-8 text\n");
  EXPECT_EQ(refused({"--build-arg", "X"}, {{"X", "\xff"}}),
            "envd: error: invalid --build-arg X (its value in envd's environment) '\\xff': it is "
            "not UTF-8 text\n");
  EXPECT_EQ(refused({"--cache-from", "type=local,src=/x\xff"}),
            "envd: error: invalid --cache-from 'type=local,src=/x\\xff': it is not UTF-8 text\n");
  EXPECT_EQ(refused({"--output", "type=local,dest=/x\xff"}),
            "envd: error: invalid --output 'type=local,dest=/x\\xff': it is not UTF-8 text\n");
  // A --build-context name is one context, whatever its kind.
  EXPECT_EQ(
      refused({"--build-context", "a=docker-image://x", "--build-context", "a=docker-image://y"}),
      "envd: error: invalid --build-context 'a=docker-image://y': 'a' is given twice\n");
}

// An empty PATH, a script's unset variable, is refused as an empty flag
// value is: exit 2, not a system error about ''.
TEST_F(BuildCli, AnEmptyPathIsAUsageError) {
  for (const char* command : {"build", "up"}) {
    auto r = envd({command, ""});
    EXPECT_EQ(r.exit_code, 2) << command;
    EXPECT_EQ(r.err, std::string("envd: error: the build context is empty (leave PATH out "
                                 "for .) (see 'envd ") +
                         command + " --help')\n");
  }
}

// A daemon that keeps the build waiting is named after three seconds, once,
// so a long --connect-timeout does not look like a hang; --progress quiet
// keeps that line back, and a deadline shorter than that never prints it.
TEST_F(BuildCli, AWaitForTheDaemonIsSaidOnce) {
  ENVD_REQUIRE_MODULES("tcp builder");
  SilentListener silent;
  const std::string endpoint = use_silent_daemon(silent);
  fs::path dir = project();
  const std::string notice =
      "Waiting for buildkitd at " + endpoint + " (at most 5 s, --connect-timeout)\n";
  auto r = envd({"build", "--connect-timeout", "5s", "--progress", "plain", dir.string()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err.find(notice), 0U) << r.err;
  EXPECT_EQ(r.err.find("Waiting", 1), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("envd: error: cannot connect to buildkitd at " + endpoint),
            std::string::npos)
      << r.err;
  r = envd({"build", "--connect-timeout", "5s", "--progress", "quiet", dir.string()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err.find("Waiting"), std::string::npos) << r.err;
  r = envd({"build", "--connect-timeout", "2s", "--progress", "plain", dir.string()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err.find("Waiting"), std::string::npos) << r.err;
  // With --output the probe runs beside the Solve and the connect returns
  // at once: the wait is the Solve's, and is said all the same.
  r = envd({"build", "--connect-timeout", "5s", "--progress", "plain", "--output",
            "type=tar,dest=" + (home() / "out.tar").string(), dir.string()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err.find(notice), 0U) << r.err;
  EXPECT_EQ(r.err.find("Waiting", 1), std::string::npos) << r.err;
}

// Ctrl-C, SIGTERM and SIGHUP while envd waits for the daemon end it at
// once, with the status a shell gives a process that signal ended (130, 143,
// 129), through the same clean-up.
TEST_F(BuildCli, ASignalDuringTheWaitEndsItWithTheSignalsStatus) {
  ENVD_REQUIRE_MODULES("tcp builder");
  SilentListener silent;
  use_silent_daemon(silent);
  fs::path dir = project();
  for (int signal : {SIGINT, SIGTERM, SIGHUP}) {
    SCOPED_TRACE(signal);
    auto bg = envd_background({"build", "--connect-timeout", "60s", dir.string()});
    ASSERT_TRUE(bg->start_error().empty()) << bg->start_error();
    ASSERT_TRUE(bg->wait_for("Waiting for buildkitd", std::chrono::seconds(30))) << bg->err();
    ASSERT_EQ(::kill(bg->pid(), signal), 0);
    auto status = bg->wait_exit(std::chrono::seconds(10));
    ASSERT_TRUE(status) << "envd did not end at the signal: " << bg->err();
    ASSERT_TRUE(WIFEXITED(*status)) << *status;
    EXPECT_EQ(WEXITSTATUS(*status), 128 + signal) << bg->err();
    EXPECT_NE(bg->err().find("envd: error: "), std::string::npos) << bg->err();
  }
}

// Ctrl-C while the builder's driver dials (moby-worker: the Engine's /grpc
// upgrade, which this Engine never answers) says the connect was cut short,
// not that a builder was being recreated.
TEST_F(BuildCli, ASignalDuringTheDriversDialSaysWhatItCut) {
  ENVD_REQUIRE_MODULES("moby-worker builder");
  SilentListener silent;
  envd_ok({"context", "create", "--name", "engine", "--builder", "moby-worker", "--use"});
  auto bg = envd_background({"build", "--connect-timeout", "60s", project().string()},
                            {{"DOCKER_HOST", "tcp://127.0.0.1:" + std::to_string(silent.port())}});
  ASSERT_TRUE(bg->start_error().empty()) << bg->start_error();
  // The dial is under way once the Engine's port has a connection waiting.
  ASSERT_TRUE(silent.connected_within(std::chrono::seconds(30))) << bg->err();
  ASSERT_EQ(::kill(bg->pid(), SIGINT), 0);
  auto status = bg->wait_exit(std::chrono::seconds(10));
  ASSERT_TRUE(status) << "envd did not end at the signal: " << bg->err();
  ASSERT_TRUE(WIFEXITED(*status)) << *status;
  EXPECT_EQ(WEXITSTATUS(*status), 130) << bg->err();
  EXPECT_NE(bg->err().find("envd: error: cancelled while connecting to buildkitd at "
                           "moby-worker://envd_buildkitd\n"),
            std::string::npos)
      << bg->err();
}

// `builder status` on a docker-container context whose Engine hears nothing:
// the driver's look at its container takes the whole --connect-timeout, and
// that is what is reported, with the user's timeout. It once went on to
// dial with what was left (1 ms) and reported "(connect timeout: 1 ms)".
TEST_F(BuildCli, BuilderStatusReportsTheLookThatTookTheDeadline) {
  ENVD_REQUIRE_MODULES("docker-container builder");
  SilentListener silent;
  const std::string engine = "tcp://127.0.0.1:" + std::to_string(silent.port());
  auto r = envd({"builder", "status", "--connect-timeout", "2s", "--format", "json"},
                {{"DOCKER_HOST", engine}});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  auto status = boost::json::parse(r.out).as_object();
  EXPECT_EQ(status["reachable"], false);
  EXPECT_EQ(boost::json::value_to<std::string>(status["error"]),
            "cannot look at the builder docker-container://envd_buildkitd: builder "
            "'docker-container': the Docker Engine at " +
                engine + " did not answer GET /_ping in time (connect timeout: 2000 ms)")
      << r.out;
}

// A kubectl that is a wrapper script (an asdf shim) runs the real one as its
// child, which holds the exec's pipes open: a dial that gets no answer ends
// them all when envd ends, the wrapper's child too, instead of envd waiting
// for it.
TEST_F(BuildCli, AKubectlWrappersChildrenEndWithTheDial) {
  ENVD_REQUIRE_MODULES("kube-pod builder");
  const fs::path grandchild = home() / ("kubectl-exec-" + std::to_string(::getpid()));
  write_text(grandchild, "#!/bin/sh\nexec sleep 30\n");
  const fs::path kubectl = home() / "kubectl";
  write_text(kubectl,
             "#!/bin/sh\n"
             "for a in \"$@\"; do [ \"$a\" = exec ] && { \"" +
                 grandchild.string() +
                 "\"; exit 0; }; done\n"
                 "echo '{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"bk\","
                 "\"namespace\":\"ci\"},\"spec\":{\"containers\":[{\"name\":\"buildkitd\"}]},"
                 "\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\","
                 "\"status\":\"True\"}]}}'\n");
  fs::permissions(kubectl, fs::perms(0755));
  fs::permissions(grandchild, fs::perms(0755));
  envd_ok({"context", "create", "--name", "kp", "--builder", "kube-pod", "--builder-address",
           "bk?namespace=ci", "--use"});
  const auto start = std::chrono::steady_clock::now();
  auto r =
      envd({"builder", "status", "--connect-timeout", "2s"}, {{"ENVD_KUBECTL", kubectl.string()}});
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_LT(took, std::chrono::seconds(15)) << "envd waited for the wrapper's child";
  sdk::ProcessOptions look;
  look.argv = {"pgrep", "-f", grandchild.string()};
  auto left = sdk::run_process(look);
  ASSERT_TRUE(left);
  EXPECT_EQ(left->out, "") << "the wrapper's child is left running";
}

// A shell starts a background job (`envd build &` in a script) with SIGINT
// ignored. envd reads its signals from a signalfd, with them blocked, and an
// ignored signal is dropped on arrival even when blocked: envd was deaf to
// SIGINT there. It takes the signal back, as the Go clients do (Go's
// signal.Notify), so `kill -INT` still ends it.
TEST_F(BuildCli, SigintEndsEnvdStartedWithItIgnored) {
  ENVD_REQUIRE_MODULES("tcp builder");
  SilentListener silent;
  use_silent_daemon(silent);
  fs::path dir = project();
  sdk::ProcessOptions options;
  options.argv = {"/bin/sh",     "-c",    "trap '' INT; exec \"$@\"", "sh",
                  envd_binary(), "build", "--connect-timeout",        "60s",
                  dir.string()};
  options.env = base_env();
  BackgroundEnvd bg(options);
  ASSERT_TRUE(bg.start_error().empty()) << bg.start_error();
  ASSERT_TRUE(bg.wait_for("Waiting for buildkitd", std::chrono::seconds(30))) << bg.err();
  std::ifstream status_file("/proc/" + std::to_string(bg.pid()) + "/status");
  std::string line;
  std::string ignored;
  while (std::getline(status_file, line)) {
    if (line.rfind("SigIgn:", 0) == 0) ignored = line;
  }
  // Bit 2 (SIGINT) of the mask: no longer ignored once envd runs.
  ASSERT_FALSE(ignored.empty());
  EXPECT_EQ(std::stoull(ignored.substr(7), nullptr, 16) & (1ULL << (SIGINT - 1)), 0U) << ignored;
  ASSERT_EQ(::kill(bg.pid(), SIGINT), 0);
  auto status = bg.wait_exit(std::chrono::seconds(10));
  ASSERT_TRUE(status) << "envd did not end at SIGINT: " << bg.err();
  ASSERT_TRUE(WIFEXITED(*status)) << *status;
  EXPECT_EQ(WEXITSTATUS(*status), 130) << bg.err();
}

// Started with stderr closed (2>&-), envd puts /dev/null there first, so the
// files and sockets it opens later (a library, the store's lock, the channel
// to the daemon) never take number 2 and receive its messages.
TEST_F(BuildCli, AClosedStderrIsDevNullWhileEnvdRuns) {
  ENVD_REQUIRE_MODULES("tcp builder");
  SilentListener silent;
  use_silent_daemon(silent);
  fs::path dir = project();
  std::vector<std::string> environment;
  for (const auto& [key, value] : full_env()) environment.push_back(key + "=" + value);
  std::vector<std::string> args = {envd_binary(), "build", "--connect-timeout", "30s",
                                   dir.string()};
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& entry : environment) envp.push_back(entry.data());
  envp.push_back(nullptr);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(2);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  // Before main, the dynamic loader and static constructors may hold number
  // 2 for a moment; from main on it is /dev/null, for good.
  const std::string fd2 = "/proc/" + std::to_string(pid) + "/fd/2";
  std::string seen;
  for (int i = 0; i < 1000 && seen != "/dev/null"; ++i) {
    std::error_code ec;
    auto target = fs::read_symlink(fd2, ec);
    seen = ec ? "" : target.string();
    if (seen != "/dev/null") std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // Still waiting for the silent daemon: what holds fd 2 now is what envd
  // would write its messages into.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::error_code ec;
  auto later = fs::read_symlink(fd2, ec);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_EQ(seen, "/dev/null");
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(later.string(), "/dev/null");
}

TEST_F(BuildCli, AnOutputThatCannotBeMadeIsSaidBeforeAnythingIsContacted) {
  ENVD_REQUIRE_MODULES("tcp builder");
  envd_ok({"context", "create", "--name", "gone", "--builder", "tcp", "--builder-address",
           "127.0.0.1:" + std::to_string(closed_port()), "--use"});
  fs::path dir = project();
  write_text(home() / "plain", "a file");
  auto r = envd({"build", "--progress", "quiet", "--output",
                 "type=local,dest=" + (home() / "plain" / "files").string(), dir.string()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err, "envd: error: cannot create output directory '" +
                       (home() / "plain" / "files").string() + "': Not a directory\n");
  EXPECT_EQ(read_text(home() / "plain"), "a file");
}

// On docker-container, reaching the builder may create and start its
// container: a destination envd cannot write is said before the Engine is
// asked anything (here there is no Engine; it was once its error instead).
TEST_F(BuildCli, AnOutputThatCannotBeMadeIsSaidBeforeTheBuilderIsStarted) {
  ENVD_REQUIRE_MODULES("docker-container builder");
  fs::path dir = project();
  write_text(home() / "plain", "a file");
  const std::map<std::string, std::optional<std::string>> no_engine{
      {"DOCKER_HOST", "unix://" + (home() / "no-such.sock").string()}};
  auto local = envd({"--context", "default", "build", "--progress", "quiet", "--output",
                     "type=local,dest=" + (home() / "plain" / "files").string(), dir.string()},
                    no_engine);
  EXPECT_EQ(local.exit_code, 1) << local.err;
  EXPECT_EQ(local.err, "envd: error: cannot create output directory '" +
                           (home() / "plain" / "files").string() + "': Not a directory\n");
  auto tar = envd({"--context", "default", "build", "--progress", "quiet", "--output",
                   "type=tar,dest=" + (home() / "missing" / "image.tar").string(), dir.string()},
                  no_engine);
  EXPECT_EQ(tar.exit_code, 1) << tar.err;
  EXPECT_EQ(tar.err, "envd: error: cannot create '" + (home() / "missing" / "image.tar").string() +
                         "': No such file or directory\n");
  // A symbolic link to a file in a missing directory: the file is written
  // through the link, so it is where the link leads that is checked.
  fs::create_symlink(home() / "missing" / "image.tar", home() / "dangling.tar");
  auto linked = envd({"--context", "default", "build", "--progress", "quiet", "--output",
                      "type=tar,dest=" + (home() / "dangling.tar").string(), dir.string()},
                     no_engine);
  EXPECT_EQ(linked.exit_code, 1) << linked.err;
  EXPECT_EQ(linked.err, "envd: error: cannot create '" + (home() / "dangling.tar").string() +
                            "': No such file or directory\n");
  fs::create_symlink("loop.tar", home() / "loop.tar");
  auto loop = envd({"--context", "default", "build", "--progress", "quiet", "--output",
                    "type=tar,dest=" + (home() / "loop.tar").string(), dir.string()},
                   no_engine);
  EXPECT_EQ(loop.exit_code, 1) << loop.err;
  EXPECT_EQ(loop.err, "envd: error: cannot create '" + (home() / "loop.tar").string() +
                          "': Too many levels of symbolic links\n");
  // A directory is not made through a link (mkdir does not follow one).
  auto into_link = envd({"--context", "default", "build", "--progress", "quiet", "--output",
                         "type=local,dest=" + (home() / "dangling.tar").string(), dir.string()},
                        no_engine);
  EXPECT_EQ(into_link.exit_code, 1) << into_link.err;
  EXPECT_EQ(into_link.err, "envd: error: cannot create output directory '" +
                               (home() / "dangling.tar").string() + "': File exists\n");
  EXPECT_EQ(read_text(home() / "plain"), "a file");
  EXPECT_FALSE(fs::exists(home() / "missing"));
}

// What docker build also reads from a URL is not mistaken for a missing
// directory named "https:"; a Dockerfile on standard input (`-f -`, or `-`
// with no context) is read, and what cannot be one is refused before a
// daemon is contacted (the builder here is a closed port).
TEST_F(BuildCli, StdinIsReadAsADockerfileAndRemoteContextsAreSaidToBeUnsupported) {
  ENVD_REQUIRE_MODULES("tcp builder");
  envd_ok({"context", "create", "--name", "gone", "--builder", "tcp", "--builder-address",
           "127.0.0.1:" + std::to_string(closed_port()), "--use"});
  fs::path dir = project();
  const std::string from_flag = "envd: error: the Dockerfile on standard input (-f -)";
  const std::string from_dash = "envd: error: the Dockerfile on standard input ('-')";
  auto empty = envd({"build", "-f", "-", dir.string()});
  EXPECT_EQ(empty.exit_code, 1);
  EXPECT_EQ(empty.err, from_flag + " is empty\n");
  const std::string archive_message =
      " is an archive: envd builds a context directory, not a tarred one; extract it and give "
      "its directory\n";
  auto gzip = envd({"build", "-t", "a:1", "-"}, {}, std::string("\x1f\x8b\x08\0", 4));
  EXPECT_EQ(gzip.exit_code, 1);
  EXPECT_EQ(gzip.err, from_dash + archive_message);
  std::string tar_header(512, '\0');
  tar_header.replace(0, 10, "Dockerfile");
  tar_header.replace(257, 6, std::string("ustar\0", 6));
  auto tar = envd({"build", "-f", "-", dir.string()}, {}, tar_header);
  EXPECT_EQ(tar.err, from_flag + archive_message);
  // Found wrong before standard input is read: command lines envd cannot
  // use as given, so usage errors (exit 2), as a required flag left out is.
  auto untagged = envd({"build", "-"}, {}, "FROM scratch\n");
  EXPECT_EQ(untagged.exit_code, 2);
  EXPECT_EQ(untagged.err,
            "envd: error: a build from standard input ('-') has no directory to name the image "
            "after: give -t NAME[:TAG] (see 'envd build --help')\n");
  auto with_file = envd({"build", "-t", "a:1", "-f", "Dockerfile", "-"}, {}, "FROM scratch\n");
  EXPECT_EQ(with_file.exit_code, 2);
  EXPECT_EQ(with_file.err,
            "envd: error: -f 'Dockerfile' is not taken with '-': standard input is the "
            "Dockerfile (see 'envd build --help')\n");
  auto missing = envd({"build", "-f", "-", (home() / "nowhere").string()}, {}, "FROM scratch\n");
  EXPECT_EQ(missing.err,
            "envd: error: build context '" + (home() / "nowhere").string() + "' does not exist\n");
  // A closed stdin is said, and not mistaken for a descriptor envd-client's
  // start-up opened in its place.
  sdk::ProcessOptions closed;
  closed.argv = {"sh", "-c", "exec \"$0\" build -f - \"$1\" <&-", envd_binary(), dir.string()};
  closed.env = base_env();
  closed.timeout = std::chrono::seconds(30);
  auto closed_run = sdk::run_process(closed);
  ASSERT_TRUE(closed_run) << closed_run.error().message();
  EXPECT_EQ(closed_run->exit_code, 1);
  EXPECT_EQ(closed_run->err, from_flag + ": standard input is closed; pipe the Dockerfile in\n");
  // A Dockerfile that is read goes to the daemon: here, the closed port.
  auto read =
      envd({"build", "-f", "-", "--connect-timeout", "1s", dir.string()}, {}, "FROM scratch\n");
  EXPECT_EQ(read.exit_code, 1);
  EXPECT_NE(read.err.find("cannot connect to buildkitd"), std::string::npos) << read.err;
  // A secret from the same standard input would be empty.
  auto secret = envd({"build", "-f", "-", "--secret", "id=t,src=/dev/stdin", dir.string()}, {},
                     "FROM scratch\n");
  EXPECT_EQ(secret.exit_code, 1);
  EXPECT_EQ(secret.err,
            "envd: error: --secret id=t,src=/dev/stdin: standard input is read by -f - (the "
            "Dockerfile), so this secret would be empty; give it in a file or a variable\n");
  auto up = envd({"up", "-"});
  EXPECT_EQ(up.exit_code, 1);
  EXPECT_EQ(up.err,
            "envd: error: a build from standard input ('-') is envd build's only: give a "
            "directory\n");
  for (const std::string url : {"https://github.com/x/y.git", "git@github.com:x/y.git"}) {
    auto remote = envd({"build", url});
    EXPECT_EQ(remote.exit_code, 1);
    EXPECT_EQ(remote.err, "envd: error: a remote build context '" + url +
                              "' is not supported: clone or download it, and give its "
                              "directory\n");
  }
}

TEST_F(BuildCli, PlatformsAndOutputAttributesAreCheckedBeforeAnythingIsContacted) {
  ENVD_REQUIRE_MODULES("tcp builder");
  envd_ok({"context", "create", "--name", "gone", "--builder", "tcp", "--builder-address",
           "127.0.0.1:" + std::to_string(closed_port()), "--use"});
  fs::path dir = project();
  const std::string expected = "; expected e.g. linux/amd64 or linux/amd64,linux/arm64/v8\n";
  for (const auto& [platform, why] : std::vector<std::pair<std::string, std::string>>{
           {"bogus/x/y/z", "'bogus/x/y/z' is not OS[/ARCH[/VARIANT]]"},
           {"/", "'/' is not OS[/ARCH[/VARIANT]]"},
           {"linux/amd64,", "a platform in the list is empty"},
           {"linux/am d64", "'linux/am d64' is not OS[/ARCH[/VARIANT]]"}}) {
    auto r = envd({"build", "--progress", "quiet", "--platform", platform, dir.string()});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(r.err, "envd: error: invalid --platform '" + platform + "': " + why + expected);
  }
  auto push =
      envd({"build", "--progress", "quiet", "-o", "type=image,name=a,push=maybe", dir.string()});
  EXPECT_EQ(push.err,
            "envd: error: --output 'type=image,name=a,push=maybe': push=maybe is not a boolean "
            "(true or false)\n");
  // The CSV reader's own error names the flag and the value once.
  auto quote = envd({"build", "-o", "type=local,dest=x,\"bad", dir.string()});
  EXPECT_EQ(quote.exit_code, 1);
  EXPECT_EQ(quote.err,
            "envd: error: invalid --output 'type=local,dest=x,\"bad': unterminated quote\n");
  // A quote inside a field that is not quoted is refused, as buildctl does,
  // rather than taken into the path (a directory named '"out').
  auto stray = envd({"build", "-o", "type=local,dest=\"out", dir.string()});
  EXPECT_EQ(stray.exit_code, 1);
  EXPECT_EQ(stray.err.rfind("envd: error: invalid --output 'type=local,dest=\"out': a '\"' inside "
                            "a field that is not quoted",
                            0),
            0u)
      << stray.err;
  EXPECT_FALSE(fs::exists("\"out"));
  for (const std::string platform :
       {"linux", "linux/amd64", "linux/arm64/v8,linux/amd64", "linux/arm64/v8.0", "linux/arm/v7",
        "windows(10.0.20348)/amd64", "darwin"}) {
    expect_unreachable({"--platform", platform, dir.string()});
  }
}

// An archive on stdout is all that goes there: -q's image ID or a result
// file naming stdout would follow it and corrupt it for whatever reads the
// stream. A push needs a name the user gave, not the default <dir>:dev,
// which is a Docker Hub name. Refused before anything is contacted.
TEST_F(BuildCli, WhatWouldSpoilAnArchiveOrPushANameNobodyChoseIsRefusedFirst) {
  ENVD_REQUIRE_MODULES("tcp builder");
  envd_ok({"context", "create", "--name", "gone", "--builder", "tcp", "--builder-address",
           "127.0.0.1:" + std::to_string(closed_port()), "--use"});
  fs::path dir = project();
  auto quiet = envd({"build", "-q", "-o", "type=oci", dir.string()});
  EXPECT_EQ(quiet.exit_code, 1);
  EXPECT_EQ(quiet.err,
            "envd: error: -q prints the image ID on standard output, where --output 'type=oci' "
            "writes the oci archive; use --progress quiet (and --iidfile FILE for the ID)\n");
  EXPECT_EQ(quiet.out, "");
  for (const char* file : {"--iidfile", "--metadata-file"}) {
    auto r = envd({"build", file, "/dev/stdout", "-o", "type=docker,dest=-", dir.string()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, std::string("envd: error: ") + file +
                         " '/dev/stdout' is standard output, where --output 'type=docker,dest=-' "
                         "writes the docker archive; give it a file\n");
  }
  // A tarball of files has no ID: -q adds nothing to it.
  expect_unreachable({"-q", "-o", "type=tar", dir.string()});

  for (const char* output : {"type=image,push=true", "type=registry"}) {
    auto r = envd({"build", "-o", output, dir.string()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, std::string("envd: error: --output '") + output +
                         "': a push needs the image's name: give -t NAME[:TAG] or name=REF\n");
  }
  expect_unreachable({"-t", "reg.example:5000/app:1", "-o", "type=registry", dir.string()});
  expect_unreachable({"-o", "type=image,name=reg.example:5000/app:1,push=true", dir.string()});
}

// --buildkitd-image is for a builder made from an image (docker-container):
// with any other it is refused, for every command that reaches the builder,
// instead of being ignored; a bad image is refused by the driver's own check.
TEST_F(BuildCli, BuildkitdImageIsRefusedForABuilderNotMadeFromAnImage) {
  ENVD_REQUIRE_MODULES("tcp builder", "docker-container builder");
  envd_ok({"context", "create", "--name", "gone", "--builder", "tcp", "--builder-address",
           "127.0.0.1:" + std::to_string(closed_port()), "--use"});
  const std::string expected =
      "envd: error: --buildkitd-image cannot be used with context 'gone': builder 'tcp': "
      "unknown option 'image' (allowed: tls-ca, tls-cert, tls-key, "
      "tls-servername)\n";
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{"build", "--progress", "quiet", project().string()},
        {"bootstrap"},
        {"builder", "status"}}) {
    std::vector<std::string> args{"--buildkitd-image", "moby/buildkit:v0.11.6"};
    args.insert(args.end(), command.begin(), command.end());
    auto r = envd(args);
    EXPECT_EQ(r.exit_code, 1) << command[0];
    EXPECT_EQ(r.err, expected) << command[0];
  }
  envd_ok({"context", "create", "--name", "managed", "--builder", "docker-container", "--use"});
  auto bad = envd({"--buildkitd-image", "Not An Image", "builder", "status"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_EQ(bad.err.rfind("envd: error: --buildkitd-image cannot be used with context 'managed': "
                          "builder 'docker-container': ",
                          0),
            0u)
      << bad.err;
}

TEST_F(BuildCli, AnUnreachableEngineLeavesNoOutputBehind) {
  ENVD_REQUIRE_MODULES("moby-worker builder");
  envd_ok({"context", "create", "--name", "engine", "--builder", "moby-worker", "--use"});
  fs::path dir = project();
  fs::path out = home() / "out";
  std::map<std::string, std::optional<std::string>> env{
      {"DOCKER_HOST", "unix://" + (home() / "no-such.sock").string()}};
  expect_unreachable({"--output", "type=local,dest=" + (out / "files").string(), dir.string()},
                     env);
  EXPECT_FALSE(fs::exists(out)) << "the build made " << out;
  // A tarball's directory must exist (it is not made): with it, the Engine
  // is what fails, and the directory stays empty.
  fs::create_directories(out);
  expect_unreachable({"--output", "type=tar,dest=" + (out / "image.tar").string(), dir.string()},
                     env);
  EXPECT_TRUE(fs::is_empty(out)) << "the build left something in " << out;
}

}  // namespace
}  // namespace envd::test
