// `envd login` and `envd logout`: the login to the envd server of the
// context's envd-server runner (docs/envd-server.md). The token is stored in
// the context's private directory as runner-login.json (0600), where the
// runner module reads it; a new login replaces it.
#include "cli/client/commands.hpp"

#include <fmt/core.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>

#include "cli/builder_target.hpp"
#include "cli/runner_target.hpp"
#include "context/resolve.hpp"
#include "context/stored_files.hpp"
#include "envd/address.hpp"
#include "envd/http_client.hpp"
#include "envd/process.hpp"
#include "envd/text.hpp"
#include "util/atomic_file.hpp"
#include "util/data_out.hpp"
#include "util/json.hpp"
#include "util/paths.hpp"
#include "util/text.hpp"

namespace envd::cli {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr const char* kRunnerType = "envd-server";
// The contract with the envd-server module (plugins/envd-server).
constexpr const char* kLoginFile = context::kRunnerLoginFile;
constexpr const char* kDefaultServer = "http://localhost:8080";
constexpr std::chrono::seconds kLoginTimeout{30};

struct LoginTarget {
  context::Context context;
  context::ContextStore store;
};

// The context whose runner is logged in to; nullopt (with a warning) for a
// docker runner, which needs no login.
Result<std::optional<LoginTarget>> resolve_login_target(Invocation& invocation,
                                                        const std::string& command) {
  auto current = invocation.current_context();
  if (!current) return current.error();
  const auto& ctx = current->context;
  if (ctx.runner == "docker") {
    warn(command + " is not needed for the docker runner of context '" + ctx.name + "', skipping");
    return std::optional<LoginTarget>();
  }
  if (ctx.runner != kRunnerType) {
    return Error(Errc::unsupported, "the '" + ctx.runner + "' runner of context '" + ctx.name +
                                        "' has no " + command + " (only envd-server has)");
  }
  return std::optional<LoginTarget>(LoginTarget{ctx, std::move(current->store)});
}

std::string server_message(const sdk::HttpAnswer& answer) {
  if (auto parsed = util::parse_json(answer.body, "the answer"); parsed && parsed->is_object()) {
    std::string message = util::get_string_or(parsed->as_object(), "message", "");
    // The server's words go into one line of envd's: escaped and bounded.
    if (!message.empty()) return util::printable(message, 300);
  }
  std::string text = answer.body;
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.erase(0, 1);
  // A page of HTML or any text of many lines says less than its status.
  if (text.empty() || text.size() > 512 || text.front() == '<' ||
      text.find('\n') != std::string::npos) {
    return "HTTP status " + std::to_string(answer.status);
  }
  return util::printable(text);
}

Error refused(const sdk::HttpServer& server, const std::string& doing,
              const sdk::HttpAnswer& answer) {
  Errc code = answer.status == 401 || answer.status == 403 ? Errc::permission
              : answer.status == 400                       ? Errc::invalid_argument
                                                           : Errc::unavailable;
  return Error(code, doing + ": the envd server at " + server.base_url + " answered " +
                         std::to_string(answer.status) + ": " + server_message(answer));
}

// One call to the server; a refused connection says what may be wrong, as
// the runner module's calls do.
Result<sdk::HttpAnswer> call(const sdk::HttpServer& server, const sdk::HttpRequest& request,
                             sdk::HttpDeadline deadline) {
  auto answer = sdk::http_call(server, request, deadline);
  if (!answer && answer.error().code() == Errc::unavailable &&
      answer.error().message().rfind("cannot connect", 0) == 0 &&
      answer.error().message().find(" over TLS: ") == std::string::npos) {
    return Error(Errc::unavailable, answer.error().message() + " (is the envd server running?)");
  }
  return answer;
}

// `<os user>-<host name>`, upstream's login name in no-auth mode.
std::string default_login_name() {
  std::string user;
  if (const passwd* pw = ::getpwuid(::geteuid()); pw != nullptr) user = pw->pw_name;
  if (user.empty()) {
    const char* env = std::getenv("USER");
    user = env != nullptr ? env : "envd";
  }
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return host[0] == '\0' ? user : user + "-" + host;
}

// A login name, the user's (-u) or the server's answer, goes into a URL
// path: one segment, never "." or "..", with nothing a request line or a
// terminal would take for something else.
Status check_login_name(const std::string& name, const std::string& from) {
  auto bad = [&](const std::string& why) {
    return Error(Errc::invalid_argument,
                 "invalid login name '" + util::printable(name, 80) + "' (" + from + "): " + why);
  };
  if (name.empty()) return bad("it is empty");
  if (name.size() > 128) return bad("it is longer than 128 characters");
  if (name == "." || name == "..") return bad("it is not a name");
  // It goes into JSON, which holds UTF-8 only.
  if (!sdk::is_utf8(name)) return bad("it is not UTF-8 text");
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f || c == '/' || c == '\\' || c == '?' || c == '#' || c == '%' ||
        c == ' ') {
      return bad("names hold no spaces, control characters or any of / \\ ? # %");
    }
  }
  return {};
}

struct SshKey {
  std::string public_text;   // the .pub file's line
  std::string private_path;  // where the private half is
  bool made = false;         // by this login, just now
};

// ~/.config/envd/id_rsa_envd.pub, made with ssh-keygen (as upstream's RSA
// key) when neither half exists.
Result<SshKey> public_key() {
  auto dir = util::config_dir();
  if (!dir) return dir.error();
  fs::path key = *dir / "id_rsa_envd";
  fs::path pub = *dir / "id_rsa_envd.pub";
  std::error_code ec;
  bool fresh = false;
  if (!fs::exists(pub, ec)) {
    sdk::ProcessOptions options;
    if (fs::exists(key, ec)) {
      return Error(Errc::not_found, "'" + pub.string() +
                                        "' is missing; make it with ssh-keygen -y -f '" +
                                        key.string() + "' > '" + pub.string() + "'");
    }
    if (auto st = util::create_directories(*dir, 0700); !st) return st.error();
    options.argv = {"ssh-keygen", "-q", "-t", "rsa",  "-b", "4096",
                    "-N",         "",   "-C", "envd", "-f", key.string()};
    options.timeout = std::chrono::seconds(60);
    auto made = sdk::run_process(options);
    if (!made) return made.error().wrap("cannot make the envd SSH key with ssh-keygen");
    if (made->exit_code != 0) {
      std::string err = made->err;
      while (!err.empty() && std::isspace(static_cast<unsigned char>(err.back()))) err.pop_back();
      return Error(Errc::internal, "ssh-keygen failed to make '" + key.string() + "': " + err);
    }
    inform("Made the SSH key " + key.string());
    fresh = true;
  }
  auto text = util::read_file(pub);
  if (!text) return text.error();
  while (!text->empty() && std::isspace(static_cast<unsigned char>(text->back()))) text->pop_back();
  return SshKey{*text, key.string(), fresh};
}

// The public key the server accepted for `login_name` at `server`, as the
// last login stored it in `file`; "" when that login was elsewhere, as
// another name, or recorded no key. The server has no call that shows a
// user's keys, so this record is how a new login knows that the key the
// server refuses as a duplicate (409) is this one.
std::string key_accepted_before(const fs::path& file, const std::string& server,
                                const std::string& login_name) {
  auto text = util::read_file(file, 1 << 20);
  if (!text) return {};
  auto parsed = util::parse_json(*text, "the stored login");
  if (!parsed || !parsed->is_object()) return {};
  const auto& stored = parsed->as_object();
  if (util::get_string_or(stored, "server", "") != server ||
      util::get_string_or(stored, "login_name", "") != login_name) {
    return {};
  }
  return util::get_string_or(stored, "ssh_public_key", "");
}

}  // namespace

Status run_login(Invocation& invocation, const LoginRequest& flags) {
  auto target = resolve_login_target(invocation, "login");
  if (!target) return target.error();
  if (!*target) return {};
  const auto& ctx = (*target)->context;
  const auto& store = (*target)->store;

  std::string password;
  if (flags.password_stdin) {
    std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    while (!input.empty() && (input.back() == '\n' || input.back() == '\r')) input.pop_back();
    if (input.empty()) return Error(Errc::invalid_argument, "--password-stdin read no password");
    password = std::move(input);
  }

  auto driver = invocation.registry().runner(ctx.runner);
  if (!driver) return driver.error();
  invocation.host.set_quiet(invocation.quiet_progress);
  plugin::Host* host = &invocation.host;
  SignalWatcher signals([host] { host->cancel(); });

  sdk::HttpServer server;
  server.name = "the envd server";
  server.base_url = ctx.runner_address.value_or("");
  std::string_view from;
  if (server.base_url.empty()) {
    const char* env = std::getenv("ENVD_SERVER_HOST");
    server.base_url = env != nullptr && *env != '\0' ? env : kDefaultServer;
    if (env != nullptr && *env != '\0') from = " (from ENVD_SERVER_HOST)";
  }
  // Checked before anything is made on disk (the SSH key); a password is not echoed.
  auto url = sdk::parse_url(server.base_url);
  if (!url || (url->scheme != "http" && url->scheme != "https")) {
    return Error(Errc::invalid_argument,
                 "the envd server address '" + sdk::redact_password(server.base_url) + "'" +
                     std::string(from) + " is invalid: " +
                     (url ? "it is not an http:// or https:// URL" : url.error().message()));
  }
  if (!from.empty()) {
    // Held to what a context's address may be (the module's normalize_address).
    if (!url->user.empty() || !url->query.empty()) {
      return Error(
          Errc::invalid_argument,
          "the envd server address '" + sdk::redact_password(server.base_url) + "'" +
              std::string(from) + " is invalid: " +
              (url->user.empty() ? "query parameters are not accepted"
                                 : "a user name is not accepted (log in with envd login)"));
    }
    // As a context's address is stored: "http://host:8080/" is the server
    // at "http://host:8080", whose paths do not start with "//".
    while (!url->path.empty() && url->path.back() == '/') url->path.pop_back();
    server.base_url = url->to_string();
  }
  auto options =
      context::resolve_stored_files(store, ctx, ctx.runner_options, driver->file_options());
  if (auto ca = options.find("runner-tls-ca"); ca != options.end()) server.ca_file = ca->second;

  // The login name and the timeout are checked before the SSH key is made.
  std::string login = flags.username.empty() ? default_login_name() : flags.username;
  if (auto st = check_login_name(
          login, flags.username.empty() ? "the default, <user>-<host>" : "-u/--username");
      !st) {
    return st;
  }
  auto timeout = runner_timeout(flags.timeout, kLoginTimeout);
  if (!timeout) return timeout.error();
  auto key = public_key();
  if (!key) return key.error();
  auto deadline = sdk::http_deadline_after(*timeout);
  std::string credentials =
      json::serialize(json::object{{"login_name", login}, {"password", password}});

  if (password.empty()) {
    // As upstream: without a password the server is taken to run in no-auth
    // mode, where registering an existing name is fine.
    warn("no password given: registering '" + login + "' on a server in no-auth mode");
    auto registered = call(server, {"POST", "/api/v1/register", credentials, {}}, deadline);
    if (!registered) return registered.error();
    if (registered->status != 200 && registered->status != 201 && registered->status != 409) {
      return refused(server, "cannot register '" + login + "'", *registered);
    }
  }
  auto answer = call(server, {"POST", "/api/v1/login", credentials, {}}, deadline);
  if (!answer) return answer.error();
  if (answer->status == 500 && answer->body.empty()) {
    // envd-server's answer to a login name it does not know (a nil error
    // it dereferences): said as what it means.
    return Error(Errc::permission, "cannot log in as '" + login + "': the envd server at " +
                                       server.base_url +
                                       " answered 500 with no reason, as it does for a login "
                                       "name it does not know (register it first, or check -u)");
  }
  if (answer->status != 200) return refused(server, "cannot log in as '" + login + "'", *answer);
  auto parsed = util::parse_json(answer->body, "the envd server's login answer");
  if (!parsed) return parsed.error();
  if (!parsed->is_object()) {
    return Error(Errc::internal, "the envd server's login answer is not a JSON object");
  }
  std::string token = util::get_string_or(parsed->as_object(), "identity_token", "");
  std::string status = util::get_string_or(parsed->as_object(), "status", "Login succeeded");
  std::string login_name = util::get_string_or(parsed->as_object(), "login_name", login);
  if (auto st = check_login_name(login_name, "in the envd server's answer"); !st) return st;
  if (token.empty()) {
    return Error(Errc::internal, "the envd server at " + server.base_url +
                                     " answered the login without an identity_token");
  }
  // The token is sent back in a header on every call: a character that ends
  // a header would let the server's text pass for headers of envd's own.
  if (std::any_of(token.begin(), token.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u >= 0x7f;
      })) {
    return Error(Errc::internal, "the envd server at " + server.base_url +
                                     " answered the login with an identity_token holding a "
                                     "control or non-ASCII character; it is not stored");
  }

  std::string keys_path = "/api/v1/users/" + sdk::url_path_segment(login_name) + "/keys";
  std::string key_body =
      json::serialize(json::object{{"name", "default"}, {"public_key", key->public_text}});
  auto added = call(server, {"POST", keys_path, key_body, {{"Authorization", token}}}, deadline);
  if (!added) return added.error();
  if (added->status != 200 && added->status != 201 && added->status != 409) {
    return refused(server, "cannot add the envd SSH key for '" + login_name + "'", *added);
  }
  // The server keeps the first key of a login and refuses another of the
  // same name (409); it has no call to replace one. A 409 for the key an
  // earlier login saw accepted is no news.
  const fs::path data_dir = store.data_dir(ctx);
  const bool key_accepted =
      added->status != 409 ||
      (!key->made && !data_dir.empty() && !key->public_text.empty() &&
       key_accepted_before(data_dir / kLoginFile, server.base_url, login_name) == key->public_text);
  if (!key_accepted) {
    warn("the envd server already holds an SSH key for '" + login_name + "' and keeps it" +
         (key->made
              ? "; the key just made in " + key->private_path +
                    ".pub is not it, so envd "
                    "attach will be refused until the server's key is replaced by hand"
              : "; envd attach works only if it is the one in " + key->private_path + ".pub"));
  }

  // Unlike upstream, which keeps the first token of a name, a new login
  // replaces the stored one.
  auto dir = store.ensure_data_dir(ctx);
  if (!dir) return dir.error();
  // The private half of the key just uploaded: what `envd attach` gives ssh.
  json::object stored{{"server", server.base_url},
                      {"login_name", login_name},
                      {"identity_token", token},
                      {"identity_file", key->private_path}};
  if (key_accepted) stored["ssh_public_key"] = key->public_text;
  // Replaced whatever its mode: the runner answers an unreadable login
  // with "run envd login", which must then mend it.
  if (auto st = util::write_file_atomically(*dir / kLoginFile, util::to_pretty_json(stored), 0600,
                                            util::ReadOnlyFile::replace);
      !st) {
    return st;
  }
  // The server's words: one line, nothing that drives the terminal.
  fmt::print(util::data_out(), "{}\n", util::printable(status, 200));
  return {};
}

Status run_logout(Invocation& invocation) {
  auto target = resolve_login_target(invocation, "logout");
  if (!target) return target.error();
  if (!*target) return {};
  const auto& ctx = (*target)->context;
  fs::path dir = (*target)->store.data_dir(ctx);
  std::error_code ec;
  if (dir.empty() || !fs::remove(dir / kLoginFile, ec)) {
    if (ec) {
      return Error(Errc::internal,
                   "cannot remove '" + (dir / kLoginFile).string() + "': " + ec.message());
    }
    inform("Not logged in to the envd server of context '" + ctx.name + "'");
    return {};
  }
  inform("Removed the login of context '" + ctx.name + "'");
  return {};
}

}  // namespace envd::cli
