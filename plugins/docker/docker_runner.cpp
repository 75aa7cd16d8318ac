#include "docker_runner.hpp"

#include <string_view>

#include "envd/address.hpp"

namespace envd::plugins {
namespace {

constexpr std::string_view kSubject = "docker runner address";
constexpr std::string_view kExpected =
    "a Docker Engine endpoint: unix:///path/to/docker.sock, tcp://host:port or "
    "ssh://[user@]host[:port]";

// Why `url`, whose scheme is one of Docker's, is not an endpoint; "" if it is one.
std::string endpoint_problem(sdk::Url& url) {
  if (!url.query.empty()) return "query parameters are not accepted";
  if (url.scheme == "unix") return "";
  if (url.path == "/") url.path.clear();
  if (!url.path.empty()) return "path '" + url.path + "' is not accepted";
  if (url.scheme == "tcp") {
    if (!url.user.empty()) return "a user name is not accepted for tcp://";
    if (!url.port) return "the port is missing";
  }
  return "";
}

}  // namespace

Result<std::string> DockerRunner::normalize_address(const std::string& address) const {
  if (address.empty()) return std::string();
  std::string scheme = sdk::scheme_of(address);
  if (!scheme.empty() && scheme != "unix" && scheme != "tcp" && scheme != "ssh") {
    return sdk::address_error(
        kSubject, address, "scheme '" + scheme + "://' is not a Docker Engine endpoint", kExpected);
  }
  auto url = sdk::parse_url(address);
  if (!url) return sdk::address_error(kSubject, address, url.error().message(), kExpected);
  if (std::string problem = endpoint_problem(*url); !problem.empty()) {
    return sdk::address_error(kSubject, address, problem, kExpected);
  }
  return url->to_string();
}

}  // namespace envd::plugins
