#include "cli/daemon_answer.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "util/test_support.hpp"

namespace envd::cli {
namespace {

namespace fs = std::filesystem;
using util::testing::ScopedEnv;
using util::testing::TempDir;

class DaemonAnswer : public ::testing::Test {
 protected:
  DaemonAnswer() : cache_env_("XDG_CACHE_HOME", dir_.path().string()) {
    context_.name = "ci";
    context_.id = "0123456789abcdef";
    context_.builder = "tcp";
    context_.builder_address = "127.0.0.1:1234";
    buildkit::Worker worker;
    worker.id = "w0";
    worker.platforms = {"linux/amd64", "linux/386"};
    worker.labels = {{"org.mobyproject.buildkit.worker.executor", "oci"}};
    workers_ = {worker};
  }

  fs::path file() const { return dir_.path() / "envd/daemons/0123456789abcdef.json"; }

  TempDir dir_;
  ScopedEnv cache_env_;
  context::Context context_;
  std::vector<buildkit::Worker> workers_;
};

TEST_F(DaemonAnswer, WhatIsSavedIsLoaded) {
  EXPECT_FALSE(load_daemon_answer(context_)) << "nothing remembered yet";
  save_daemon_answer(context_, workers_);
  EXPECT_EQ(daemon_answer_file(context_), file());
  struct stat st {};
  ASSERT_EQ(::stat(file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto loaded = load_daemon_answer(context_);
  ASSERT_TRUE(loaded);
  ASSERT_EQ(loaded->size(), 1u);
  EXPECT_EQ((*loaded)[0].id, "w0");
  EXPECT_EQ((*loaded)[0].platforms, workers_[0].platforms);
  EXPECT_TRUE((*loaded)[0].labels.empty()) << "only what the exporter choice needs is kept";
}

TEST_F(DaemonAnswer, AnAnswerForAnotherEndpointIsIgnored) {
  save_daemon_answer(context_, workers_);
  context_.builder_address = "127.0.0.1:5678";  // `envd context update` moved it
  EXPECT_FALSE(load_daemon_answer(context_));
  save_daemon_answer(context_, {});
  auto loaded = load_daemon_answer(context_);
  ASSERT_TRUE(loaded);
  EXPECT_TRUE(loaded->empty());
}

TEST_F(DaemonAnswer, ACorruptOrForeignFileIsIgnoredAndRewritten) {
  fs::create_directories(file().parent_path());
  for (const char* text :
       {"", "not json", "[]", R"({"format": 2, "endpoint": "tcp://127.0.0.1:1234", "workers": []})",
        R"({"format": 1, "endpoint": "tcp://127.0.0.1:1234", "workers": {}})",
        R"({"format": 1, "endpoint": "tcp://127.0.0.1:1234", "workers": [{"id": 7}]})",
        R"({"format": 1, "endpoint": "tcp://127.0.0.1:1234",
            "workers": [{"id": "w", "platforms": [1]}]})"}) {
    util::testing::write_text(file(), text);
    EXPECT_FALSE(load_daemon_answer(context_)) << text;
  }
  save_daemon_answer(context_, workers_);
  EXPECT_TRUE(load_daemon_answer(context_));
}

// A remembered answer is derived: one left read-only (a sudo run, a chmod)
// is still replaced, or every build would start again on the stale one.
TEST_F(DaemonAnswer, AReadOnlyAnswerIsStillReplaced) {
  fs::create_directories(file().parent_path());
  util::testing::write_text(file(), "not json");
  ASSERT_EQ(::chmod(file().c_str(), 0444), 0);
  save_daemon_answer(context_, workers_);
  EXPECT_TRUE(load_daemon_answer(context_));
}

// A FIFO in the answer's place is not opened for writing (that would wait
// for a reader for ever, after the build was done): the answer is not kept.
TEST_F(DaemonAnswer, AFifoInTheAnswersPlaceIsLeftAlone) {
  fs::create_directories(file().parent_path());
  ASSERT_EQ(::mkfifo(file().c_str(), 0600), 0);
  EXPECT_FALSE(load_daemon_answer(context_));
  // On a thread of its own, detached: a save that waits fails the test
  // instead of hanging it.
  std::promise<void> done;
  auto saved = done.get_future();
  std::thread([context = context_, workers = workers_, done = std::move(done)]() mutable {
    save_daemon_answer(context, workers);
    done.set_value();
  }).detach();
  ASSERT_EQ(saved.wait_for(std::chrono::seconds(10)), std::future_status::ready)
      << "the save waited on the FIFO";
  EXPECT_EQ(fs::status(file()).type(), fs::file_type::fifo);
}

TEST_F(DaemonAnswer, TheSameAnswerIsNotWrittenAgain) {
  save_daemon_answer(context_, workers_);
  struct stat before {};
  ASSERT_EQ(::stat(file().c_str(), &before), 0);
  save_daemon_answer(context_, workers_);
  struct stat after {};
  ASSERT_EQ(::stat(file().c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino) << "an atomic rewrite would have replaced the file";
  workers_[0].id = "w1";
  save_daemon_answer(context_, workers_);
  ASSERT_TRUE(load_daemon_answer(context_));
  EXPECT_EQ(load_daemon_answer(context_)->at(0).id, "w1");
}

TEST_F(DaemonAnswer, AContextWithoutASafeKeyIsNotRemembered) {
  context_.id = "../escape";
  EXPECT_TRUE(daemon_answer_file(context_).empty());
  save_daemon_answer(context_, workers_);
  EXPECT_FALSE(load_daemon_answer(context_));
  EXPECT_FALSE(fs::exists(dir_.path() / "envd"));
  // A context with no id yet is remembered by its (validated) name.
  context_.id.clear();
  EXPECT_EQ(daemon_answer_file(context_), dir_.path() / "envd/daemons/ci.json");
}

}  // namespace
}  // namespace envd::cli
