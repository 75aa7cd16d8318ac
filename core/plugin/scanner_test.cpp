// The scanner's process boundary, without test modules (the dlopen suite,
// tests/plugins, has one per flaw): where its helper is, and that a scan works
// from a process that already runs threads, which a fork() could not promise.
#include "plugin/scanner.hpp"

#include <dlfcn.h>
#include <elf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "envd/process.hpp"
#include "plugin/test_support.hpp"

namespace envd::plugin {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A shared library this process has loaded that is not an envd module: the
// C++ runtime's.
fs::path a_shared_library() {
  Dl_info info{};
  EXPECT_NE(::dladdr(reinterpret_cast<void*>(&std::terminate), &info), 0);
  return fs::canonical(info.dli_fname);
}

TEST(Scanner, ItsHelperIsBuiltBesideTheTestsAsInAnInstall) {
  fs::path helper = scan_helper();
  EXPECT_EQ(helper.filename(), "envd-plugin-scan");
  EXPECT_EQ(helper.parent_path().filename(), "envd");
  EXPECT_EQ(::access(helper.c_str(), X_OK), 0) << helper;
}

// envd killed between the helper's start and its PR_SET_PDEATHSIG would leave
// the helper adopted and the request made too late: the helper is told envd's
// pid and, finding another parent, ends before loading anything.
TEST(Scanner, ItsHelperEndsAtOnceWhenItsParentIsNotTheEnvdThatNamedItself) {
  sdk::ProcessOptions options;
  options.argv = {scan_helper().string(), a_shared_library().string(), "1"};
  options.timeout = 5s;
  auto run = sdk::run_process(options);
  ASSERT_TRUE(run) << run.error().message();
  EXPECT_FALSE(run->timed_out);
  EXPECT_EQ(run->exit_code, 124);
  EXPECT_EQ(run->out, "");

  options.argv[2] = std::to_string(::getpid());
  run = sdk::run_process(options);
  ASSERT_TRUE(run) << run.error().message();
  EXPECT_EQ(run->exit_code, 0) << "the same helper, named by its real parent, scans";
  EXPECT_NE(run->out.find("envd_plugin_entry"), std::string::npos) << run->out;

  for (const char* bad : {"", "0", "-5", "12x"}) {
    options.argv[2] = bad;
    run = sdk::run_process(options);
    ASSERT_TRUE(run);
    EXPECT_EQ(run->exit_code, 2) << "ENVD_PID '" << bad << "'";
  }
}

TEST(Scanner, ScansWhileThisProcessRunsThreads) {
  std::mutex mutex;
  std::condition_variable wake;
  bool done = false;
  // A thread that holds a lock throughout the scan: a forked child would
  // inherit the lock held and no thread to release it.
  std::thread busy([&] {
    std::unique_lock lock(mutex);
    wake.wait(lock, [&] { return done; });
  });
  ModuleInfo info = scan_module(a_shared_library(), 5s);
  {
    std::lock_guard lock(mutex);
    done = true;
  }
  wake.notify_all();
  busy.join();
  EXPECT_FALSE(info.ok);
  EXPECT_EQ(info.reason,
            "no entry symbol 'envd_plugin_entry': it is not an envd plugin, or was built without "
            "ENVD_PLUGIN_EXPORT");
}

TEST(Scanner, AFileThatIsNotElfStartsNoProcess) {
  testing::TempDir tmp;
  fs::path file = tmp / "text.so";
  testing::write_text(file, "not a library\n");
  EXPECT_EQ(scan_module(file, 5s).reason, "not an ELF shared library");
}

// A module of another machine or word size is said to be one (glibc's own
// word for the first is "cannot open shared object file: No such file or
// directory", about a file that is there), and no process is started.
TEST(Scanner, AModuleOfAnotherArchitectureIsNamedAsSuch) {
  testing::TempDir tmp;
  std::string library = util::testing::read_text(a_shared_library());
  ASSERT_GT(library.size(), 20u);
  // A machine that is not this one, in this one's byte order.
#if defined(__x86_64__)
  const std::uint16_t other = EM_AARCH64;
  const std::string expected = "built for aarch64 (arm64); this envd runs on x86-64 (amd64)";
#else
  const std::uint16_t other = EM_X86_64;
  const std::string expected = "built for x86-64 (amd64); this envd runs on ";
#endif
  std::string foreign = library;
  std::memcpy(foreign.data() + 18, &other, sizeof other);  // e_machine
  testing::write_text(tmp / "foreign.so", foreign);
  EXPECT_EQ(scan_module(tmp / "foreign.so", 5s).reason.rfind(expected, 0), 0u)
      << scan_module(tmp / "foreign.so", 5s).reason;
  std::string damaged = library;
  damaged[EI_CLASS] = 7;
  testing::write_text(tmp / "damaged.so", damaged);
  EXPECT_EQ(scan_module(tmp / "damaged.so", 5s).reason,
            "not an ELF shared library (its header is damaged)");
  std::string narrow = library;
  narrow[EI_CLASS] = ELFCLASS32;
  testing::write_text(tmp / "narrow.so", narrow);
  EXPECT_EQ(scan_module(tmp / "narrow.so", 5s).reason,
            "built for a 32-bit system; this envd is 64-bit");
}

// The manifest cache keeps verdicts per scanner: a rebuilt or upgraded envd
// looks again at every module.
TEST(Scanner, ItsIdentityNamesEnvdsVersionAndItsHelper) {
  std::string identity = scanner_identity();
  EXPECT_EQ(identity.rfind("envd " ENVD_VERSION ", helper ", 0), 0u) << identity;
  EXPECT_EQ(identity, scanner_identity());
}

}  // namespace
}  // namespace envd::plugin
