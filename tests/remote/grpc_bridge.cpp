// A test-only stand-in for a remote buildkitd: listens on 127.0.0.1 (or a unix
// socket), optionally behind TLS, and forwards every connection to the Docker
// Engine's embedded BuildKit through a fresh POST /grpc (h2c upgrade) of the
// engine named by DOCKER_HOST. TLS ends here; the engine side is plaintext.
//
// With --engine-socket it stands in for a Docker Engine behind TLS instead
// (dockerd's own TLS would apply to every TCP listener of the one test
// daemon): each connection is forwarded byte for byte to that unix socket.
//
//   envd_grpc_bridge [--unix PATH] [--engine-socket PATH]
//                    [--tls-cert FILE --tls-key FILE [--client-ca FILE] [--alpn h2]]
//
// Like buildkitd (Go's crypto/tls with no NextProtos), the TLS side selects no
// ALPN protocol unless --alpn h2 asks it to, as a gRPC-aware proxy would.
//
// Prints the TCP port (or "ready" for --unix) and a newline on stdout once it
// listens. Runs until killed; killing it closes every forwarded connection,
// which is how the tests make "the daemon goes away". Diagnostics go to stderr.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "envd/docker_engine.hpp"

namespace {

struct Options {
  std::string unix_path;
  std::string engine_socket;
  std::string tls_cert;
  std::string tls_key;
  std::string client_ca;
  bool alpn_h2 = false;
};

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "grpc_bridge: %s\n", message.c_str());
  std::exit(2);
}

std::string ssl_errors() {
  std::string out;
  char buf[256];
  while (unsigned long e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof buf);
    out += (out.empty() ? "" : "; ") + std::string(buf);
  }
  return out.empty() ? "no OpenSSL error" : out;
}

// Selects "h2" when the client offers it, as a gRPC-aware proxy does.
int select_h2(SSL* /*ssl*/, const unsigned char** out, unsigned char* outlen,
              const unsigned char* in, unsigned int inlen, void* /*arg*/) {
  static const unsigned char h2[] = {'h', '2'};
  for (unsigned int i = 0; i < inlen;) {
    unsigned int len = in[i];
    if (i + 1 + len > inlen) break;
    if (len == 2 && std::memcmp(in + i + 1, h2, 2) == 0) {
      *out = in + i + 1;
      *outlen = 2;
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

SSL_CTX* make_tls(const Options& o) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) die("SSL_CTX_new: " + ssl_errors());
  if (SSL_CTX_use_certificate_chain_file(ctx, o.tls_cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, o.tls_key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    die("cannot load the server certificate or key: " + ssl_errors());
  }
  if (!o.client_ca.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, o.client_ca.c_str(), nullptr) != 1) {
      die("cannot load --client-ca: " + ssl_errors());
    }
    SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(o.client_ca.c_str()));
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  if (!o.engine_socket.empty()) {
    // As dockerd (Go's crypto/tls) does: a TCP end of input at a record
    // boundary without close_notify is a plain EOF, and the connection stays
    // writable, so a client's half-close of a hijacked exec's stdin works.
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  }
  if (o.alpn_h2) SSL_CTX_set_alpn_select_cb(ctx, select_h2, nullptr);
  // With a blocking socket, SSL_read must come back to poll() after a
  // non-application record instead of blocking for the next one.
  SSL_CTX_clear_mode(ctx, SSL_MODE_AUTO_RETRY);
  return ctx;
}

bool send_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Copies bytes both ways. The end of one side's input is passed on as a
// write shutdown of the other (close_notify over TLS), as a proxy must for a
// hijacked exec's stdin; it returns once both directions ended or one failed.
void forward(int client, SSL* ssl, int engine) {
  char buf[65536];
  bool client_open = true;  // still reading from the client
  bool engine_open = true;  // still reading from the engine
  while (client_open || engine_open) {
    bool pending = client_open && ssl != nullptr && SSL_pending(ssl) > 0;
    pollfd fds[2] = {{client_open ? client : -1, POLLIN, 0},
                     {engine_open ? engine : -1, POLLIN, 0}};
    if (::poll(fds, 2, pending ? 0 : -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (pending || (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      ssize_t n = 0;
      if (ssl != nullptr) {
        int got = SSL_read(ssl, buf, sizeof buf);
        if (got <= 0) {
          int err = SSL_get_error(ssl, got);
          if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) continue;
        }
        n = got;
      } else {
        n = ::read(client, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
      }
      if (n <= 0) {
        client_open = false;
        ::shutdown(engine, SHUT_WR);
      } else if (!send_all(engine, buf, static_cast<size_t>(n))) {
        return;
      }
    }
    if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      ssize_t n = ::read(engine, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        engine_open = false;
        if (ssl != nullptr) {
          SSL_shutdown(ssl);
        } else {
          ::shutdown(client, SHUT_WR);
        }
      } else if (ssl != nullptr) {
        if (SSL_write(ssl, buf, static_cast<int>(n)) <= 0) return;
      } else if (!send_all(client, buf, static_cast<size_t>(n))) {
        return;
      }
    }
  }
}

int connect_unix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), std::min(path.size() + 1, sizeof addr.sun_path - 1));
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
  std::fprintf(stderr, "grpc_bridge: cannot connect to %s: %s\n", path.c_str(),
               std::strerror(errno));
  if (fd >= 0) ::close(fd);
  return -1;
}

void serve(int client, SSL_CTX* tls, const std::string& engine_socket) {
  SSL* ssl = nullptr;
  if (tls != nullptr) {
    // A client that stalls the handshake must not pin the thread forever.
    timeval timeout{10, 0};
    ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ssl = SSL_new(tls);
    SSL_set_fd(ssl, client);
    if (SSL_accept(ssl) != 1) {
      std::fprintf(stderr, "grpc_bridge: TLS handshake failed: %s\n", ssl_errors().c_str());
      SSL_free(ssl);
      ::close(client);
      return;
    }
    timeval none{0, 0};
    ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
  }
  if (!engine_socket.empty()) {
    if (int upstream = connect_unix(engine_socket); upstream >= 0) {
      forward(client, ssl, upstream);
      ::close(upstream);
    }
    if (ssl != nullptr) SSL_free(ssl);
    ::close(client);
    return;
  }
  auto engine = envd::sdk::DockerEngine::from_env();
  if (engine) {
    auto upstream = engine->hijack("POST", "/grpc", "", {}, "h2c",
                                   envd::sdk::deadline_after(std::chrono::seconds(10)));
    if (upstream) {
      forward(client, ssl, *upstream);
      ::close(*upstream);
    } else {
      std::fprintf(stderr, "grpc_bridge: %s\n", upstream.error().message().c_str());
    }
  } else {
    std::fprintf(stderr, "grpc_bridge: %s\n", engine.error().message().c_str());
  }
  if (ssl != nullptr) {
    SSL_shutdown(ssl);
    SSL_free(ssl);
  }
  ::close(client);
}

int listen_tcp(int* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd, 64) != 0) {
    die(std::string("cannot listen on 127.0.0.1: ") + std::strerror(errno));
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

int listen_unix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) die("the socket path is too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ::unlink(path.c_str());
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd, 64) != 0) {
    die("cannot listen on " + path + ": " + std::strerror(errno));
  }
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (i + 1 >= argc) die("missing value for " + arg);
    std::string value = argv[++i];
    if (arg == "--unix") {
      o.unix_path = value;
    } else if (arg == "--engine-socket") {
      o.engine_socket = value;
    } else if (arg == "--tls-cert") {
      o.tls_cert = value;
    } else if (arg == "--tls-key") {
      o.tls_key = value;
    } else if (arg == "--client-ca") {
      o.client_ca = value;
    } else if (arg == "--alpn") {
      if (value != "h2") die("--alpn takes h2");
      o.alpn_h2 = true;
    } else {
      die("unknown argument " + arg);
    }
  }
  if (o.tls_cert.empty() != o.tls_key.empty()) die("--tls-cert and --tls-key come together");
  if (!o.client_ca.empty() && o.tls_cert.empty()) die("--client-ca needs --tls-cert");
  if (o.alpn_h2 && o.tls_cert.empty()) die("--alpn needs --tls-cert");
  ::signal(SIGPIPE, SIG_IGN);
  SSL_CTX* tls = o.tls_cert.empty() ? nullptr : make_tls(o);

  int port = 0;
  int listener = o.unix_path.empty() ? listen_tcp(&port) : listen_unix(o.unix_path);
  if (o.unix_path.empty()) {
    std::printf("%d\n", port);
  } else {
    std::printf("ready\n");
  }
  std::fflush(stdout);
  for (;;) {
    int client = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      die(std::string("accept failed: ") + std::strerror(errno));
    }
    std::thread(serve, client, tls, o.engine_socket).detach();
  }
}
