#include "moby_worker_builder.hpp"

#include <string_view>

#include "envd/address.hpp"
#include "envd/docker_engine.hpp"

namespace envd::plugins {
namespace {

constexpr std::string_view kSubject = "moby-worker builder address";
constexpr std::string_view kExpected =
    "a name following Docker's rule [a-zA-Z0-9][a-zA-Z0-9_.-]+, e.g. envd_buildkitd (the "
    "engine comes from DOCKER_HOST)";

// JSON string literal for `text`.
std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          constexpr char hex[] = "0123456789abcdef";
          out += "\\u00";
          out += hex[(c >> 4) & 0xf];
          out += hex[c & 0xf];
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

Error not_managed(std::string_view verb) {
  return Error(Errc::unsupported,
               "nothing to " + std::string(verb) +
                   ": it uses the Docker Engine's own BuildKit, which envd does not manage");
}

}  // namespace

Result<std::string> MobyWorkerBuilder::normalize_address(const std::string& address) const {
  auto rest = sdk::strip_optional_scheme(address, "moby-worker");
  if (!rest) return sdk::address_error(kSubject, address, rest.error().message(), kExpected);
  std::string name(*rest);
  if (name.empty()) name = default_name;
  if (!sdk::is_docker_container_name(name)) {
    return sdk::address_error(kSubject, address,
                              "name '" + name + "' does not follow Docker's rule", kExpected);
  }
  return name;
}

Result<sdk::Transport> MobyWorkerBuilder::dial(const sdk::Request& request) {
  auto deadline = sdk::deadline_after(request.timeout);
  auto engine = sdk::DockerEngine::from_env();
  if (!engine) return engine.error();
  // Unversioned: the Engine serves /grpc the same at every API version, so
  // the version negotiation's GET /_ping would be a round trip for nothing.
  auto fd = engine->hijack_unversioned("POST", "/grpc", "", {}, "h2c", deadline);
  if (!fd) return fd.error();
  sdk::Transport transport;
  transport.kind = sdk::Transport::Kind::fd;
  transport.fd = *fd;
  transport.description =
      "moby-worker://" + (request.address.empty() ? std::string(default_name) : request.address);
  // On the Engine's unix socket or plain TCP the socket is the Engine's own
  // connection, and so is dial_session's; over TLS a relay thread of this
  // module carries each, and over ssh:// an ssh process.
  // Named by what is known to be direct, so that a transport added later is
  // torn down in order until someone says otherwise.
  const sdk::DockerEndpoint& endpoint = engine->endpoint();
  const bool unix_socket = !endpoint.socket_path.empty();
  const bool plain_tcp = endpoint.url.rfind("tcp://", 0) == 0 && engine->tls() == nullptr;
  transport.self_contained = unix_socket || plain_tcp;
  return transport;
}

Result<int> MobyWorkerBuilder::dial_session(const sdk::Request& request,
                                            const sdk::SessionRequest& session) {
  auto deadline = sdk::deadline_after(request.timeout);
  auto engine = sdk::DockerEngine::from_env();
  if (!engine) return engine.error();
  // The headers BuildKit's session manager reads (the same values the tunnel
  // sends as gRPC metadata); one X-Docker-Expose-Session-Grpc-Method per method.
  sdk::EngineHeaders headers{{"X-Docker-Expose-Session-Uuid", session.id},
                             {"X-Docker-Expose-Session-Name", session.name},
                             {"X-Docker-Expose-Session-Sharedkey", session.shared_key}};
  for (const auto& method : session.methods) {
    headers.emplace_back("X-Docker-Expose-Session-Grpc-Method", method);
  }
  auto fd = engine->hijack_unversioned("POST", "/session", "", headers, "h2c", deadline);
  if (!fd && fd.error().code() == Errc::not_found) {
    // An Engine without the route: the core tunnels the session instead.
    return Error(Errc::unsupported, "the Docker Engine has no POST /session");
  }
  return fd;
}

Result<std::string> MobyWorkerBuilder::status(const sdk::Request& request) {
  auto deadline = sdk::deadline_after(request.timeout);
  auto engine = sdk::DockerEngine::from_env();
  if (!engine) return engine.error();
  auto version = engine->version(deadline);
  if (!version) return version.error();
  std::string at = engine->endpoint().url;
  if (const auto* tls = engine->tls()) at += tls->verify ? " over TLS" : " over unverified TLS";
  return R"({"state":"running","detail":)" +
         json_string("Docker Engine " + version->version + " (API " + version->api_version +
                     ") at " + at) +
         "}";
}

Result<std::string> MobyWorkerBuilder::bootstrap(const sdk::Request& /*request*/) {
  return not_managed("bootstrap");
}
Status MobyWorkerBuilder::stop(const sdk::Request& /*request*/) { return not_managed("stop"); }
Status MobyWorkerBuilder::remove(const sdk::Request& /*request*/) { return not_managed("remove"); }

}  // namespace envd::plugins
