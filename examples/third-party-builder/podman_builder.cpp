// podman-container: an example third-party builder. It reaches a buildkitd
// running in a Podman container by running `podman exec -i <container> buildctl
// dial-stdio` with its stdin and stdout on one end of a socket pair, and hands
// the other end to envd as the transport. It uses nothing of envd but the SDK.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <regex>
#include <string>

#include "envd/address.hpp"
#include "envd/plugin.hpp"
#include "envd/process.hpp"

namespace {

class PodmanBuilder : public envd::sdk::BuilderDriver {
 public:
  envd::Result<std::string> normalize_address(const std::string& address) const override {
    std::string name(envd::sdk::strip_scheme(address, "podman-container"));
    if (name.empty()) return std::string("envd_buildkitd");
    static const std::regex kContainerName("^[a-zA-Z0-9][a-zA-Z0-9_.-]+$");
    if (!std::regex_match(name, kContainerName)) {
      return envd::Error(envd::Errc::invalid_argument,
                         "podman-container address '" + address +
                             "' is invalid: expected a container name such as envd_buildkitd");
    }
    return name;
  }

  envd::Result<envd::sdk::Transport> dial(const envd::sdk::Request& request) override {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
      return envd::Error(envd::Errc::internal, std::string("socketpair: ") + std::strerror(errno));
    }
    envd::sdk::ProcessOptions options;
    options.argv = {"podman", "exec", "-i", request.address, "buildctl", "dial-stdio"};
    auto pid = envd::sdk::spawn_process(options, pair[1], pair[1], -1);
    ::close(pair[1]);
    if (!pid) {
      ::close(pair[0]);
      return pid.error();
    }
    envd::sdk::Transport transport;
    transport.kind = envd::sdk::Transport::Kind::fd;
    transport.fd = pair[0];
    transport.description = "podman-container://" + request.address;
    return transport;
  }
};

}  // namespace

ENVD_DECLARE_BUILDER_PLUGIN(PodmanBuilder, "podman-container", "0.1.0",
                            "BuildKit in a Podman container, reached with podman exec",
                            ENVD_MATURITY_EXPERIMENTAL)
