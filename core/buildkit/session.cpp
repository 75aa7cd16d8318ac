#include "buildkit/session.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/server_posix.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>

#include "buildkit/attachable.hpp"
#include "github.com/moby/buildkit/api/services/control/control.grpc.pb.h"

namespace envd::buildkit {

namespace bk = moby::buildkit::v1;

namespace {

// The most the outgoing pump reads at once, so the most one BytesMessage to
// the daemon carries: as large as FileSync's DATA chunks (filesync.cpp), so a
// burst of the server's writes crosses as few messages as the socket holds
// (each costs a trip through gRPC on both sides), under the 4 MiB a gRPC
// server takes by default.
constexpr size_t kChunk = size_t{1} << 20;
// How long close() waits for the daemon to end the stream after the half-close,
// and for in-flight session calls when the server shuts down.
constexpr auto kCloseGrace = std::chrono::seconds(2);

// Writes all of `data` to a socket; MSG_NOSIGNAL so a closed peer is an error,
// not SIGPIPE.
bool send_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

std::string random_id() {
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  thread_local std::mt19937_64 rng{[] {
    std::random_device device;
    std::seed_seq seed{
        device(), device(), device(), device(),
        static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count())};
    return std::mt19937_64(seed);
  }()};
  std::uniform_int_distribution<int> digit(0, 35);
  std::string id(25, '0');
  for (char& c : id) c = kDigits[digit(rng)];
  return id;
}

struct Session::State {
  SessionOptions options;
  std::vector<std::string> methods;
  std::unique_ptr<bk::Control::Stub> stub;
  std::unique_ptr<grpc::CallbackGenericService> fallback;  // outlives the server
  std::unique_ptr<grpc::Server> server;
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReaderWriter<bk::BytesMessage, bk::BytesMessage>> stream;
  int tunnel_fd = -1;  // our end of the socketpair; the server owns the other
  int stop_fd = -1;    // eventfd: tells the outgoing pump to half-close
  // A direct connection (open_direct): a duplicate of the socket the server
  // owns, to end the connection from any thread (shutdown() acts on the
  // socket, not the descriptor). -1 for a tunnel.
  int direct_fd = -1;
  std::thread incoming;  // stream -> socket
  std::thread outgoing;  // socket -> stream
  std::mutex mu;
  std::condition_variable cv;
  bool incoming_done = false;
  bool opened = false;
  bool closed = false;

  ~State() {
    if (tunnel_fd >= 0) ::close(tunnel_fd);
    if (stop_fd >= 0) ::close(stop_fd);
    if (direct_fd >= 0) ::close(direct_fd);
  }

  void pump_incoming() {
    bk::BytesMessage message;
    while (stream->Read(&message)) {
      if (!send_all(tunnel_fd, message.data())) break;
    }
    // The daemon ended the stream (or it was cancelled): the server sees EOF,
    // and the outgoing pump stops.
    ::shutdown(tunnel_fd, SHUT_WR);
    uint64_t one = 1;
    (void)!::write(stop_fd, &one, sizeof one);
    std::lock_guard lock(mu);
    incoming_done = true;
    cv.notify_all();
  }

  void pump_outgoing() {
    std::string buffer(kChunk, '\0');
    bk::BytesMessage message;
    bool stream_ok = true;
    for (;;) {
      pollfd fds[2] = {{tunnel_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
      int ready = ::poll(fds, 2, -1);
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0 || (fds[1].revents & POLLIN)) break;
      ssize_t n = ::recv(tunnel_fd, buffer.data(), buffer.size(), 0);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) break;
      message.set_data(buffer.data(), static_cast<size_t>(n));
      if (!stream->Write(message)) {
        stream_ok = false;
        break;
      }
    }
    if (stream_ok) stream->WritesDone();
  }
};

Session::Session(std::unique_ptr<State> state) : state_(std::move(state)) {}

Session::~Session() { close(); }

const std::string& Session::id() const { return state_->options.id; }

const std::vector<std::string>& Session::methods() const { return state_->methods; }

std::vector<std::string> Session::advertised_methods(const std::vector<Attachable*>& attachables) {
  std::vector<std::string> methods;
  for (const Attachable* attachable : attachables) {
    for (auto& method : attachable->methods()) methods.push_back(std::move(method));
  }
  methods.emplace_back("/grpc.health.v1.Health/Check");
  methods.emplace_back("/grpc.health.v1.Health/Watch");
  return methods;
}

Result<std::unique_ptr<Session>> Session::prepare(const std::vector<Attachable*>& attachables,
                                                  SessionOptions options) {
  auto state = std::make_unique<State>();
  state->options = std::move(options);

  // The daemon health-checks the session every second and drops it on the
  // first failure (BuildKit v0.8), so the built-in service must answer.
  // The setting is a process-wide flag; set it once, not racing other solves.
  static std::once_flag health_once;
  std::call_once(health_once, [] { grpc::EnableDefaultHealthCheckService(true); });
  grpc::ServerBuilder builder;
  for (Attachable* attachable : attachables) attachable->register_on(builder);
  state->methods = advertised_methods(attachables);
  if (attachables.empty()) {
    // gRPC refuses to start a server with no service of its own before it adds
    // the health service; a generic service (answering UNIMPLEMENTED) counts.
    state->fallback = std::make_unique<grpc::CallbackGenericService>();
    builder.RegisterCallbackGenericService(state->fallback.get());
  }
  state->server = builder.BuildAndStart();
  if (!state->server) {
    return Error(Errc::internal, "cannot open a session to buildkitd at " + state->options.address +
                                     ": cannot start the server");
  }
  return std::unique_ptr<Session>(new Session(std::move(state)));
}

namespace {

// Hands `fd` to the server, which owns it from then on. gRPC's server
// endpoint assumes a non-blocking socket: with a blocking one it sends its
// SETTINGS and then never reads.
void serve_on(grpc::Server& server, int fd) {
  int flags = ::fcntl(fd, F_GETFL, 0);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  grpc::AddInsecureChannelFromFd(&server, fd);
}

}  // namespace

Status Session::open(const std::shared_ptr<grpc::Channel>& channel) {
  State& s = *state_;
  if (s.opened || s.closed) return {};
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    return Error(Errc::internal, "cannot open a session to buildkitd at " + s.options.address +
                                     ": socketpair: " + std::strerror(errno));
  }
  s.tunnel_fd = fds[0];
  s.stop_fd = ::eventfd(0, EFD_CLOEXEC);
  if (s.stop_fd < 0) {
    ::close(fds[1]);
    return Error(Errc::internal, "cannot open a session to buildkitd at " + s.options.address +
                                     ": eventfd: " + std::strerror(errno));
  }
  serve_on(*s.server, fds[1]);
  s.opened = true;
  s.context.AddMetadata("x-docker-expose-session-uuid", s.options.id);
  s.context.AddMetadata("x-docker-expose-session-name", s.options.name);
  s.context.AddMetadata("x-docker-expose-session-sharedkey", s.options.shared_key);
  for (const auto& method : s.methods) {
    s.context.AddMetadata("x-docker-expose-session-grpc-method", method);
  }
  s.stub = bk::Control::NewStub(channel);
  s.stream = s.stub->Session(&s.context);
  State* raw = &s;
  s.incoming = std::thread([raw] { raw->pump_incoming(); });
  s.outgoing = std::thread([raw] { raw->pump_outgoing(); });
  return {};
}

Status Session::open_direct(util::UniqueFd connection) {
  State& s = *state_;
  if (s.opened || s.closed) return {};
  s.direct_fd = ::fcntl(connection.get(), F_DUPFD_CLOEXEC, 0);
  if (s.direct_fd < 0) {
    return Error(Errc::internal, "cannot open a session to buildkitd at " + s.options.address +
                                     ": dup: " + std::strerror(errno));
  }
  serve_on(*s.server, connection.release());
  s.opened = true;
  return {};
}

std::optional<std::string> Session::connection_lost() const {
  const State& s = *state_;
  if (s.direct_fd < 0) return std::nullopt;
  pollfd watch{s.direct_fd, POLLRDHUP, 0};
  if (::poll(&watch, 1, 0) != 1) return std::nullopt;
  int error = 0;
  socklen_t length = sizeof error;
  if ((watch.revents & POLLERR) != 0 &&
      ::getsockopt(s.direct_fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error != 0) {
    return std::string(std::strerror(error));
  }
  return std::string("the connection was closed");
}

void Session::cancel() {
  State& s = *state_;
  if (s.direct_fd >= 0) {
    ::shutdown(s.direct_fd, SHUT_RDWR);
  } else {
    s.context.TryCancel();
  }
}

void Session::close() {
  State& s = *state_;
  if (s.closed) return;
  s.closed = true;
  if (!s.opened) {
    // No connection: the daemon never heard of this session, so no call can
    // be in flight, and nothing is waited for.
    s.server->Shutdown(std::chrono::system_clock::now());
    s.server->Wait();
    return;
  }
  if (s.direct_fd >= 0) {
    // The daemon drops the session when its connection closes, as it does
    // for the docker CLI's; the build is over, so no call of it is needed.
    ::shutdown(s.direct_fd, SHUT_RDWR);
    s.server->Shutdown(std::chrono::system_clock::now() + kCloseGrace);
    s.server->Wait();
    return;
  }
  // Half-close through the outgoing pump, the only writer of the stream.
  uint64_t one = 1;
  (void)!::write(s.stop_fd, &one, sizeof one);
  s.outgoing.join();
  {
    std::unique_lock lock(s.mu);
    if (!s.cv.wait_for(lock, kCloseGrace, [&] { return s.incoming_done; })) {
      s.context.TryCancel();
    }
  }
  s.incoming.join();
  (void)s.stream->Finish();
  // Nothing travels through the tunnel once both pumps are gone. A handler
  // still writing (a DiffCopy when the daemon died mid-upload) is waiting
  // for its bytes to leave through it, and the server's shutdown waits for
  // that handler: ending the tunnel fails the write, as a dropped
  // connection fails a direct session's.
  ::shutdown(s.tunnel_fd, SHUT_RDWR);
  s.server->Shutdown(std::chrono::system_clock::now() + kCloseGrace);
  s.server->Wait();
}

}  // namespace envd::buildkit
