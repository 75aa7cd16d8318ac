#include "envd/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "test_support.hpp"

namespace envd::sdk {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

ProcessOptions command(std::vector<std::string> argv) {
  ProcessOptions options;
  options.argv = std::move(argv);
  return options;
}

ProcessOptions shell(const std::string& script) { return command({"sh", "-c", script}); }

ProcessResult run_ok(const ProcessOptions& options) {
  auto result = run_process(options);
  EXPECT_TRUE(result) << result.error().message();
  return result ? *result : ProcessResult{};
}

TEST(RunProcess, CapturesOutputAndExitCode) {
  auto result = run_ok(shell("echo out; echo err >&2; exit 3"));
  EXPECT_EQ(result.out, "out\n");
  EXPECT_EQ(result.err, "err\n");
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_EQ(result.term_signal, 0);
  EXPECT_FALSE(result.timed_out);
  EXPECT_FALSE(result.succeeded());
  EXPECT_TRUE(run_ok(shell("exit 0")).succeeded());
}

TEST(RunProcess, ReportsTheSignalThatEndedTheChild) {
  auto result = run_ok(shell("kill -TERM $$"));
  EXPECT_EQ(result.term_signal, SIGTERM);
  EXPECT_FALSE(result.succeeded());
}

TEST(RunProcess, StdinIsDevNullWithoutData) {
  auto result = run_ok(command({"cat"}));
  EXPECT_TRUE(result.succeeded());
  EXPECT_EQ(result.out, "");
}

TEST(RunProcess, LargeStdinAndOutputsDoNotDeadlock) {
  // Both directions far beyond a pipe's 64 KiB buffer at once.
  std::string data;
  for (int i = 0; data.size() < 3 * 1024 * 1024; ++i) data += "line " + std::to_string(i) + "\n";
  ProcessOptions options = shell("tee /dev/stderr");
  options.stdin_data = data;
  options.timeout = milliseconds(30000);
  auto result = run_ok(options);
  EXPECT_TRUE(result.succeeded()) << result.err.substr(0, 200);
  EXPECT_EQ(result.out.size(), data.size());
  EXPECT_TRUE(result.out == data);
  EXPECT_TRUE(result.err == data);
}

TEST(RunProcess, ChildClosingStdinEarlyIsNotAnError) {
  ProcessOptions options = shell("exec 0<&-; echo done");
  options.stdin_data = std::string(4 * 1024 * 1024, 'x');
  auto result = run_ok(options);  // a SIGPIPE here would kill the test binary
  EXPECT_TRUE(result.succeeded());
  EXPECT_EQ(result.out, "done\n");
}

TEST(RunProcess, TimeoutKillsTheChild) {
  ProcessOptions options = shell("echo started; exec sleep 30");
  options.timeout = milliseconds(1000);  // ample time to echo, even on a loaded machine
  auto start = Clock::now();
  auto result = run_ok(options);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(10));
  EXPECT_TRUE(result.timed_out);
  EXPECT_EQ(result.term_signal, SIGKILL);
  EXPECT_EQ(result.out, "started\n");
  EXPECT_FALSE(result.succeeded());
}

// A child that writes without end is killed at the bound, on either
// stream, and its caller keeps the bound's worth; output within it is whole.
TEST(RunProcess, OutputBeyondTheBoundKillsTheChild) {
  for (const char* stream : {"", " >&2"}) {
    ProcessOptions options = shell(std::string("exec yes envd") + stream);
    options.max_output = 100 * 1024;
    options.timeout = milliseconds(30000);
    auto start = Clock::now();
    auto result = run_ok(options);
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(10)) << stream;
    EXPECT_TRUE(result.output_exceeded) << stream;
    EXPECT_FALSE(result.timed_out) << stream;
    EXPECT_EQ(result.term_signal, SIGKILL) << stream;
    EXPECT_FALSE(result.succeeded()) << stream;
    const std::string& kept = stream[0] == '\0' ? result.out : result.err;
    EXPECT_EQ(kept.size(), options.max_output) << stream;
    EXPECT_EQ(kept.substr(0, 10), "envd\nenvd\n") << stream;
  }
  ProcessOptions within = shell("head -c 100000 /dev/zero; echo err >&2");
  within.max_output = 100000;
  auto result = run_ok(within);
  EXPECT_TRUE(result.succeeded());
  EXPECT_FALSE(result.output_exceeded);
  EXPECT_EQ(result.out.size(), 100000U);
  EXPECT_EQ(result.err, "err\n");
}

TEST(RunProcess, GrandchildHoldingThePipeDoesNotOutliveTheDeadline) {
  // The shell exits at once, a background sleep keeps stdout open. At the
  // deadline the child has already exited, so this is no timeout.
  ProcessOptions options = shell("sleep 6 & echo parent");
  options.timeout = milliseconds(1000);
  auto start = Clock::now();
  auto result = run_ok(options);
  EXPECT_LT(Clock::now() - start, milliseconds(5000));
  EXPECT_FALSE(result.timed_out);
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.out, "parent\n");
}

TEST(RunProcess, MissingExecutableIsNotFoundBeforeSpawning) {
  auto result = run_process(command({"envd-test-no-such-tool", "--version"}));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), Errc::not_found);
  EXPECT_EQ(result.error().message(), "cannot run 'envd-test-no-such-tool': not found on PATH");

  auto absolute = run_process(command({"/nonexistent/envd-tool"}));
  ASSERT_FALSE(absolute);
  EXPECT_EQ(absolute.error().code(), Errc::not_found);
  EXPECT_EQ(absolute.error().message(),
            "cannot run '/nonexistent/envd-tool': No such file or directory");
}

TEST(RunProcess, NonExecutableFileIsAPermissionError) {
  TempDir dir;
  fs::path file = dir.write("tool", "#!/bin/sh\necho hi\n", fs::perms::owner_read);
  auto direct = run_process(command({file.string()}));
  ASSERT_FALSE(direct);
  EXPECT_EQ(direct.error().code(), Errc::permission);

  ProcessOptions via_path = command({"tool"});
  via_path.env["PATH"] = dir.path().string();
  auto searched = run_process(via_path);
  ASSERT_FALSE(searched);
  EXPECT_EQ(searched.error().code(), Errc::permission);
  EXPECT_EQ(searched.error().message(),
            "cannot run 'tool': found on PATH but not an executable file");
}

TEST(RunProcess, LooksUpTheChildsPath) {
  TempDir dir;
  dir.write("envd-test-tool", "#!/bin/sh\necho from-tool \"$1\"\n",
            fs::perms::owner_all | fs::perms::group_read);
  ProcessOptions options = command({"envd-test-tool", "arg"});
  options.env["PATH"] = dir.path().string() + ":/usr/bin:/bin";
  auto result = run_ok(options);
  EXPECT_EQ(result.out, "from-tool arg\n");
}

TEST(RunProcess, EnvironmentChanges) {
  ::setenv("ENVD_TEST_INHERITED", "yes", 1);
  ::setenv("ENVD_TEST_REMOVED", "present", 1);
  ProcessOptions options =
      shell("echo \"$ENVD_TEST_INHERITED|${ENVD_TEST_REMOVED-unset}|$ENVD_SET\"");
  options.env["ENVD_TEST_REMOVED"] = std::nullopt;
  options.env["ENVD_SET"] = "a b";
  EXPECT_EQ(run_ok(options).out, "yes|unset|a b\n");

  ProcessOptions cleared = shell("echo \"${ENVD_TEST_INHERITED-unset}|$ONLY\"");
  cleared.clear_env = true;
  cleared.env["ONLY"] = "this";
  EXPECT_EQ(run_ok(cleared).out, "unset|this\n");

  ProcessOptions bad = shell("true");
  bad.env["A=B"] = "x";
  auto result = run_process(bad);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), Errc::invalid_argument);
}

TEST(RunProcess, WorkingDirectory) {
  TempDir dir;
  ProcessOptions options = command({"pwd"});
  options.cwd = dir.path().string();
  EXPECT_EQ(run_ok(options).out, fs::canonical(dir.path()).string() + "\n");

  ProcessOptions missing = command({"pwd"});
  missing.cwd = (dir.path() / "gone").string();
  auto result = run_process(missing);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), Errc::not_found);
  EXPECT_EQ(result.error().message(),
            "cannot run 'pwd': working directory '" + missing.cwd + "' does not exist");
}

TEST(RunProcess, EmptyArgvIsInvalid) {
  auto result = run_process({});
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), Errc::invalid_argument);
}

TEST(RunProcess, DescriptorsBeyondStderrAreClosedInTheChild) {
  int leaked = ::fcntl(STDERR_FILENO, F_DUPFD, 50);  // deliberately without O_CLOEXEC
  ASSERT_GE(leaked, 50);
  std::string fd = std::to_string(leaked);
  auto result =
      run_ok(shell("if [ -e /proc/self/fd/" + fd + " ]; then echo open; else echo closed; fi"));
  ::close(leaked);
  EXPECT_EQ(result.out, "closed\n");
}

TEST(SpawnProcess, UsesTheGivenDescriptorsAndWaits) {
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  auto pid = spawn_process(shell("echo to-stdout; echo to-stderr >&2; exit 7"), -1, out[1], out[1]);
  ASSERT_TRUE(pid) << pid.error().message();
  ::close(out[1]);
  std::string text;
  char buffer[256];
  ssize_t n;
  while ((n = ::read(out[0], buffer, sizeof buffer)) > 0)
    text.append(buffer, static_cast<size_t>(n));
  ::close(out[0]);
  auto code = wait_process(*pid);
  ASSERT_TRUE(code) << code.error().message();
  EXPECT_EQ(*code, 7);
  EXPECT_EQ(text, "to-stdout\nto-stderr\n");
}

TEST(SpawnProcess, SwappedDescriptorsStayDistinct) {
  int a[2];
  int b[2];
  ASSERT_EQ(::pipe2(a, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(b, O_CLOEXEC), 0);
  // stdout goes to pipe a, stderr to pipe b; dup2 order must not merge them.
  auto pid = spawn_process(shell("echo A; echo B >&2"), -1, a[1], b[1]);
  ASSERT_TRUE(pid) << pid.error().message();
  ::close(a[1]);
  ::close(b[1]);
  char buffer[16] = {};
  EXPECT_EQ(::read(a[0], buffer, sizeof buffer), 2);
  EXPECT_EQ(std::string(buffer, 2), "A\n");
  EXPECT_EQ(::read(b[0], buffer, sizeof buffer), 2);
  EXPECT_EQ(std::string(buffer, 2), "B\n");
  ::close(a[0]);
  ::close(b[0]);
  auto code = wait_process(*pid);
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 0);
}

TEST(SpawnProcess, KilledChildReports128PlusSignal) {
  auto pid = spawn_process(shell("kill -KILL $$"), -1, -1, -1);
  ASSERT_TRUE(pid) << pid.error().message();
  auto code = wait_process(*pid);
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 128 + SIGKILL);
}

TEST(SpawnProcess, ErrorsAreReported) {
  auto missing = spawn_process(command({"envd-test-no-such-tool"}), -1, -1, -1);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::not_found);

  auto bad_fd = spawn_process(shell("true"), -1, 987, -1);
  ASSERT_FALSE(bad_fd);
  EXPECT_EQ(bad_fd.error().code(), Errc::invalid_argument);

  auto not_child = wait_process(1);
  ASSERT_FALSE(not_child);
  EXPECT_EQ(not_child.error().code(), Errc::not_found);
}

TEST(FormatCommand, QuotesOnlyWhatNeedsIt) {
  EXPECT_EQ(format_command({"docker", "exec", "-i", "envd_buildkitd", "buildctl", "dial-stdio"}),
            "docker exec -i envd_buildkitd buildctl dial-stdio");
  EXPECT_EQ(format_command({"sh", "-c", "echo hi"}), "sh -c 'echo hi'");
  EXPECT_EQ(format_command({"echo", "it's"}), "echo 'it'\\''s'");
  EXPECT_EQ(format_command({"printf", ""}), "printf ''");
  EXPECT_EQ(format_command({"a", "$HOME", "x;y"}), "a '$HOME' 'x;y'");
  EXPECT_EQ(format_command({"--context=kind@x", "a/b:c"}), "--context=kind@x a/b:c");
  EXPECT_EQ(format_command({}), "");
}

}  // namespace
}  // namespace envd::sdk
