// envd_test_kube_apiserver: a loopback Kubernetes API server for the kube-pod
// builder's end-to-end tests, for the real kubectl (1.32) and for BuildKit's
// kube-pod:// connection helper, which runs `kubectl exec -i POD -- buildctl
// dial-stdio`. It answers what those calls use, the way kube-apiserver 1.32
// does: bearer-token authentication, RBAC denials, discovery (aggregated v2
// and legacy), GET and list (label and field selectors; JSON or, for `kubectl
// get` without -o, a Table) of namespaces, pods, deployments and statefulsets,
// pod logs, and exec over the WebSocket remotecommand protocols
// (v5.channel.k8s.io as the apiserver's stream translator, v4 and older as a
// kubelet) and over SPDY/3.1 as a kubelet does for kubectl before 1.30 (v4
// and older). No watch, no writes. An exec runs the command here, with
// buildctl replaced by --buildctl and BUILDKIT_HOST set to --buildkit-addr, so
// the bytes on the channels are BuildKit's own.
//
//   envd_test_kube_apiserver --token TOKEN --state FILE [--tls-cert FILE --tls-key FILE]
//       [--buildctl PATH] [--buildkit-addr ADDR] [--log FILE] [--legacy-discovery]
//       [--port N] [--orphan-grace-ms N]
//
// The state file (kube_state.hpp) is read on every request, so a test changes
// the cluster by rewriting it (atomically). Listens on 127.0.0.1 (a free port
// unless --port) and prints the port and a newline on stdout once it does.
// Without --tls-cert it speaks plain HTTP, over which kubectl sends no token:
// kubectl needs TLS.
// --log appends one JSON object per line: each request ({"method", "path",
// "query", "status", ...}) and each exec's end ({"exec": {...}}). Runs until
// SIGTERM or SIGINT, then kills and reaps its exec children. Diagnostics go
// to stderr.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "kube_api.hpp"
#include "kube_exec.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace kube = envd::test::kube;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "kube_apiserver: %s\n", message.c_str());
  std::exit(2);
}

std::string utc_time(const char* format) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

struct Server {
  kube::Config config;
  kube::ExecOptions exec;
  std::unique_ptr<asio::ssl::context> tls;
  std::FILE* log = nullptr;

  void write_log(const json::object& entry) const {
    if (log == nullptr) return;
    std::string line = json::serialize(entry) + "\n";
    std::fwrite(line.data(), 1, line.size(), log);
    std::fflush(log);
  }
};

json::object request_entry(const kube::Request& req, unsigned status) {
  std::string target(req.target());
  auto q = target.find('?');
  json::object e{{"time", utc_time("%Y-%m-%dT%H:%M:%SZ")},
                 {"method", std::string(req.method_string())},
                 {"path", target.substr(0, q)},
                 {"query", q == std::string::npos ? "" : target.substr(q + 1)},
                 {"status", status}};
  auto header = [&](http::field f, const char* key) {
    auto it = req.find(f);
    if (it != req.end()) e[key] = std::string(it->value());
  };
  header(http::field::accept, "accept");
  header(http::field::upgrade, "upgrade");
  header(http::field::sec_websocket_protocol, "protocols");
  header(http::field::user_agent, "user_agent");
  std::string stream_protocols;
  auto [from, to] = req.equal_range("X-Stream-Protocol-Version");
  for (auto it = from; it != to; ++it) {
    stream_protocols += (stream_protocols.empty() ? "" : ", ") + std::string(it->value());
  }
  if (!stream_protocols.empty()) e["stream_protocols"] = stream_protocols;
  return e;
}

template <class Stream>
asio::awaitable<void> serve(Stream& stream, Server& server) {
  beast::flat_buffer buffer;
  for (;;) {
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(300));
    http::request_parser<http::string_body> parser;
    parser.body_limit(1 << 20);
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, kUse);
    (void)n;
    if (ec) co_return;
    kube::Request req = parser.release();
    kube::Routed routed = kube::route(req, server.config);

    if (routed.exec) {
      const kube::ExecPlan& plan = *routed.exec;
      beast::get_lowest_layer(stream).expires_never();
      kube::ExecResult result;
      if (plan.transport == kube::Transport::spdy) {
        // As the kubelet's upgrader answers (through the apiserver's proxy).
        http::response<http::empty_body> res{http::status::switching_protocols, req.version()};
        res.set(http::field::connection, "Upgrade");
        res.set(http::field::upgrade, "SPDY/3.1");
        res.set("X-Stream-Protocol-Version", plan.protocol);
        res.set(http::field::date, utc_time("%a, %d %b %Y %H:%M:%S GMT"));
        auto [wec, written] = co_await http::async_write(stream, res, kUse);
        (void)written;
        json::object entry = request_entry(req, 101);
        entry["protocol"] = plan.protocol;
        if (wec) entry["error"] = wec.message();
        server.write_log(entry);
        if (wec) co_return;
        result = co_await kube::run_spdy_exec(stream, buffer, plan, server.exec);
      } else {
        beast::websocket::stream<Stream> ws(std::move(stream));
        beast::websocket::stream_base::timeout timeout{};
        timeout.handshake_timeout = std::chrono::seconds(10);
        timeout.idle_timeout = beast::websocket::stream_base::none();
        timeout.keep_alive_pings = false;
        ws.set_option(timeout);
        std::string protocol = plan.protocol;
        ws.set_option(beast::websocket::stream_base::decorator(
            [protocol](beast::websocket::response_type& res) {
              res.erase(http::field::server);
              if (!protocol.empty()) res.set(http::field::sec_websocket_protocol, protocol);
            }));
        auto [aec] = co_await ws.async_accept(req, kUse);
        json::object entry = request_entry(req, aec ? 400 : 101);
        if (!plan.protocol.empty()) entry["protocol"] = plan.protocol;
        if (aec) entry["error"] = aec.message();
        server.write_log(entry);
        if (aec) co_return;
        result = co_await kube::run_exec(ws, plan, server.exec);
      }
      json::array argv;
      for (const auto& a : result.argv) argv.emplace_back(a);
      json::object done{
          {"namespace", plan.namespace_name},
          {"pod", plan.pod},
          {"container", plan.container},
          {"transport", plan.transport == kube::Transport::spdy ? "spdy" : "websocket"},
          {"protocol", plan.protocol},
          {"argv", std::move(argv)},
          {"exit_code", result.exit_code},
          {"signal", result.signal},
          {"client_gone", result.client_gone},
          {"stdin_bytes", result.stdin_bytes},
          {"stdout_bytes", result.stdout_bytes},
          {"stderr_bytes", result.stderr_bytes}};
      if (!result.error.empty()) done["error"] = result.error;
      if (!result.protocol_error.empty()) done["protocol_error"] = result.protocol_error;
      server.write_log(
          json::object{{"time", utc_time("%Y-%m-%dT%H:%M:%SZ")}, {"exec", std::move(done)}});
      co_return;
    }

    const kube::Reply& reply = routed.reply;
    http::response<http::string_body> res{static_cast<http::status>(reply.status), req.version()};
    for (const auto& [k, v] : reply.headers) res.insert(k, v);
    if (!reply.content_type.empty()) res.set(http::field::content_type, reply.content_type);
    res.set(http::field::date, utc_time("%a, %d %b %Y %H:%M:%S GMT"));
    res.body() = req.method() == http::verb::head ? "" : reply.body;
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    server.write_log(request_entry(req, reply.status));
    auto [wec, written] = co_await http::async_write(stream, res, kUse);
    (void)written;
    if (wec || !res.keep_alive()) break;
  }
  if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  } else {
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
    co_await stream.async_shutdown(kUse);
  }
}

asio::awaitable<void> session(tcp::socket socket, Server& server) {
  beast::tcp_stream stream(std::move(socket));
  if (!server.tls) {
    co_await serve(stream, server);
    co_return;
  }
  beast::ssl_stream<beast::tcp_stream> tls(std::move(stream), *server.tls);
  beast::get_lowest_layer(tls).expires_after(std::chrono::seconds(30));
  auto [ec] = co_await tls.async_handshake(asio::ssl::stream_base::server, kUse);
  if (ec) {
    // A client that refused our certificate, as a test may want: not ours to report.
    co_return;
  }
  co_await serve(tls, server);
}

asio::awaitable<void> listen(tcp::acceptor& acceptor, Server& server) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kUse);
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) continue;
    // Descriptors must not leak into exec children (they close all but 0-2 anyway).
    ::fcntl(socket.native_handle(), F_SETFD, FD_CLOEXEC);
    asio::co_spawn(acceptor.get_executor(), session(std::move(socket), server), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Server server;
  std::string tls_cert;
  std::string tls_key;
  std::string log_path;
  int port = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--token") {
      server.config.token = value();
    } else if (arg == "--state") {
      server.config.state_file = value();
    } else if (arg == "--tls-cert") {
      tls_cert = value();
    } else if (arg == "--tls-key") {
      tls_key = value();
    } else if (arg == "--buildctl") {
      server.exec.buildctl = value();
    } else if (arg == "--buildkit-addr") {
      server.exec.buildkit_addr = value();
    } else if (arg == "--log") {
      log_path = value();
    } else if (arg == "--legacy-discovery") {
      server.config.aggregated_discovery = false;
    } else if (arg == "--port") {
      port = std::atoi(value().c_str());
    } else if (arg == "--orphan-grace-ms") {
      server.exec.orphan_grace = std::chrono::milliseconds(std::atoi(value().c_str()));
    } else {
      die("unknown argument '" + arg +
          "'; usage: envd_test_kube_apiserver --token TOKEN --state FILE [--tls-cert FILE "
          "--tls-key FILE] [--buildctl PATH] [--buildkit-addr ADDR] [--log FILE] "
          "[--legacy-discovery] [--port N] [--orphan-grace-ms N]");
    }
  }
  if (server.config.token.empty()) die("--token is required");
  if (server.config.state_file.empty()) die("--state is required");
  if (tls_cert.empty() != tls_key.empty()) die("--tls-cert and --tls-key go together");
  std::string problem;
  if (!kube::load_state(server.config.state_file, &problem)) die(problem);

  // Children get 0-2 from pipes or /dev/null; make sure ours exist so that no
  // pipe of an exec lands on them.
  for (int fd = 0; fd < 3; ++fd) {
    if (::fcntl(fd, F_GETFD) < 0) ::open("/dev/null", O_RDWR);
  }
  ::signal(SIGPIPE, SIG_IGN);
  if (!log_path.empty()) {
    server.log = std::fopen(log_path.c_str(), "ae");
    if (server.log == nullptr) die("cannot open --log '" + log_path + "'");
  }
  if (!tls_cert.empty()) {
    server.tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    boost::system::error_code ec;
    server.tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                            asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                            asio::ssl::context::no_tlsv1_1);
    server.tls->use_certificate_chain_file(tls_cert, ec);
    if (ec) die("cannot load --tls-cert '" + tls_cert + "': " + ec.message());
    server.tls->use_private_key_file(tls_key, asio::ssl::context::pem, ec);
    if (ec) die("cannot load --tls-key '" + tls_key + "': " + ec.message());
  }
  server.config.created = utc_time("%Y-%m-%dT%H:%M:%SZ");
  server.config.created_at = static_cast<std::int64_t>(std::time(nullptr));

  asio::io_context ioc(1);
  tcp::acceptor acceptor(ioc);
  boost::system::error_code ec;
  tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) die("cannot listen on 127.0.0.1:" + std::to_string(port) + ": " + ec.message());
  ::fcntl(acceptor.native_handle(), F_SETFD, FD_CLOEXEC);
  unsigned short bound = acceptor.local_endpoint().port();
  server.config.server_address = "127.0.0.1:" + std::to_string(bound);

  asio::signal_set stop(ioc, SIGTERM, SIGINT);
  stop.async_wait([&](const boost::system::error_code&, int) {
    boost::system::error_code ignored;
    acceptor.close(ignored);
    ioc.stop();
  });
  // The state is read on every request; SIGHUP just must not end the server.
  asio::signal_set hangup(ioc, SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_hangup =
      [&](const boost::system::error_code& e, int) {
        if (!e) hangup.async_wait(on_hangup);
      };
  hangup.async_wait(on_hangup);

  asio::co_spawn(ioc, listen(acceptor, server), asio::detached);
  std::printf("%u\n", static_cast<unsigned>(bound));
  std::fflush(stdout);
  ioc.run();
  kube::kill_all_children();
  if (server.log != nullptr) std::fclose(server.log);
  return 0;
}
