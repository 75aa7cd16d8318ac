#include "buildkit/ssh_forward.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>

#include "github.com/moby/buildkit/session/sshforward/ssh.grpc.pb.h"
#include "util/text.hpp"
#include "util/unique_fd.hpp"

namespace envd::buildkit {

namespace {

namespace pb = moby::sshforward::v1;

constexpr const char* kCheckMethod = "/moby.sshforward.v1.SSH/CheckAgent";
constexpr const char* kForwardMethod = "/moby.sshforward.v1.SSH/ForwardAgent";
constexpr const char* kIdMetadataKey = "buildkit.ssh.id";
constexpr const char* kDefaultId = "default";

// The agent protocol (draft-miller-ssh-agent): each message is a 4-byte
// big-endian length, then that many bytes starting with the message type.
constexpr std::uint32_t kMaxMessage = 256 * 1024;  // OpenSSH's AGENT_MAX_LEN
constexpr char kAgentFailure = 5;
constexpr char kRequestIdentities = 11;
constexpr char kSignRequest = 13;
constexpr std::string_view kFailureReply{"\0\0\0\1\5", 5};
static_assert(kFailureReply[4] == kAgentFailure);

constexpr std::size_t kChunk = std::size_t{32} * 1024;  // bytes per BytesMessage, as BuildKit sends
constexpr int kPollMs = 200;               // how often a blocked call looks for cancellation
constexpr int kConnectTimeoutSeconds = 2;  // as BuildKit's provider dials

Result<util::UniqueFd> connect_unix(const std::filesystem::path& path) {
  std::string where = "ssh agent socket '" + util::printable(path.string(), 300) + "'";
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string& text = path.native();
  if (text.empty() || text.size() >= sizeof address.sun_path) {
    return Error(Errc::invalid_argument, where + " is not a valid unix socket path (1 to " +
                                             std::to_string(sizeof address.sun_path - 1) +
                                             " bytes)");
  }
  std::memcpy(address.sun_path, text.data(), text.size());
  util::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) {
    return Error(Errc::internal,
                 "cannot create a socket for " + where + ": " + std::strerror(errno));
  }
  // A unix connect waits for room in the listener's backlog at most this long.
  timeval timeout{kConnectTimeoutSeconds, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    int err = errno;
    std::string why = err == EAGAIN ? "timed out" : std::strerror(err);
    return Error(Errc::unavailable, "cannot connect to " + where + ": " + why);
  }
  return fd;
}

// One connection to an agent. Every wait checks whether the daemon cancelled
// the call, so a call it gave up on does not hang on a silent agent.
class AgentConnection {
 public:
  AgentConnection(util::UniqueFd fd, grpc::ServerContext* context)
      : fd_(std::move(fd)), context_(context) {}

  Status send(std::string_view data) {
    while (!data.empty()) {
      if (auto ready = wait(POLLOUT); !ready) return ready;
      ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        if (errno == EPIPE || errno == ECONNRESET) return closed();
        return Error(Errc::unavailable,
                     std::string("cannot write to the ssh agent: ") + std::strerror(errno));
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return {};
  }

  // Reads one whole message, its length prefix included.
  Result<std::string> read_message() {
    std::string message(4, '\0');
    if (auto read = read_exact(message.data(), 4); !read) return read.error();
    std::uint32_t length = message_length(message);
    if (length == 0 || length > kMaxMessage) {
      return Error(Errc::unavailable,
                   "the ssh agent sent an answer of " + std::to_string(length) + " bytes");
    }
    message.resize(4 + static_cast<std::size_t>(length));
    if (auto read = read_exact(message.data() + 4, length); !read) return read.error();
    return message;
  }

  static std::uint32_t message_length(std::string_view header) {
    std::uint32_t length = 0;
    for (int i = 0; i < 4; ++i) length = (length << 8) | static_cast<unsigned char>(header[i]);
    return length;
  }

 private:
  static Error closed() { return Error(Errc::unavailable, "the ssh agent closed the connection"); }

  Status wait(short events) {
    while (true) {
      if (context_->IsCancelled()) return Error(Errc::cancelled, "the daemon cancelled the call");
      pollfd p{fd_.get(), events, 0};
      int rc = ::poll(&p, 1, kPollMs);
      if (rc > 0) return {};
      if (rc < 0 && errno != EINTR) {
        return Error(Errc::internal, std::string("poll: ") + std::strerror(errno));
      }
    }
  }

  Status read_exact(char* out, std::size_t size) {
    while (size > 0) {
      if (auto ready = wait(POLLIN); !ready) return ready;
      ssize_t n = ::recv(fd_.get(), out, size, MSG_DONTWAIT);
      if (n == 0) return closed();
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        if (errno == ECONNRESET) return closed();
        return Error(Errc::unavailable,
                     std::string("cannot read from the ssh agent: ") + std::strerror(errno));
      }
      out += n;
      size -= static_cast<std::size_t>(n);
    }
    return {};
  }

  util::UniqueFd fd_;
  grpc::ServerContext* context_;
};

grpc::Status to_grpc(const Error& error) {
  auto code =
      error.code() == Errc::cancelled ? grpc::StatusCode::CANCELLED : grpc::StatusCode::UNAVAILABLE;
  return {code, error.message()};
}

}  // namespace

Status check_agent_socket(const std::filesystem::path& socket) {
  auto fd = connect_unix(socket);
  if (!fd) return fd.error();
  return {};
}

class SshForwardProvider::Service final : public pb::SSH::Service {
 public:
  explicit Service(const SshAgents& agents) : agents_(agents) {}

  grpc::Status CheckAgent(grpc::ServerContext* /*context*/, const pb::CheckAgentRequest* request,
                          pb::CheckAgentResponse* /*response*/) override {
    std::string id = request->id().empty() ? kDefaultId : request->id();
    auto agent = agents_.find(id);
    if (agent == agents_.end()) return not_forwarded(id);
    if (auto connected = check_agent_socket(agent->second); !connected) {
      return {grpc::StatusCode::UNAVAILABLE,
              "ssh agent '" + util::printable(id, 200) + "': " + connected.error().message()};
    }
    return grpc::Status::OK;
  }

  grpc::Status ForwardAgent(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<pb::BytesMessage, pb::BytesMessage>* stream) override {
    std::string id = kDefaultId;
    const auto& metadata = context->client_metadata();
    if (auto it = metadata.find(kIdMetadataKey); it != metadata.end() && !it->second.empty()) {
      id.assign(it->second.data(), it->second.size());
    }
    auto agent = agents_.find(id);
    if (agent == agents_.end()) return not_forwarded(id);
    auto fd = connect_unix(agent->second);
    if (!fd) {
      return {grpc::StatusCode::UNAVAILABLE,
              "ssh agent '" + util::printable(id, 200) + "': " + fd.error().message()};
    }
    AgentConnection connection(std::move(*fd), context);

    // Requests are taken one at a time, so answers keep their order even when
    // some are given here rather than by the agent.
    std::string pending;
    pb::BytesMessage in;
    while (stream->Read(&in)) {
      pending += in.data();
      while (pending.size() >= 4) {
        std::uint32_t length = AgentConnection::message_length(pending);
        if (length == 0 || length > kMaxMessage) {
          return {grpc::StatusCode::INVALID_ARGUMENT,
                  "ssh agent request of " + std::to_string(length) + " bytes refused"};
        }
        std::size_t size = 4 + static_cast<std::size_t>(length);
        if (pending.size() < size) break;
        std::string_view request(pending.data(), size);
        std::string reply(kFailureReply);
        if (request[4] == kRequestIdentities || request[4] == kSignRequest) {
          if (auto sent = connection.send(request); !sent) return to_grpc(sent.error());
          auto answer = connection.read_message();
          if (!answer) return to_grpc(answer.error());
          reply = std::move(*answer);
        }
        pending.erase(0, size);
        for (std::size_t offset = 0; offset < reply.size(); offset += kChunk) {
          pb::BytesMessage out;
          out.set_data(reply.substr(offset, kChunk));
          if (!stream->Write(out)) return {grpc::StatusCode::CANCELLED, "the daemon went away"};
        }
      }
    }
    // The daemon half-closed (the step closed its connection): done.
    return grpc::Status::OK;
  }

 private:
  static grpc::Status not_forwarded(const std::string& id) {
    std::string shown = util::printable(id, 200);
    return {grpc::StatusCode::NOT_FOUND, "ssh agent '" + shown +
                                             "' is not forwarded to this build: pass envd build "
                                             "--ssh " +
                                             shown + "[=SOCKET]"};
  }

  const SshAgents& agents_;
};

SshForwardProvider::SshForwardProvider(SshAgents agents)
    : agents_(std::move(agents)), service_(std::make_unique<Service>(agents_)) {}

SshForwardProvider::~SshForwardProvider() = default;

void SshForwardProvider::register_on(grpc::ServerBuilder& builder) {
  builder.RegisterService(service_.get());
}

std::vector<std::string> SshForwardProvider::methods() const {
  return {kCheckMethod, kForwardMethod};
}

}  // namespace envd::buildkit
