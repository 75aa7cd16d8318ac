#include "kube_pod_builder.hpp"

#include <algorithm>
#include <string_view>

#include "envd/address.hpp"

namespace envd::plugins {
namespace {

constexpr std::string_view kSubject = "kube-pod builder address";
constexpr std::string_view kExpected =
    "<pod>[?context=<kube context>&namespace=<namespace>&container=<container>], e.g. "
    "buildkitd-0?namespace=ci";

// The canonical parameter order.
constexpr std::string_view kParameters[] = {"context", "namespace", "container"};

// What kubectl accepts for pod, namespace and container names: [-a-z0-9.]+
bool is_kube_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

}  // namespace

Result<std::string> KubePodBuilder::normalize_address(const std::string& address) const {
  if (address.empty()) {
    return Error(Errc::invalid_argument,
                 "the kube-pod builder has no default address: pass --builder-address " +
                     std::string(kExpected));
  }
  auto fail = [&](const std::string& reason) {
    return sdk::address_error(kSubject, address, reason, kExpected);
  };
  auto rest = sdk::strip_optional_scheme(address, "kube-pod");
  if (!rest) return fail(rest.error().message());
  auto parsed = sdk::parse_name_with_query(*rest);
  if (!parsed) return fail(parsed.error().message());
  if (auto keys =
          sdk::check_query_keys(parsed->query, {std::begin(kParameters), std::end(kParameters)});
      !keys) {
    return fail(keys.error().message());
  }
  if (parsed->name.empty()) return fail("the pod name is missing");
  if (!is_kube_name(parsed->name)) {
    return fail("pod name '" + parsed->name + "' does not match [-a-z0-9.]+");
  }

  sdk::NameWithQuery canonical{parsed->name, {}};
  for (std::string_view key : kParameters) {
    const std::string* value = sdk::find_query_param(parsed->query, key);
    if (value == nullptr) continue;
    if (key == "context" && value->empty()) return fail("the kube context is empty");
    if (key != "context" && !is_kube_name(*value)) {
      return fail(std::string(key) + " '" + *value + "' does not match [-a-z0-9.]+");
    }
    canonical.query.emplace_back(key, *value);
  }
  return canonical.to_string();
}

}  // namespace envd::plugins
