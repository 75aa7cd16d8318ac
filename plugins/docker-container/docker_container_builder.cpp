#include "docker_container_builder.hpp"

#include <algorithm>
#include <cctype>
#include <string_view>

#include "envd/address.hpp"

namespace envd::plugins {
namespace {

constexpr std::string_view kSubject = "docker-container builder address";
constexpr std::string_view kExpected =
    "<container>[?context=<docker context>], e.g. envd_buildkitd or "
    "envd_buildkitd?context=remote";

// Docker's name rules: an alphanumeric first character, then at least one of
// the alphanumerics and `extra`.
bool follows_docker_rule(std::string_view name, std::string_view extra) {
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  return name.size() >= 2 && alnum(name.front()) &&
         std::all_of(name.begin() + 1, name.end(),
                     [&](char c) { return alnum(c) || extra.find(c) != std::string_view::npos; });
}

}  // namespace

Result<std::string> DockerContainerBuilder::normalize_address(const std::string& address) const {
  auto fail = [&](const std::string& reason) {
    return sdk::address_error(kSubject, address, reason, kExpected);
  };
  auto rest = sdk::strip_optional_scheme(address, "docker-container");
  if (!rest) return fail(rest.error().message());
  auto parsed = sdk::parse_name_with_query(*rest);
  if (!parsed) return fail(parsed.error().message());
  if (auto keys = sdk::check_query_keys(parsed->query, {"context"}); !keys) {
    return fail(keys.error().message());
  }
  if (parsed->name.empty()) parsed->name = default_container;
  if (!follows_docker_rule(parsed->name, "_.-")) {
    return fail("container name '" + parsed->name +
                "' does not follow Docker's rule [a-zA-Z0-9][a-zA-Z0-9_.-]+");
  }
  if (const std::string* context = sdk::find_query_param(parsed->query, "context")) {
    if (!follows_docker_rule(*context, "_.+-")) {
      return fail("docker context '" + *context +
                  "' does not follow Docker's rule [a-zA-Z0-9][a-zA-Z0-9_.+-]+");
    }
  }
  return parsed->to_string();
}

}  // namespace envd::plugins
