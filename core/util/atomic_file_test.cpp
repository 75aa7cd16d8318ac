// write_file_atomically()'s temporary file: one of its own per write, so that
// nothing sitting at a temporary's name is ever opened or written, and two
// writers of one file never share an inode.
#include "util/atomic_file.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "util/test_support.hpp"

namespace envd::util {
namespace {

namespace fs = std::filesystem;

using testing::entry_names;
using testing::read_text;
using testing::write_text;

class AtomicFile : public ::testing::Test {
 protected:
  std::vector<std::string> names() const { return entry_names(dir_); }

  testing::TempDir tmp_;
  const fs::path dir_ = tmp_.path();
};

// A FIFO at the name an older envd used for its temporary blocked every
// write's open for ever; a hard link there to a file elsewhere had that file
// overwritten with the store and made 0600.
TEST_F(AtomicFile, WhatSitsAtATemporarysNameIsNeverOpened) {
  const fs::path file = dir_ / "contexts.json";
  ASSERT_EQ(::mkfifo((file.string() + ".tmp").c_str(), 0600), 0);
  ASSERT_TRUE(write_file_atomically(file, "one", 0600));
  EXPECT_EQ(read_text(file), "one");
  fs::remove(file.string() + ".tmp");

  const fs::path victim = dir_ / "victim";
  write_text(victim, "precious");
  fs::permissions(victim, fs::perms(0644));
  fs::create_hard_link(victim, file.string() + ".tmp");
  ASSERT_TRUE(write_file_atomically(file, "two", 0600));
  EXPECT_EQ(read_text(file), "two");
  EXPECT_EQ(read_text(victim), "precious");
  EXPECT_EQ(fs::status(victim).permissions(), fs::perms(0644));
}

TEST_F(AtomicFile, TheFileGetsItsModeAndNoTemporaryIsLeft) {
  const fs::path file = dir_ / "iid";
  ASSERT_TRUE(write_file_atomically(file, "sha256:1\n", 0644));
  EXPECT_EQ(fs::status(file).permissions(), fs::perms(0644));
  EXPECT_EQ(names(), std::vector<std::string>{"iid"});
}

// `--metadata-file /dev/stdout`, `--iidfile /dev/null`: written through,
// not replaced by a file (as root, a rename would replace the device node;
// here a link to it stands in for it).
TEST_F(AtomicFile, WhatIsNotARegularFileIsWrittenInPlace) {
  const fs::path link = dir_ / "null";
  fs::create_symlink("/dev/null", link);
  ASSERT_TRUE(write_file_atomically(link, "sha256:1\n", 0644, ReadOnlyFile::replace));
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(names(), std::vector<std::string>{"null"});
  auto dir = write_file_atomically(dir_, "x", 0644);
  ASSERT_FALSE(dir);
  EXPECT_NE(dir.error().message().find("Is a directory"), std::string::npos)
      << dir.error().message();
}

// `--metadata-file /dev/stdout` with stdout a file the shell redirected:
// written through the descriptor, after what is already there. Reopening
// /proc/self/fd/N truncated the log; a rename replaced its file.
TEST_F(AtomicFile, ADescriptorsPathIsWrittenThroughTheDescriptor) {
  EXPECT_EQ(descriptor_named("/dev/stdout"), 1);
  EXPECT_EQ(descriptor_named("/dev/stdin"), 0);
  EXPECT_EQ(descriptor_named("/dev/stderr"), 2);
  EXPECT_EQ(descriptor_named("/proc/self/fd/12"), 12);
  EXPECT_EQ(descriptor_named("/dev/fd/3"), 3);
  for (const char* other : {"/dev/fd/", "/dev/fd/3x", "/dev/null", "stdout", "/proc/1/fd/1"}) {
    EXPECT_EQ(descriptor_named(other), std::nullopt) << other;
  }
  const fs::path log = dir_ / "build.log";
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "before\n", 7), 7);
  struct stat was {};
  ASSERT_EQ(::stat(log.c_str(), &was), 0);
  ASSERT_TRUE(write_file_atomically("/proc/self/fd/" + std::to_string(fd), "sha256:1\n", 0644));
  ASSERT_EQ(::write(fd, "after\n", 6), 6);
  ::close(fd);
  EXPECT_EQ(read_text(log), "before\nsha256:1\nafter\n");
  struct stat now {};
  ASSERT_EQ(::stat(log.c_str(), &now), 0);
  EXPECT_EQ(now.st_ino, was.st_ino) << "the log's file was replaced";
  EXPECT_EQ(names(), std::vector<std::string>{"build.log"});
}

// A link to a regular file (a dotfile manager's link to the store) stays a
// link: the file it names is replaced, beside itself.
TEST_F(AtomicFile, ALinkToAFileStaysAndTheFileIsReplaced) {
  fs::create_directories(dir_ / "real");
  write_text(dir_ / "real" / "contexts.json", "old");
  fs::create_symlink(dir_ / "real" / "contexts.json", dir_ / "link");
  ASSERT_TRUE(write_file_atomically(dir_ / "link", "new", 0600));
  EXPECT_TRUE(fs::is_symlink(dir_ / "link"));
  EXPECT_EQ(read_text(dir_ / "real" / "contexts.json"), "new");
  EXPECT_EQ(fs::status(dir_ / "real" / "contexts.json").permissions(), fs::perms(0600));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_ / "real"), fs::directory_iterator()), 1);
  // A link to nothing is replaced by the file, as before.
  fs::create_symlink(dir_ / "missing", dir_ / "dangling");
  ASSERT_TRUE(write_file_atomically(dir_ / "dangling", "x", 0644));
  EXPECT_FALSE(fs::is_symlink(dir_ / "dangling"));
  EXPECT_EQ(read_text(dir_ / "dangling"), "x");
}

// What a cache may be kept over: a file, a link to one, or nothing; not a
// FIFO (whose write would wait for a reader) nor a directory.
TEST_F(AtomicFile, OnlyAFileOrNothingHoldsACache) {
  EXPECT_FALSE(holds_other_than_a_file(dir_ / "missing"));
  write_text(dir_ / "file", "x");
  EXPECT_FALSE(holds_other_than_a_file(dir_ / "file"));
  fs::create_symlink(dir_ / "file", dir_ / "link");
  EXPECT_FALSE(holds_other_than_a_file(dir_ / "link"));
  fs::create_symlink(dir_ / "missing", dir_ / "dangling");
  EXPECT_FALSE(holds_other_than_a_file(dir_ / "dangling"));
  ASSERT_EQ(::mkfifo((dir_ / "fifo").c_str(), 0600), 0);
  EXPECT_TRUE(holds_other_than_a_file(dir_ / "fifo"));
  fs::create_directories(dir_ / "dir");
  EXPECT_TRUE(holds_other_than_a_file(dir_ / "dir"));
  EXPECT_TRUE(holds_other_than_a_file("/dev/null"));
}

// Two builds remembering one daemon's answer at once: each rename puts a
// whole file in place, never a mix of the two.
TEST_F(AtomicFile, UnlockedWritersOfOneFileDoNotInterleave) {
  const fs::path file = dir_ / "answer.json";
  const std::string a(100000, 'a');
  const std::string b(70000, 'b');
  std::vector<std::thread> writers;
  for (const std::string* text : {&a, &b, &a, &b}) {
    writers.emplace_back([&file, text] {
      for (int i = 0; i < 50; ++i) ASSERT_TRUE(write_file_atomically(file, *text, 0600));
    });
  }
  for (int i = 0; i < 200; ++i) {
    std::string now = read_text(file);
    EXPECT_TRUE(now.empty() || now == a || now == b) << now.size() << " bytes";
  }
  for (auto& writer : writers) writer.join();
  std::string last = read_text(file);
  EXPECT_TRUE(last == a || last == b);
  EXPECT_EQ(names(), std::vector<std::string>{"answer.json"});
}

// What a writer killed mid-write leaves (and an older envd's <name>.tmp) is
// removed by the next locked writer; nothing else is, and a hard link's
// other name keeps its file.
TEST_F(AtomicFile, StaleTemporariesAreRemovedAndNothingElse) {
  const fs::path file = dir_ / "contexts.json";
  write_text(file, "{}");
  write_text(dir_ / "contexts.json.Ab12Cd.tmp", "half");
  write_text(dir_ / "victim", "keep");
  fs::create_hard_link(dir_ / "victim", dir_ / "contexts.json.tmp");
  write_text(dir_ / "contexts.json.lock", "");
  write_text(dir_ / "contexts.json.old.tmp", "not ours: another length");
  write_text(dir_ / "other.json.Ab12Cd.tmp", "another file's");
  remove_stale_temporaries(file);
  EXPECT_EQ(names(),
            (std::vector<std::string>{"contexts.json", "contexts.json.lock",
                                      "contexts.json.old.tmp", "other.json.Ab12Cd.tmp", "victim"}));
  EXPECT_EQ(read_text(dir_ / "victim"), "keep");
}

// Six letters or digits, as mkstemps makes them: a user's file of the same
// length is not taken for a temporary.
TEST_F(AtomicFile, OnlyWhatMkstempsMakesIsTakenForATemporary) {
  const fs::path file = dir_ / "contexts.json";
  write_text(dir_ / "contexts.json.my-bak.tmp", "the user's");
  remove_stale_temporaries(file);
  EXPECT_EQ(names(), std::vector<std::string>{"contexts.json.my-bak.tmp"});
}

// A file name may have NAME_MAX (255) bytes; its temporary must have no more:
// the name is cut for it, at a character's start, and still recognised.
TEST_F(AtomicFile, ALongNameGetsATemporaryOfALegalName) {
  for (const std::string& name :
       {std::string(250, 'a'), std::string(240, 'b') + "\xc3\xa9" + std::string(13, 'c')}) {
    SCOPED_TRACE(name.size());
    const fs::path file = dir_ / name;
    const std::string templ = fs::path(temporary_template(file)).filename().string();
    EXPECT_LE(templ.size(), 255u);
    EXPECT_EQ(templ.substr(templ.size() - 11), ".XXXXXX.tmp");
    EXPECT_EQ(name.rfind(templ.substr(0, templ.size() - 11), 0), 0u) << "a prefix of the name";
    ASSERT_TRUE(write_file_atomically(file, "content", 0600));
    EXPECT_EQ(read_text(file), "content");
    EXPECT_EQ(names(), std::vector<std::string>{name}) << "no temporary left";

    std::string stale = templ;
    stale.replace(stale.size() - 10, 6, "Ab12Cd");
    write_text(dir_ / stale, "half");
    remove_stale_temporaries(file);
    EXPECT_EQ(names(), std::vector<std::string>{name});
    fs::remove(file);
  }
  // The cut (at 244 bytes) does not split the two-byte character at 243.
  const std::string cut =
      fs::path(temporary_template(dir_ / (std::string(243, 'd') + "\xc3\xa9" + "e")))
          .filename()
          .string();
  EXPECT_EQ(cut, std::string(243, 'd') + ".XXXXXX.tmp");
}

// A directory's place taken by a link to nothing is named as such, not
// "Not a directory"; what the link points to is not created.
TEST_F(AtomicFile, ADanglingLinkInADirectorysPlaceIsNamed) {
  const fs::path link = dir_ / "config";
  fs::create_directory_symlink(dir_ / "missing", link);
  auto made = create_directories(link / "envd", 0700);
  ASSERT_FALSE(made);
  EXPECT_EQ(made.error().code(), Errc::not_found);
  EXPECT_EQ(made.error().message(), "cannot create directory '" + link.string() +
                                        "': it is a symbolic link to '" +
                                        (dir_ / "missing").string() + "', which does not exist");
  EXPECT_FALSE(fs::exists(dir_ / "missing"));

  write_text(dir_ / "file", "x");
  auto over_file = create_directories(dir_ / "file", 0700);
  ASSERT_FALSE(over_file);
  EXPECT_EQ(over_file.error().message(),
            "cannot create directory '" + (dir_ / "file").string() + "': Not a directory");
}

TEST_F(AtomicFile, ALockFileRemovedOnReleaseIsGoneAndTheOtherStays) {
  {
    auto lock = FileLock::exclusive(dir_ / "kept.lock");
    ASSERT_TRUE(lock);
  }
  {
    auto lock = FileLock::exclusive(dir_ / "removed.lock");
    ASSERT_TRUE(lock);
    lock->remove_when_released();
    EXPECT_TRUE(fs::exists(dir_ / "removed.lock"));
  }
  EXPECT_EQ(names(), std::vector<std::string>{"kept.lock"});
}

// A link in the lock file's place is not followed, and said to be a link (not
// "Too many levels of symbolic links", O_NOFOLLOW's errno).
TEST_F(AtomicFile, ALinkInALockFilesPlaceIsNamed) {
  write_text(dir_ / "elsewhere", "x");
  fs::create_symlink(dir_ / "elsewhere", dir_ / "store.lock");
  auto lock = FileLock::exclusive(dir_ / "store.lock");
  ASSERT_FALSE(lock);
  EXPECT_EQ(lock.error().message(),
            "cannot open lock file '" + (dir_ / "store.lock").string() +
                "': it is a symbolic link, which envd does not follow; remove it");
  EXPECT_EQ(read_text(dir_ / "elsewhere"), "x");
}

// A waiter that opened the lock file before its holder removed it would hold
// a lock on a file no one else can reach, beside a newcomer locking a new file
// at the path: it opens the path again instead.
TEST_F(AtomicFile, AWaiterOnARemovedLockFileLocksTheOneThePathNames) {
  const fs::path path = dir_ / "index.json.lock";
  auto held = FileLock::exclusive(path);
  ASSERT_TRUE(held);
  std::optional<FileLock> holder(std::move(*held));
  holder->remove_when_released();
  std::atomic<bool> locked{false};
  bool path_named_it = false;
  std::thread waiter([&] {
    auto lock = FileLock::exclusive(path);
    ASSERT_TRUE(lock);
    locked = true;
    path_named_it = fs::exists(path);
    // While it is held, no one else gets it through the path.
    auto other = FileLock::try_exclusive(path);
    ASSERT_FALSE(other);
    EXPECT_EQ(other.error().code(), Errc::unavailable);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(locked);
  holder.reset();
  waiter.join();
  EXPECT_TRUE(locked);
  EXPECT_TRUE(path_named_it);
}

TEST_F(AtomicFile, LocksRemovedOnReleaseStillExcludeEachOther) {
  const fs::path path = dir_ / "index.json.lock";
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  int count = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        auto lock = FileLock::exclusive(path);
        ASSERT_TRUE(lock);
        lock->remove_when_released();
        if (inside.fetch_add(1) != 0) ++overlaps;
        ++count;
        inside.fetch_sub(1);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(overlaps, 0);
  EXPECT_EQ(count, 800);
  EXPECT_TRUE(names().empty());
}

}  // namespace
}  // namespace envd::util
