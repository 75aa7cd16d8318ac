#include "context/store.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "context/test_support.hpp"
#include "util/atomic_file.hpp"

namespace envd::context {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using testing::inode_of;
using testing::mode_of;
using testing::read_text;
using testing::TempDir;
using testing::write_text;

const std::string kRecovery = "; fix it or move it aside to start over with the default context";

class StoreTest : public ::testing::Test {
 protected:
  // Nested and missing, so first use has to create it.
  fs::path config() const { return tmp_.path() / "home" / ".config" / "envd"; }
  ContextStore store() const { return ContextStore(config()); }
  fs::path file() const { return config() / "contexts.json"; }

  // Writes a hand-made store file (creating the config dir).
  void seed(const std::string& text) const {
    fs::create_directories(config());
    write_text(file(), text);
  }

  json::object file_json() const { return json::parse(read_text(file())).as_object(); }

  // Adds a context named `name` through update().
  Status add_context(const std::string& name) const {
    return store().update([&](ContextList& l) -> Status {
      l.contexts.push_back(make(name));
      return {};
    });
  }

  // load() and update() both fail with `expected`, and update() never runs
  // its change.
  void expect_refused(const std::string& expected) const {
    auto list = store().load();
    ASSERT_FALSE(list.ok());
    EXPECT_EQ(list.error().code(), Errc::invalid_argument);
    EXPECT_EQ(list.error().message(), expected);
    bool called = false;
    Status st = store().update([&](ContextList&) -> Status {
      called = true;
      return {};
    });
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().message(), expected);
    EXPECT_FALSE(called);
  }

  static Context make(const std::string& name) {
    Context ctx = default_context();
    ctx.name = name;
    return ctx;
  }

  TempDir tmp_;
};

// Runs `body` in a forked child and returns its exit status (0 on success).
// The child never returns into the test runner.
template <typename Body>
pid_t fork_child(Body body) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int code = 99;
    try {
      code = body();
    } catch (...) {
    }
    ::_exit(code);
  }
  return pid;
}

int wait_child(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

// ---- first use -----------------------------------------------------------------

TEST_F(StoreTest, FirstUseCreatesTheDirectoryAndFileWithTheDefaultContext) {
  mode_t old_umask = ::umask(022);
  auto list = store().load();
  ::umask(old_umask);
  ASSERT_TRUE(list.ok()) << list.error().message();

  EXPECT_EQ(mode_of(config()), 0700u);
  EXPECT_EQ(mode_of(file()), 0600u);
  EXPECT_TRUE(fs::exists(config() / "contexts.json.lock"));
  EXPECT_FALSE(fs::exists(config() / "contexts.json.tmp"));

  EXPECT_EQ(list->current, "default");
  ASSERT_EQ(list->contexts.size(), 1u);
  const Context& ctx = list->contexts[0];
  EXPECT_EQ(ctx.name, "default");
  EXPECT_EQ(ctx.builder, "docker-container");
  EXPECT_EQ(ctx.builder_address, "envd_buildkitd");
  EXPECT_EQ(ctx.runner, "docker");
  EXPECT_FALSE(ctx.runner_address.has_value());
  EXPECT_EQ(ctx.id.size(), 16u);
  EXPECT_EQ(list->file, file());

  EXPECT_EQ(read_text(file()),
            "{\n"
            "  \"current\": \"default\",\n"
            "  \"contexts\": [\n"
            "    {\n"
            "      \"name\": \"default\",\n"
            "      \"builder\": \"docker-container\",\n"
            "      \"builder_address\": \"envd_buildkitd\",\n"
            "      \"runner\": \"docker\",\n"
            "      \"id\": \"" +
                ctx.id +
                "\"\n"
                "    }\n"
                "  ]\n"
                "}\n");
}

TEST_F(StoreTest, LoadingAnExistingStoreWritesNothing) {
  ASSERT_TRUE(store().load().ok());
  std::string before = read_text(file());
  ino_t inode = inode_of(file());
  auto again = store().load();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(read_text(file()), before);
  EXPECT_EQ(inode_of(file()), inode);
  auto first = json::parse(before).at("contexts").at(0).at("id").as_string();
  EXPECT_EQ(again->contexts.at(0).id, std::string(first));
}

TEST_F(StoreTest, ConcurrentFirstUsesCreateTheStoreOnce) {
  constexpr int kChildren = 8;
  int start[2];
  int report[2];
  ASSERT_EQ(::pipe(start), 0);
  ASSERT_EQ(::pipe(report), 0);
  std::vector<pid_t> pids;
  pids.reserve(kChildren);
  for (int i = 0; i < kChildren; ++i) {
    pids.push_back(fork_child([&] {
      ::close(start[1]);
      char go;
      if (::read(start[0], &go, 1) != 0) return 2;  // wait until the parent closes the pipe
      auto list = store().load();
      if (!list || list->contexts.size() != 1) return 1;
      std::string line = list->contexts[0].id + "\n";
      return ::write(report[1], line.data(), line.size()) == static_cast<ssize_t>(line.size()) ? 0
                                                                                               : 3;
    }));
  }
  ::close(start[0]);
  ::close(start[1]);  // releases every child at once
  ::close(report[1]);
  for (pid_t pid : pids) EXPECT_EQ(wait_child(pid), 0);
  std::string ids;
  char buf[256];
  for (ssize_t n; (n = ::read(report[0], buf, sizeof buf)) > 0;)
    ids.append(buf, static_cast<size_t>(n));
  ::close(report[0]);

  // Every child saw the one store that was created: the same random id.
  std::set<std::string> distinct;
  size_t lines = 0;
  for (size_t pos = 0, nl; (nl = ids.find('\n', pos)) != std::string::npos; pos = nl + 1) {
    distinct.insert(ids.substr(pos, nl - pos));
    ++lines;
  }
  EXPECT_EQ(lines, static_cast<size_t>(kChildren));
  ASSERT_EQ(distinct.size(), 1u) << ids;
  EXPECT_EQ(std::string(file_json().at("contexts").at(0).at("id").as_string()), *distinct.begin());
}

// ---- round trip ------------------------------------------------------------------

TEST_F(StoreTest, EveryFieldAndUnknownFieldsSurviveARewriteInOrder) {
  seed(R"({
  "zeta": 1,
  "current": "remote",
  "alpha": {"nested": [1, 2]},
  "contexts": [
    {"name": "default", "builder": "docker-container", "builder_address": "envd_buildkitd",
     "runner": "docker", "id": "00000000000000aa"},
    {"x-later": true, "name": "remote", "builder": "tcp", "builder_address": "10.0.0.1:8888",
     "runner": "envd-server", "runner_address": "http://10.0.0.1:8080",
     "builder_options": {"tls": "true", "ca": "ca.pem"}, "runner_options": {"timeout": "5s"},
     "id": "00000000000000bb", "a-first": null}
  ],
  "omega": "last"
})");
  auto list = store().load();
  ASSERT_TRUE(list.ok()) << list.error().message();
  const Context* remote = list->find("remote");
  ASSERT_NE(remote, nullptr);
  EXPECT_EQ(remote->builder, "tcp");
  EXPECT_EQ(remote->builder_address, "10.0.0.1:8888");
  EXPECT_EQ(remote->runner, "envd-server");
  EXPECT_EQ(remote->runner_address, std::optional<std::string>("http://10.0.0.1:8080"));
  EXPECT_EQ(remote->builder_options, (Options{{"ca", "ca.pem"}, {"tls", "true"}}));
  EXPECT_EQ(remote->runner_options, (Options{{"timeout", "5s"}}));
  EXPECT_EQ(remote->id, "00000000000000bb");
  EXPECT_EQ(remote->unknown_fields.size(), 2u);
  EXPECT_EQ(list->unknown_fields.size(), 3u);

  // A change that touches something else rewrites the whole file.
  ASSERT_TRUE(store()
                  .update([](ContextList& l) -> Status {
                    l.current = "default";
                    return {};
                  })
                  .ok());
  EXPECT_EQ(read_text(file()), R"({
  "current": "default",
  "contexts": [
    {
      "name": "default",
      "builder": "docker-container",
      "builder_address": "envd_buildkitd",
      "runner": "docker",
      "id": "00000000000000aa"
    },
    {
      "name": "remote",
      "builder": "tcp",
      "builder_address": "10.0.0.1:8888",
      "runner": "envd-server",
      "runner_address": "http://10.0.0.1:8080",
      "builder_options": {
        "ca": "ca.pem",
        "tls": "true"
      },
      "runner_options": {
        "timeout": "5s"
      },
      "id": "00000000000000bb",
      "x-later": true,
      "a-first": null
    }
  ],
  "zeta": 1,
  "alpha": {
    "nested": [
      1,
      2
    ]
  },
  "omega": "last"
}
)");
  auto reread = store().load();
  ASSERT_TRUE(reread.ok());
  EXPECT_EQ(reread->current, "default");
  EXPECT_EQ(reread->find("remote")->runner_options, remote->runner_options);
}

// Numbers in unknown fields come back as the same numbers: integers of 64
// bits exactly, doubles as the shortest text that reads back as each. One a
// write would change is refused instead (EveryCorruptionIsNamed...).
TEST_F(StoreTest, NumbersInUnknownFieldsSurviveARewrite) {
  seed(R"({"n": [18446744073709551615, -9223372036854775808, 1.5, 1E21, 0.001e3],
  "current": "default", "contexts": []})");
  ASSERT_TRUE(store()
                  .update([](ContextList& l) -> Status {
                    l.current = "default";
                    return {};
                  })
                  .ok());
  EXPECT_EQ(file_json().at("n"),
            json::parse("[18446744073709551615, -9223372036854775808, 1.5, 1e21, 1]"));
}

TEST_F(StoreTest, NullRunnerAddressAndMissingCurrentAreAccepted) {
  seed(R"({"contexts": [{"name": "a", "builder": "tcp", "builder_address": "h:1",
                         "runner": "docker", "runner_address": null, "id": "abc"}]})");
  auto list = store().load();
  ASSERT_TRUE(list.ok()) << list.error().message();
  EXPECT_EQ(list->current, "");
  EXPECT_FALSE(list->contexts.at(0).runner_address.has_value());
  ASSERT_TRUE(store().update([](ContextList&) -> Status { return {}; }).ok());
  json::object top = file_json();
  EXPECT_FALSE(top.contains("current"));
  EXPECT_FALSE(top.at("contexts").at(0).as_object().contains("runner_address"));
}

TEST_F(StoreTest, AnEmptyRunnerAddressIsKeptDistinctFromNone) {
  ASSERT_TRUE(store()
                  .update([](ContextList& l) -> Status {
                    Context ctx = make("blank");
                    ctx.runner_address = "";
                    l.contexts.push_back(ctx);
                    return {};
                  })
                  .ok());
  auto list = store().load();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->find("blank")->runner_address, std::optional<std::string>(""));
  EXPECT_FALSE(list->find("default")->runner_address.has_value());
}

// ---- ids and private directories ---------------------------------------------------

TEST_F(StoreTest, AHandWrittenContextGetsAStableIdThatTheNextWriteRecords) {
  const std::string text = R"({"current": "mine", "contexts": [
    {"name": "mine", "builder": "tcp", "builder_address": "h:1", "runner": "docker"}]})";
  seed(text);
  auto first = store().load();
  ASSERT_TRUE(first.ok()) << first.error().message();
  std::string id = first->contexts.at(0).id;
  EXPECT_EQ(id.size(), 16u);
  auto second = store().load();
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->contexts.at(0).id, id);  // same private directory until written
  EXPECT_EQ(read_text(file()), text);        // loading never writes

  ASSERT_TRUE(store()
                  .update([](ContextList& l) -> Status {
                    l.find("mine")->name = "renamed";
                    l.current = "renamed";
                    return {};
                  })
                  .ok());
  EXPECT_EQ(std::string(file_json().at("contexts").at(0).at("id").as_string()), id);
}

TEST_F(StoreTest, UpdateGivesNewContextsAFreshIdAndKeepsGivenOnes) {
  ASSERT_TRUE(store()
                  .update([](ContextList& l) -> Status {
                    l.contexts.push_back(make("fresh"));
                    Context given = make("given");
                    given.id = "my-own_id";
                    l.contexts.push_back(given);
                    return {};
                  })
                  .ok());
  auto list = store().load();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->find("fresh")->id.size(), 16u);
  EXPECT_NE(list->find("fresh")->id, list->find("default")->id);
  EXPECT_EQ(list->find("given")->id, "my-own_id");
}

TEST_F(StoreTest, EnsureDataDirCreatesPrivateDirectories) {
  auto list = store().load();
  ASSERT_TRUE(list.ok());
  const Context& ctx = list->contexts.at(0);
  fs::path expected = config() / "contexts.d" / ctx.id;
  EXPECT_EQ(store().data_dir(ctx), expected);
  EXPECT_FALSE(fs::exists(expected));

  mode_t old_umask = ::umask(022);
  auto dir = store().ensure_data_dir(ctx);
  ::umask(old_umask);
  ASSERT_TRUE(dir.ok()) << dir.error().message();
  EXPECT_EQ(*dir, expected);
  EXPECT_TRUE(fs::is_directory(expected));
  EXPECT_EQ(mode_of(config() / "contexts.d"), 0700u);
  EXPECT_EQ(mode_of(expected), 0700u);

  write_text(expected / "ca.pem", "x");
  auto again = store().ensure_data_dir(ctx);  // idempotent, keeps contents
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(read_text(expected / "ca.pem"), "x");
}

TEST_F(StoreTest, EnsureDataDirOnAFreshConfigDirMakesItPrivateToo) {
  Context ctx = make("x");
  ctx.id = "0123456789abcdef";
  auto dir = store().ensure_data_dir(ctx);
  ASSERT_TRUE(dir.ok()) << dir.error().message();
  EXPECT_EQ(mode_of(config()), 0700u);
  EXPECT_EQ(mode_of(config() / "contexts.d"), 0700u);
}

TEST_F(StoreTest, ContextsWithoutAValidIdHaveNoPrivateDirectory) {
  for (const std::string id : {"", "../escape", "a/b", "."}) {
    Context ctx = make("x");
    ctx.id = id;
    EXPECT_EQ(store().data_dir(ctx), fs::path()) << id;
    auto dir = store().ensure_data_dir(ctx);
    ASSERT_FALSE(dir.ok()) << id;
    EXPECT_EQ(dir.error().message(),
              "context 'x' has no valid id, so it has no private "
              "directory; add it to the store first");
  }
  EXPECT_FALSE(fs::exists(config() / "contexts.d"));
}

TEST_F(StoreTest, RenameKeepsThePrivateDirectory) {
  ASSERT_TRUE(store()
                  .update([](ContextList& l) -> Status {
                    l.contexts.push_back(make("old"));
                    return {};
                  })
                  .ok());
  auto before = store().load();
  ASSERT_TRUE(before.ok());
  auto dir = store().ensure_data_dir(*before->find("old"));
  ASSERT_TRUE(dir.ok());
  write_text(*dir / "key.pem", "secret");

  ASSERT_TRUE(store()
                  .update([](ContextList& l) -> Status {
                    l.find("old")->name = "new";
                    return {};
                  })
                  .ok());
  auto after = store().load();
  ASSERT_TRUE(after.ok());
  ASSERT_NE(after->find("new"), nullptr);
  EXPECT_EQ(store().data_dir(*after->find("new")), *dir);
  EXPECT_EQ(read_text(*dir / "key.pem"), "secret");
}

// ---- update ------------------------------------------------------------------------

TEST_F(StoreTest, UpdateSeesTheStoredListAndWritesTheChange) {
  ASSERT_TRUE(store()
                  .update([](ContextList& l) -> Status {
                    EXPECT_EQ(l.current, "default");  // first use: the default list
                    EXPECT_EQ(l.contexts.size(), 1u);
                    l.contexts.push_back(make("b"));
                    l.current = "b";
                    return {};
                  })
                  .ok());
  EXPECT_EQ(mode_of(file()), 0600u);
  ASSERT_TRUE(store()
                  .update([](ContextList& l) -> Status {
                    EXPECT_EQ(l.current, "b");
                    EXPECT_NE(l.find("b"), nullptr);
                    EXPECT_EQ(l.file, l.file);
                    return {};
                  })
                  .ok());
  json::object top = file_json();
  EXPECT_EQ(top.at("current"), "b");
  EXPECT_EQ(top.at("contexts").as_array().size(), 2u);
}

TEST_F(StoreTest, UpdateRestoresThePrivateModeOfTheFile) {
  ASSERT_TRUE(store().load().ok());
  ASSERT_EQ(::chmod(file().c_str(), 0644), 0);
  ASSERT_TRUE(store().update([](ContextList&) -> Status { return {}; }).ok());
  EXPECT_EQ(mode_of(file()), 0600u);
}

// The rename would replace it (the directory is writable); a user who made
// the file read-only meant it to stay as it is.
TEST_F(StoreTest, AReadOnlyFileIsNotReplaced) {
  ASSERT_TRUE(store().load().ok());
  ASSERT_EQ(::chmod(file().c_str(), 0444), 0);
  std::string before = read_text(file());
  ino_t inode = inode_of(file());
  Status st = store().update([](ContextList&) -> Status { return {}; });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), Errc::permission);
  EXPECT_EQ(st.error().message(),
            "cannot replace '" + file().string() + "': the file is read-only (mode 0444)");
  EXPECT_EQ(read_text(file()), before);
  EXPECT_EQ(inode_of(file()), inode);
  EXPECT_EQ(mode_of(file()), 0444u);
  EXPECT_FALSE(fs::exists(file().string() + ".tmp"));
  EXPECT_TRUE(store().load().ok());  // reading it still works
}

TEST_F(StoreTest, AFailedChangeWritesNothing) {
  ASSERT_TRUE(store().load().ok());
  std::string before = read_text(file());
  ino_t inode = inode_of(file());
  Status st = store().update([](ContextList& l) -> Status {
    l.contexts.clear();  // changes made before failing must not leak out
    return Error(Errc::already_exists, "context 'x' already exists");
  });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), Errc::already_exists);
  EXPECT_EQ(st.error().message(), "context 'x' already exists");
  EXPECT_EQ(read_text(file()), before);
  EXPECT_EQ(inode_of(file()), inode);
  EXPECT_FALSE(fs::exists(config() / "contexts.json.tmp"));
}

TEST_F(StoreTest, AFailedChangeOnFirstUseCreatesNoStoreFile) {
  Status st =
      store().update([](ContextList&) -> Status { return Error(Errc::invalid_argument, "no"); });
  ASSERT_FALSE(st.ok());
  EXPECT_FALSE(fs::exists(file()));
}

TEST_F(StoreTest, AChangeThatBreaksTheRulesIsRefusedAndWritesNothing) {
  ASSERT_TRUE(store().load().ok());
  std::string before = read_text(file());
  const std::string prefix = "cannot update the context store '" + file().string() + "': ";
  const std::string suffix = "; nothing was written";

  struct Case {
    std::function<Status(ContextList&)> change;
    std::string reason;
  };
  std::vector<Case> cases = {
      {[](ContextList& l) -> Status {
         l.contexts.push_back(make("default"));
         return {};
       },
       "two contexts are named 'default'"},
      {[](ContextList& l) -> Status {
         l.contexts.push_back(make("a/b"));
         return {};
       },
       "context 'a/b': invalid context name 'a/b': names start with a letter or digit and contain "
       "only letters, digits, '_', '.', '+' and '-' (at most 64 characters)"},
      {[](ContextList& l) -> Status {
         Context ctx = make("nobuilder");
         ctx.builder.clear();
         l.contexts.push_back(ctx);
         return {};
       },
       "context 'nobuilder': field 'builder' must not be empty"},
      {[](ContextList& l) -> Status {
         Context ctx = make("norunner");
         ctx.runner.clear();
         l.contexts.push_back(ctx);
         return {};
       },
       "context 'norunner': field 'runner' must not be empty"},
      {[](ContextList& l) -> Status {
         Context ctx = make("badid");
         ctx.id = "../../etc";
         l.contexts.push_back(ctx);
         return {};
       },
       "context 'badid': field 'id' must be 1 to 64 letters, digits, '_' or '-', not '../../etc'"},
      {[](ContextList& l) -> Status {
         Context ctx = make("twin");
         ctx.id = l.contexts[0].id;
         l.contexts.push_back(ctx);
         return {};
       },
       "contexts 'default' and 'twin' share the id '" +
           std::string(json::parse(before).at("contexts").at(0).at("id").as_string()) + "'"},
      {[](ContextList& l) -> Status {
         l.current = "ghost";
         return {};
       },
       "the current context 'ghost' does not exist"},
      {[](ContextList& l) -> Status {
         l.contexts.clear();  // removes the current context without moving `current`
         return {};
       },
       "the current context 'default' does not exist"},
  };
  for (const Case& c : cases) {
    Status st = store().update(c.change);
    ASSERT_FALSE(st.ok()) << c.reason;
    EXPECT_EQ(st.error().code(), Errc::invalid_argument);
    std::string expected = prefix;
    expected += c.reason;
    expected += suffix;
    EXPECT_EQ(st.error().message(), expected);
    EXPECT_EQ(read_text(file()), before) << c.reason;
  }
}

TEST_F(StoreTest, ADanglingCurrentIsToleratedButNeverCreated) {
  seed(R"({"current": "ghost", "contexts": [
    {"name": "default", "builder": "docker-container", "builder_address": "envd_buildkitd",
     "runner": "docker", "id": "0000000000000001"}]})");
  auto list = store().load();
  ASSERT_TRUE(list.ok()) << list.error().message();
  EXPECT_EQ(list->current, "ghost");

  // Unrelated changes still work and leave the dangling name alone.
  ASSERT_TRUE(store()
                  .update([](ContextList& l) -> Status {
                    l.contexts.push_back(make("other"));
                    return {};
                  })
                  .ok());
  EXPECT_EQ(file_json().at("current"), "ghost");
  // Pointing it at another missing context is refused.
  EXPECT_FALSE(store()
                   .update([](ContextList& l) -> Status {
                     l.current = "phantom";
                     return {};
                   })
                   .ok());
  // Choosing an existing one repairs it; clearing it is allowed too.
  ASSERT_TRUE(store()
                  .update([](ContextList& l) -> Status {
                    l.current = "other";
                    return {};
                  })
                  .ok());
  EXPECT_EQ(file_json().at("current"), "other");
  ASSERT_TRUE(store()
                  .update([](ContextList& l) -> Status {
                    l.current.clear();
                    return {};
                  })
                  .ok());
  EXPECT_FALSE(file_json().contains("current"));
}

TEST_F(StoreTest, UpdateWaitsForTheLock) {
  ASSERT_TRUE(store().load().ok());
  auto held = util::FileLock::exclusive(config() / "contexts.json.lock");
  ASSERT_TRUE(held.ok()) << held.error().message();

  std::atomic<bool> changed{false};
  std::atomic<bool> done{false};
  std::thread writer([&] {
    Status st = store().update([&](ContextList& l) -> Status {
      changed = true;
      l.contexts.push_back(make("late"));
      return {};
    });
    EXPECT_TRUE(st.ok());
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(changed.load()) << "update ran its change without the lock";
  EXPECT_FALSE(done.load());
  { util::FileLock release = std::move(*held); }  // dropped here
  writer.join();
  EXPECT_TRUE(changed.load());
  auto list = store().load();
  ASSERT_TRUE(list.ok());
  EXPECT_NE(list->find("late"), nullptr);
}

// A writer kept waiting says so once, after a second, and then still waits
// for the lock before it changes anything.
TEST_F(StoreTest, AWriterKeptWaitingSaysSoOnceAndStillWaits) {
  ASSERT_TRUE(store().load().ok());
  auto held = util::FileLock::exclusive(config() / "contexts.json.lock");
  ASSERT_TRUE(held.ok()) << held.error().message();

  std::mutex mu;
  std::condition_variable cv;
  int told = 0;
  bool changed = false;
  ContextStore waiting_store = store();
  waiting_store.on_lock_wait([&] {
    std::lock_guard lock(mu);
    ++told;
    cv.notify_all();
  });
  std::thread writer([&] {
    Status st = waiting_store.update([&](ContextList& l) -> Status {
      std::lock_guard lock(mu);
      changed = true;
      l.contexts.push_back(make("late"));
      return {};
    });
    EXPECT_TRUE(st.ok());
  });
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return told > 0; }));
    EXPECT_FALSE(changed) << "update ran its change without the lock";
  }
  { util::FileLock release = std::move(*held); }  // dropped here
  writer.join();
  EXPECT_EQ(told, 1);
  EXPECT_TRUE(changed);
  // Not kept waiting: not a word.
  told = 0;
  ASSERT_TRUE(waiting_store.update([](ContextList&) -> Status { return {}; }).ok());
  EXPECT_EQ(told, 0);
}

TEST_F(StoreTest, AWriterKilledWhileHoldingTheLockLeavesTheOldFileAndNoStaleLock) {
  ASSERT_TRUE(store().load().ok());
  std::string before = read_text(file());
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t pid = fork_child([&] {
    Status st = store().update([&](ContextList& l) -> Status {
      l.contexts.push_back(make("never"));
      (void)!::write(ready[1], "x", 1);
      for (;;) ::pause();  // killed here, inside the change, lock held
    });
    return st.ok() ? 0 : 1;
  });
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  ::close(ready[1]);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  EXPECT_EQ(wait_child(pid), 128 + SIGKILL);

  EXPECT_EQ(read_text(file()), before);
  ASSERT_TRUE(store()
                  .update([](ContextList& l) -> Status {
                    l.contexts.push_back(make("after"));
                    return {};
                  })
                  .ok());
  auto list = store().load();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->find("never"), nullptr);
  EXPECT_NE(list->find("after"), nullptr);
}

TEST_F(StoreTest, ALeftoverTemporaryFileFromACrashIsHarmless) {
  ASSERT_TRUE(store().load().ok());
  write_text(config() / "contexts.json.tmp", "{half a wri");
  auto list = store().load();
  ASSERT_TRUE(list.ok()) << list.error().message();
  ASSERT_TRUE(store()
                  .update([](ContextList& l) -> Status {
                    l.contexts.push_back(make("b"));
                    return {};
                  })
                  .ok());
  EXPECT_FALSE(fs::exists(config() / "contexts.json.tmp"));
  EXPECT_EQ(file_json().at("contexts").as_array().size(), 2u);
}

TEST_F(StoreTest, ASymlinkedStoreFileIsWrittenThrough) {
  fs::path dotfiles = tmp_.path() / "dotfiles";
  fs::create_directories(dotfiles);
  fs::create_directories(config());
  write_text(dotfiles / "contexts.json", R"({"current": "default", "contexts": [
    {"name": "default", "builder": "docker-container", "builder_address": "envd_buildkitd",
     "runner": "docker", "id": "0000000000000001"}]})");
  fs::create_symlink(dotfiles / "contexts.json", file());
  ASSERT_TRUE(add_context("b").ok());
  EXPECT_TRUE(fs::is_symlink(file()));
  auto target = json::parse(read_text(dotfiles / "contexts.json"));
  EXPECT_EQ(target.at("contexts").as_array().size(), 2u);
}

// A link to a store not written yet (a dotfile manager's, before first use)
// is written through too: the target is created, the link stays. A link
// into a missing directory is an error, and the link is left as it was.
TEST_F(StoreTest, ADanglingSymlinkedStoreFileIsWrittenThroughOrLeftAlone) {
  fs::path dotfiles = tmp_.path() / "dotfiles";
  fs::create_directories(dotfiles);
  fs::create_directories(config());
  fs::create_symlink("../../../dotfiles/envd.json", file());
  ASSERT_EQ(fs::canonical(config() / "../../../dotfiles"), fs::canonical(dotfiles));
  ASSERT_TRUE(store().load().ok());
  EXPECT_TRUE(fs::is_symlink(file()));
  ASSERT_TRUE(fs::exists(dotfiles / "envd.json"));
  EXPECT_EQ(json::parse(read_text(dotfiles / "envd.json")).at("current"), "default");

  fs::remove(file());
  fs::create_symlink(tmp_.path() / "missing" / "envd.json", file());
  auto list = store().load();
  ASSERT_FALSE(list.ok());
  EXPECT_NE(list.error().message().find((tmp_.path() / "missing").string()), std::string::npos)
      << list.error().message();
  EXPECT_TRUE(fs::is_symlink(file()));
  EXPECT_EQ(fs::read_symlink(file()), tmp_.path() / "missing" / "envd.json");
}

// A relative link in a config directory that is itself a link: '..' is the
// kernel's, so writes land where reads look.
TEST_F(StoreTest, ARelativeLinkInALinkedConfigDirectoryIsWrittenWhereItIsRead) {
  fs::path real = tmp_.path() / "srv" / "cfg";
  fs::create_directories(real);
  fs::create_directories(config().parent_path());
  fs::create_directory_symlink(real, config());
  for (bool exists : {true, false}) {
    SCOPED_TRACE(exists ? "existing target" : "dangling link");
    fs::remove(tmp_.path() / "srv" / "ctx.json");
    fs::remove(file());
    fs::create_symlink("../ctx.json", file());
    if (exists) {
      ASSERT_TRUE(store().load().ok());
    }
    ASSERT_TRUE(add_context("b").ok());
    EXPECT_TRUE(fs::is_symlink(file()));
    EXPECT_FALSE(fs::exists(config().parent_path() / "ctx.json"));
    auto list = store().load();
    ASSERT_TRUE(list.ok()) << list.error().message();
    EXPECT_NE(list->find("b"), nullptr);
    EXPECT_EQ(
        json::parse(read_text(tmp_.path() / "srv" / "ctx.json")).at("contexts").as_array().size(),
        2u);
  }
}

// 8 processes, each making 50 update() calls that add a distinct context and
// 25 more that remove every other one of its own.
TEST_F(StoreTest, ConcurrentProcessesNeverLoseAnUpdate) {
  ASSERT_TRUE(store().load().ok());
  constexpr int kWorkers = 8;
  constexpr int kPerWorker = 50;
  auto name = [](int worker, int i) {
    return "w" + std::to_string(worker) + "-" + std::to_string(i);
  };
  std::vector<pid_t> pids;
  pids.reserve(kWorkers);
  for (int w = 0; w < kWorkers; ++w) {
    pids.push_back(fork_child([&, w] {
      ContextStore s(config());
      for (int i = 0; i < kPerWorker; ++i) {
        Status added = s.update([&](ContextList& l) -> Status {
          if (l.find(name(w, i)) != nullptr) return Error(Errc::already_exists, "duplicate");
          l.contexts.push_back(make(name(w, i)));
          return {};
        });
        if (!added) return 1;
        if (i % 2 == 1) continue;
        Status removed = s.update([&](ContextList& l) -> Status {
          auto before = l.contexts.size();
          std::erase_if(l.contexts, [&](const Context& c) { return c.name == name(w, i); });
          return l.contexts.size() + 1 == before ? Status() : Error(Errc::not_found, "lost");
        });
        if (!removed) return 2;
      }
      return 0;
    }));
  }
  for (pid_t pid : pids) EXPECT_EQ(wait_child(pid), 0) << "a worker failed";

  std::set<std::string> expected{"default"};
  for (int w = 0; w < kWorkers; ++w) {
    for (int i = 1; i < kPerWorker; i += 2) expected.insert(name(w, i));
  }
  // The file parses as JSON and as a store.
  json::value raw = json::parse(read_text(file()));
  std::set<std::string> in_file;
  for (const auto& ctx : raw.at("contexts").as_array()) {
    in_file.insert(std::string(ctx.at("name").as_string()));
  }
  EXPECT_EQ(in_file, expected);
  EXPECT_EQ(raw.at("contexts").as_array().size(), expected.size());  // no duplicates
  auto list = store().load();
  ASSERT_TRUE(list.ok()) << list.error().message();
  std::set<std::string> ids;
  for (const Context& ctx : list->contexts) ids.insert(ctx.id);
  EXPECT_EQ(ids.size(), expected.size());
  EXPECT_EQ(list->current, "default");
}

// ---- corruption and unreadable files -------------------------------------------------

struct Corruption {
  const char* label;
  std::string text;
  std::string reason;  // what follows "is corrupt: "
};

const std::string kOk = R"("builder": "tcp", "builder_address": "h:1", "runner": "docker")";

std::vector<Corruption> corruptions() {
  return {
      {"bad JSON", "{\n  \"current\": \"default\",\n  \"contexts\": [\n    {,\n  ]\n}\n",
       "invalid JSON at line 4, column 6: syntax error"},
      {"empty file", "", "invalid JSON at line 1, column 1: incomplete JSON"},
      {"trailing garbage", R"({"contexts": []} x)",
       "invalid JSON at line 1, column 18: extra data"},
      {"top level array", "[]", "the top level must be a JSON object"},
      // The tree would keep one of the two silently, and a write lose the other.
      {"repeated top-level key",
       R"({"contexts": [{"name": "a", )" + kOk + R"(}], "contexts": [{"name": "b", )" + kOk + "}]}",
       "the key 'contexts' appears twice in one object, and only one can be kept"},
      {"repeated key in a context",
       R"({"contexts": [{"name": "a", "builder_address": "x:1", )" + kOk + "}]}",
       "the key 'builder_address' appears twice in one object, and only one can be kept"},
      // Parsed as infinity, it would be written back as no JSON at all.
      {"number out of range", R"({"x": 1e400, "contexts": []})",
       "invalid JSON: a number is too large to keep (beyond 1.8e308)"},
      {"number out of range in a context",
       R"({"contexts": [{"name": "a", "x": [-1e999], )" + kOk + "}]}",
       "invalid JSON: a number is too large to keep (beyond 1.8e308)"},
      // Read as a double, it would be written back as another number.
      {"integer beyond 64 bits", R"({"x": 123456789012345678901, "contexts": []})",
       "the number 123456789012345678901 cannot be kept exactly (a write would make it "
       "123456789012345667584); quote it as a string"},
      {"more digits than a double holds in a context",
       R"({"contexts": [{"name": "a", "x": {"y": 0.30000000000000001}, )" + kOk + "}]}",
       "the number 0.30000000000000001 cannot be kept exactly (a write would make it 0.3); "
       "quote it as a string"},
      {"contexts missing", R"({"current": "default"})", "field 'contexts' is missing"},
      {"contexts not array", R"({"contexts": {}})", "field 'contexts' must be an array"},
      {"current not string", R"({"current": 1, "contexts": []})",
       "field 'current' must be a string"},
      {"context not object", R"({"contexts": ["default"]})",
       "contexts[0]: a context must be a JSON object"},
      {"name missing", R"({"contexts": [{)" + kOk + "}]}",
       "contexts[0]: field 'name' must be a string"},
      {"name wrong type", R"({"contexts": [{"name": 7, )" + kOk + "}]}",
       "contexts[0]: field 'name' must be a string"},
      {"builder missing",
       R"({"contexts": [{"name": "a", "builder_address": "h", "runner": "docker"}]})",
       "contexts[0] ('a'): field 'builder' must be a string"},
      {"builder_address missing",
       R"({"contexts": [{"name": "a", "builder": "tcp", "runner": "docker"}]})",
       "contexts[0] ('a'): field 'builder_address' must be a string"},
      {"runner missing",
       R"({"contexts": [{"name": "a", "builder": "tcp", "builder_address": "h"}]})",
       "contexts[0] ('a'): field 'runner' must be a string"},
      {"empty builder",
       R"({"contexts": [{"name": "a", "builder": "", "builder_address": "h", "runner": "docker"}]})",
       "contexts[0] ('a'): field 'builder' must not be empty"},
      {"control character in builder",
       R"({"contexts": [{"name": "a", "builder": "tc\u0000p", "builder_address": "h", )"
       R"("runner": "docker"}]})",
       "contexts[0] ('a'): field 'builder' must not hold control characters, as 'tc\\x00p' does"},
      {"escape sequence in builder_address",
       R"({"contexts": [{"name": "a", "builder": "tcp", "builder_address": "h\u001b[2J\n", )"
       R"("runner": "docker"}]})",
       "contexts[0] ('a'): field 'builder_address' must not hold control characters, as "
       "'h\\x1b[2J\\x0a' does"},
      {"control character in runner_address",
       R"({"contexts": [{"name": "a", "runner_address": "http://h\r", )" + kOk + "}]}",
       "contexts[0] ('a'): field 'runner_address' must not hold control characters, as "
       "'http://h\\x0d' does"},
      {"runner_address wrong type",
       R"({"contexts": [{"name": "a", "runner_address": 5, )" + kOk + "}]}",
       "contexts[0] ('a'): field 'runner_address' must be a string"},
      {"options not object", R"({"contexts": [{"name": "a", "builder_options": [], )" + kOk + "}]}",
       "contexts[0] ('a'): field 'builder_options' must be an object of strings"},
      {"option not string",
       R"({"contexts": [{"name": "a", "runner_options": {"n": 1}, )" + kOk + "}]}",
       "contexts[0] ('a'): field 'runner_options' must be an object of strings ('n' is not a "
       "string)"},
      {"id wrong type", R"({"contexts": [{"name": "a", "id": 1, )" + kOk + "}]}",
       "contexts[0] ('a'): field 'id' must be a string"},
      {"id empty", R"({"contexts": [{"name": "a", "id": "", )" + kOk + "}]}",
       "contexts[0] ('a'): field 'id' must not be empty"},
      {"id escapes", R"({"contexts": [{"name": "a", "id": "../x", )" + kOk + "}]}",
       "contexts[0] ('a'): field 'id' must be 1 to 64 letters, digits, '_' or '-', not '../x'"},
      {"invalid name", R"({"contexts": [{"name": "a/b", )" + kOk + "}]}",
       "contexts[0] ('a/b'): invalid context name 'a/b': names start with a letter or digit and "
       "contain only letters, digits, '_', '.', '+' and '-' (at most 64 characters)"},
      {"duplicate names",
       R"({"contexts": [{"name": "a", )" + kOk + R"(}, {"name": "b", )" + kOk +
           R"(}, {"name": "a", )" + kOk + "}]}",
       "two contexts are named 'a'"},
      {"duplicate ids",
       R"({"contexts": [{"name": "a", "id": "same", )" + kOk +
           R"(}, {"name": "b", "id": "same", )" + kOk + "}]}",
       "contexts 'a' and 'b' share the id 'same'"},
  };
}

TEST_F(StoreTest, EveryCorruptionIsNamedAndTheFileIsLeftAlone) {
  for (const Corruption& c : corruptions()) {
    SCOPED_TRACE(c.label);
    seed(c.text);
    expect_refused("context store '" + file().string() + "' is corrupt: " + c.reason + kRecovery);
    EXPECT_EQ(read_text(file()), c.text) << "the corrupt file was modified";
    EXPECT_FALSE(fs::exists(config() / "contexts.json.tmp"));
  }
}

// A huge file (here 4 GiB, sparse) is refused by its size, before a byte of it
// is read or parsed, and left as it was.
// A store envd could not read back is never written: every context in it
// would be lost to the next command.
TEST_F(StoreTest, AStoreLargerThanEnvdReadsIsNotWritten) {
  ASSERT_TRUE(store().load().ok());
  std::string before = read_text(file());
  Status st = store().update([](ContextList& l) -> Status {
    l.unknown_fields["x"] = std::string((std::size_t{64} << 20) + 1, 'a');
    return {};
  });
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message(), "cannot write the context store '" + file().string() +
                                      "': it would be larger than the 64 MiB envd reads; "
                                      "nothing changed");
  EXPECT_EQ(read_text(file()), before);
}

TEST_F(StoreTest, AFileLargerThanAnyStoreIsRefusedUnread) {
  ASSERT_TRUE(store().load().ok());
  const std::uintmax_t size = std::uintmax_t{4} << 30;
  fs::resize_file(file(), size);
  expect_refused("context store '" + file().string() +
                 "' is corrupt: it is larger than 64 MiB, which no store envd writes is" +
                 kRecovery);
  EXPECT_EQ(fs::file_size(file()), size);
}

TEST_F(StoreTest, ControlCharactersInACorruptFileDoNotReachTheMessage) {
  seed("{\"contexts\": [{\"name\": \"\\u001b[31mx\", " + kOk + "}]}");
  auto list = store().load();
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.error().message().find('\x1b'), std::string::npos) << list.error().message();
  EXPECT_NE(list.error().message().find("\\x1b[31mx"), std::string::npos);
}

TEST_F(StoreTest, AnUnreadableFileIsAnErrorNamingItAndIsLeftAlone) {
  ASSERT_TRUE(store().load().ok());
  std::string before = read_text(file());
  ASSERT_EQ(::chmod(file().c_str(), 0), 0);
  // The test may run as root, which reads anything: drop to 'nobody' in a child.
  for (fs::path p = config(); p != tmp_.path().parent_path(); p = p.parent_path()) {
    ::chmod(p.c_str(), 0755);
  }
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  pid_t pid = fork_child([&] {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) return 3;
    std::string message;
    auto list = store().load();
    if (list) return 1;
    Status st = store().update([](ContextList&) -> Status { return {}; });
    if (st) return 2;
    message = list.error().message() + "\n" + st.error().message() + "\n" +
              std::to_string(static_cast<int>(list.error().code())) + "\n";
    return ::write(out[1], message.data(), message.size()) == static_cast<ssize_t>(message.size())
               ? 0
               : 4;
  });
  ::close(out[1]);
  std::string report;
  char buf[1024];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;)
    report.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  ASSERT_EQ(wait_child(pid), 0) << report;

  const std::string expected = "the context store is unreadable: cannot read '" + file().string() +
                               "': Permission denied; check the owner and permissions of the "
                               "file and of '" +
                               config().string() + "'";
  // update() cannot even take the lock (the lock file is root's, 0600).
  EXPECT_EQ(report.substr(0, report.find('\n')), expected) << report;
  EXPECT_NE(report.find("Permission denied"), report.rfind("Permission denied")) << report;
  EXPECT_EQ(report.substr(report.rfind('\n', report.size() - 2) + 1),
            std::to_string(static_cast<int>(Errc::permission)) + "\n");
  ASSERT_EQ(::chmod(file().c_str(), 0600), 0);
  EXPECT_EQ(read_text(file()), before);
}

TEST_F(StoreTest, AStoreFileThatIsADirectoryIsAnError) {
  fs::create_directories(file());
  auto list = store().load();
  ASSERT_FALSE(list.ok());
  EXPECT_NE(list.error().message().find("'" + file().string() + "'"), std::string::npos)
      << list.error().message();
  EXPECT_EQ(list.error().message(), "the context store is unusable: '" + file().string() +
                                        "' is a directory, not a regular file; move it aside");
  EXPECT_TRUE(fs::is_directory(file()));
}

// A FIFO in the store's place would hold open() until a writer came: it is
// refused at once, and left where it is.
TEST_F(StoreTest, AStoreFileThatIsAFifoIsAnErrorNotAHang) {
  fs::create_directories(config());
  ASSERT_EQ(::mkfifo(file().c_str(), 0600), 0);
  auto list = store().load();
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.error().message(), "the context store is unusable: '" + file().string() +
                                        "' is a FIFO, not a regular file; move it aside");
  auto changed = store().update([](ContextList&) { return Status{}; });
  EXPECT_FALSE(changed.ok());
  EXPECT_TRUE(fs::is_fifo(file()));
}

TEST_F(StoreTest, OpenDefaultUsesEnvdConfigDir) {
  testing::ScopedEnv env("ENVD_CONFIG_DIR", config().string());
  auto opened = ContextStore::open_default();
  ASSERT_TRUE(opened.ok()) << opened.error().message();
  EXPECT_EQ(opened->config_dir(), config());
  EXPECT_EQ(opened->file(), config() / "contexts.json");
  EXPECT_EQ(opened->lock_file(), config() / "contexts.json.lock");
  EXPECT_EQ(opened->data_root(), config() / "contexts.d");
}

}  // namespace
}  // namespace envd::context
