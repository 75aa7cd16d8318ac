#include "buildkit/ssh_forward.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "buildkit/attachables_test_support.hpp"
#include "envd/process.hpp"
#include "github.com/moby/buildkit/session/sshforward/ssh.grpc.pb.h"
#include "util/test_support.hpp"

namespace envd::buildkit {
namespace {

namespace fs = std::filesystem;
namespace pb = moby::sshforward::v1;
using util::testing::TempDir;

constexpr char kFailure = 5;
constexpr char kRequestIdentities = 11;
constexpr char kIdentitiesAnswer = 12;
constexpr char kRemoveAllIdentities = 19;
constexpr const char* kKeyComment = "envd-test-key";

// One agent protocol message: 4-byte big-endian length, then the body.
std::string message(const std::string& body) {
  auto n = static_cast<std::uint32_t>(body.size());
  std::string out{static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                  static_cast<char>(n)};
  return out + body;
}

std::uint32_t be32(const std::string& data, std::size_t at) {
  std::uint32_t n = 0;
  for (std::size_t i = 0; i < 4; ++i) n = (n << 8) | static_cast<unsigned char>(data[at + i]);
  return n;
}

pb::BytesMessage bytes(const std::string& data) {
  pb::BytesMessage m;
  m.set_data(data);
  return m;
}

using Stream = grpc::ClientReaderWriter<pb::BytesMessage, pb::BytesMessage>;

// Reads chunks until one whole agent message arrived; "" if the stream ended.
std::string read_message(Stream& stream) {
  std::string data;
  pb::BytesMessage in;
  while (data.size() < 4 || data.size() < 4 + be32(data, 0)) {
    if (!stream.Read(&in)) return "";
    data += in.data();
  }
  return data;
}

// A unix socket listening at `path`; accepts nothing by itself.
int listen_unix(const fs::path& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 8) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Plays the daemon's side of `RUN --mount=type=ssh`: a unix socket whose every
// connection is carried over one ForwardAgent stream, as BuildKit mounts it.
class DaemonSideSocket {
 public:
  DaemonSideSocket(const std::shared_ptr<grpc::Channel>& channel, const fs::path& path,
                   std::string id)
      : stub_(pb::SSH::NewStub(channel)), id_(std::move(id)), listen_fd_(listen_unix(path)) {
    if (listen_fd_ >= 0) thread_ = std::thread([this] { serve(); });
  }
  ~DaemonSideSocket() {
    if (listen_fd_ < 0) return;
    ::shutdown(listen_fd_, SHUT_RDWR);  // wakes accept()
    thread_.join();
    ::close(listen_fd_);
  }
  bool ok() const { return listen_fd_ >= 0; }

 private:
  void serve() {
    while (true) {
      int conn = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) {
        if (errno == EINTR) continue;
        return;
      }
      relay(conn);
      ::close(conn);
    }
  }
  void relay(int conn) {
    grpc::ClientContext context;
    context.AddMetadata("buildkit.ssh.id", id_);
    auto stream = stub_->ForwardAgent(&context);
    std::thread answers([&] {
      pb::BytesMessage in;
      while (stream->Read(&in)) {
        const std::string& data = in.data();
        for (std::size_t off = 0; off < data.size();) {
          ssize_t n = ::send(conn, data.data() + off, data.size() - off, MSG_NOSIGNAL);
          if (n <= 0) break;
          off += static_cast<std::size_t>(n);
        }
      }
      ::shutdown(conn, SHUT_WR);
    });
    char buf[4096];
    ssize_t n;
    while ((n = ::read(conn, buf, sizeof buf)) > 0) {
      if (!stream->Write(bytes(std::string(buf, static_cast<std::size_t>(n))))) break;
    }
    stream->WritesDone();
    answers.join();
    (void)stream->Finish();
  }

  std::unique_ptr<pb::SSH::Stub> stub_;
  std::string id_;
  int listen_fd_;
  std::thread thread_;
};

sdk::ProcessOptions command(std::vector<std::string> argv) {
  sdk::ProcessOptions options;
  options.argv = std::move(argv);
  options.timeout = std::chrono::seconds(20);
  return options;
}

class SshForwardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto probe = sdk::run_process(command({"ssh-agent", "-h"}));
    if (!probe && probe.error().code() == Errc::not_found) {
      GTEST_SKIP() << "ssh-agent is not installed (openssh-client; scripts/install-deps.sh)";
    }
    auto keygen = sdk::run_process(command({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                                            kKeyComment, "-f", (dir_ / "key").string()}));
    ASSERT_TRUE(keygen && keygen->succeeded()) << (keygen ? keygen->err : keygen.error().message());
    auto pid =
        sdk::spawn_process(command({"ssh-agent", "-D", "-a", agent_socket_.string()}), -1, -1, -1);
    ASSERT_TRUE(pid) << pid.error().message();
    agent_pid_ = *pid;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!check_agent_socket(agent_socket_)) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "ssh-agent did not start";
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    auto added = ssh_add(agent_socket_, {(dir_ / "key").string()});
    ASSERT_TRUE(added.succeeded()) << added.err;
  }
  void TearDown() override {
    if (agent_pid_ > 0) {
      ::kill(agent_pid_, SIGTERM);
      (void)sdk::wait_process(agent_pid_);
    }
  }

  static sdk::ProcessResult ssh_add(const fs::path& socket, std::vector<std::string> args) {
    args.insert(args.begin(), "ssh-add");
    sdk::ProcessOptions options = command(std::move(args));
    options.env["SSH_AUTH_SOCK"] = socket.string();
    auto result = sdk::run_process(options);
    if (!result) {
      sdk::ProcessResult failed;
      failed.err = result.error().message();
      return failed;
    }
    return *result;
  }

  TempDir dir_;
  fs::path agent_socket_ = dir_ / "agent.sock";
  pid_t agent_pid_ = -1;
};

TEST_F(SshForwardTest, CheckAgent) {
  // A socket nobody listens on any more: connecting is refused.
  fs::path dead = dir_ / "dead.sock";
  ::close(listen_unix(dead));
  SshForwardProvider provider({{"default", agent_socket_}, {"dead", dead}});
  EXPECT_EQ(provider.methods(), (std::vector<std::string>{"/moby.sshforward.v1.SSH/CheckAgent",
                                                          "/moby.sshforward.v1.SSH/ForwardAgent"}));
  testing::LoopbackServer server(dir_.path(), {&provider});
  ASSERT_TRUE(server.started());
  auto stub = pb::SSH::NewStub(server.channel());
  auto check = [&](const std::string& id) {
    grpc::ClientContext context;
    pb::CheckAgentRequest request;
    request.set_id(id);
    pb::CheckAgentResponse response;
    return stub->CheckAgent(&context, request, &response);
  };
  EXPECT_TRUE(check("default").ok());
  EXPECT_TRUE(check("").ok());  // the daemon's "no id"
  auto unknown = check("github");
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(unknown.error_message().find("--ssh github"), std::string::npos)
      << unknown.error_message();
  auto refused = check("dead");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(refused.error_message().find(dead.string()), std::string::npos)
      << refused.error_message();
}

TEST_F(SshForwardTest, ForwardsIdentitiesAndRefusesChanges) {
  SshForwardProvider provider({{"work", agent_socket_}});
  testing::LoopbackServer server(dir_.path(), {&provider});
  ASSERT_TRUE(server.started());
  auto stub = pb::SSH::NewStub(server.channel());
  grpc::ClientContext context;
  context.AddMetadata("buildkit.ssh.id", "work");
  auto stream = stub->ForwardAgent(&context);

  // SSH2_AGENTC_REQUEST_IDENTITIES, split across chunks as a stream may be.
  std::string request = message(std::string(1, kRequestIdentities));
  ASSERT_TRUE(stream->Write(bytes(request.substr(0, 2))));
  ASSERT_TRUE(stream->Write(bytes(request.substr(2))));
  std::string answer = read_message(*stream);
  ASSERT_GE(answer.size(), 9u);
  EXPECT_EQ(answer[4], kIdentitiesAnswer);
  EXPECT_EQ(be32(answer, 5), 1u);  // one key
  EXPECT_NE(answer.find(kKeyComment), std::string::npos);

  // Removing every key is answered SSH_AGENT_FAILURE here, and two requests
  // in one chunk are answered in order.
  ASSERT_TRUE(stream->Write(bytes(message(std::string(1, kRemoveAllIdentities)) + request)));
  EXPECT_EQ(read_message(*stream), message(std::string(1, kFailure)));
  EXPECT_EQ(read_message(*stream), answer);

  stream->WritesDone();
  EXPECT_EQ(read_message(*stream), "");
  auto status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  // The key is still in the agent.
  EXPECT_NE(ssh_add(agent_socket_, {"-l"}).out.find(kKeyComment), std::string::npos);
}

TEST_F(SshForwardTest, UnknownIdEndsTheStream) {
  SshForwardProvider provider({{"default", agent_socket_}});
  testing::LoopbackServer server(dir_.path(), {&provider});
  ASSERT_TRUE(server.started());
  auto stub = pb::SSH::NewStub(server.channel());
  {
    grpc::ClientContext context;  // no metadata: "default"
    auto stream = stub->ForwardAgent(&context);
    ASSERT_TRUE(stream->Write(bytes(message(std::string(1, kRequestIdentities)))));
    EXPECT_EQ(read_message(*stream)[4], kIdentitiesAnswer);
    stream->WritesDone();
    EXPECT_TRUE(stream->Finish().ok());
  }
  {
    grpc::ClientContext context;
    context.AddMetadata("buildkit.ssh.id", "other");
    auto stream = stub->ForwardAgent(&context);
    stream->WritesDone();
    EXPECT_EQ(read_message(*stream), "");
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
}

// What `RUN --mount=type=ssh` gives a step: ssh-add on a socket the daemon
// relays over ForwardAgent lists the user's key and cannot remove it.
TEST_F(SshForwardTest, SshAddThroughTheForwardedSocket) {
  SshForwardProvider provider({{"default", agent_socket_}});
  testing::LoopbackServer server(dir_.path(), {&provider});
  ASSERT_TRUE(server.started());
  fs::path mounted = dir_ / "mounted.sock";
  DaemonSideSocket step_socket(server.channel(), mounted, "default");
  ASSERT_TRUE(step_socket.ok());

  auto listed = ssh_add(mounted, {"-l"});
  EXPECT_TRUE(listed.succeeded()) << listed.err;
  EXPECT_NE(listed.out.find(kKeyComment), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("ED25519"), std::string::npos) << listed.out;

  auto removed = ssh_add(mounted, {"-D"});
  EXPECT_FALSE(removed.succeeded()) << removed.out;
  EXPECT_NE(ssh_add(mounted, {"-l"}).out.find(kKeyComment), std::string::npos);
}

TEST_F(SshForwardTest, AgentClosingEndsTheStreamWithAnError) {
  fs::path closing = dir_ / "closing.sock";
  int listener = listen_unix(closing);
  ASSERT_GE(listener, 0);
  std::thread closer([listener] {
    int conn = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn >= 0) ::close(conn);
  });
  SshForwardProvider provider({{"default", closing}});
  {
    testing::LoopbackServer server(dir_.path(), {&provider});
    ASSERT_TRUE(server.started());
    auto stub = pb::SSH::NewStub(server.channel());
    grpc::ClientContext context;
    auto stream = stub->ForwardAgent(&context);
    ASSERT_TRUE(stream->Write(bytes(message(std::string(1, kRequestIdentities)))));
    EXPECT_EQ(read_message(*stream), "");
    auto status = stream->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_NE(status.error_message().find("closed"), std::string::npos) << status.error_message();
  }
  closer.join();
  ::close(listener);
}

TEST_F(SshForwardTest, SilentAgentGivesUpWhenTheCallIsCancelled) {
  // Connections wait in the backlog; nobody ever answers.
  fs::path silent = dir_ / "silent.sock";
  int listener = listen_unix(silent);
  ASSERT_GE(listener, 0);
  SshForwardProvider provider({{"default", silent}});
  auto start = std::chrono::steady_clock::now();
  {
    testing::LoopbackServer server(dir_.path(), {&provider});
    ASSERT_TRUE(server.started());
    auto stub = pb::SSH::NewStub(server.channel());
    grpc::ClientContext context;
    auto stream = stub->ForwardAgent(&context);
    ASSERT_TRUE(stream->Write(bytes(message(std::string(1, kRequestIdentities)))));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    context.TryCancel();
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }  // Shutdown() waits for the handler: it must have returned.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  ::close(listener);
}

}  // namespace
}  // namespace envd::buildkit
