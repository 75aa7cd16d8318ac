#include "unix_builder.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "testing/address_expectations.hpp"

namespace envd::plugins {
namespace {

namespace fs = std::filesystem;

constexpr auto normalized = test_support::normalized<UnixBuilder>;
constexpr auto rejected = test_support::rejected<UnixBuilder>;

constexpr const char* kExpected =
    "; expected an absolute socket path, e.g. /run/buildkit/buildkitd.sock or "
    "unix:///run/user/1000/buildkit/buildkitd.sock";

TEST(UnixBuilder, AcceptsAbsolutePathsWithOrWithoutTheScheme) {
  EXPECT_EQ(normalized("/run/buildkit/buildkitd.sock"), "/run/buildkit/buildkitd.sock");
  EXPECT_EQ(normalized("unix:///run/user/1000/buildkit/buildkitd.sock"),
            "/run/user/1000/buildkit/buildkitd.sock");
  EXPECT_EQ(normalized("UNIX:///tmp/b.sock"), "/tmp/b.sock");
  EXPECT_EQ(normalized("//run//buildkit/./buildkitd.sock"), "/run/buildkit/buildkitd.sock");
}

TEST(UnixBuilder, EmptyMeansBuildkitdsDefaultSocket) {
  EXPECT_EQ(normalized(""), "/run/buildkit/buildkitd.sock");
}

TEST(UnixBuilder, RejectsOtherFormsNamingTheExpectedOne) {
  EXPECT_EQ(rejected("buildkitd.sock"),
            std::string("unix builder address 'buildkitd.sock' is invalid: the socket path "
                        "'buildkitd.sock' is not absolute") +
                kExpected);
  EXPECT_EQ(rejected("unix://run/b.sock"),
            std::string("unix builder address 'unix://run/b.sock' is invalid: the socket path "
                        "'run/b.sock' is not absolute") +
                kExpected);
  EXPECT_EQ(rejected("tcp:///run/b.sock"),
            std::string("unix builder address 'tcp:///run/b.sock' is invalid: scheme 'tcp://' "
                        "is not accepted (only unix:// or none)") +
                kExpected);
  EXPECT_EQ(rejected("unix://"),
            std::string("unix builder address 'unix://' is invalid: the socket path is empty") +
                kExpected);
  EXPECT_EQ(rejected("/run/../etc/b.sock"),
            std::string("unix builder address '/run/../etc/b.sock' is invalid: '..' is not "
                        "allowed in a socket path") +
                kExpected);
  EXPECT_EQ(rejected("/run/buildkit/"),
            std::string("unix builder address '/run/buildkit/' is invalid: the socket path ends "
                        "with '/' (it names a directory)") +
                kExpected);
  EXPECT_EQ(rejected("/run/b.sock?x=1"),
            std::string("unix builder address '/run/b.sock?x=1' is invalid: '?' and '#' are not "
                        "allowed in a socket path") +
                kExpected);
  // The control character is quoted printably, never raw (envd/text.hpp).
  EXPECT_EQ(rejected("/run/b\n.sock"),
            std::string("unix builder address '/run/b\\x0a.sock' is invalid: the socket path "
                        "contains a control character") +
                kExpected);
  std::string long_path = "/" + std::string(107, 'a');
  EXPECT_EQ(rejected(long_path), "unix builder address '" + long_path +
                                     "' is invalid: the socket path is 108 bytes long; a unix "
                                     "socket path has at most 107" +
                                     kExpected);
  EXPECT_EQ(normalized("/" + std::string(106, 'a')), "/" + std::string(106, 'a'));
}

// A temporary directory with a real listening socket (or the remains of one).
class UnixBuilderDial : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "envd-unix-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    if (listener_ >= 0) ::close(listener_);
    fs::remove_all(dir_);
  }

  // Binds `path`; listens unless `listen` is false (a stale socket file).
  void bind_socket(const std::string& path, bool listen) {
    listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(listener_, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    if (listen) {
      ASSERT_EQ(::listen(listener_, 4), 0);
    } else {
      ::close(listener_);
      listener_ = -1;
    }
  }

  sdk::Request request(const std::string& path) {
    sdk::Request r;
    r.context = "rootless";
    r.address = path;
    r.timeout = std::chrono::milliseconds(2000);
    return r;
  }

  std::string state_of(const std::string& path, std::string* detail = nullptr) {
    auto s = UnixBuilder().status(request(path));
    EXPECT_TRUE(s);
    if (!s) return "";
    auto v = boost::json::parse(*s).as_object();
    if (detail) *detail = std::string(v.at("detail").as_string());
    return std::string(v.at("state").as_string());
  }

  fs::path dir_;
  int listener_ = -1;
};

TEST_F(UnixBuilderDial, ConnectsAListeningSocketAndHandsOverTheFd) {
  std::string path = (dir_ / "buildkitd.sock").string();
  bind_socket(path, true);
  auto t = UnixBuilder().dial(request(path));
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->kind, sdk::Transport::Kind::fd);
  EXPECT_TRUE(t->self_contained);  // the daemon's own socket, nothing relays it
  EXPECT_EQ(t->description, "unix://" + path);
  ASSERT_GE(t->fd, 0);
  int accepted = ::accept(listener_, nullptr, nullptr);
  ASSERT_GE(accepted, 0);
  ASSERT_EQ(::write(t->fd, "ping", 4), 4);
  char buf[4];
  EXPECT_EQ(::read(accepted, buf, 4), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
  ::close(accepted);
  ::close(t->fd);
  std::string detail;
  EXPECT_EQ(state_of(path, &detail), "running");
  EXPECT_EQ(detail, "the socket accepts connections; envd does not manage this daemon");
}

TEST_F(UnixBuilderDial, AMissingSocketSaysSoAndHowToStartTheDaemon) {
  std::string path = (dir_ / "nothing.sock").string();
  auto t = UnixBuilder().dial(request(path));
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code(), Errc::unavailable);
  EXPECT_EQ(t.error().message(),
            "the socket does not exist (is buildkitd running with --addr unix://" + path + "?)");
  std::string detail;
  EXPECT_EQ(state_of(path, &detail), "unknown");
  EXPECT_EQ(detail, "envd does not manage this daemon");
}

TEST_F(UnixBuilderDial, AStaleSocketIsConnectionRefused) {
  std::string path = (dir_ / "stale.sock").string();
  bind_socket(path, false);
  auto t = UnixBuilder().dial(request(path));
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code(), Errc::unavailable);
  EXPECT_EQ(t.error().message(),
            "connection refused: nothing listens on the socket (a stopped buildkitd leaves its "
            "socket behind)");
  EXPECT_EQ(state_of(path), "unknown");
}

TEST_F(UnixBuilderDial, ARegularFileIsNotASocket) {
  std::string path = (dir_ / "file").string();
  std::ofstream(path) << "x";
  auto t = UnixBuilder().dial(request(path));
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().message(), "'" + path + "' is not a socket");
}

TEST_F(UnixBuilderDial, AFileInThePathIsNotADirectory) {
  std::string file = (dir_ / "file").string();
  std::ofstream(file) << "x";
  auto t = UnixBuilder().dial(request(file + "/b.sock"));
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().message(), "a component of '" + file + "/b.sock' is not a directory");
}

TEST_F(UnixBuilderDial, LifecycleVerbsSayTheDaemonIsNotManaged) {
  auto b = UnixBuilder().bootstrap(request("/run/b.sock"));
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code(), Errc::unsupported);
  EXPECT_NE(b.error().message().find("rootlesskit buildkitd"), std::string::npos);
  EXPECT_EQ(UnixBuilder().stop(request("/run/b.sock")).error().code(), Errc::unsupported);
  EXPECT_EQ(UnixBuilder().remove(request("/run/b.sock")).error().code(), Errc::unsupported);
}

}  // namespace
}  // namespace envd::plugins
