// A small client of the Docker Engine API, shared by the driver modules that
// talk to dockerd (moby-worker, docker-container, the docker runner).
//
//   auto engine = envd::sdk::DockerEngine::from_env();   // DOCKER_HOST
//   if (!engine) return engine.error();
//   auto deadline = envd::sdk::deadline_after(request.timeout);
//   auto version = engine->request("GET", "/version", "", deadline);
//
// Endpoints (DOCKER_HOST; default unix:///var/run/docker.sock): unix:///path
// and plain tcp://host[:port] (port 2375 by default). TLS (DOCKER_TLS_VERIFY,
// DOCKER_TLS), ssh:// and other schemes are refused with Errc::unsupported.
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
//   - the deadline passes: Errc::timeout "the Docker Engine at <endpoint> did
//     not answer <method> <path> in time"
//   - a non-2xx answer (request() excepted, which returns any status):
//     "docker engine at <endpoint>: <the daemon's message>", with the code
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
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "envd/result.hpp"

namespace envd::sdk {

// The point in time by which a whole call must have finished.
using Deadline = std::chrono::steady_clock::time_point;

// now + timeout.
Deadline deadline_after(std::chrono::milliseconds timeout);

// Where the Engine listens: a unix socket (socket_path set) or a plain TCP
// address (tcp_host and tcp_port set).
struct DockerEndpoint {
  std::string url;  // canonical form, e.g. "unix:///var/run/docker.sock", "tcp://[::1]:2375"
  std::string socket_path;  // unix only, e.g. "/var/run/docker.sock"
  // Default member initializers keep {url, socket_path} aggregates warning-free.
  std::string tcp_host{};  // tcp only: IPv4, IPv6 (no brackets) or DNS name
  uint16_t tcp_port = 0;   // tcp only
};

// Parses a DOCKER_HOST value. Empty means the default unix:///var/run/docker.sock.
// tcp://host[:port] without a port means port 2375 (Docker's plain-TCP port).
// Errc::unsupported for ssh://, npipe:// and other schemes (the message names
// the value and the supported forms); Errc::invalid_argument for a malformed
// unix:// or tcp:// value (a path or query after tcp://host:port included).
// Pure: TLS settings are checked by from_env().
Result<DockerEndpoint> parse_docker_host(std::string_view docker_host);

// Docker's rule for container (and volume) names: [a-zA-Z0-9][a-zA-Z0-9_.-]+.
bool is_docker_container_name(std::string_view name);

// The answer to request(): the HTTP status and the whole body.
struct EngineResponse {
  int status = 0;
  std::string body;
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

  // A client of the engine named by DOCKER_HOST (see parse_docker_host). A
  // non-empty DOCKER_TLS_VERIFY or DOCKER_TLS asks for TLS, which envd does
  // not speak to the Engine yet: Errc::unsupported naming the variable.
  static Result<DockerEngine> from_env();

  explicit DockerEngine(DockerEndpoint endpoint);
  DockerEngine(DockerEngine&&) noexcept;
  DockerEngine& operator=(DockerEngine&&) noexcept;
  ~DockerEngine();

  const DockerEndpoint& endpoint() const;

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
  Result<int> hijack(std::string_view method, std::string_view path, std::string_view body_json,
                     const EngineHeaders& headers, std::string_view upgrade_protocol,
                     Deadline deadline);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace envd::sdk
