#include "kube_address.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>

#include "envd/address.hpp"

namespace envd::plugins::kube {
namespace {

constexpr std::string_view kSubject = "kube-pod builder address";
constexpr std::array<std::string_view, 4> kParameters = {"context", "namespace", "container",
                                                         "selector"};

bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// One dot-separated part of a subdomain, or a whole label.
std::string label_shape_problem(std::string_view part) {
  if (part.empty() || !lower_alnum(part.front()) || !lower_alnum(part.back()) ||
      !std::all_of(part.begin(), part.end(), [](char c) { return lower_alnum(c) || c == '-'; })) {
    return "must consist of lower case alphanumeric characters or '-', and must start and end "
           "with an alphanumeric character (DNS-1123 label)";
  }
  return {};
}

// Selector keys: [prefix/]name, name of [A-Za-z0-9_.-] starting and ending
// with an alphanumeric, at most 63; values the same or empty.
bool label_value_shape(std::string_view v, bool allow_empty) {
  if (v.empty()) return allow_empty;
  if (v.size() > 63) return false;
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  if (!alnum(v.front()) || !alnum(v.back())) return false;
  return std::all_of(v.begin(), v.end(),
                     [&](char c) { return alnum(c) || c == '-' || c == '_' || c == '.'; });
}

bool label_key_shape(std::string_view key) {
  auto slash = key.find('/');
  if (slash == std::string_view::npos) return label_value_shape(key, false);
  std::string prefix(key.substr(0, slash));
  return dns1123_subdomain_problem(prefix).empty() &&
         label_value_shape(key.substr(slash + 1), false);
}

}  // namespace

const char* const kExpectedAddress =
    "<pod>, deployment/<name>, statefulset/<name> or ?selector=<labels>, each with optional "
    "context=, namespace= and container= parameters, e.g. buildkitd-0?namespace=ci";

std::string dns1123_label_problem(const std::string& name) {
  if (name.size() > 63) return "must be at most 63 characters (DNS-1123 label)";
  return label_shape_problem(name);
}

std::string dns1123_subdomain_problem(const std::string& name) {
  if (name.size() > 253) return "must be at most 253 characters (DNS-1123 subdomain)";
  std::string_view rest = name;
  for (;;) {
    auto dot = rest.find('.');
    if (!label_shape_problem(rest.substr(0, dot)).empty()) {
      return "must consist of lower case alphanumeric characters, '-' or '.', and must start "
             "and end with an alphanumeric character (DNS-1123 subdomain)";
    }
    if (dot == std::string_view::npos) return {};
    rest.remove_prefix(dot + 1);
  }
}

std::string label_selector_problem(const std::string& selector) {
  if (selector.empty()) return "is empty";
  std::string_view rest = selector;
  for (;;) {
    auto comma = rest.find(',');
    std::string_view term = rest.substr(0, comma);
    std::string_view key = term;
    std::string_view value;
    bool has_value = false;
    if (auto at = term.find("!="); at != std::string_view::npos) {
      key = term.substr(0, at);
      value = term.substr(at + 2);
      has_value = true;
    } else if (auto eq = term.find('='); eq != std::string_view::npos) {
      key = term.substr(0, eq);
      value = term.substr(term.compare(eq, 2, "==") == 0 ? eq + 2 : eq + 1);
      has_value = true;
    } else if (!term.empty() && term.front() == '!') {
      key = term.substr(1);
    }
    if (!label_key_shape(key) || (has_value && !label_value_shape(value, true))) {
      return "term '" + std::string(term) +
             "' is not key=value, key==value, key!=value, key or !key with Kubernetes label "
             "keys and values";
    }
    if (comma == std::string_view::npos) return {};
    rest.remove_prefix(comma + 1);
  }
}

std::string KubeTarget::to_string() const {
  sdk::NameWithQuery out;
  switch (kind) {
    case Kind::pod:
      out.name = name;
      break;
    case Kind::deployment:
      out.name = "deployment/" + name;
      break;
    case Kind::statefulset:
      out.name = "statefulset/" + name;
      break;
    case Kind::selector:
      break;
  }
  if (!context.empty()) out.query.emplace_back("context", context);
  if (!namespace_.empty()) out.query.emplace_back("namespace", namespace_);
  if (!container.empty()) out.query.emplace_back("container", container);
  if (kind == Kind::selector) out.query.emplace_back("selector", selector);
  return out.to_string();
}

std::string KubeTarget::describe() const {
  switch (kind) {
    case Kind::pod:
      return "pod " + name;
    case Kind::deployment:
      return "deployment/" + name;
    case Kind::statefulset:
      return "statefulset/" + name;
    case Kind::selector:
      return "pods with labels " + selector;
  }
  return name;
}

Result<KubeTarget> parse_address(const std::string& address) {
  if (address.empty()) {
    return Error(Errc::invalid_argument,
                 std::string("no default address: pass --builder-address ") + kExpectedAddress);
  }
  auto fail = [&](const std::string& reason) {
    return sdk::address_error(kSubject, address, reason, kExpectedAddress);
  };
  auto rest = sdk::strip_optional_scheme(address, "kube-pod");
  if (!rest) return fail(rest.error().message());
  auto parsed = sdk::parse_name_with_query(*rest);
  if (!parsed) return fail(parsed.error().message());
  if (auto keys = sdk::check_query_keys(parsed->query, {kParameters.begin(), kParameters.end()});
      !keys) {
    return fail(keys.error().message());
  }

  KubeTarget target;
  std::string name = parsed->name;
  const std::string* selector = sdk::find_query_param(parsed->query, "selector");
  for (auto [prefix, kind] :
       {std::pair{std::string_view("deployment/"), KubeTarget::Kind::deployment},
        std::pair{std::string_view("statefulset/"), KubeTarget::Kind::statefulset}}) {
    if (name.rfind(prefix, 0) == 0) {
      target.kind = kind;
      name = name.substr(prefix.size());
      if (name.empty())
        return fail("the " + std::string(prefix.substr(0, prefix.size() - 1)) + " name is missing");
    }
  }
  if (selector != nullptr) {
    if (!name.empty() || target.kind != KubeTarget::Kind::pod) {
      return fail("selector= picks a pod by its labels: give it without a pod or workload name");
    }
    if (auto problem = label_selector_problem(*selector); !problem.empty()) {
      return fail("selector '" + *selector + "' " + problem);
    }
    target.kind = KubeTarget::Kind::selector;
    target.selector = *selector;
  } else if (name.empty()) {
    return fail("the pod name is missing");
  }
  if (target.kind != KubeTarget::Kind::selector) {
    // '/' here means a workload kind envd does not know (e.g. "job/x").
    if (name.find('/') != std::string::npos) {
      return fail("'" + parsed->name + "' is not a pod name, deployment/NAME or statefulset/NAME");
    }
    if (auto problem = dns1123_subdomain_problem(name); !problem.empty()) {
      const char* what = target.kind == KubeTarget::Kind::pod          ? "pod name"
                         : target.kind == KubeTarget::Kind::deployment ? "deployment name"
                                                                       : "statefulset name";
      return fail(std::string(what) + " '" + name + "' " + problem);
    }
    target.name = name;
  }
  if (const std::string* context = sdk::find_query_param(parsed->query, "context")) {
    if (context->empty()) return fail("the kube context is empty");
    if (context->front() == '-') return fail("kube context '" + *context + "' starts with '-'");
    target.context = *context;
  }
  for (auto [key, field] :
       {std::pair{"namespace", &target.namespace_}, std::pair{"container", &target.container}}) {
    const std::string* value = sdk::find_query_param(parsed->query, key);
    if (value == nullptr) continue;
    if (auto problem = dns1123_label_problem(*value); !problem.empty()) {
      return fail(std::string(key) + " '" + *value + "' " + problem);
    }
    *field = *value;
  }
  return target;
}

}  // namespace envd::plugins::kube
