// The scanner's process boundary, without test modules (the dlopen suite,
// tests/plugins, has one per flaw): where its helper is, and that a scan works
// from a process that already runs threads, which a fork() could not promise.
#include "plugin/scanner.hpp"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

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

}  // namespace
}  // namespace envd::plugin
