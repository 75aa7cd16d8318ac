// A small HTTP/1.1 client for JSON APIs reached by URL (http:// or https://),
// such as envd-server's REST API. One connection per call, no keep-alive, no
// redirects, no proxies.
//
//   envd::sdk::HttpServer server{"https://envd.example.com", "/path/ca.pem", "the envd server"};
//   auto answer = envd::sdk::http_call(server, {"GET", "/api/v1/"},
//                                      envd::sdk::http_deadline_after(std::chrono::seconds(10)));
//
// TLS (https://) always verifies the server: its certificate must chain to the
// CA in ca_file (or, with no ca_file, to the system's CAs) and name the URL's
// host (an IP address is matched against the certificate's IP addresses).
// TLS 1.2 or later.
//
// Errors (envd::Result, no exceptions); <name> and <url> are the server's:
//   - the host does not resolve, refuses, or closes: Errc::unavailable
//     "cannot connect to <name> at <url>: <reason>"
//   - TLS: Errc::unavailable "cannot connect to <name> at <url> over TLS:
//     <why>", e.g. its certificate is not signed by the CA in '<file>', is not
//     valid for '<host>', or it does not speak TLS on this port; an unusable
//     ca_file is Errc::invalid_argument naming the file
//   - the deadline passes: Errc::timeout "<name> at <url> did not answer
//     <METHOD> <path> in time"
//   - the host's cancellation (<envd/host.hpp>): Errc::cancelled, within
//     100 ms
//   - an answer that is not HTTP, or a body over 16 MiB: Errc::internal
//   - the connection closed before the answer's end: Errc::unavailable
//     "<name> at <url> closed the connection in the middle of its answer to
//     <METHOD> <path>"
//   - a method, path or header value holding a control character (a path also
//     a space), which would end the request line or header early: refused
//     before connecting, Errc::invalid_argument
// Any HTTP status is an answer, not an error: the caller judges it.
//
// Thread-safety: calls share nothing; any thread may call at any time.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "envd/result.hpp"

namespace envd::sdk {

struct HttpServer {
  std::string base_url;             // scheme://host[:port][/prefix]; paths are appended to it
  std::string ca_file;              // https only: PEM CA bundle to verify with; empty: the system's
  std::string name = "the server";  // how messages name it, e.g. "the envd server"
};

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // appended to base_url, starting with '/'
  std::string body;    // sent with Content-Type: application/json when not empty
  std::vector<std::pair<std::string, std::string>> headers{};  // extra header fields
};

struct HttpAnswer {
  int status = 0;
  std::string body;
};

using HttpDeadline = std::chrono::steady_clock::time_point;

// now + timeout.
HttpDeadline http_deadline_after(std::chrono::milliseconds timeout);

// Sends `request` and reads the whole answer, all before `deadline`.
Result<HttpAnswer> http_call(const HttpServer& server, const HttpRequest& request,
                             HttpDeadline deadline);

}  // namespace envd::sdk
