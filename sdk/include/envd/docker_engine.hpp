// A small client of the Docker Engine API, shared by the driver modules that
// talk to dockerd (moby-worker, docker-container, the docker runner).
//
//   auto engine = envd::sdk::DockerEngine::from_env();   // DOCKER_HOST
//   if (!engine) return engine.error();
//   auto deadline = envd::sdk::deadline_after(request.timeout);
//   auto version = engine->request("GET", "/version", "", deadline);
//
// Endpoints (DOCKER_HOST; default unix:///var/run/docker.sock): unix:///path
// and tcp://host[:port], plain (port 2375 by default) or TLS as the docker CLI
// sets it up (DOCKER_TLS_VERIFY, DOCKER_TLS, DOCKER_CERT_PATH; port 2376 by
// default), and ssh://[user@]host[:port][/remote.sock], which runs `ssh ...
// -- host docker [--host unix://<path>] system dial-stdio` (from PATH, with
// BatchMode=yes) for each connection, as the docker CLI does. Other schemes
// are refused with Errc::unsupported.
//
// Versioning: the first call asks GET /_ping for the daemon's Api-Version and
// uses the lower of it and client_api_version; every path given to a call is
// sent as "/v<version><path>". The result is kept for the life of the object.
//
// Connections: every call opens its own connection (no keep-alive pool) and
// closes it before returning, except hijack(), which hands the socket over.
//
// Errors (all envd::Result, no exceptions):
//   - socket missing or refusing, or a closed connection: Errc::unavailable
//     "cannot connect to the Docker Engine at unix:///x.sock: <reason>" (or
//     tcp://host:port; a host name that does not resolve reads "cannot
//     resolve '<host>': <reason>")
//   - socket not accessible: Errc::permission, same wording
//   - ssh ended before answering: Errc::unavailable "cannot connect to the
//     Docker Engine at ssh://...: <ssh's last stderr line>"
//   - TLS: Errc::unavailable "cannot connect to the Docker Engine at
//     tcp://host:port over TLS: <why>", e.g. its certificate is not signed by
//     the CA in <file>, is not valid for <host>, or it requires a client
//     certificate
//   - the deadline passes: Errc::timeout "the Docker Engine at <endpoint> did
//     not answer <method> <path> in time"
//   - a non-2xx answer (request() excepted, which returns any status):
//     "the Docker Engine at <endpoint>: <the daemon's message>", with the code
//     mapped from the status (400 invalid_argument, 401/403 permission,
//     404 not_found, 409 already_exists, 5xx and others internal)
//   - an answer that is not HTTP: Errc::internal
//
// Thread-safety: a DockerEngine may be used from several threads at once
// (calls share nothing but the negotiated version, which is guarded).
// Callbacks run on the calling thread. A moved-from DockerEngine may only be
// assigned to or destroyed.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "envd/result.hpp"
#include "envd/text.hpp"

namespace envd::sdk {

// The point in time by which a whole call must have finished.
using Deadline = std::chrono::steady_clock::time_point;

// now + timeout.
Deadline deadline_after(std::chrono::milliseconds timeout);

// Where the Engine listens: a unix socket (socket_path set) or a TCP address
// (tcp_host and tcp_port set). TLS, if any, is given separately (DockerTls):
// this struct keeps the layout of SDK 1.0.
struct DockerEndpoint {
  std::string url;  // canonical form, e.g. "unix:///var/run/docker.sock", "tcp://[::1]:2375"
  std::string socket_path;  // unix only, e.g. "/var/run/docker.sock"
  // Default member initializers keep {url, socket_path} aggregates warning-free.
  std::string tcp_host{};  // tcp only: IPv4, IPv6 (no brackets) or DNS name
  uint16_t tcp_port = 0;   // tcp only
};

// TLS to a tcp:// Engine. The files are PEM. When verifying, the daemon's
// certificate must chain to ca_file and name the endpoint's host (an IP
// address is matched against the certificate's IP addresses).
struct DockerTls {
  bool verify = true;     // false: DOCKER_TLS without DOCKER_TLS_VERIFY (no check at all)
  std::string ca_file;    // required to verify
  std::string cert_file;  // client certificate, with key_file; both empty for none
  std::string key_file;
};

// Parses a DOCKER_HOST value. Empty means the default unix:///var/run/docker.sock.
// tcp://host[:port] without a port means port 2375 (Docker's plain-TCP port).
// ssh:// keeps its URL (user, port, remote socket path) in `url`, the host in
// tcp_host and the port in tcp_port (0: ssh's default).
// Errc::unsupported for npipe://, fd:// and other schemes (the message names
// the value and the supported forms); Errc::invalid_argument for a malformed
// value (a path or query after tcp://host:port, a query after ssh://).
// Pure: TLS settings are read by docker_settings_from_env().
Result<DockerEndpoint> parse_docker_host(std::string_view docker_host);

// What the docker CLI would connect to.
struct DockerSettings {
  DockerEndpoint endpoint;
  std::optional<DockerTls> tls;  // tcp:// only
};

// The settings the docker CLI would use, from the environment:
//   DOCKER_HOST        as parse_docker_host; with TLS a tcp:// address without
//                      a port means 2376 (Docker's TLS port)
//   DOCKER_TLS_VERIFY  non-empty: TLS, verifying the daemon against ca.pem
//   DOCKER_TLS         non-empty: TLS; without DOCKER_TLS_VERIFY the daemon's
//                      certificate is not checked
//   DOCKER_CERT_PATH   the directory of ca.pem, cert.pem and key.pem (default:
//                      DOCKER_CONFIG, else ~/.docker)
// TLS applies to tcp:// only: a unix socket ignores it, as the docker CLI does.
// A client certificate is used when cert.pem and key.pem exist. Errors name
// the variable and the file: Errc::not_found for a missing ca.pem when
// verifying, Errc::invalid_argument for cert.pem without key.pem or the
// reverse. The files are read when the first connection is made.
Result<DockerSettings> docker_settings_from_env();

// The same for an Engine address of envd's own (a context's runner address):
// `host` in DOCKER_HOST's place, TLS from the same variables, as the docker
// CLI reads them for `-H host`. Empty `host` is DOCKER_HOST's default.
Result<DockerSettings> docker_settings_for(std::string host);

// is_docker_container_name, Docker's rule for container and volume names,
// is in envd/text.hpp (header-only, so that code checking a name links none
// of the Engine's client).

// 32 random hex digits (the kernel's random source), new at every call: a
// label a driver puts on a container it creates, so that after a create that
// got no answer it can tell the container it asked for from one another
// process made under the same name meanwhile.
std::string creation_token();

// The answer to request(): the HTTP status and the whole body.
struct EngineResponse {
  int status = 0;
  std::string body;
  // The request it answers ("GET /containers/json"), which status_error()
  // names when the answer is not the Engine API's own error.
  std::string request;
};

// What GET /version says about the daemon (the fields envd uses).
struct EngineVersion {
  std::string version;      // e.g. "20.10.24+dfsg1"
  std::string api_version;  // the daemon's newest API version, e.g. "1.41"
  std::string os;           // e.g. "linux"
  std::string arch;         // e.g. "amd64"
};

// Extra request headers; a name may repeat.
using EngineHeaders = std::vector<std::pair<std::string, std::string>>;

// Receives a streamed response body, one piece at a time: a whole line
// (without its '\n') in StreamMode::lines, whatever arrived in
// StreamMode::chunks. Return false to stop reading (the call then fails with
// Errc::cancelled).
using EngineDataCallback = std::function<bool(std::string_view data)>;

enum class StreamMode { lines, chunks };

// Produces a request body piece by piece: writes up to `capacity` bytes to
// `buffer` and returns how many, 0 at the end. An Error aborts the call and is
// returned by it.
using EngineBodySource = std::function<Result<std::size_t>(char* buffer, std::size_t capacity)>;

// A body source reading `fd` (a file or pipe, blocking) to its end. The fd stays
// owned by the caller and must outlive the call.
EngineBodySource body_from_fd(int fd);

class DockerEngine {
 public:
  // The newest Engine API version this client speaks.
  static constexpr const char* client_api_version = "1.41";

  // A client of the engine docker_settings_from_env() names.
  static Result<DockerEngine> from_env();

  explicit DockerEngine(DockerEndpoint endpoint);
  // A client speaking TLS to a tcp:// endpoint (a unix endpoint ignores `tls`).
  DockerEngine(DockerEndpoint endpoint, DockerTls tls);
  DockerEngine(DockerEngine&&) noexcept;
  DockerEngine& operator=(DockerEngine&&) noexcept;
  ~DockerEngine();

  const DockerEndpoint& endpoint() const;

  // The TLS settings in use; nullptr for a plain connection.
  const DockerTls* tls() const;

  // The API version calls use: min(client_api_version, the daemon's), asking
  // GET /_ping on the first call. Errors as for any call.
  Result<std::string> api_version(Deadline deadline);

  // GET /version, parsed. Errc::internal if the answer is not the expected JSON.
  Result<EngineVersion> version(Deadline deadline);

  // Sends one request and reads the whole answer, whatever its status.
  // `body_json`, when not empty, is sent with Content-Type: application/json.
  // Fails only if the engine cannot be reached or does not answer in time.
  Result<EngineResponse> request(std::string_view method, std::string_view path,
                                 std::string_view body_json, Deadline deadline);

  // The Error a non-2xx `answer` of request() stands for, worded as call()
  // words it: for a caller that looked at the status first and must not send
  // the request again just to report it.
  Error status_error(const EngineResponse& answer) const;

  // As request(), but a non-2xx status is an Error (see above) and a 2xx body
  // is returned.
  Result<std::string> call(std::string_view method, std::string_view path,
                           std::string_view body_json, Deadline deadline);

  // Sends a request (with `headers`, e.g. X-Registry-Auth for pull and push)
  // and passes a 2xx response body to `on_data` as it arrives (progress of
  // pull, push and load comes as JSON lines). Returns the status. A non-2xx
  // answer is an Error (its body is not streamed). Note that the Engine reports
  // many failures of pull and push inside the stream, as {"error": ...} lines.
  Result<int> stream(std::string_view method, std::string_view path, std::string_view body_json,
                     const EngineHeaders& headers, StreamMode mode,
                     const EngineDataCallback& on_data, Deadline deadline);

  // As stream(), with a request body produced by `body` and sent chunked
  // (Transfer-Encoding: chunked) with the given Content-Type, e.g.
  // "application/x-tar" for POST /images/load.
  Result<int> upload(std::string_view method, std::string_view path, std::string_view content_type,
                     const EngineBodySource& body, StreamMode mode,
                     const EngineDataCallback& on_data, Deadline deadline);

  // Hijacks a connection: sends the request with `Connection: Upgrade` and
  // `Upgrade: <upgrade_protocol>` (plus `headers`, and `body_json` if not
  // empty), expects 101 (or 200, which old daemons send for exec attach), and
  // returns the connected socket with nothing of what followed the response
  // head consumed: the first byte the caller reads is the first byte the
  // daemon sent after the blank line. The fd is blocking and close-on-exec,
  // and ownership passes to the caller, who must close() it. On failure no fd
  // is left open. A non-101/200 answer is an Error as above.
  //
  // Over TLS the fd is one end of a socketpair whose other end a relay thread
  // copies to and from the TLS connection: shutdown(fd, SHUT_WR) reaches the
  // daemon as end of input, and close() ends the relay. The relay is kept by
  // relay_registry() (<envd/relay.hpp>), which joins it once it ended and
  // stops it at exit.
  Result<int> hijack(std::string_view method, std::string_view path, std::string_view body_json,
                     const EngineHeaders& headers, std::string_view upgrade_protocol,
                     Deadline deadline);

  // hijack() with `path` sent as given, without the "/v<version>" prefix, and
  // so without the GET /_ping a first call spends on negotiating the version:
  // one connection, one request. Only for routes whose handling does not
  // depend on the API version, such as POST /grpc and POST /session: the
  // Engine registers every route with and without the prefix and serves an
  // unversioned request at its own default version (moby's api/server
  // CreateMux and VersionMiddleware, unchanged from 17.x to today). Errors as
  // hijack(); an Engine without the route answers 404 (Errc::not_found).
  Result<int> hijack_unversioned(std::string_view method, std::string_view path,
                                 std::string_view body_json, const EngineHeaders& headers,
                                 std::string_view upgrade_protocol, Deadline deadline);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace envd::sdk
