#include "envd/registry_auth.hpp"

#include <boost/json.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>

#include "base64.hpp"
#include "credential_helper.hpp"
#include "envd/files.hpp"
#include "envd/host.hpp"
#include "envd/process.hpp"
#include "envd/text.hpp"

namespace envd::sdk {
namespace {

// `text` on one line of about `limit` characters, for messages: line breaks
// and tabs become spaces, any other control character is escaped.
std::string one_line(std::string_view text, std::size_t limit) {
  std::string out;
  for (char c : text) out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return printable(out, limit);
}

Result<boost::json::value> parse(std::string_view text, const std::string& what) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(text, ec);
  if (ec) return Error(Errc::invalid_argument, what + " is not valid JSON: " + ec.message());
  return value;
}

constexpr const char* kDockerHubKey = "https://index.docker.io/v1/";

bool is_docker_hub(std::string_view host) {
  return host == "registry-1.docker.io" || host == "docker.io" || host == "index.docker.io";
}

// "https://host/v1/" -> "host", as docker compares config keys.
std::string key_host(std::string_view key) {
  if (auto scheme = key.find("://"); scheme != std::string_view::npos) {
    key.remove_prefix(scheme + 3);
  }
  if (auto slash = key.find('/'); slash != std::string_view::npos) key = key.substr(0, slash);
  return std::string(key);
}

bool key_matches(std::string_view key, std::string_view host, std::string_view wanted_key) {
  if (key == wanted_key) return true;
  std::string h = key_host(key);
  if (is_docker_hub(host)) return is_docker_hub(h);
  return h == host;
}

// Finds the member of `object` for `host`: the exact key first, then any
// key naming the same host.
const boost::json::value* find_entry(const boost::json::object& object, std::string_view host,
                                     const std::string& key) {
  if (const auto* exact = object.if_contains(key)) return exact;
  for (const auto& member : object) {
    if (key_matches(member.key(), host, key)) return &member.value();
  }
  return nullptr;
}

std::string string_field(const boost::json::object& object, std::string_view name) {
  const auto* value = object.if_contains(name);
  if (value == nullptr || !value->is_string()) return {};
  return std::string(value->get_string());
}

Result<RegistryCredentials> run_helper(const RegistryAuthOptions& options,
                                       const std::string& helper, const std::string& key) {
  ProcessOptions process;
  process.argv = {"docker-credential-" + helper, "get"};
  process.stdin_data = key;
  process.timeout = options.helper_timeout;
  process.max_output = kMaxHelperOutput;
  auto ran = run_process(process);
  if (!ran)
    return ran.error().wrap("cannot run credential helper 'docker-credential-" + helper + "'");
  return helper_answer(helper, key, *ran, options.helper_timeout);
}

Result<RegistryCredentials> from_auths_entry(const boost::json::value& entry,
                                             const std::string& what) {
  if (!entry.is_object()) return Error(Errc::invalid_argument, what + " is not an object");
  const auto& object = entry.get_object();
  if (auto token = string_field(object, "identitytoken"); !token.empty()) {
    return RegistryCredentials{"", token};
  }
  if (auto encoded = string_field(object, "auth"); !encoded.empty()) {
    auto decoded = base64_decode(encoded);
    auto colon = decoded ? decoded->find(':') : std::string::npos;
    if (colon == std::string::npos) {
      return Error(Errc::invalid_argument,
                   what + " has an 'auth' field that is not base64 of user:password");
    }
    return RegistryCredentials{decoded->substr(0, colon), decoded->substr(colon + 1)};
  }
  return RegistryCredentials{string_field(object, "username"), string_field(object, "password")};
}

}  // namespace

Result<RegistryCredentials> helper_answer(const std::string& helper, const std::string& key,
                                          const ProcessResult& ran,
                                          std::chrono::milliseconds timeout) {
  std::string what = "credential helper 'docker-credential-" + helper + "'";
  if (ran.timed_out) {
    return Error(Errc::timeout,
                 what + " did not answer within " + std::to_string(timeout.count()) + " ms");
  }
  if (ran.output_exceeded) {
    return Error(Errc::unavailable, what + " wrote more than " +
                                        std::to_string(kMaxHelperOutput >> 10) + " KiB for '" +
                                        printable(key) + "', so envd stopped it");
  }
  if (!ran.succeeded()) {
    std::string output = ran.out + ran.err;
    if (output.find("credentials not found") != std::string::npos) return RegistryCredentials{};
    return Error(Errc::unavailable,
                 what + " failed for '" + printable(key) + "': " + one_line(output, 200));
  }
  auto json = parse(ran.out, what + " output");
  if (!json) return json.error();
  if (!json->is_object()) return Error(Errc::invalid_argument, what + " output is not an object");
  const auto& object = json->get_object();
  RegistryCredentials creds{string_field(object, "Username"), string_field(object, "Secret")};
  if (creds.username == "<token>") creds.username.clear();
  return creds;
}

std::string docker_config_key(std::string_view host) {
  return is_docker_hub(host) ? kDockerHubKey : std::string(host);
}

namespace {

// What follows "docker-credential-": a program name, never a path (a '/'
// would make the config file choose any executable relative to the working
// directory) and never anything a terminal would interpret.
bool is_helper_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<RegistryCredentials> lookup(const RegistryAuthOptions& options, std::string_view host);

}  // namespace

// The messages quote the config file, its entries and a helper's output:
// printable() keeps them on one line and off the terminal's controls.
Result<RegistryCredentials> lookup_registry_credentials(const RegistryAuthOptions& options,
                                                        std::string_view host) {
  auto found = lookup(options, host);
  if (!found) return Error(found.error().code(), printable(found.error().message()));
  return found;
}

namespace {

Result<RegistryCredentials> lookup(const RegistryAuthOptions& options, std::string_view host) {
  std::filesystem::path dir = options.config_dir;
  if (dir.empty()) {
    if (const char* env = std::getenv("DOCKER_CONFIG"); env != nullptr && env[0] != '\0') {
      dir = env;
    } else if (const char* home = std::getenv("HOME"); home != nullptr && home[0] != '\0') {
      dir = std::filesystem::path(home) / ".docker";
    } else {
      return RegistryCredentials{};
    }
  }
  std::filesystem::path file = dir / "config.json";
  auto text = read_regular_file(file.string());
  // No config: no credentials.
  if (!text && text.error().code() == Errc::not_found) return RegistryCredentials{};
  if (!text) {
    // As the docker CLI: a config that cannot be read (root's after a sudo
    // login) is warned about, and the pull goes on without credentials.
    log(LogLevel::warning, "ignoring the docker config: " + text.error().message());
    return RegistryCredentials{};
  }
  std::string what = "docker config '" + file.string() + "'";
  auto json = parse(*text, what);
  if (!json) return json.error();
  if (!json->is_object()) return Error(Errc::invalid_argument, what + " is not a JSON object");
  const auto& config = json->get_object();
  std::string key = docker_config_key(host);

  std::string helper;
  if (const auto* helpers = config.if_contains("credHelpers"); helpers && helpers->is_object()) {
    if (const auto* name = find_entry(helpers->get_object(), host, key);
        name && name->is_string()) {
      helper = std::string(name->get_string());
    }
  }
  if (helper.empty()) helper = string_field(config, "credsStore");
  if (!helper.empty() && !is_helper_name(helper)) {
    return Error(Errc::invalid_argument,
                 what + " names credential helper '" + helper +
                     "', which is not a program name (letters, digits, '.', '_', '-')");
  }
  if (!helper.empty()) {
    auto creds = run_helper(options, helper, key);
    if (!creds) return creds.error().wrap(what);
    if (!creds->empty()) return creds;
  }

  if (const auto* auths = config.if_contains("auths"); auths && auths->is_object()) {
    if (const auto* entry = find_entry(auths->get_object(), host, key)) {
      return from_auths_entry(*entry, what + " entry for '" + key + "'");
    }
  }
  return RegistryCredentials{};
}

}  // namespace

std::string registry_auth_header(const RegistryCredentials& credentials,
                                 std::string_view server_address) {
  if (credentials.empty()) return "e30=";
  boost::json::object auth;
  if (credentials.username.empty()) {
    auth["identitytoken"] = credentials.secret;
  } else {
    auth["username"] = credentials.username;
    auth["password"] = credentials.secret;
  }
  auth["serveraddress"] = server_address;
  return base64_encode(boost::json::serialize(auth), Base64Alphabet::url);
}

Result<std::string> registry_auth_header_for(std::string_view host,
                                             const RegistryAuthOptions& options) {
  auto credentials = lookup_registry_credentials(options, host);
  if (!credentials) return credentials.error();
  return registry_auth_header(*credentials, docker_config_key(host));
}

}  // namespace envd::sdk
