#include "envd_server_runner.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "envd/address.hpp"
#include "envd/files.hpp"
#include "envd/host.hpp"
#include "envd/http_client.hpp"
#include "envd/process.hpp"
#include "envd/text.hpp"
#include "environment.hpp"
#include "ssh_access.hpp"

namespace envd::plugins {
namespace {

namespace json = boost::json;
using envd_server::environment_of;
using envd_server::server_message;

constexpr std::string_view kSubject = "envd-server runner address";
constexpr std::string_view kExpected =
    "a URL such as http://localhost:8080 (the server's API, not its SSH port)";
constexpr const char* kDefaultServer = "http://localhost:8080";
constexpr std::chrono::milliseconds kPollInterval{1000};
constexpr std::chrono::milliseconds kRemovePollInterval{250};

// What a verb works with: the server, and who we are on it.
struct Session {
  sdk::HttpServer server;
  std::string login;
  std::string token;
  std::string host;                      // for the SSH endpoint
  int ssh_port = envd_server::kSshPort;  // the gateway's (the ssh-port option)
  std::string identity_file;             // the private key whose public half login uploaded
};

// The ssh-port option's value, or nullopt if it is not a port.
std::optional<int> ssh_port_of(const std::string& text) {
  if (text.empty() || text.size() > 5 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  int port = std::stoi(text);
  if (port < 1 || port > 65535) return std::nullopt;
  return port;
}

Result<Session> session(const sdk::Request& request) {
  Session s;
  s.server.name = "the envd server";
  s.server.base_url = request.address;
  std::string_view from;
  if (s.server.base_url.empty()) {
    const char* env = std::getenv("ENVD_SERVER_HOST");
    s.server.base_url = env != nullptr && *env != '\0' ? env : kDefaultServer;
    if (env != nullptr && *env != '\0') from = " (from ENVD_SERVER_HOST)";
  }
  auto url = sdk::parse_url(s.server.base_url);
  if (!url || (url->scheme != "http" && url->scheme != "https")) {
    // The address may hold a password the user should not see echoed.
    return Error(Errc::invalid_argument,
                 "the envd server address '" + sdk::redact_password(s.server.base_url) + "'" +
                     std::string(from) + " is invalid: " +
                     (url ? "it is not an http:// or https:// URL" : url.error().message()));
  }
  if (!from.empty()) {
    // Held to what a context's address may be (normalize_address below).
    if (!url->user.empty() || !url->query.empty()) {
      return Error(
          Errc::invalid_argument,
          "the envd server address '" + sdk::redact_password(s.server.base_url) + "'" +
              std::string(from) + " is invalid: " +
              (url->user.empty() ? "query parameters are not accepted"
                                 : "a user name is not accepted (log in with envd login)"));
    }
    // As a context's address is stored: "http://host:8080/" is the server
    // at "http://host:8080", whose paths do not start with "//".
    while (!url->path.empty() && url->path.back() == '/') url->path.pop_back();
    s.server.base_url = url->to_string();
  }
  s.host = url->host;
  if (auto port = request.options.find("ssh-port"); port != request.options.end()) {
    s.ssh_port = ssh_port_of(port->second).value_or(s.ssh_port);
  }
  if (auto ca = request.options.find("runner-tls-ca"); ca != request.options.end()) {
    s.server.ca_file = ca->second;
  }
  std::string login_file = request.data_dir + "/" + EnvdServerRunner::kLoginFile;
  std::string not_logged_in = "not logged in to the envd server at " + s.server.base_url +
                              " in context '" + request.context + "'; run envd login";
  if (request.data_dir.empty()) return Error(Errc::permission, not_logged_in);
  auto text = sdk::read_regular_file(login_file, 1 << 20);
  if (!text && text.error().code() == Errc::not_found)
    return Error(Errc::permission, not_logged_in);
  if (!text) {
    return Error(Errc::permission, "the login stored in context '" + request.context +
                                       "' is unreadable (" + text.error().message() +
                                       "); run envd login");
  }
  boost::system::error_code ec;
  json::value stored = json::parse(*text, ec);
  if (ec || !stored.is_object()) {
    return Error(Errc::permission,
                 "the login stored in '" + login_file + "' is unreadable; run envd login");
  }
  auto field = [&](std::string_view key) {
    const json::value* v = stored.as_object().if_contains(key);
    return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
  };
  s.login = field("login_name");
  s.token = field("identity_token");
  s.identity_file = field("identity_file");
  if (s.login.empty() || s.token.empty()) return Error(Errc::permission, not_logged_in);
  if (field("server") != s.server.base_url) {
    return Error(Errc::permission, "the login of context '" + request.context + "' is for " +
                                       field("server") + ", not " + s.server.base_url +
                                       "; run envd login");
  }
  return s;
}

std::string environments_path(const Session& s) {
  return "/api/v1/users/" + sdk::url_path_segment(s.login) + "/environments";
}

Result<sdk::HttpAnswer> call(const Session& s, const std::string& method, const std::string& path,
                             const std::string& body, sdk::HttpDeadline deadline) {
  sdk::HttpRequest req{method, path, body, {{"Authorization", s.token}}};
  auto answer = sdk::http_call(s.server, req, deadline);
  if (!answer && answer.error().code() == Errc::unavailable &&
      answer.error().message().rfind("cannot connect", 0) == 0 &&
      answer.error().message().find(" over TLS: ") == std::string::npos) {
    return Error(Errc::unavailable, answer.error().message() + " (is the envd server running?)");
  }
  return answer;
}

// The error a failed answer stands for; `doing` says what failed, e.g.
// "cannot get environment 'dev'".
Error answer_error(const Session& s, const sdk::HttpAnswer& answer, const std::string& doing) {
  std::string message = server_message(answer.status, answer.body);
  std::string says = "the envd server at " + s.server.base_url + " answered " +
                     std::to_string(answer.status) + ": " + message;
  // The server's runtime checks a pod's owner label against the login, and
  // answers 401 (get) or 500 (remove) with these words: no new login helps.
  if (message == "mismatch loginname") {
    return Error(Errc::permission, doing + ": it belongs to another user of the envd server at " +
                                       s.server.base_url + " (it answered " +
                                       std::to_string(answer.status) + ": " + message + ")");
  }
  switch (answer.status) {
    case 401:
      return Error(Errc::permission, doing + ": " + says + "; run envd login");
    case 403:
      return Error(Errc::permission, doing + ": " + says);
    case 400:
      return Error(Errc::invalid_argument, doing + ": " + says);
    case 404:
      return Error(Errc::not_found, doing + ": " + says);
    case 409:
      return Error(Errc::already_exists, doing + ": " + says);
    default:
      return Error(answer.status >= 500 ? Errc::unavailable : Errc::internal, doing + ": " + says);
  }
}

Result<json::object> parse_object(const Session& s, const sdk::HttpAnswer& answer,
                                  const std::string& what) {
  boost::system::error_code ec;
  json::value value = json::parse(answer.body, ec);
  if (ec || !value.is_object()) {
    return Error(Errc::internal, "the envd server at " + s.server.base_url + " answered " + what +
                                     " with something that is not a JSON object");
  }
  return std::move(value.as_object());
}

std::string name_arg(const sdk::Request& request) {
  boost::system::error_code ec;
  json::value args = json::parse(request.args_json, ec);
  if (ec || !args.is_object()) return "";
  const json::value* name = args.as_object().if_contains("name");
  return name != nullptr && name->is_string() ? std::string(name->as_string()) : "";
}

// The server names a pod and a Service after the environment, so a name
// must be what Kubernetes takes for both: a DNS-1035 label. A name it would
// refuse left a pod behind with a failed Service; one holding a space broke
// the ~/.ssh/config block attach writes.
Result<std::string> valid_environment_name(std::string name) {
  if (name.empty()) return Error(Errc::invalid_argument, "no environment name given");
  bool ok = name.size() <= 63 && std::islower(static_cast<unsigned char>(name.front())) != 0 &&
            name.back() != '-' && std::all_of(name.begin(), name.end(), [](char c) {
              auto u = static_cast<unsigned char>(c);
              return std::islower(u) != 0 || std::isdigit(u) != 0 || c == '-';
            });
  if (ok) return name;
  return Error(Errc::invalid_argument,
               "environment name '" + sdk::printable(name, 80) +
                   "' is invalid: the envd server names a pod and a service after it, so it "
                   "must be 1 to 63 lowercase letters, digits and '-', starting with a letter "
                   "and ending with a letter or digit");
}

// "2 s", "1.5 s", "700 ms": a --timeout as the user may have given it.
std::string duration_text(std::chrono::milliseconds duration) {
  const auto ms = duration.count();
  if (ms < 1000) return std::to_string(ms) + " ms";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  std::string text = std::to_string(ms / 1000) + "." + std::to_string(1000 + ms % 1000).substr(1);
  while (text.back() == '0') text.pop_back();
  return text + " s";
}

Result<std::string> environment_name(const sdk::Request& request) {
  return valid_environment_name(name_arg(request));
}

Result<json::object> get_environment(const Session& s, const std::string& name,
                                     sdk::HttpDeadline deadline) {
  std::string path = environments_path(s) + "/" + sdk::url_path_segment(name);
  auto answer = call(s, "GET", path, "", deadline);
  if (!answer) return answer.error();
  if (answer->status != 200) {
    return answer_error(s, *answer, "cannot get environment '" + name + "'");
  }
  return parse_object(s, *answer, "GET " + path);
}

// The environment `name`, or nullopt when the server has none of that name.
Result<std::optional<json::object>> find_environment(const Session& s, const std::string& name,
                                                     sdk::HttpDeadline deadline) {
  std::string path = environments_path(s) + "/" + sdk::url_path_segment(name);
  auto answer = call(s, "GET", path, "", deadline);
  if (!answer) return answer.error();
  if (answer->status == 404) return std::optional<json::object>();
  if (answer->status != 200) {
    return answer_error(s, *answer, "cannot get environment '" + name + "'");
  }
  auto object = parse_object(s, *answer, "GET " + path);
  if (!object) return object.error();
  return std::optional<json::object>(std::move(*object));
}

// Removes `name` and waits until the server has no pod of that name: a pod
// terminates after the server answers, and a name is taken until it has.
// The server answers 200 for a name it has not, so the caller looks first.
Status delete_environment(const Session& s, const std::string& name, sdk::HttpDeadline deadline,
                          std::chrono::milliseconds timeout) {
  std::string doing = "cannot remove environment '" + name + "'";
  auto answer =
      call(s, "DELETE", environments_path(s) + "/" + sdk::url_path_segment(name), "", deadline);
  if (!answer) return answer.error();
  if (answer->status != 200 && answer->status != 204) return answer_error(s, *answer, doing);
  bool told = false;
  while (true) {
    auto found = find_environment(s, name, deadline);
    if (!found) return found.error();
    if (!*found) return {};
    if (!told) {
      sdk::report_progress("waiting for environment '" + name + "' to be removed");
      told = true;
    }
    auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::milliseconds(0)) {
      return Error(Errc::timeout, "environment '" + name + "' on the envd server at " +
                                      s.server.base_url + " is still being removed after " +
                                      duration_text(timeout) + "; the server goes on removing it");
    }
    auto wait = std::min<std::chrono::milliseconds>(
        kRemovePollInterval, std::chrono::duration_cast<std::chrono::milliseconds>(left));
    if (!sdk::sleep_unless_cancelled(wait)) {
      return Error(Errc::cancelled, "waiting for environment '" + name +
                                        "' to be removed cancelled; the server goes on "
                                        "removing it");
    }
  }
}

Error already_exists(const Session& s, const std::string& name) {
  return Error(Errc::already_exists, "cannot create environment '" + name +
                                         "': the envd server at " + s.server.base_url +
                                         " already has one of that name (pass --force to "
                                         "replace it)");
}

std::string phase_of(const json::object& env) {
  const json::value* status = env.if_contains("status");
  if (status == nullptr || !status->is_object()) return "";
  const json::value* phase = status->as_object().if_contains("phase");
  return phase != nullptr && phase->is_string() ? std::string(phase->as_string()) : "";
}

// The shell argv in args ("shell"), empty for the login shell.
Result<std::vector<std::string>> shell_arg(const sdk::Request& request) {
  boost::system::error_code ec;
  json::value args = json::parse(request.args_json, ec);
  const json::value* v = !ec && args.is_object() ? args.as_object().if_contains("shell") : nullptr;
  std::vector<std::string> shell;
  if (v == nullptr || v->is_null()) return shell;
  if (!v->is_array()) return Error(Errc::invalid_argument, "'shell' must be a list of words");
  for (const auto& word : v->as_array()) {
    if (!word.is_string()) return Error(Errc::invalid_argument, "'shell' must be strings");
    shell.emplace_back(word.as_string());
  }
  return shell;
}

// Where ssh's home-relative files are: $HOME, as ssh's users expect of envd.
std::string home_dir() {
  const char* home = std::getenv("HOME");  // NOLINT(concurrency-mt-unsafe): read only
  return home != nullptr ? home : "";
}

}  // namespace

Status EnvdServerRunner::logs(const sdk::Request& request, const sdk::Stdio& /*stdio*/) {
  return Error(Errc::unsupported,
               "the envd server's API (v1) has no endpoint for an environment's logs; "
               "open a shell with 'envd attach " +
                   sdk::printable(name_arg(request), 80) + "' instead");
}

Result<int> EnvdServerRunner::attach(const sdk::Request& request, const sdk::Stdio& stdio) {
  auto deadline = sdk::http_deadline_after(request.timeout);
  auto named = environment_name(request);
  if (!named) return named.error();
  const std::string& name = *named;
  auto shell = shell_arg(request);
  if (!shell) return shell.error();
  auto s = session(request);
  if (!s) return s.error();
  if (s->identity_file.empty()) {
    return Error(Errc::permission, "the login of context '" + request.context +
                                       "' names no SSH key (it predates envd attach); run "
                                       "envd login again");
  }
  auto env = get_environment(*s, name, deadline);
  if (!env) return env.error();
  if (std::string phase = phase_of(*env); phase != "Running") {
    return Error(Errc::unavailable, "environment '" + name + "' on the envd server at " +
                                        s->server.base_url + " is not running (phase " +
                                        (phase.empty() ? "unknown" : phase) + ")");
  }
  envd_server::SshTarget target;
  target.host = s->host;
  target.port = s->ssh_port;
  target.login = s->login;
  target.environment = name;
  target.identity_file = s->identity_file;
  target.known_hosts = request.data_dir + "/ssh_known_hosts";
  // What is left of the timeout bounds reaching the gateway too (at least 1 s:
  // ssh takes whole seconds); the session itself has none.
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  target.connect_timeout_seconds =
      static_cast<int>(std::max<std::int64_t>(1, (left.count() + 999) / 1000));
  if (std::string home = home_dir(); !home.empty()) {
    if (auto st = envd_server::update_ssh_config(home + "/.ssh/config", target); !st) {
      sdk::log(sdk::LogLevel::warning,
               "cannot add " + name + ".envd to ~/.ssh/config: " + st.error().message());
    }
  }
  sdk::ProcessOptions options;
  options.argv = envd_server::ssh_command(target, stdio.is_terminal, *shell);
  auto child = sdk::spawn_process(options, stdio.in_fd, stdio.out_fd, stdio.err_fd);
  if (!child) return child.error().wrap("cannot run ssh (install OpenSSH's client)");
  // ssh owns the terminal from here (raw mode, resizes through SIGWINCH,
  // which reaches it in envd's process group); the session ends with it, or
  // with the user's SIGTERM to envd, which ends ssh too.
  for (;;) {
    int status = 0;
    pid_t done = ::waitpid(*child, &status, WNOHANG);
    if (done == *child) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (done < 0 && errno != EINTR) return sdk::wait_process(*child);
    if (sdk::cancelled()) {
      ::kill(*child, SIGTERM);
      (void)sdk::wait_process(*child);
      return sdk::cancelled_error("the ssh session to '" + name + "'");
    }
    ::usleep(50 * 1000);
  }
}

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

Result<sdk::Options> EnvdServerRunner::normalize_options(const sdk::Options& options) const {
  for (const auto& [key, value] : options) {
    if (key == "ssh-port") {
      if (!ssh_port_of(value)) {
        return Error(Errc::invalid_argument,
                     "ssh-port '" + value + "' is not a port number (1-65535)");
      }
      continue;
    }
    if (key != "runner-tls-ca") {
      return Error(Errc::invalid_argument,
                   "unknown option '" + key + "' (allowed: runner-tls-ca, ssh-port)");
    }
    if (value.empty()) return Error(Errc::invalid_argument, "runner-tls-ca needs a file");
  }
  return options;
}

// The spec, the server's address and the stored login, as create reads
// them; no call to the server.
Status EnvdServerRunner::check_create(const sdk::Request& request) {
  auto body = envd_server::create_body(request.args_json);
  if (!body) return body.error();
  if (auto name = valid_environment_name(body->name); !name) return name.error();
  auto s = session(request);
  if (!s) return s.error();
  return {};
}

Result<std::string> EnvdServerRunner::create(const sdk::Request& request) {
  auto deadline = sdk::http_deadline_after(request.timeout);
  auto body = envd_server::create_body(request.args_json);
  if (!body) return body.error();
  if (auto name = valid_environment_name(body->name); !name) return name.error();
  auto s = session(request);
  if (!s) return s.error();
  std::string doing = "cannot create environment '" + body->name + "'";
  // The server answers a create of a name it has with a 500 like any other
  // failure (and only after a Kubernetes round trip): look first.
  auto existing = find_environment(*s, body->name, deadline);
  if (!existing) return existing.error();
  if (*existing) {
    if (!body->force) return already_exists(*s, body->name);
    sdk::report_progress("replacing environment '" + body->name + "'");
    if (auto st = delete_environment(*s, body->name, deadline, request.timeout); !st) {
      return st.error();
    }
  }
  std::string payload = json::serialize(body->body);
  auto answer = call(*s, "POST", environments_path(*s), payload, deadline);
  if (!answer) return answer.error();
  // Made meanwhile by another client: 500 "... already exists" from the
  // server's runtime (409 from a server that says so).
  if (answer->status == 409 ||
      (answer->status == 500 &&
       server_message(answer->status, answer->body).find("already exists") != std::string::npos)) {
    return already_exists(*s, body->name);
  }
  if (answer->status != 201 && answer->status != 200) return answer_error(*s, *answer, doing);

  // Wait until it runs: the server answers as soon as the pod is created.
  std::string last_phase;
  while (true) {
    auto env = get_environment(*s, body->name, deadline);
    if (!env) return env.error();
    std::string phase = phase_of(*env);
    if (phase == "Running") {
      return json::serialize(environment_of(*env, s->login, s->host, s->ssh_port));
    }
    if (phase == "Failed" || phase == "Succeeded") {
      return Error(Errc::unavailable, "environment '" + body->name + "' on the envd server at " +
                                          s->server.base_url + " ended (phase " + phase + ")");
    }
    if (phase != last_phase) {
      sdk::report_progress("waiting for environment '" + body->name + "' to run (phase " +
                           (phase.empty() ? "unknown" : phase) + ")");
      last_phase = phase;
    }
    auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::milliseconds(0)) {
      return Error(Errc::timeout, "environment '" + body->name + "' on the envd server at " +
                                      s->server.base_url + " is not running after " +
                                      duration_text(request.timeout) + " (phase " +
                                      (phase.empty() ? "unknown" : phase) +
                                      "); it is left as it is (envd down removes it)");
    }
    auto wait = std::min<std::chrono::milliseconds>(
        kPollInterval, std::chrono::duration_cast<std::chrono::milliseconds>(left));
    if (!sdk::sleep_unless_cancelled(wait)) {
      return Error(Errc::cancelled, "waiting for environment '" + body->name +
                                        "' to run cancelled; it is left as it is (envd down "
                                        "removes it)");
    }
  }
}

Result<std::string> EnvdServerRunner::list(const sdk::Request& request) {
  auto deadline = sdk::http_deadline_after(request.timeout);
  auto s = session(request);
  if (!s) return s.error();
  std::string path = environments_path(*s);
  auto answer = call(*s, "GET", path, "", deadline);
  if (!answer) return answer.error();
  if (answer->status != 200) return answer_error(*s, *answer, "cannot list environments");
  auto object = parse_object(*s, *answer, "GET " + path);
  if (!object) return object.error();
  json::array out;
  if (const json::value* items = object->if_contains("items");
      items != nullptr && items->is_array()) {
    for (const auto& item : items->as_array()) {
      if (item.is_object())
        out.push_back(environment_of(item.as_object(), s->login, s->host, s->ssh_port));
    }
  }
  return json::serialize(out);
}

Result<std::string> EnvdServerRunner::inspect(const sdk::Request& request) {
  auto deadline = sdk::http_deadline_after(request.timeout);
  auto named = environment_name(request);
  if (!named) return named.error();
  const std::string& name = *named;
  auto s = session(request);
  if (!s) return s.error();
  auto env = get_environment(*s, name, deadline);
  if (!env) return env.error();
  return json::serialize(environment_of(*env, s->login, s->host, s->ssh_port));
}

Status EnvdServerRunner::remove(const sdk::Request& request) {
  auto deadline = sdk::http_deadline_after(request.timeout);
  auto named = environment_name(request);
  if (!named) return named.error();
  const std::string& name = *named;
  auto s = session(request);
  if (!s) return s.error();
  auto found = find_environment(*s, name, deadline);
  if (!found) return found.error();
  if (!*found) {
    return Error(Errc::not_found,
                 "no environment '" + name + "' on the envd server at " + s->server.base_url);
  }
  return delete_environment(*s, name, deadline, request.timeout);
}

}  // namespace envd::plugins
