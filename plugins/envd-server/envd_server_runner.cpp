#include "envd_server_runner.hpp"

#include <string_view>

#include "envd/address.hpp"

namespace envd::plugins {
namespace {

constexpr std::string_view kSubject = "envd-server runner address";
constexpr std::string_view kExpected =
    "a URL such as http://localhost:8080 (the server's API, not its SSH port)";

}  // namespace

Result<std::string> EnvdServerRunner::normalize_address(const std::string& address) const {
  if (address.empty()) return std::string();
  auto fail = [&](const std::string& reason) {
    return sdk::address_error(kSubject, address, reason, kExpected);
  };
  std::string scheme = sdk::scheme_of(address);
  if (!scheme.empty() && scheme != "http" && scheme != "https") {
    return fail("scheme '" + scheme + "://' is not accepted (only http:// or https://)");
  }
  auto url = sdk::parse_url(address);
  if (!url) return fail(url.error().message());
  if (!url->user.empty()) return fail("a user name is not accepted (log in with envd login)");
  if (!url->query.empty()) return fail("query parameters are not accepted");
  while (!url->path.empty() && url->path.back() == '/') url->path.pop_back();
  return url->to_string();
}

}  // namespace envd::plugins
