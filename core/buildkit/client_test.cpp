// Client and Session against an in-process fake Control server, served over a
// socketpair (as a driver's fd transport) or a unix socket (a gRPC target).
// The fake's Session handler acts like the daemon: it opens an HTTP/2 client on
// the tunnel and health-checks the client's session server through it.
#include "buildkit/client.hpp"
#include "buildkit/tls_tunnel.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpcpp/create_channel_posix.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/server_posix.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "buildkit/attachable.hpp"
#include "buildkit/progress.hpp"
#include "buildkit/session.hpp"
#include "github.com/moby/buildkit/api/services/control/control.grpc.pb.h"
#include "github.com/moby/buildkit/session/auth/auth.grpc.pb.h"

namespace envd::buildkit {
namespace {

namespace bk = moby::buildkit::v1;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Waits until the server call is cancelled (client gone or cancelled), at most `limit`.
void wait_cancelled(grpc::ServerContext* context, std::chrono::milliseconds limit) {
  auto end = Clock::now() + limit;
  while (!context->IsCancelled() && Clock::now() < end) std::this_thread::sleep_for(5ms);
}

bool send_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Calls grpc.health.v1.Health/Check (empty service) on `channel`; true if SERVING.
bool health_check(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 5s);
  grpc::CompletionQueue cq;
  grpc::Slice empty;
  grpc::ByteBuffer request(&empty, 1);
  auto call = stub.PrepareUnaryCall(&context, "/grpc.health.v1.Health/Check", request, &cq);
  call->StartCall();
  grpc::ByteBuffer response;
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  if (!cq.Next(&tag, &ok) || !status.ok()) return false;
  std::vector<grpc::Slice> slices;
  (void)response.Dump(&slices);
  std::string bytes;
  for (auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return bytes == std::string("\x08\x01", 2);  // status = SERVING
}

class FakeControl final : public bk::Control::Service {
 public:
  // lose_session: uses the session, then fails as the daemon does when the
  // session's connection went away ("EOF").
  enum class SolveMode { succeed, fail, block, daemon_cancels, lose_session };
  enum class SessionMode { serve, reject, ignore_half_close };

  // Configuration (set before use).
  SolveMode solve_mode = SolveMode::succeed;
  SessionMode session_mode = SessionMode::serve;
  grpc::StatusCode info_code = grpc::StatusCode::UNIMPLEMENTED;
  std::string version;
  int status_updates = 3;
  bool hang_list_workers = false;
  std::chrono::milliseconds list_workers_delay{0};  // answers this late (unless cancelled)
  bool list_workers_after_solve = false;            // and not before a Solve arrived (5 s at most)
  grpc::StatusCode list_workers_code = grpc::StatusCode::OK;
  // What a filtered ListWorkers gets: OK applies it as BuildKit does (only
  // the form `id!="<id>"` is known here; any other filter is refused as
  // containerd's parser refuses what it cannot read, with Unknown).
  grpc::StatusCode filtered_code = grpc::StatusCode::OK;
  std::chrono::milliseconds solve_delay{0};  // a succeeding Solve takes this long

  // Observations.
  std::mutex mu;
  std::condition_variable cv;
  bk::SolveRequest last_solve;
  int solves = 0;
  std::atomic<int> list_workers_calls{0};
  std::vector<std::string> list_workers_filters;  // each call's filters, joined by ';'
  std::atomic<int> info_calls{0};
  bool solve_started = false;
  std::multimap<std::string, std::string> session_metadata;
  int sessions = 0;
  int sessions_ended = 0;
  int healthy_sessions = 0;
  std::set<std::string> checked_sessions;  // ids whose health check is done
  int solves_cancelled_awaiting_session = 0;

  grpc::Status ListWorkers(grpc::ServerContext* context, const bk::ListWorkersRequest* request,
                           bk::ListWorkersResponse* response) override {
    ++list_workers_calls;
    std::string excluded;
    {
      std::string filters;
      for (const auto& filter : request->filter()) filters += (filters.empty() ? "" : ";") + filter;
      std::lock_guard lock(mu);
      list_workers_filters.push_back(filters);
    }
    for (const auto& filter : request->filter()) {
      if (filtered_code != grpc::StatusCode::OK) return {filtered_code, "filters: bad filter"};
      const std::string prefix = "id!=\"";
      if (filter.rfind(prefix, 0) != 0 || filter.size() < prefix.size() + 1 ||
          filter.back() != '"') {
        return {grpc::StatusCode::UNKNOWN, "filters: parse error: " + filter};
      }
      excluded = filter.substr(prefix.size(), filter.size() - prefix.size() - 1);
    }
    if (excluded == "moby") return grpc::Status::OK;  // the one worker, filtered out
    if (hang_list_workers) {
      wait_cancelled(context, 10s);
      return grpc::Status::CANCELLED;
    }
    if (list_workers_after_solve) wait_for_solve(5s);
    if (list_workers_delay > 0ms) {
      wait_cancelled(context, list_workers_delay);
      if (context->IsCancelled()) return grpc::Status::CANCELLED;
    }
    if (list_workers_code != grpc::StatusCode::OK) {
      return grpc::Status(list_workers_code, "no workers for you");
    }
    auto* worker = response->add_record();
    worker->set_id("moby");
    (*worker->mutable_labels())["org.mobyproject.buildkit.worker.executor"] = "runc";
    auto* amd64 = worker->add_platforms();
    amd64->set_os("linux");
    amd64->set_architecture("amd64");
    auto* arm = worker->add_platforms();
    arm->set_os("linux");
    arm->set_architecture("arm");
    arm->set_variant("v7");
    return grpc::Status::OK;
  }

  grpc::Status Info(grpc::ServerContext*, const bk::InfoRequest*,
                    bk::InfoResponse* response) override {
    ++info_calls;
    if (info_code != grpc::StatusCode::OK) return {info_code, "unknown method Info"};
    response->mutable_buildkitversion()->set_version(version);
    return grpc::Status::OK;
  }

  grpc::Status Solve(grpc::ServerContext* context, const bk::SolveRequest* request,
                     bk::SolveResponse* response) override {
    {
      std::lock_guard lock(mu);
      last_solve = *request;
      ++solves;
      solve_started = true;
      cv.notify_all();
    }
    switch (solve_mode) {
      case SolveMode::lose_session:
        if (!wait_for_session(context, request->session())) return session_missing(context);
        return {grpc::StatusCode::UNKNOWN, "EOF"};
      case SolveMode::succeed:
        // Like the daemon, use the session before finishing.
        if (!wait_for_session(context, request->session())) return session_missing(context);
        wait_cancelled(context, solve_delay);
        if (context->IsCancelled()) return grpc::Status::CANCELLED;
        (*response->mutable_exporterresponse())["containerimage.digest"] = "sha256:0123";
        return grpc::Status::OK;
      case SolveMode::fail:
        return {grpc::StatusCode::UNKNOWN,
                "process \"/bin/sh -c false\" did not complete successfully: exit code: 1"};
      case SolveMode::block:
        wait_cancelled(context, 20s);
        return grpc::Status::CANCELLED;
      case SolveMode::daemon_cancels:
        // What buildkitd answers when it stops (SIGTERM) under a build.
        return {grpc::StatusCode::CANCELLED, "context canceled"};
    }
    return grpc::Status::OK;
  }

  grpc::Status Status(grpc::ServerContext*, const bk::StatusRequest* request,
                      grpc::ServerWriter<bk::StatusResponse>* writer) override {
    for (int i = 0; i < status_updates; ++i) {
      bk::StatusResponse response;
      auto* vertex = response.add_vertexes();
      vertex->set_digest("sha256:" + request->ref());
      vertex->set_name("step " + std::to_string(i));
      if (!writer->Write(response)) break;
    }
    return grpc::Status::OK;
  }

  // Acts as the daemon: dials the client's session server through the stream
  // and health-checks it, then waits for the client to half-close.
  grpc::Status Session(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<bk::BytesMessage, bk::BytesMessage>* stream) override {
    std::string uuid;
    {
      std::lock_guard lock(mu);
      ++sessions;
      auto id = context->client_metadata().find("x-docker-expose-session-uuid");
      if (id != context->client_metadata().end()) uuid.assign(id->second.data(), id->second.size());
      for (const auto& [key, value] : context->client_metadata()) {
        session_metadata.emplace(std::string(key.data(), key.size()),
                                 std::string(value.data(), value.size()));
      }
    }
    if (session_mode == SessionMode::reject) {
      std::lock_guard lock(mu);
      checked_sessions.insert(uuid);
      cv.notify_all();
      return {grpc::StatusCode::ALREADY_EXISTS, "session " + uuid + " already exists"};
    }
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      return {grpc::StatusCode::INTERNAL, "socketpair"};
    }
    int pump_fd = fds[0];
    std::thread incoming([&] {
      bk::BytesMessage message;
      while (stream->Read(&message)) {
        if (!send_all(pump_fd, message.data())) break;
      }
      ::shutdown(pump_fd, SHUT_RDWR);
    });
    std::thread outgoing([&] {
      std::string buffer(32 * 1024, '\0');
      bk::BytesMessage message;
      for (;;) {
        ssize_t n = ::recv(pump_fd, buffer.data(), buffer.size(), 0);
        if (n <= 0) break;
        message.set_data(buffer.data(), static_cast<size_t>(n));
        if (!stream->Write(message)) break;
      }
    });
    bool healthy = false;
    {
      auto channel = grpc::CreateInsecureChannelFromFd("session", fds[1]);
      healthy = health_check(channel);
    }
    {
      std::lock_guard lock(mu);
      if (healthy) ++healthy_sessions;
      checked_sessions.insert(uuid);
      cv.notify_all();
    }
    incoming.join();  // the client half-closed (or the call died)
    if (session_mode == SessionMode::ignore_half_close) wait_cancelled(context, 20s);
    ::shutdown(pump_fd, SHUT_RDWR);
    outgoing.join();
    ::close(pump_fd);
    std::lock_guard lock(mu);
    ++sessions_ended;
    cv.notify_all();
    return grpc::Status::OK;
  }

  // As the daemon's session manager (session.Manager.Get): a Solve may
  // arrive before its session, and waits for it until the call is cancelled
  // or 5 s pass.
  bool wait_for_session(grpc::ServerContext* context, const std::string& id) {
    const auto end = Clock::now() + 5s;
    std::unique_lock lock(mu);
    while (checked_sessions.count(id) == 0) {
      if (context->IsCancelled() || Clock::now() >= end) return false;
      cv.wait_for(lock, 10ms);
    }
    return true;
  }
  grpc::Status session_missing(grpc::ServerContext* context) {
    if (context->IsCancelled()) {
      std::lock_guard lock(mu);
      ++solves_cancelled_awaiting_session;
      cv.notify_all();
      return grpc::Status::CANCELLED;
    }
    return {grpc::StatusCode::UNKNOWN, "no active session: context deadline exceeded"};
  }

  bool wait_for_solve(std::chrono::milliseconds limit) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, limit, [&] { return solve_started; });
  }
};

// The fake served on one end of a socketpair; the other end is a driver transport.
class FdServer {
 public:
  explicit FdServer(FakeControl& fake) {
    grpc::ServerBuilder builder;
    builder.RegisterService(&fake);
    server_ = builder.BuildAndStart();
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    ::fcntl(fds[1], F_SETFL, ::fcntl(fds[1], F_GETFL, 0) | O_NONBLOCK);
    peer_ = ::dup(fds[1]);
    grpc::AddInsecureChannelFromFd(server_.get(), fds[1]);
    client_fd_ = fds[0];
  }
  ~FdServer() {
    server_->Shutdown(std::chrono::system_clock::now() + 1s);
    server_->Wait();
    if (peer_ >= 0) ::close(peer_);
  }

  plugin::Transport transport() {
    plugin::Transport t;
    t.kind = ENVD_TRANSPORT_FD;
    t.fd = client_fd_;
    client_fd_ = -1;
    t.description = "fake-daemon";
    return t;
  }

  // The daemon dies: its end of the connection goes away.
  void kill() { ::shutdown(peer_, SHUT_RDWR); }

 private:
  std::unique_ptr<grpc::Server> server_;
  int client_fd_ = -1;
  int peer_ = -1;
};

class RecordingSink : public ProgressSink {
 public:
  void update(const bk::StatusResponse& status) override {
    EXPECT_FALSE(done_called) << "update after done";
    for (const auto& v : status.vertexes()) names.push_back(v.name());
  }
  void done() override { ++done_called; }
  std::vector<std::string> names;
  int done_called = 0;
};

// Serves the generated Auth service with every method unimplemented.
class FakeAttachable : public Attachable {
 public:
  void register_on(grpc::ServerBuilder& builder) override { builder.RegisterService(&service_); }
  std::vector<std::string> methods() const override {
    return {"/moby.filesync.v1.Auth/Credentials"};
  }

 private:
  moby::filesync::v1::Auth::Service service_;
};

Client connect_ok(FdServer& server) {
  auto client = Client::connect(server.transport(), 5s);
  EXPECT_TRUE(client) << client.error().message();
  return std::move(*client);
}

SolveRequest sample_request() {
  SolveRequest request;
  request.frontend_attrs = {{"filename", "Dockerfile"}, {"force-network-mode", "none"}};
  request.exports = {{"moby", {{"name", "x/y:latest"}}}, {"local", {{"mode", "copy"}}}};
  request.entitlements = {"network.host"};
  return request;
}

int thread_count() {
  int n = 0;
  if (DIR* dir = ::opendir("/proc/self/task")) {
    while (dirent* entry = ::readdir(dir)) {
      if (entry->d_name[0] != '.') ++n;
    }
    ::closedir(dir);
  }
  return n;
}

std::string temp_dir() {
  char tmpl[] = "/tmp/envd-bk-XXXXXX";
  const char* made = ::mkdtemp(tmpl);
  EXPECT_NE(made, nullptr);
  return made ? made : "/tmp";
}

// A gRPC target transport for a unix socket at `path`.
plugin::Transport unix_target(const std::string& path, std::string description) {
  plugin::Transport t;
  t.kind = ENVD_TRANSPORT_GRPC_TARGET;
  t.target = "unix:" + path;
  t.description = std::move(description);
  return t;
}

// The fake, listening on a unix socket only 400 ms after construction: a
// daemon that is still starting when the client dials.
class LateServer {
 public:
  LateServer() : dir_(temp_dir()) {
    starter_ = std::thread([this] {
      std::this_thread::sleep_for(400ms);
      grpc::ServerBuilder builder;
      builder.AddListeningPort("unix:" + socket(), grpc::InsecureServerCredentials());
      builder.RegisterService(&fake_);
      server_ = builder.BuildAndStart();
    });
  }
  LateServer(const LateServer&) = delete;
  LateServer& operator=(const LateServer&) = delete;
  ~LateServer() {
    started();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + 1s);
    std::filesystem::remove_all(dir_);
  }

  std::string socket() const { return dir_ + "/late.sock"; }
  // Waits until the server has been started.
  void started() {
    if (starter_.joinable()) starter_.join();
  }

 private:
  std::string dir_;
  FakeControl fake_;
  std::unique_ptr<grpc::Server> server_;
  std::thread starter_;
};

// ---- connect ---------------------------------------------------------------

TEST(ClientConnect, SucceedsOverFdTransport) {
  FakeControl fake;
  FdServer server(fake);
  auto client = Client::connect(server.transport(), 5s);
  ASSERT_TRUE(client) << client.error().message();
  EXPECT_EQ(client->address(), "fake-daemon");
}

TEST(ClientConnect, ClosedSocketFailsFastNamingTheAddress) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  ::close(fds[1]);
  plugin::Transport t;
  t.fd = fds[0];
  t.description = "unix:///run/buildkit/buildkitd.sock";
  auto start = Clock::now();
  auto client = Client::connect(std::move(t), 10s);
  ASSERT_FALSE(client);
  EXPECT_LT(Clock::now() - start, 2s);
  EXPECT_EQ(client.error().code(), Errc::unavailable);
  EXPECT_EQ(client.error().message().rfind(
                "cannot connect to buildkitd at unix:///run/buildkit/buildkitd.sock: ", 0),
            0u)
      << client.error().message();
}

TEST(ClientConnect, MissingUnixSocketRetriesUntilTheDeadline) {
  std::string dir = temp_dir();
  auto start = Clock::now();
  auto client =
      Client::connect(unix_target(dir + "/none.sock", "unix://" + dir + "/none.sock"), 400ms);
  ASSERT_FALSE(client);
  EXPECT_LT(Clock::now() - start, 2s);
  // To the deadline, not to the last pause that fitted before it (the
  // pauses double: 50, 100, 200 ms, so 350 ms once, 2.3 s of a 3 s wait).
  EXPECT_GE(Clock::now() - start, 390ms);
  EXPECT_EQ(client.error().code(), Errc::unavailable);
  EXPECT_NE(client.error().message().find("cannot connect to buildkitd at unix://" + dir),
            std::string::npos)
      << client.error().message();
  std::filesystem::remove_all(dir);
}

TEST(ClientConnect, WaitsForADaemonThatIsStillStarting) {
  LateServer late;
  auto client = Client::connect(unix_target(late.socket(), "late-daemon"), 5s);
  late.started();
  EXPECT_TRUE(client) << client.error().message();
}

TEST(ClientConnect, DeadlineWhenTheServerNeverAnswers) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  plugin::Transport t;
  t.fd = fds[0];
  t.description = "tcp://10.0.0.1:1234";
  auto start = Clock::now();
  auto client = Client::connect(std::move(t), 300ms);
  ASSERT_FALSE(client);
  EXPECT_LT(Clock::now() - start, 2s);
  EXPECT_EQ(client.error().code(), Errc::timeout);
  EXPECT_EQ(client.error().message(),
            "cannot connect to buildkitd at tcp://10.0.0.1:1234: no answer within 300ms");
  ::close(fds[1]);
}

TEST(ClientConnect, SlowServerTimesOut) {
  FakeControl fake;
  fake.hang_list_workers = true;
  FdServer server(fake);
  auto client = Client::connect(server.transport(), 1s);
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().code(), Errc::timeout);
  EXPECT_NE(client.error().message().find("no answer within 1s"), std::string::npos);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// TLS: a CA and a server certificate for "buildkitd.test" made with the openssl
// tool; the client verifies it through tls_server_name.
class TlsConnect : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_dir();
    std::string cmd = "cd " + dir_ +
                      " && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test-ca "
                      "-keyout ca.key -out ca.pem"
                      " && openssl req -newkey rsa:2048 -nodes -subj /CN=buildkitd.test "
                      "-keyout server.key -out server.csr"
                      " && printf 'subjectAltName=DNS:buildkitd.test' > ext.cnf"
                      " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key "
                      "-CAcreateserial -days 1 -extfile ext.cnf -out server.pem";
    if (std::system(("(" + cmd + ") >/dev/null 2>&1").c_str()) != 0) {
      GTEST_SKIP() << "openssl could not make test certificates";
    }
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back(
        {read_file(dir_ + "/server.key"), read_file(dir_ + "/server.pem")});
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(ssl), &port_);
    builder.RegisterService(&fake_);
    server_ = builder.BuildAndStart();
    ASSERT_TRUE(server_);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + 1s);
    std::filesystem::remove_all(dir_);
  }
  plugin::Transport transport(const std::string& server_name) {
    plugin::Transport t;
    t.kind = ENVD_TRANSPORT_GRPC_TARGET;
    t.target = "127.0.0.1:" + std::to_string(port_);
    t.tls_ca_pem = read_file(dir_ + "/ca.pem");
    t.tls_server_name = server_name;
    t.description = "tcp://" + t.target;
    return t;
  }

  std::string dir_;
  FakeControl fake_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(TlsConnect, VerifiesTheServerName) {
  auto client = Client::connect(transport("buildkitd.test"), 5s);
  ASSERT_TRUE(client) << client.error().message();
  auto info = client->info(5s);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->workers.at(0).id, "moby");
}

TEST_F(TlsConnect, WrongServerNameFails) {
  // The refusal comes at once; the deadline only has to cover a slow
  // machine's connect and handshake, or it would be what the test reports.
  auto client = Client::connect(transport("other.test"), 5s);
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().code(), Errc::unavailable);
  EXPECT_EQ(client.error().message().rfind("cannot connect to buildkitd at tcp://127.0.0.1:", 0),
            0u)
      << client.error().message();
  EXPECT_NE(client.error().message().find(
                "TLS handshake failed: the daemon's certificate is not valid for 'other.test'"),
            std::string::npos)
      << client.error().message();
}

// The gRPC server above selects "h2" by ALPN, buildkitd selects nothing
// (tests/buildkit proves that one); both are accepted.

// The TCP targets drivers hand over, read back for envd's own TLS dial.
TEST(TlsTarget, ParsesTheTargetsDriversHandOver) {
  auto v4 = parse_tcp_target("ipv4:10.0.0.5:8888");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host, "10.0.0.5");
  EXPECT_EQ(v4->port, 8888);
  auto v6 = parse_tcp_target("ipv6:[::1]:1234");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  auto dns = parse_tcp_target("dns:///buildkitd.example:443");
  ASSERT_TRUE(dns);
  EXPECT_EQ(dns->host, "buildkitd.example");
  EXPECT_EQ(dns->port, 443);
  EXPECT_TRUE(parse_tcp_target("tcp://h:1"));
  for (const char* bad : {"unix:/run/b.sock", "h", "h:", "h:0", "h:65536", "[::1]8", "::1:80"}) {
    EXPECT_FALSE(parse_tcp_target(bad)) << bad;
  }
}

// ---- info ------------------------------------------------------------------

TEST(ClientInfo, TheConnectProbeListsTheWorkersInOneCall) {
  FakeControl fake;
  FdServer server(fake);
  Client client = connect_ok(server);
  ASSERT_EQ(client.workers().size(), 1u);
  EXPECT_EQ(client.workers()[0].id, "moby");
  EXPECT_EQ(client.workers()[0].platforms,
            (std::vector<std::string>{"linux/amd64", "linux/arm/v7"}));
  // One round trip before a build can choose its exporter: the probe.
  EXPECT_EQ(fake.list_workers_calls, 1);
  EXPECT_EQ(fake.info_calls, 0);
}

TEST(ClientInfo, UnimplementedInfoMeansNoVersion) {
  FakeControl fake;
  FdServer server(fake);
  Client client = connect_ok(server);
  auto info = client.info(5s);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->version, "");
  ASSERT_EQ(info->workers.size(), 1u);
  EXPECT_EQ(info->workers[0].id, "moby");
  EXPECT_EQ(info->workers[0].platforms, (std::vector<std::string>{"linux/amd64", "linux/arm/v7"}));
  EXPECT_EQ(info->workers[0].labels.at("org.mobyproject.buildkit.worker.executor"), "runc");
}

TEST(ClientInfo, ReportsTheVersion) {
  FakeControl fake;
  fake.info_code = grpc::StatusCode::OK;
  fake.version = "v0.27.0";
  FdServer server(fake);
  Client client = connect_ok(server);
  auto info = client.info(5s);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->version, "v0.27.0");
}

TEST(ClientInfo, OtherInfoErrorsAreReported) {
  FakeControl fake;
  fake.info_code = grpc::StatusCode::PERMISSION_DENIED;
  FdServer server(fake);
  Client client = connect_ok(server);
  auto info = client.info(5s);
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().code(), Errc::permission);
  EXPECT_EQ(info.error().message().rfind("cannot query buildkitd at fake-daemon: ", 0), 0u);
}

// ---- solve -----------------------------------------------------------------

TEST(ClientSolve, SendsExportersInBothFieldsAndOpensTheSession) {
  FakeControl fake;
  FdServer server(fake);
  Client client = connect_ok(server);
  FakeAttachable attachable;
  RecordingSink sink;
  CancelToken cancel;
  auto result = client.solve(sample_request(), {&attachable}, sink, cancel);
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(result->exporter_response.at("containerimage.digest"), "sha256:0123");

  std::lock_guard lock(fake.mu);
  const bk::SolveRequest& got = fake.last_solve;
  EXPECT_EQ(got.exporter(), "moby");
  EXPECT_EQ(got.exporterattrs().at("name"), "x/y:latest");
  ASSERT_EQ(got.exporters_size(), 2);
  EXPECT_EQ(got.exporters(0).type(), "moby");
  EXPECT_EQ(got.exporters(0).attrs().at("name"), "x/y:latest");
  EXPECT_EQ(got.exporters(1).type(), "local");
  EXPECT_EQ(got.exporters(1).attrs().at("mode"), "copy");
  EXPECT_EQ(got.frontend(), "dockerfile.v0");
  EXPECT_EQ(got.frontendattrs().at("force-network-mode"), "none");
  ASSERT_EQ(got.entitlements_size(), 1);
  EXPECT_EQ(got.entitlements(0), "network.host");
  EXPECT_FALSE(got.has_definition());
  EXPECT_EQ(got.ref().size(), 25u);
  EXPECT_EQ(got.session().size(), 25u);
  EXPECT_NE(got.ref(), got.session());
  EXPECT_EQ(got.session().find(':'), std::string::npos);

  auto& md = fake.session_metadata;
  ASSERT_EQ(md.count("x-docker-expose-session-uuid"), 1u);
  EXPECT_EQ(md.find("x-docker-expose-session-uuid")->second, got.session());
  EXPECT_EQ(md.find("x-docker-expose-session-name")->second, "envd");
  EXPECT_EQ(md.count("x-docker-expose-session-sharedkey"), 1u);
  std::vector<std::string> methods;
  auto range = md.equal_range("x-docker-expose-session-grpc-method");
  for (auto it = range.first; it != range.second; ++it) methods.push_back(it->second);
  EXPECT_EQ(methods, (std::vector<std::string>{"/moby.filesync.v1.Auth/Credentials",
                                               "/grpc.health.v1.Health/Check",
                                               "/grpc.health.v1.Health/Watch"}));
  EXPECT_EQ(fake.healthy_sessions, 1) << "the session server did not answer a health check";
}

TEST(ClientSolve, RawDefinitionIsSent) {
  FakeControl fake;
  FdServer server(fake);
  Client client = connect_ok(server);
  pb::Definition definition;
  definition.add_def("op-a");
  definition.add_def("terminal");
  SolveRequest request;
  request.frontend = "";
  request.definition = definition.SerializeAsString();
  RecordingSink sink;
  auto result = client.solve(request, {}, sink, CancelToken());
  ASSERT_TRUE(result) << result.error().message();
  std::lock_guard lock(fake.mu);
  ASSERT_EQ(fake.last_solve.definition().def_size(), 2);
  EXPECT_EQ(fake.last_solve.definition().def(1), "terminal");
  EXPECT_EQ(fake.last_solve.frontend(), "");
  EXPECT_EQ(fake.last_solve.exporter(), "");
  EXPECT_EQ(fake.last_solve.exporters_size(), 0);
}

TEST(ClientSolve, FailedSolveCarriesTheDaemonMessage) {
  FakeControl fake;
  fake.solve_mode = FakeControl::SolveMode::fail;
  FdServer server(fake);
  Client client = connect_ok(server);
  RecordingSink sink;
  auto start = Clock::now();
  auto result = client.solve(sample_request(), {}, sink, CancelToken());
  ASSERT_FALSE(result);
  EXPECT_LT(Clock::now() - start, 3s);
  EXPECT_EQ(result.error().message(),
            "process \"/bin/sh -c false\" did not complete successfully: exit code: 1");
  EXPECT_EQ(sink.done_called, 1);
}

// A daemon that cancels the build itself (it is shutting down) is not the
// user's Ctrl-C: not Errc::cancelled (exit 130, "build cancelled"), but a
// failure that says who cancelled it.
TEST(ClientSolve, ADaemonThatCancelsTheBuildIsNotTheUsersCancel) {
  FakeControl fake;
  fake.solve_mode = FakeControl::SolveMode::daemon_cancels;
  FdServer server(fake);
  Client client = connect_ok(server);
  RecordingSink sink;
  auto result = client.solve(sample_request(), {}, sink, CancelToken());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), Errc::unavailable);
  EXPECT_EQ(result.error().message().rfind("buildkitd at " + client.address() +
                                               " cancelled the build before its first step: "
                                               "context canceled (not envd: is the daemon "
                                               "stopping?)",
                                           0),
            0u)
      << result.error().message();
}

TEST(ClientSolve, StatusUpdatesReachTheSinkInOrder) {
  FakeControl fake;
  fake.status_updates = 200;
  FdServer server(fake);
  Client client = connect_ok(server);
  RecordingSink sink;
  auto result = client.solve(sample_request(), {}, sink, CancelToken());
  ASSERT_TRUE(result) << result.error().message();
  ASSERT_EQ(sink.names.size(), 200u);
  for (int i = 0; i < 200; ++i)
    EXPECT_EQ(sink.names[static_cast<size_t>(i)], "step " + std::to_string(i));
  EXPECT_EQ(sink.done_called, 1);
}

// Runs a solve that `fake` blocks, cancelling `cancel` from another thread
// once the Solve arrived; expects it to end within 5 s.
Result<SolveResult> solve_cancelled_midway(Client& client, FakeControl& fake, ProgressSink& sink,
                                           CancelToken& cancel) {
  fake.solve_mode = FakeControl::SolveMode::block;
  std::thread canceller([&, copy = cancel]() mutable {
    fake.wait_for_solve(5s);
    copy.cancel();
  });
  auto start = Clock::now();
  auto result = client.solve(sample_request(), {}, sink, cancel);
  canceller.join();
  EXPECT_LT(Clock::now() - start, 5s);
  return result;
}

TEST(ClientSolve, CancelEndsTheSolve) {
  FakeControl fake;
  FdServer server(fake);
  Client client = connect_ok(server);
  RecordingSink sink;
  CancelToken cancel;
  auto result = solve_cancelled_midway(client, fake, sink, cancel);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), Errc::cancelled);
  EXPECT_TRUE(cancel.cancelled());
  EXPECT_EQ(sink.done_called, 1);
}

TEST(ClientSolve, AlreadyCancelledTokenDoesNotStart) {
  FakeControl fake;
  FdServer server(fake);
  Client client = connect_ok(server);
  RecordingSink sink;
  CancelToken cancel;
  cancel.cancel();
  auto result = client.solve(sample_request(), {}, sink, cancel);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), Errc::cancelled);
  std::lock_guard lock(fake.mu);
  EXPECT_EQ(fake.solves, 0);
}

TEST(ClientSolve, PeerDyingMidSolveFailsQuickly) {
  FakeControl fake;
  fake.solve_mode = FakeControl::SolveMode::block;
  FdServer server(fake);
  Client client = connect_ok(server);
  RecordingSink sink;
  std::thread killer([&] {
    fake.wait_for_solve(5s);
    std::this_thread::sleep_for(100ms);
    server.kill();
  });
  auto start = Clock::now();
  auto result = client.solve(sample_request(), {}, sink, CancelToken());
  killer.join();
  ASSERT_FALSE(result);
  EXPECT_LT(Clock::now() - start, 5s);
  EXPECT_EQ(result.error().code(), Errc::unavailable);
  EXPECT_EQ(
      result.error().message().rfind(
          "lost the connection to buildkitd at fake-daemon before the build's first step: ", 0),
      0u)
      << result.error().message();
  EXPECT_EQ(sink.done_called, 1);
}

TEST(ClientSolve, ManySequentialBuildsLeakNoThreads) {
  FakeControl fake;
  FdServer server(fake);
  Client client = connect_ok(server);
  FakeAttachable attachable;
  {
    RecordingSink sink;
    ASSERT_TRUE(client.solve(sample_request(), {&attachable}, sink, CancelToken()));
  }
  int before = thread_count();
  std::set<std::string> sessions;
  for (int i = 0; i < 20; ++i) {
    RecordingSink sink;
    auto result = client.solve(sample_request(), {&attachable}, sink, CancelToken());
    ASSERT_TRUE(result) << "build " << i << ": " << result.error().message();
    std::lock_guard lock(fake.mu);
    sessions.insert(fake.last_solve.session());
  }
  EXPECT_EQ(sessions.size(), 20u);
  // The fake's last Session handler may still be joining its pumps: a leak
  // is a count that stays up, so it is given time to come down.
  const auto give_up = Clock::now() + 5s;
  while (thread_count() > before + 2 && Clock::now() < give_up) std::this_thread::sleep_for(10ms);
  EXPECT_LE(thread_count(), before + 2);
  std::lock_guard lock(fake.mu);
  EXPECT_EQ(fake.healthy_sessions, 21);
}

TEST(ClientSolve, ConcurrentSolvesOnOneClient) {
  FakeControl fake;
  fake.status_updates = 20;
  FdServer server(fake);
  Client client = connect_ok(server);
  std::vector<std::thread> threads;
  std::atomic<int> succeeded{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      FakeAttachable attachable;
      for (int i = 0; i < 5; ++i) {
        RecordingSink sink;
        auto result = client.solve(sample_request(), {&attachable}, sink, CancelToken());
        if (result && sink.names.size() == 20u && sink.done_called == 1) ++succeeded;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(succeeded, 20);
  std::lock_guard lock(fake.mu);
  EXPECT_EQ(fake.healthy_sessions, 20);
}

TEST(ClientSolve, RejectedSessionDoesNotHang) {
  FakeControl fake;
  fake.session_mode = FakeControl::SessionMode::reject;
  FdServer server(fake);
  Client client = connect_ok(server);
  RecordingSink sink;
  auto start = Clock::now();
  auto result = client.solve(sample_request(), {}, sink, CancelToken());
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_LT(Clock::now() - start, 2s);
}

TEST(ClientSolve, DaemonIgnoringTheHalfCloseDoesNotHang) {
  FakeControl fake;
  fake.session_mode = FakeControl::SessionMode::ignore_half_close;
  FdServer server(fake);
  Client client = connect_ok(server);
  RecordingSink sink;
  auto start = Clock::now();
  auto result = client.solve(sample_request(), {}, sink, CancelToken());
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_LT(Clock::now() - start, 5s);
  std::unique_lock lock(fake.mu);
  EXPECT_TRUE(fake.cv.wait_for(lock, 5s, [&] { return fake.sessions_ended == 1; }));
}

// ---- the probe with an expected worker ---------------------------------------

Worker worker(std::string id, std::vector<std::string> platforms) {
  Worker w;
  w.id = std::move(id);
  w.platforms = std::move(platforms);
  return w;
}

TEST(FilterExcluding, NamesTheOneExpectedWorker) {
  EXPECT_EQ(filter_excluding({worker("moby", {})}), "id!=\"moby\"");
  EXPECT_EQ(filter_excluding({worker("wkc4rxbo9w0xhvjgn8sv0z1tm", {"linux/amd64"})}),
            "id!=\"wkc4rxbo9w0xhvjgn8sv0z1tm\"");
  // Nothing an empty answer could confirm, or an id the filter would have to escape.
  EXPECT_EQ(filter_excluding({}), "");
  EXPECT_EQ(filter_excluding({worker("a", {}), worker("b", {})}), "");
  EXPECT_EQ(filter_excluding({worker("", {})}), "");
  EXPECT_EQ(filter_excluding({worker("x\",id!=\"y", {})}), "");
  EXPECT_EQ(filter_excluding({worker(std::string(200, 'a'), {})}), "");
}

TEST(ExpectedWorkers, AnEmptyFilteredAnswerConfirmsThem) {
  FakeControl fake;
  FdServer server(fake);
  const std::vector<Worker> expected{worker("moby", {"test/remembered"})};
  auto client = Client::connect(server.transport(), 10s, nullptr, Client::Probe::wait, expected);
  ASSERT_TRUE(client) << client.error().message();
  ASSERT_EQ(client->workers().size(), 1u);
  EXPECT_EQ(client->workers()[0].id, "moby");
  EXPECT_EQ(client->workers()[0].platforms, std::vector<std::string>{"test/remembered"});
  EXPECT_EQ(fake.list_workers_filters, std::vector<std::string>{"id!=\"moby\""});
}

TEST(ExpectedWorkers, AnotherDaemonIsListedInFull) {
  FakeControl fake;
  FdServer server(fake);
  auto client = Client::connect(server.transport(), 10s, nullptr, Client::Probe::concurrent,
                                {worker("oci-of-last-time", {"linux/amd64"})});
  ASSERT_TRUE(client) << client.error().message();
  ASSERT_TRUE(client->probe_status());
  ASSERT_EQ(client->workers().size(), 1u);
  EXPECT_EQ(client->workers()[0].id, "moby");
  EXPECT_EQ(client->workers()[0].platforms,
            (std::vector<std::string>{"linux/amd64", "linux/arm/v7"}));
  EXPECT_EQ(fake.list_workers_filters, (std::vector<std::string>{"id!=\"oci-of-last-time\"", ""}));
}

TEST(ExpectedWorkers, ADaemonThatRefusesTheFilterIsAskedWithout) {
  for (auto code : {grpc::StatusCode::INVALID_ARGUMENT, grpc::StatusCode::UNKNOWN}) {
    FakeControl fake;
    fake.filtered_code = code;
    FdServer server(fake);
    auto client = Client::connect(server.transport(), 10s, nullptr, Client::Probe::wait,
                                  {worker("moby", {"test/remembered"})});
    ASSERT_TRUE(client) << client.error().message();
    ASSERT_EQ(client->workers().size(), 1u);
    EXPECT_EQ(client->workers()[0].platforms,
              (std::vector<std::string>{"linux/amd64", "linux/arm/v7"}));
    EXPECT_EQ(fake.list_workers_filters, (std::vector<std::string>{"id!=\"moby\"", ""}));
  }
}

TEST(ExpectedWorkers, AFailureOfTheUnfilteredProbeIsReportedAsBefore) {
  FakeControl fake;
  fake.list_workers_code = grpc::StatusCode::PERMISSION_DENIED;
  FdServer server(fake);
  auto client = Client::connect(server.transport(), 10s, nullptr, Client::Probe::wait,
                                {worker("oci-of-last-time", {})});
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().code(), Errc::permission);
  EXPECT_EQ(client.error().message(),
            "cannot connect to buildkitd at fake-daemon: access denied: no workers for you");
}

// ---- solve beside a concurrent probe ---------------------------------------

TEST(ConcurrentProbe, TheSolveGoesOutWithoutWaitingForTheProbe) {
  FakeControl fake;
  fake.list_workers_delay = 1500ms;
  FdServer server(fake);
  auto start = Clock::now();
  auto client = Client::connect(server.transport(), 10s, nullptr, Client::Probe::concurrent);
  ASSERT_TRUE(client) << client.error().message();
  RecordingSink sink;
  auto result = client->solve(sample_request(), {}, sink, CancelToken());
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_LT(Clock::now() - start, 1s) << "the solve waited for the probe";
  EXPECT_EQ(fake.list_workers_calls.load(), 1);
  // The probe still answers, and its workers are there once it has.
  ASSERT_TRUE(client->probe_status());
  ASSERT_EQ(client->workers().size(), 1u);
  EXPECT_EQ(client->workers()[0].id, "moby");
}

TEST(ConcurrentProbe, AFailedProbeCancelsTheSolveAndIsWhatItReports) {
  FakeControl fake;
  fake.list_workers_delay = 300ms;
  fake.list_workers_after_solve = true;  // the solve is out first, however slow the machine
  fake.list_workers_code = grpc::StatusCode::PERMISSION_DENIED;
  fake.solve_mode = FakeControl::SolveMode::block;
  FdServer server(fake);
  auto client = Client::connect(server.transport(), 10s, nullptr, Client::Probe::concurrent);
  ASSERT_TRUE(client) << client.error().message();
  RecordingSink sink;
  CancelToken cancel;
  auto start = Clock::now();
  auto result = client->solve(sample_request(), {}, sink, cancel);
  ASSERT_FALSE(result);
  EXPECT_LT(Clock::now() - start, 3s);
  EXPECT_EQ(result.error().code(), Errc::permission);
  EXPECT_EQ(result.error().message(),
            "cannot connect to buildkitd at fake-daemon: access denied: no workers for you");
  EXPECT_FALSE(cancel.cancelled()) << "the caller's token is the caller's";
  EXPECT_EQ(sink.done_called, 1);
  {
    std::lock_guard lock(fake.mu);
    EXPECT_EQ(fake.solves, 1) << "the solve went out before the probe failed";
  }
  auto probed = client->probe_status();
  ASSERT_FALSE(probed);
  EXPECT_EQ(probed.error().message(), result.error().message());
  EXPECT_TRUE(client->workers().empty());
}

TEST(ConcurrentProbe, TheSolveWaitsForADaemonThatIsStillStarting) {
  LateServer late;
  auto client = Client::connect(unix_target(late.socket(), "late-daemon"), 5s, nullptr,
                                Client::Probe::concurrent);
  ASSERT_TRUE(client) << client.error().message();
  RecordingSink sink;
  auto result = client->solve(sample_request(), {}, sink, CancelToken());
  late.started();
  EXPECT_TRUE(result) << result.error().message();
  EXPECT_TRUE(client->probe_status());
}

TEST(ConcurrentProbe, NoDaemonIsReportedAsConnectReportsIt) {
  std::string dir = temp_dir();
  auto start = Clock::now();
  auto client = Client::connect(unix_target(dir + "/none.sock", "unix://" + dir + "/none.sock"),
                                400ms, nullptr, Client::Probe::concurrent);
  ASSERT_TRUE(client) << client.error().message();
  RecordingSink sink;
  auto result = client->solve(sample_request(), {}, sink, CancelToken());
  ASSERT_FALSE(result);
  EXPECT_LT(Clock::now() - start, 2s);
  EXPECT_EQ(result.error().code(), Errc::unavailable);
  EXPECT_EQ(result.error().message().rfind(
                "cannot connect to buildkitd at unix://" + dir + "/none.sock: ", 0),
            0u)
      << result.error().message();
  EXPECT_NE(result.error().message().find("(retried for 400ms)"), std::string::npos)
      << result.error().message();
  std::filesystem::remove_all(dir);
}

TEST(ConcurrentProbe, CancellingTheCallerEndsTheProbeToo) {
  FakeControl fake;
  fake.hang_list_workers = true;
  fake.solve_mode = FakeControl::SolveMode::block;
  FdServer server(fake);
  CancelToken cancel;
  auto client = Client::connect(server.transport(), 20s, &cancel, Client::Probe::concurrent);
  ASSERT_TRUE(client) << client.error().message();
  std::thread canceller([&, copy = cancel]() mutable {
    fake.wait_for_solve(5s);
    copy.cancel();
  });
  RecordingSink sink;
  auto start = Clock::now();
  auto result = client->solve(sample_request(), {}, sink, cancel);
  canceller.join();
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), Errc::cancelled);
  auto probed = client->probe_status();
  ASSERT_FALSE(probed);
  EXPECT_EQ(probed.error().code(), Errc::cancelled);
  EXPECT_LT(Clock::now() - start, 3s);
}

TEST(ConcurrentProbe, DestroyingTheClientStopsAProbeThatHangs) {
  FakeControl fake;
  fake.hang_list_workers = true;
  FdServer server(fake);
  auto start = Clock::now();
  {
    auto client = Client::connect(server.transport(), 20s, nullptr, Client::Probe::concurrent);
    ASSERT_TRUE(client) << client.error().message();
    RecordingSink sink;
    auto result = client->solve(sample_request(), {}, sink, CancelToken());
    EXPECT_TRUE(result) << result.error().message();
  }
  EXPECT_LT(Clock::now() - start, 3s);
  EXPECT_EQ(fake.list_workers_calls.load(), 1);
}

// A solve planned from a remembered answer (the daemon has no moby worker)
// on a daemon whose probe says otherwise: it ends when the probe answers, and
// says why, so the caller can plan again.
bool assumes_no_moby(const std::vector<Worker>& workers) {
  return std::none_of(workers.begin(), workers.end(),
                      [](const Worker& worker) { return worker.id == "moby"; });
}

constexpr const char* kRefuted =
    "buildkitd at fake-daemon is not the daemon this build was planned for (its workers "
    "changed since the last build)";

TEST(ConcurrentProbe, AnAnswerTheProbeRefutesEndsTheSolve) {
  FakeControl fake;
  fake.list_workers_delay = 300ms;
  fake.list_workers_after_solve = true;  // the solve is out first, however slow the machine
  fake.solve_mode = FakeControl::SolveMode::block;
  FdServer server(fake);
  auto client = Client::connect(server.transport(), 10s, nullptr, Client::Probe::concurrent);
  ASSERT_TRUE(client) << client.error().message();
  SolveRequest request = sample_request();
  request.assumed_workers = assumes_no_moby;
  RecordingSink sink;
  CancelToken cancel;
  auto start = Clock::now();
  auto result = client->solve(request, {}, sink, cancel);
  ASSERT_FALSE(result);
  EXPECT_LT(Clock::now() - start, 3s) << "the blocked Solve was not cancelled";
  EXPECT_EQ(result.error().code(), Errc::unavailable);
  EXPECT_EQ(result.error().message(), kRefuted);
  EXPECT_FALSE(cancel.cancelled());
  EXPECT_EQ(sink.done_called, 1);
  {
    std::lock_guard lock(fake.mu);
    EXPECT_EQ(fake.solves, 1) << "the solve went out before the probe answered";
  }
  // The probe itself succeeded: what it found is there to plan again from.
  EXPECT_TRUE(client->probe_status());
  ASSERT_EQ(client->workers().size(), 1u);
  EXPECT_EQ(client->workers()[0].id, "moby");
}

TEST(ConcurrentProbe, AnAnswerTheProbeConfirmsLetsTheSolveFinish) {
  FakeControl fake;
  fake.list_workers_delay = 300ms;
  fake.solve_delay = 800ms;  // the probe answers while the Solve runs
  FdServer server(fake);
  auto client = Client::connect(server.transport(), 10s, nullptr, Client::Probe::concurrent);
  ASSERT_TRUE(client) << client.error().message();
  SolveRequest request = sample_request();
  request.assumed_workers = [](const std::vector<Worker>& workers) {
    return !assumes_no_moby(workers);
  };
  RecordingSink sink;
  auto result = client->solve(request, {}, sink, CancelToken());
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(result->exporter_response.at("containerimage.digest"), "sha256:0123");
  EXPECT_TRUE(client->probe_ended());
}

// The daemon may refuse exports planned for another daemon before the probe
// answers; the failure is still reported as the refutation.
TEST(ConcurrentProbe, ADaemonRefusalBeforeTheProbeAnswersIsTheRefutation) {
  FakeControl fake;
  fake.list_workers_delay = 500ms;
  fake.solve_mode = FakeControl::SolveMode::fail;
  FdServer server(fake);
  auto client = Client::connect(server.transport(), 10s, nullptr, Client::Probe::concurrent);
  ASSERT_TRUE(client) << client.error().message();
  SolveRequest request = sample_request();
  request.assumed_workers = assumes_no_moby;
  RecordingSink sink;
  auto result = client->solve(request, {}, sink, CancelToken());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().message(), kRefuted);
}

// With the probe already answered, the assumption is checked before anything
// is sent on its behalf, and the client stays usable for the plan that
// follows.
TEST(ClientSolve, ARefutedAssumptionLeavesTheClientUsable) {
  FakeControl fake;
  FdServer server(fake);
  Client client = connect_ok(server);
  SolveRequest request = sample_request();
  request.assumed_workers = assumes_no_moby;
  RecordingSink refused_sink;
  auto refused = client.solve(request, {}, refused_sink, CancelToken());
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message(), kRefuted);
  RecordingSink sink;
  auto result = client.solve(sample_request(), {}, sink, CancelToken());
  ASSERT_TRUE(result) << result.error().message();
}

// Client::solve builds the session's server while its connection is being
// set up, so a solve that fails before it is connected closes a session it
// never opened.
// A driver's dial_session, as the Engine's POST /session behaves: each dial
// is a connection of its own on which the "daemon" (a thread here) is the
// HTTP/2 client. It health-checks the client's session server, marks the
// session usable for the fake's Solve, and waits for the client to close.
class DirectSessions {
 public:
  explicit DirectSessions(FakeControl& fake) : fake_(fake) {}
  DirectSessions(const DirectSessions&) = delete;
  DirectSessions& operator=(const DirectSessions&) = delete;
  ~DirectSessions() {
    {
      std::lock_guard lock(mu);
      released_ = true;
      cv.notify_all();
    }
    for (auto& daemon : daemons_) daemon.join();
  }

  Status failure;                       // what the dialer answers instead, when set
  std::function<void()> before_answer;  // runs in each dial before it answers
  bool hang_up = false;                 // the daemon hangs up after each health check
  std::mutex mu;
  std::condition_variable cv;
  std::vector<plugin::SessionSpec> dialled;
  int healthy = 0;
  int closed_by_client = 0;

  Client::SessionDialer dialer() {
    return [this](const plugin::SessionSpec& spec) -> Result<util::UniqueFd> {
      if (before_answer) before_answer();
      std::lock_guard lock(mu);
      dialled.push_back(spec);
      if (!failure) return failure.error();
      int fds[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        return Error(Errc::internal, "socketpair");
      }
      daemons_.emplace_back([this, fd = fds[1], id = spec.id] { serve(fd, id); });
      return util::UniqueFd(fds[0]);
    };
  }

  // Waits until the client closed `n` connections.
  bool wait_closed(int n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 5s, [&] { return closed_by_client >= n; });
  }

 private:
  void serve(int fd, const std::string& id) {
    int watch = ::dup(fd);  // the channel owns `fd`
    bool ok = false;
    {
      auto channel = grpc::CreateInsecureChannelFromFd("session", fd);
      ok = health_check(channel);
      if (hang_up) ::shutdown(watch, SHUT_RDWR);
      {
        std::lock_guard lock(fake_.mu);
        fake_.checked_sessions.insert(id);
        fake_.cv.notify_all();
      }
      // The connection ends when the client closes it (its session is over).
      pollfd pfd{watch, POLLRDHUP, 0};
      bool eof = ::poll(&pfd, 1, 10000) == 1;  // POLLRDHUP, POLLHUP or POLLERR
      std::unique_lock lock(mu);
      if (ok) ++healthy;
      if (eof) ++closed_by_client;
      cv.notify_all();
      // A hung-up connection stays open on this side until the test ends.
      // Closing it would let the kernel turn the end of stream the client
      // read into a reset (when frames its session server sent were still
      // unread here), and so change the reason the client reports.
      if (hang_up) cv.wait(lock, [&] { return released_; });
    }
    ::close(watch);
  }

  FakeControl& fake_;
  std::vector<std::thread> daemons_;
  bool released_ = false;  // the destructor lets hung-up connections go
};

// A client whose solves dial their sessions through `direct`.
class DirectSession : public ::testing::Test {
 protected:
  void SetUp() override { client.set_session_dialer(direct.dialer()); }

  FakeControl fake;
  FdServer server{fake};
  Client client = connect_ok(server);
  DirectSessions direct{fake};
};

TEST_F(DirectSession, TheSessionIsServedOnTheDialledConnection) {
  FakeAttachable attachable;
  RecordingSink sink;
  CancelToken cancel;
  SolveRequest request = sample_request();
  request.session_name = "ctx";
  request.session_shared_key = "key";
  auto result = client.solve(request, {&attachable}, sink, cancel);
  ASSERT_TRUE(result) << result.error().message();
  ASSERT_TRUE(direct.wait_closed(1)) << "the client kept the session's connection open";

  std::scoped_lock lock(fake.mu, direct.mu);
  EXPECT_EQ(fake.sessions, 0) << "the session went through Control.Session too";
  EXPECT_EQ(direct.healthy, 1) << "the session server did not answer on the connection";
  ASSERT_EQ(direct.dialled.size(), 1u);
  const plugin::SessionSpec& spec = direct.dialled[0];
  EXPECT_EQ(spec.id, fake.last_solve.session());
  EXPECT_EQ(spec.name, "ctx");
  EXPECT_EQ(spec.shared_key, "key");
  EXPECT_EQ(spec.methods, (std::vector<std::string>{"/moby.filesync.v1.Auth/Credentials",
                                                    "/grpc.health.v1.Health/Check",
                                                    "/grpc.health.v1.Health/Watch"}));
  EXPECT_EQ(sink.done_called, 1);
}

TEST_F(DirectSession, ADaemonWithoutTheRouteIsTunnelledFromThenOn) {
  direct.failure = Error(Errc::unsupported, "the Docker Engine has no POST /session");
  FakeAttachable attachable;
  for (int i = 0; i < 2; ++i) {
    RecordingSink sink;
    auto result = client.solve(sample_request(), {&attachable}, sink, CancelToken());
    ASSERT_TRUE(result) << result.error().message();
  }
  std::scoped_lock lock(fake.mu, direct.mu);
  EXPECT_EQ(direct.dialled.size(), 1u) << "the refusal is remembered for the client's life";
  EXPECT_EQ(fake.sessions, 2);
  EXPECT_EQ(fake.healthy_sessions, 2);
}

// As BuildKit's own client does, the Solve does not wait for the session:
// here the dial answers only once the daemon holds the Solve.
TEST_F(DirectSession, TheSolveGoesOutBeforeTheSessionIsConnected) {
  bool solve_was_first = false;
  direct.before_answer = [&] { solve_was_first = fake.wait_for_solve(5s); };
  RecordingSink sink;
  auto result = client.solve(sample_request(), {}, sink, CancelToken());
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_TRUE(solve_was_first) << "the Solve waited for the session's connection";
  ASSERT_TRUE(direct.wait_closed(1));
  std::lock_guard lock(direct.mu);
  EXPECT_EQ(direct.healthy, 1);
}

// The Solve is already out when the dial fails: it is cancelled (the daemon
// would otherwise wait 5 s for the session), and the dial's failure is what
// the build reports.
TEST_F(DirectSession, AFailedDialFailsTheBuildAndCancelsItsSolve) {
  direct.failure = Error(Errc::unavailable, "builder 'moby-worker': connection refused");
  direct.before_answer = [&] { fake.wait_for_solve(5s); };
  RecordingSink sink;
  const auto start = Clock::now();
  auto result = client.solve(sample_request(), {}, sink, CancelToken());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), Errc::unavailable);
  EXPECT_EQ(result.error().message(),
            "cannot open a session to buildkitd at fake-daemon: builder 'moby-worker': "
            "connection refused");
  EXPECT_LT(Clock::now() - start, 2s) << "the client waited for the Solve to give up by itself";
  EXPECT_EQ(sink.done_called, 1);
  std::unique_lock lock(fake.mu);
  EXPECT_TRUE(fake.cv.wait_for(lock, 5s, [&] {
    return fake.solves_cancelled_awaiting_session == 1;
  })) << "the Solve was not cancelled";
  EXPECT_EQ(fake.solves, 1);
  EXPECT_EQ(fake.sessions, 0);
}

TEST_F(DirectSession, ASessionConnectionLostUnderTheBuildIsWhatItReports) {
  fake.solve_mode = FakeControl::SolveMode::lose_session;
  direct.hang_up = true;
  RecordingSink sink;
  auto result = client.solve(sample_request(), {}, sink, CancelToken());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), Errc::unavailable);
  // The phase is whatever the Status stream had shown by then.
  const std::string& message = result.error().message();
  EXPECT_EQ(message.rfind("lost the session's connection to buildkitd at fake-daemon ", 0), 0u)
      << message;
  const std::string reason = ": the connection was closed";
  ASSERT_GE(message.size(), reason.size()) << message;
  EXPECT_EQ(message.substr(message.size() - reason.size()), reason) << message;
}

TEST_F(DirectSession, CancellingTheBuildClosesTheConnection) {
  RecordingSink sink;
  CancelToken cancel;
  auto result = solve_cancelled_midway(client, fake, sink, cancel);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), Errc::cancelled);
  EXPECT_TRUE(direct.wait_closed(1));
}

TEST(SessionPrepare, ASessionNeverOpenedClosesAtOnce) {
  FakeAttachable attachable;
  SessionOptions options;
  options.id = random_id();
  options.name = "envd";
  options.address = "unix:///nowhere";
  const auto start = Clock::now();
  for (int i = 0; i < 5; ++i) {
    auto session = Session::prepare({&attachable}, options);
    ASSERT_TRUE(session) << session.error().message();
    EXPECT_EQ((*session)->id(), options.id);
    EXPECT_EQ((*session)->methods(), (std::vector<std::string>{"/moby.filesync.v1.Auth/Credentials",
                                                               "/grpc.health.v1.Health/Check",
                                                               "/grpc.health.v1.Health/Watch"}));
    (*session)->close();
    (*session)->close();  // idempotent
  }
  EXPECT_LT(Clock::now() - start, 2s);
}

TEST(RandomId, IsBase36AndUnique) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    std::string id = random_id();
    ASSERT_EQ(id.size(), 25u);
    for (char c : id) ASSERT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'));
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 1000u);
}

}  // namespace
}  // namespace envd::buildkit
