#include "cli/build_secrets.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
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
using util::testing::write_text;

// Every message is one line and never carries a secret's value.
void expect_one_line(const Error& error) {
  EXPECT_EQ(error.message().find('\n'), std::string::npos) << error.message();
  EXPECT_EQ(error.message().find("s3cr3t"), std::string::npos) << error.message();
}

TEST(SecretFlagTest, Grammar) {
  auto file = parse_secret_flag("id=npm,src=/run/npmrc");
  ASSERT_TRUE(file) << file.error().message();
  EXPECT_EQ(file->id, "npm");
  EXPECT_EQ(file->file, "/run/npmrc");
  EXPECT_EQ(file->env, "");

  auto source = parse_secret_flag("type=file,id=npm,source=npmrc");
  ASSERT_TRUE(source);
  EXPECT_EQ(source->file, "npmrc");

  auto env = parse_secret_flag("id=token,env=GH_TOKEN");
  ASSERT_TRUE(env);
  EXPECT_EQ(env->env, "GH_TOKEN");
  EXPECT_EQ(env->file, "");

  // type=env takes the variable from src, as buildx does.
  auto typed = parse_secret_flag("type=env,id=token,src=GH_TOKEN");
  ASSERT_TRUE(typed);
  EXPECT_EQ(typed->env, "GH_TOKEN");
  EXPECT_EQ(typed->file, "");

  auto upper = parse_secret_flag("ID=a,SRC=b");
  ASSERT_TRUE(upper);
  EXPECT_EQ(upper->id, "a");
  EXPECT_EQ(upper->file, "b");

  auto bare = parse_secret_flag("id=aws");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->file, "");
  EXPECT_EQ(bare->env, "");

  auto quoted = parse_secret_flag(R"("id=a,b","src=my ""file""")");
  ASSERT_TRUE(quoted) << quoted.error().message();
  EXPECT_EQ(quoted->id, "a,b");
  EXPECT_EQ(quoted->file, "my \"file\"");
}

TEST(SecretFlagTest, BadValues) {
  struct Case {
    std::string value;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"", "invalid --secret '': missing id=ID"},
      {"src=file", "invalid --secret 'src=file': missing id=ID"},
      {"id", "invalid --secret 'id': field 'id' must be a key=value pair"},
      {"id=a,mode=0400",
       "invalid --secret 'id=a,mode=0400': unexpected key 'mode', expected type, id, src "
       "(source) or env"},
      {"type=ssh,id=a",
       "invalid --secret 'type=ssh,id=a': unsupported type 'ssh', expected file "
       "or env"},
      {"\"id=a", "invalid --secret '\"id=a': unterminated quote"},
      {"id=a\nsrc=b", "--secret takes one CSV record, not several lines"},
  };
  for (const auto& c : cases) {
    auto spec = parse_secret_flag(c.value);
    ASSERT_FALSE(spec) << c.value;
    EXPECT_EQ(spec.error().code(), Errc::invalid_argument);
    EXPECT_EQ(spec.error().message(), c.message);
    expect_one_line(spec.error());
  }
}

TEST(SecretFlagTest, LoadsFilesAndVariables) {
  TempDir dir;
  const std::string binary("s3cr3t\0\xff\n", 9);
  write_text(dir / "npmrc", binary);
  write_text(dir / "other", "second");
  ScopedEnv token("ENVD_TEST_TOKEN", "tok");
  ScopedEnv empty("ENVD_TEST_EMPTY", "");
  ScopedEnv named("ENVD_TEST_NAMED", "by-name");
  auto store = load_secrets({
      "id=npm,src=" + (dir / "npmrc").string(), "id=token,env=ENVD_TEST_TOKEN",
      "type=env,id=t2,src=ENVD_TEST_TOKEN", "id=empty,env=ENVD_TEST_EMPTY",
      "id=ENVD_TEST_NAMED",              // the variable named like the id
      "id=" + (dir / "other").string(),  // else the file named like it
  });
  ASSERT_TRUE(store) << store.error().message();
  EXPECT_EQ(store->at("npm"), binary);
  EXPECT_EQ(store->at("token"), "tok");
  EXPECT_EQ(store->at("t2"), "tok");
  EXPECT_EQ(store->at("empty"), "");
  EXPECT_EQ(store->at("ENVD_TEST_NAMED"), "by-name");
  EXPECT_EQ(store->at((dir / "other").string()), "second");
  EXPECT_EQ(store->size(), 6u);
}

TEST(SecretFlagTest, LaterValueForAnIdWins) {
  ScopedEnv a("ENVD_TEST_A", "first");
  ScopedEnv b("ENVD_TEST_B", "second");
  auto store = load_secrets({"id=x,env=ENVD_TEST_A", "id=x,env=ENVD_TEST_B"});
  ASSERT_TRUE(store);
  EXPECT_EQ(store->at("x"), "second");
}

TEST(SecretFlagTest, MissingSourcesFailBeforeTheBuild) {
  TempDir dir;
  ScopedEnv unset("ENVD_TEST_UNSET", std::nullopt);
  auto missing = load_secrets({"id=npm,src=" + (dir / "nope").string()});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::not_found);
  EXPECT_EQ(missing.error().message(), "--secret id=npm,src=" + (dir / "nope").string() +
                                           ": cannot read '" + (dir / "nope").string() +
                                           "': No such file or directory");
  expect_one_line(missing.error());

  auto variable = load_secrets({"id=t,env=ENVD_TEST_UNSET"});
  ASSERT_FALSE(variable);
  EXPECT_EQ(variable.error().code(), Errc::not_found);
  EXPECT_EQ(variable.error().message(),
            "--secret id=t,env=ENVD_TEST_UNSET: environment variable ENVD_TEST_UNSET is not set");

  // Neither set as a variable nor a file: the file is reported.
  auto bare = load_secrets({"id=ENVD_TEST_UNSET"});
  ASSERT_FALSE(bare);
  EXPECT_NE(bare.error().message().find("cannot read 'ENVD_TEST_UNSET'"), std::string::npos)
      << bare.error().message();

  auto directory = load_secrets({"id=d,src=" + dir.path().string()});
  ASSERT_FALSE(directory);
  EXPECT_NE(directory.error().message().find("Is a directory"), std::string::npos)
      << directory.error().message();

  // The first bad value fails the lot.
  ScopedEnv ok("ENVD_TEST_OK", "s3cr3t");
  auto mixed = load_secrets({"id=ok,env=ENVD_TEST_OK", "id=t,env=ENVD_TEST_UNSET"});
  ASSERT_FALSE(mixed);
  expect_one_line(mixed.error());
}

TEST(SecretFlagTest, TooBigIsRefused) {
  TempDir dir;
  std::string big(buildkit::kMaxSecretSize + 1, 's');
  write_text(dir / "big", big);
  write_text(dir / "max", std::string(buildkit::kMaxSecretSize, 'm'));
  auto max = load_secrets({"id=max,src=" + (dir / "max").string()});
  ASSERT_TRUE(max) << max.error().message();
  EXPECT_EQ(max->at("max").size(), buildkit::kMaxSecretSize);

  auto file = load_secrets({"id=big,src=" + (dir / "big").string()});
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error().message(), "--secret id=big,src=" + (dir / "big").string() + ": '" +
                                        (dir / "big").string() +
                                        "' is larger than 500 KiB, the most BuildKit accepts for "
                                        "a secret");
  ScopedEnv env("ENVD_TEST_BIG", big);
  auto variable = load_secrets({"id=big,env=ENVD_TEST_BIG"});
  ASSERT_FALSE(variable);
  EXPECT_NE(variable.error().message().find("environment variable ENVD_TEST_BIG is larger"),
            std::string::npos)
      << variable.error().message();
  EXPECT_EQ(variable.error().message().find("sss"), std::string::npos);
}

// A FIFO is a legitimate source (a password manager writing into a named
// pipe), but opening it used to block without a word until a writer came.
// Now envd waits in poll() and, when nothing has come for a while, says what
// it waits on.
TEST(SecretFlagTest, AFifoIsReadOnceItsWriterComes) {
  TempDir dir;
  fs::path fifo = dir / "pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  std::string flag = "id=f,src=" + fifo.string();
  // Joins a writer, first letting it go if it is still blocked in open()
  // (load_secrets never opened the FIFO), so that a failure cannot hang the
  // test: the guard is a reader and a writer, so the late write fits.
  auto join = [&](std::thread& writer) {
    int guard = ::open(fifo.c_str(), O_RDWR | O_NONBLOCK);
    writer.join();
    if (guard >= 0) ::close(guard);
  };
  std::vector<std::string> notices;
  SecretReadOptions options;
  options.notice = [&](const std::string& line) { notices.push_back(line); };

  // A writer that is there at once: the value, and no notice.
  options.notice_after = std::chrono::seconds(60);
  std::thread quick([&] { write_text(fifo, "s3cr3t-1"); });
  auto first = load_secrets({flag}, options);
  join(quick);
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(first->at("f"), "s3cr3t-1");
  EXPECT_TRUE(notices.empty());

  // A writer that comes only after the notice: the notice names the flag and
  // the FIFO, and then the value is read whole.
  options.notice_after = std::chrono::milliseconds(20);
  std::promise<void> noticed;
  options.notice = [&](const std::string& line) {
    notices.push_back(line);
    noticed.set_value();
  };
  std::thread late([&, told = noticed.get_future()] {
    (void)told.wait_for(std::chrono::seconds(10));
    write_text(fifo, "s3cr3t-2");
  });
  auto second = load_secrets({flag}, options);
  join(late);
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(second->at("f"), "s3cr3t-2");
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0], "--secret " + flag + ": nothing has arrived yet on '" + fifo.string() +
                            "' (a FIFO); still waiting (Ctrl-C stops)");

  // A writer that opens and closes without a word: an empty secret, not a hang.
  options.notice = {};
  std::thread empty([&] { write_text(fifo, ""); });
  auto third = load_secrets({flag}, options);
  join(empty);
  ASSERT_TRUE(third) << third.error().message();
  EXPECT_EQ(third->at("f"), "");
}

// src=/dev/fd/N (and /dev/stdin) read the descriptor envd holds. Opening the
// path anew would open the FIFO behind it as a new reader, which waits for a
// new writer for ever once the first one has left.
TEST(SecretFlagTest, AHeldDescriptorIsReadNotReopened) {
  TempDir dir;
  fs::path fifo = dir / "pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(reader, 0) << std::strerror(errno);
  int writer = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(writer, 0) << std::strerror(errno);
  ASSERT_EQ(::write(writer, "s3cr3t-h", 8), 8);
  ::close(writer);  // the writer has left before envd reads

  auto loaded = std::async(std::launch::async, [&] {
    return load_secrets({"id=h,src=/dev/fd/" + std::to_string(reader)});
  });
  if (loaded.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    ADD_FAILURE() << "reading /dev/fd/" << reader << " hangs";
    // A writer that comes and goes lets the new reader see the end.
    int late = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (late >= 0) ::close(late);
  }
  auto store = loaded.get();
  ASSERT_TRUE(store) << store.error().message();
  EXPECT_EQ(store->at("h"), "s3cr3t-h");
  // A duplicate was read: envd's own descriptor is still open, its flags untouched.
  EXPECT_EQ(::fcntl(reader, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
  ::close(reader);

  auto bad = load_secrets({"id=h,src=/dev/fd/987"});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(),
            "--secret id=h,src=/dev/fd/987: cannot read '/dev/fd/987': Bad file descriptor");
}

// A pipe is read to its end by its first reader, and a held descriptor from
// where its last reader left off: a second secret from either, or a secret
// from the standard input the Dockerfile came through, would be empty, so
// it is refused. A device reads the same again.
TEST(SecretFlagTest, AStreamIsReadByOneSecretOnly) {
  TempDir dir;
  fs::path fifo = dir / "pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  const std::string a = "id=a,src=" + fifo.string();
  const std::string b = "id=b,src=" + fifo.string();
  auto twice = load_secrets({a, b});
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().message(), "--secret " + b + ": '" + fifo.string() +
                                         "' is read to its end by --secret " + a +
                                         "; this secret would be empty");

  write_text(dir / "file", "value");
  int held = ::open((dir / "file").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(held, 0) << std::strerror(errno);
  const std::string path = "/dev/fd/" + std::to_string(held);
  auto again = load_secrets({"id=a,src=" + path, "id=b,src=/proc/self/fd/" + std::to_string(held)});
  ::close(held);
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message().find("is read to its end by --secret id=a,src=" + path),
            std::string::npos)
      << again.error().message();

  auto devices = load_secrets({"id=a,src=/dev/null", "id=b,src=/dev/null"});
  ASSERT_TRUE(devices) << devices.error().message();
  EXPECT_EQ(devices->at("b"), "");

  SecretReadOptions dockerfile_on_stdin;
  dockerfile_on_stdin.stdin_read_by = "-f -";
  auto from_stdin = load_secrets({"id=t,src=/dev/stdin"}, dockerfile_on_stdin);
  ASSERT_FALSE(from_stdin);
  EXPECT_EQ(from_stdin.error().message(),
            "--secret id=t,src=/dev/stdin: standard input is read by -f - (the Dockerfile), so "
            "this secret would be empty; give it in a file or a variable");
}

TEST(SshFlagTest, Grammar) {
  auto plain = parse_ssh_flag("default");
  EXPECT_EQ(plain.id, "default");
  EXPECT_TRUE(plain.paths.empty());
  EXPECT_EQ(parse_ssh_flag("").id, "default");
  auto named = parse_ssh_flag("github=/run/agent.sock");
  EXPECT_EQ(named.id, "github");
  EXPECT_EQ(named.paths, std::vector<std::string>{"/run/agent.sock"});
  auto anonymous = parse_ssh_flag("=/run/agent.sock");
  EXPECT_EQ(anonymous.id, "default");
  EXPECT_EQ(anonymous.paths, std::vector<std::string>{"/run/agent.sock"});
  EXPECT_TRUE(parse_ssh_flag("work=").paths.empty());
  EXPECT_EQ(parse_ssh_flag("keys=a,b").paths, (std::vector<std::string>{"a", "b"}));
}

class SshResolveTest : public ::testing::Test {
 protected:
  // A listening unix socket at `path` (connections wait in its backlog), or,
  // with listen=false, one that refuses connections.
  fs::path socket_at(const std::string& name, bool listen = true) {
    fs::path path = dir_ / name;
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    if (listen) {
      EXPECT_EQ(::listen(fd, 8), 0);
      fds_.push_back(fd);
    } else {
      ::close(fd);
    }
    return path;
  }
  ~SshResolveTest() override {
    for (int fd : fds_) ::close(fd);
  }

  TempDir dir_;
  std::vector<int> fds_;
};

TEST_F(SshResolveTest, DefaultUsesSshAuthSock) {
  fs::path agent = socket_at("agent.sock");
  fs::path other = socket_at("other.sock");
  ScopedEnv sock("SSH_AUTH_SOCK", agent.string());
  auto agents = resolve_ssh_agents({"default", "github=" + other.string(), "work"});
  ASSERT_TRUE(agents) << agents.error().message();
  EXPECT_EQ(agents->at("default"), agent);
  EXPECT_EQ(agents->at("github"), other);
  EXPECT_EQ(agents->at("work"), agent);
  EXPECT_EQ(agents->size(), 3u);
  auto none = resolve_ssh_agents({});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST_F(SshResolveTest, BadValues) {
  fs::path agent = socket_at("agent.sock");
  fs::path dead = socket_at("dead.sock", false);
  fs::path key = dir_ / "id_ed25519";
  write_text(key, "-----BEGIN OPENSSH PRIVATE KEY-----\n");
  std::string missing = (dir_ / "missing.sock").string();

  {
    ScopedEnv unset("SSH_AUTH_SOCK", std::nullopt);
    auto r = resolve_ssh_agents({"default"});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), Errc::not_found);
    EXPECT_EQ(r.error().message(),
              "--ssh default: SSH_AUTH_SOCK is not set; start an ssh-agent or give its socket as "
              "--ssh default=SOCKET");
  }
  ScopedEnv sock("SSH_AUTH_SOCK", agent.string());
  struct Case {
    std::string value;
    Errc code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"default=" + key.string(), Errc::invalid_argument,
       "--ssh default=" + key.string() + ": '" + key.string() +
           "' is a file, not an ssh-agent socket; envd forwards agents only: add the key to one "
           "with ssh-add and pass --ssh default=$SSH_AUTH_SOCK"},
      {"x=" + missing, Errc::not_found,
       "--ssh x=" + missing + ": cannot use ssh agent socket '" + missing +
           "': No such file or directory"},
      {"x=" + dir_.path().string(), Errc::invalid_argument,
       "--ssh x=" + dir_.path().string() + ": '" + dir_.path().string() +
           "' is not an ssh-agent socket"},
      {"x=" + dead.string(), Errc::unavailable,
       "--ssh x=" + dead.string() + ": cannot connect to ssh agent socket '" + dead.string() +
           "': Connection refused"},
      {"x=" + agent.string() + "," + agent.string(), Errc::invalid_argument,
       "--ssh x=" + agent.string() + "," + agent.string() +
           ": envd forwards one ssh-agent socket per id, not a list of paths"},
  };
  for (const auto& c : cases) {
    auto r = resolve_ssh_agents({c.value});
    ASSERT_FALSE(r) << c.value;
    EXPECT_EQ(r.error().code(), c.code) << c.value;
    EXPECT_EQ(r.error().message(), c.message);
    expect_one_line(r.error());
  }
  auto twice = resolve_ssh_agents({"default", "=" + agent.string()});
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().message(), "--ssh =" + agent.string() + ": id 'default' is given twice");
}

}  // namespace
}  // namespace envd::cli
