// What envd_test_kube_apiserver answers, transport aside: authentication,
// RBAC denials, discovery, pods, deployments and statefulsets, and the checks a
// kube-apiserver (and, behind it, a kubelet) makes before it upgrades an exec
// request. A request either gets a Reply, or an ExecPlan for the WebSocket or
// SPDY/3.1 session of kube_exec.hpp. Test-only.
#pragma once

#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kube_state.hpp"

namespace envd::test::kube {

using Request = boost::beast::http::request<boost::beast::http::string_body>;

struct Config {
  std::string token;                 // the one bearer token accepted
  std::string state_file;            // read on every request
  bool aggregated_discovery = true;  // answer apidiscovery.k8s.io/v2 when asked
  std::string created;               // RFC 3339: every object's timestamps
  std::int64_t created_at = 0;       // the same, in seconds since the epoch (for ages)
  std::string server_address;        // "127.0.0.1:PORT", for /api's serverAddressByClientCIDRs
};

struct Reply {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// How an exec's streams travel: WebSocket channels, or SPDY/3.1 streams
// (kubectl before 1.30, and later ones whose WebSocket upgrade failed).
enum class Transport { websocket, spdy };

// The remotecommand subprotocols: v5 is what kube-apiserver's stream
// translator speaks (WebSocket only), the others what a kubelet speaks behind
// the apiserver: over WebSocket v4 and v1, each also base64-encoded; over
// SPDY v4, v3, v2 and v1 ("channel.k8s.io").
enum class Channel { v5, v4, v4_base64, v3, v2, v1, v1_base64 };

struct ExecPlan {
  std::string namespace_name;
  std::string pod;
  std::string container;
  std::vector<std::string> command;
  bool use_stdin = false;
  bool use_stdout = false;
  bool use_stderr = false;
  bool tty = false;
  Transport transport = Transport::websocket;
  std::string protocol;  // the subprotocol to answer with ("" when the client asked none)
  Channel channel = Channel::v5;
  // Set when the exec cannot start although the request is valid (the
  // container is not running): after the upgrade, this goes to the error
  // channel as an InternalError, as the apiserver reports the kubelet's refusal.
  std::string failure;
};

struct Routed {
  Reply reply;                   // the answer, unless exec is set
  std::optional<ExecPlan> exec;  // an exec to upgrade the connection for
};

Routed route(const Request& request, const Config& config);

// A metav1.Status as the apiserver encodes it ("kind" and "apiVersion" only
// with_type: the exec error channel carries a bare one).
boost::json::object status_object(unsigned code, const std::string& reason,
                                  const std::string& message,
                                  std::optional<boost::json::object> details = std::nullopt,
                                  bool with_type = true);

// The decoded query parameters, in order (Go's url.ParseQuery).
std::vector<std::pair<std::string, std::string>> parse_query(const std::string& query);
std::string percent_decode(const std::string& text, bool plus_is_space);

}  // namespace envd::test::kube
