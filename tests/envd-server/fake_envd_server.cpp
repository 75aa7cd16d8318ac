// A loopback envd-server for tests: the REST API of envd-server's
// pkg/server (docs/envd-server.md; ../shared/reference/envd-contexts.md 4.4)
// as a client sees it, with pods replaced by records whose phase turns from
// Pending to Running after --running-after-ms.
//
//   envd_test_envd_server [--no-auth] [--running-after-ms N] [--terminating-ms N]
//                         [--token-prefix TEXT] [--tls-cert FILE --tls-key FILE]
//
// Listens on 127.0.0.1 on a free port and prints the port on stdout, then
// serves one connection at a time until killed.
//
// What it keeps faithful (read in envd-server's pkg/server and
// pkg/runtime/kubernetes): the paths, methods and status codes (201 for a
// created environment, 200 for keys, 409 for an existing user or key, 401
// for a wrong password or a token that is not the user's), the JSON shapes,
// gin's error body in release mode ({"http_status_code","message",
// "request"}) and the raw token in Authorization. Tokens are opaque
// ("envd-<n>-<login>"), valid until the server exits, and checked against the
// user of the path unless --no-auth, where (as upstream) login checks no
// password and the middleware takes the user from the path.
//
// A login fails as the server's does: a wrong password is 401 with bcrypt's
// words; an unknown login name is 500 with an empty body (user.Login
// answers it with no error, NewError calls Error() on that nil, and gin's
// Recovery answers the panic).
//
// Environments are pods in one namespace shared by every user, as the
// server's runtime keeps them:
//   - create of a name that exists (anyone's, or one being removed) is 500
//     "failed to create pod: pods \"<name>\" already exists", never 409;
//     a name that is no RFC 1123 subdomain fails the pod, one that is no
//     DNS-1035 label fails the Service after the pod was made (left behind);
//   - the spec's env, cmd and ports are ignored: the pod gets the ENVD_*
//     variables and the SSH port only;
//   - get of another user's environment is 401 "mismatch loginname", of a
//     missing one 404 'pods "<name>" not found';
//   - remove of a missing environment is 200, of another user's 500
//     "mismatch loginname"; a removed pod stays (listed, its phase
//     unchanged) for --terminating-ms (default 300), as a pod terminates.
// --token-prefix puts TEXT before every token issued (a server that hands out
// a hostile one). GET /_test/state (not part of the API) shows the users, their keys and
// environments, each with the request body it was created from, for the
// tests to check.
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

struct Options {
  bool no_auth = false;
  std::chrono::milliseconds running_after{0};
  std::chrono::milliseconds terminating{300};
  std::string token_prefix;
  std::string tls_cert;
  std::string tls_key;
};

struct Environment {
  std::string owner;
  json::object record;   // the Environment as stored (status set when read)
  json::object request;  // the body it was created from
  Clock::time_point created;
  std::optional<Clock::time_point> removed;  // terminating since
};

struct User {
  std::string password;
  json::object keys;  // name -> public key
};

struct Answer {
  http::status status = http::status::ok;
  std::string body;
};

class Server {
 public:
  explicit Server(Options options) : options_(std::move(options)) {}

  Answer handle(const http::request<http::string_body>& req);

 private:
  Answer error(http::status status, const std::string& message) const {
    // gin in release mode: op and error are removed.
    json::object body{{"http_status_code", static_cast<int>(status)},
                      {"message", message},
                      {"request", request_line_}};
    return {status, json::serialize(body)};
  }
  static Answer ok(http::status status, const json::value& body) {
    return {status, json::serialize(body)};
  }
  std::optional<Answer> authorize(const http::request<http::string_body>& req,
                                  const std::string& login);
  Answer credentials(const std::string& body, bool registering);
  json::object with_status(const Environment& env) const;
  Answer environments(const http::request<http::string_body>& req, const std::string& login,
                      const std::vector<std::string>& parts);
  void reap();

  Options options_;
  std::string request_line_;
  std::map<std::string, User> users_;
  std::map<std::string, Environment> pods_;    // by name, every user's
  std::map<std::string, std::string> tokens_;  // token -> login
  int issued_ = 0;
};

// %XX decoded, as gin's router gives path parameters (it matches on the
// decoded URL.Path).
std::string percent_decoded(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() &&
        std::isxdigit(static_cast<unsigned char>(text[i + 1])) != 0 &&
        std::isxdigit(static_cast<unsigned char>(text[i + 2])) != 0) {
      out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

std::vector<std::string> split_path(const std::string& target) {
  std::string path = target.substr(0, target.find('?'));
  std::vector<std::string> parts;
  std::size_t start = 1;
  while (start <= path.size()) {
    std::size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    parts.push_back(percent_decoded(path.substr(start, slash - start)));
    start = slash + 1;
  }
  return parts;
}

std::optional<json::object> parse_object(const std::string& body) {
  boost::system::error_code ec;
  json::value value = json::parse(body, ec);
  if (ec || !value.is_object()) return std::nullopt;
  return value.as_object();
}

std::string string_at(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::optional<Answer> Server::authorize(const http::request<http::string_body>& req,
                                        const std::string& login) {
  if (options_.no_auth) return std::nullopt;
  auto header = req.find(http::field::authorization);
  if (header == req.end()) return error(http::status::unauthorized, "no token in the request");
  std::string token(header->value());
  auto it = tokens_.find(token);
  if (it == tokens_.end()) return error(http::status::unauthorized, "the token is invalid");
  if (it->second != login) {
    return error(http::status::unauthorized, "the token is not for user " + login);
  }
  return std::nullopt;
}

Answer Server::credentials(const std::string& body, bool registering) {
  auto request = parse_object(body);
  if (!request) return error(http::status::bad_request, "the request body is not JSON");
  std::string login = string_at(*request, "login_name");
  std::string password = string_at(*request, "password");
  if (login.empty()) return error(http::status::bad_request, "login_name is required");
  auto found = users_.find(login);
  if (registering) {
    if (found != users_.end()) {
      return error(http::status::conflict, "user " + login + " already exists");
    }
    users_[login].password = password;
  } else if (found == users_.end()) {
    if (!options_.no_auth) return Answer{http::status::internal_server_error, ""};
    users_[login];
  } else if (!options_.no_auth && found->second.password != password) {
    return error(http::status::unauthorized,
                 "crypto/bcrypt: hashedPassword is not the hash of the given password");
  }
  // A token is ASCII, as the real server's JWTs are: a login name of other
  // characters is in it hex-encoded, byte by byte.
  std::string readable;
  for (unsigned char c : login) {
    if (c > 0x20 && c < 0x7f) {
      readable += static_cast<char>(c);
    } else {
      constexpr const char* kHex = "0123456789abcdef";
      readable += {'%', kHex[c >> 4], kHex[c & 15]};
    }
  }
  std::string token = options_.token_prefix + "envd-" + std::to_string(++issued_) + "-" + readable;
  tokens_[token] = login;
  return ok(http::status::ok,
            json::object{
                {"login_name", login}, {"identity_token", token}, {"status", "Login succeeded"}});
}

// Kubernetes' name rules (k8s.io/apimachinery validation): a pod's name is
// an RFC 1123 subdomain, a Service's a DNS-1035 label.
bool is_dns1123_subdomain(const std::string& name) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t start = 0;
  while (start <= name.size()) {
    std::size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    std::string label = name.substr(start, dot - start);
    if (label.empty() || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!(std::islower(static_cast<unsigned char>(c)) != 0 ||
            std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '-')) {
        return false;
      }
    }
    start = dot + 1;
  }
  return true;
}

bool is_dns1035_label(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  if (std::islower(static_cast<unsigned char>(name.front())) == 0) return false;
  if (name.back() == '-') return false;
  for (char c : name) {
    if (!(std::islower(static_cast<unsigned char>(c)) != 0 ||
          std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '-')) {
      return false;
    }
  }
  return true;
}

void Server::reap() {
  for (auto it = pods_.begin(); it != pods_.end();) {
    if (it->second.removed && Clock::now() - *it->second.removed >= options_.terminating) {
      it = pods_.erase(it);
    } else {
      ++it;
    }
  }
}

json::object Server::with_status(const Environment& env) const {
  json::object record = env.record;
  bool running = Clock::now() - env.created >= options_.running_after;
  json::object status{{"phase", running ? "Running" : "Pending"}};
  if (running) status["jupyter_addr"] = "";
  record["status"] = std::move(status);
  return record;
}

Answer Server::handle(const http::request<http::string_body>& req) {
  request_line_ = std::string(req.method_string()) + " " + std::string(req.target());
  auto parts = split_path(std::string(req.target()));
  const auto method = req.method();

  if (parts.size() == 2 && parts[0] == "_test" && parts[1] == "state") {
    reap();
    json::object state;
    for (const auto& [login, user] : users_) {
      json::array envs;
      for (const auto& [name, env] : pods_) {
        if (env.owner != login) continue;
        json::object shown = with_status(env);
        shown["request"] = env.request;
        envs.push_back(std::move(shown));
      }
      state[login] = json::object{{"keys", user.keys}, {"environments", envs}};
    }
    return ok(http::status::ok, state);
  }
  if (parts.size() < 2 || parts[0] != "api" || parts[1] != "v1") {
    return error(http::status::not_found, "404 page not found");
  }
  parts.erase(parts.begin(), parts.begin() + 2);
  if (parts.empty() || (parts.size() == 1 && parts[0].empty())) {
    if (method == http::verb::get) return {http::status::ok, ""};
  }
  if (parts.size() == 1 && method == http::verb::post) {
    if (parts[0] == "register") return credentials(req.body(), true);
    if (parts[0] == "login") return credentials(req.body(), false);
  }
  if (parts.size() >= 3 && parts[0] == "users") {
    const std::string& login = parts[1];
    if (auto refused = authorize(req, login)) return *refused;
    User& user = users_[login];
    if (parts.size() == 3 && parts[2] == "keys" && method == http::verb::post) {
      auto body = parse_object(req.body());
      if (!body) return error(http::status::bad_request, "the request body is not JSON");
      std::string name = string_at(*body, "name");
      std::string key = string_at(*body, "public_key");
      if (name.empty() || key.empty()) {
        return error(http::status::bad_request, "name and public_key are required");
      }
      if (user.keys.contains(name)) {
        return error(http::status::conflict, "key " + name + " already exists");
      }
      user.keys[name] = key;
      return ok(http::status::ok,
                json::object{{"name", name}, {"public_key", key}, {"login_name", login}});
    }
    if (parts[2] == "environments") return environments(req, login, parts);
  }
  return error(http::status::not_found, "404 page not found");
}

Answer Server::environments(const http::request<http::string_body>& req, const std::string& login,
                            const std::vector<std::string>& parts) {
  reap();
  const auto method = req.method();
  if (parts.size() == 3 && method == http::verb::get) {
    json::array items;
    for (const auto& [name, env] : pods_) {
      if (env.owner == login) items.push_back(with_status(env));
    }
    return ok(http::status::ok, json::object{{"items", items}});
  }
  if (parts.size() == 3 && method == http::verb::post) {
    auto body = parse_object(req.body());
    if (!body) return error(http::status::internal_server_error, "the request body is not JSON");
    std::string name = string_at(*body, "name");
    const json::value* spec = body->if_contains("spec");
    if (spec == nullptr || !spec->is_object() || string_at(spec->as_object(), "image").empty()) {
      return error(http::status::internal_server_error, "image is not found");
    }
    if (!is_dns1123_subdomain(name)) {
      return error(http::status::internal_server_error,
                   "failed to create pod: Pod \"" + name +
                       "\" is invalid: metadata.name: Invalid value: \"" + name +
                       "\": a lowercase RFC 1123 subdomain must consist of lower case "
                       "alphanumeric characters, '-' or '.', and must start and end with an "
                       "alphanumeric character");
    }
    if (pods_.count(name) != 0) {
      return error(http::status::internal_server_error,
                   "failed to create pod: pods \"" + name + "\" already exists");
    }
    // The pod the server's runtime makes: the image, the owner, its own
    // variables and the SSH port; the spec's env, cmd and ports are not read.
    json::object record{
        {"name", name},
        {"spec",
         json::object{
             {"owner", login},
             {"image", spec->as_object().at("image")},
             {"env",
              json::array{json::object{{"name", "ENVD_HOST_KEY"}, {"value", "/var/envd/hostkey"}},
                          json::object{{"name", "ENVD_AUTHORIZED_KEYS_PATH"},
                                       {"value", "/var/envd/authkey"}},
                          json::object{{"name", "ENVD_WORKDIR"}, {"value", "/home/envd/" + name}}}},
             {"ports", json::array{json::object{{"name", "ssh"}, {"port", 2222}}}}}},
        {"created_at", std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count()}};
    if (const json::value* resource = body->if_contains("resource")) {
      record["resource"] = *resource;
    }
    pods_[name] = Environment{login, std::move(record), *body, Clock::now(), std::nullopt};
    if (!is_dns1035_label(name)) {
      // The Service named after it is refused after the pod was made.
      return error(http::status::internal_server_error,
                   "failed to create service: Service \"" + name +
                       "\" is invalid: metadata.name: Invalid value: \"" + name +
                       "\": a DNS-1035 label must consist of lower case alphanumeric "
                       "characters or '-', start with an alphabetic character, and end with an "
                       "alphanumeric character");
    }
    return ok(http::status::created,
              json::object{{"environment", with_status(pods_[name])}, {"warnings", json::array{}}});
  }
  if (parts.size() == 4) {
    auto it = pods_.find(parts[3]);
    if (method == http::verb::get) {
      if (it == pods_.end()) {
        return error(http::status::not_found, "pods \"" + parts[3] + "\" not found");
      }
      if (it->second.owner != login) {
        return error(http::status::unauthorized, "mismatch loginname");
      }
      return ok(http::status::ok, with_status(it->second));
    }
    if (method == http::verb::delete_) {
      if (it != pods_.end()) {
        // The handler tests for Kubernetes' Unauthorized, which the
        // runtime's own error is not: a 500.
        if (it->second.owner != login) {
          return error(http::status::internal_server_error, "mismatch loginname");
        }
        if (!it->second.removed) it->second.removed = Clock::now();
      }
      return ok(http::status::ok, json::object{});
    }
  }
  return error(http::status::not_found, "404 page not found");
}

template <typename Stream>
void serve(Stream& stream, Server& server) {
  beast::flat_buffer buffer;
  http::request<http::string_body> req;
  beast::error_code ec;
  http::read(stream, buffer, req, ec);
  if (ec) return;
  Answer answer = server.handle(req);
  http::response<http::string_body> res(answer.status, req.version());
  res.set(http::field::server, "envd-test-envd-server");
  if (!answer.body.empty()) res.set(http::field::content_type, "application/json; charset=utf-8");
  res.body() = std::move(answer.body);
  res.keep_alive(false);
  res.prepare_payload();
  http::write(stream, res, ec);
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--no-auth") {
      options.no_auth = true;
    } else if (arg == "--running-after-ms") {
      options.running_after = std::chrono::milliseconds(std::atol(next().c_str()));
    } else if (arg == "--terminating-ms") {
      options.terminating = std::chrono::milliseconds(std::atol(next().c_str()));
    } else if (arg == "--token-prefix") {
      options.token_prefix = next();
    } else if (arg == "--tls-cert") {
      options.tls_cert = next();
    } else if (arg == "--tls-key") {
      options.tls_key = next();
    } else {
      std::fprintf(stderr, "unknown argument %s\n", arg.c_str());
      return 2;
    }
  }
  try {
    asio::io_context ioc;
    tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    std::optional<asio::ssl::context> tls;
    if (!options.tls_cert.empty()) {
      tls.emplace(asio::ssl::context::tls_server);
      tls->use_certificate_chain_file(options.tls_cert);
      tls->use_private_key_file(options.tls_key, asio::ssl::context::pem);
    }
    std::printf("%d\n", acceptor.local_endpoint().port());
    std::fflush(stdout);
    Server server(options);
    while (true) {
      tcp::socket socket(ioc);
      acceptor.accept(socket);
      if (tls) {
        asio::ssl::stream<tcp::socket> stream(std::move(socket), *tls);
        beast::error_code ec;
        stream.handshake(asio::ssl::stream_base::server, ec);
        if (ec) continue;
        serve(stream, server);
        stream.shutdown(ec);
      } else {
        serve(socket, server);
        beast::error_code ec;
        socket.shutdown(tcp::socket::shutdown_both, ec);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "envd_test_envd_server: %s\n", e.what());
    return 1;
  }
}
