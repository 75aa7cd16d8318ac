#include "buildkit/client.hpp"

#include <fcntl.h>

#include <grpcpp/create_channel_posix.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <cctype>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "buildkit/grpc_process.hpp"
#include "buildkit/progress.hpp"
#include "buildkit/session.hpp"
#include "buildkit/tls_tunnel.hpp"
#include "github.com/moby/buildkit/api/services/control/control.grpc.pb.h"
#include "util/step_times.hpp"
#include "util/text.hpp"

namespace envd::buildkit {

namespace bk = moby::buildkit::v1;
using Clock = std::chrono::steady_clock;

// ---- CancelToken -----------------------------------------------------------

struct CancelToken::State {
  std::mutex mu;
  bool cancelled = false;
  std::vector<const std::function<void()>*> actions;  // run by cancel()
};

CancelToken::CancelToken() : state_(std::make_shared<State>()) {}

void CancelToken::cancel() {
  std::lock_guard lock(state_->mu);
  state_->cancelled = true;
  for (const auto* action : state_->actions) (*action)();
}

bool CancelToken::cancelled() const {
  std::lock_guard lock(state_->mu);
  return state_->cancelled;
}

namespace {

// Keeps a cancel action (cancelling a call or a session) registered with a
// CancelToken for its scope; runs it at once when the token already fired.
class CancelGuard {
 public:
  CancelGuard(CancelToken::State& state, std::function<void()> action)
      : state_(state), action_(std::move(action)) {
    std::lock_guard lock(state_.mu);
    state_.actions.push_back(&action_);
    if (state_.cancelled) action_();
  }
  CancelGuard(const CancelGuard&) = delete;
  CancelGuard& operator=(const CancelGuard&) = delete;
  ~CancelGuard() {
    std::lock_guard lock(state_.mu);
    auto& v = state_.actions;
    v.erase(std::remove(v.begin(), v.end(), &action_), v.end());
  }

 private:
  CancelToken::State& state_;
  const std::function<void()> action_;
};

// A deadline for a message: "250ms" below a second, else seconds to a tenth
// ("3s", "1.5s"). A deadline is often what is left of the user's (`builder
// status` spends a few ms looking first): "3s", not "2996ms".
std::string format_duration(std::chrono::milliseconds d) {
  if (d < std::chrono::seconds(1)) return std::to_string(d.count()) + "ms";
  const auto tenths = (d.count() + 50) / 100;
  if (tenths % 10 == 0) return std::to_string(tenths / 10) + "s";
  return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + "s";
}

bool contains(const std::string& haystack, const char* needle) {
  std::string h = haystack;
  std::string n = needle;
  std::transform(h.begin(), h.end(), h.begin(), ::tolower);
  std::transform(n.begin(), n.end(), n.begin(), ::tolower);
  return h.find(n) != std::string::npos;
}

// The text between `after` and the next `until` in `m` (case-sensitive), or "".
std::string between(const std::string& m, const std::string& after, const std::string& until) {
  auto at = m.find(after);
  if (at == std::string::npos) return {};
  at += after.size();
  auto end = m.find(until, at);
  return m.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

// gRPC's words for an answer that is not HTTP/2 (UNAVAILABLE or INTERNAL): a
// web server, or the Docker Engine's socket, answering the preface with an
// HTTP/1 error ("Trying to connect an http1.x server"), or bytes it cannot
// read as a frame ("failed parsing HTTP/2").
bool not_http2(const grpc::Status& status) {
  const std::string& m = status.error_message();
  // An HTTP/1 answer's status is mapped to a gRPC code, and 200 maps to OK:
  // the channel then fails with "last error: OK", the HTTP/1 detail gone.
  constexpr std::string_view kLastErrorOk = "last error: OK";
  return contains(m, "failed parsing HTTP/2") || contains(m, "http1.x server") ||
         (m.size() >= kLastErrorOk.size() &&
          m.compare(m.size() - kLastErrorOk.size(), kLastErrorOk.size(), kLastErrorOk) == 0);
}

const char* const kNotHttp2 =
    "the daemon answered, but not in HTTP/2: this is not a BuildKit gRPC address (an HTTP/1 "
    "server? the Docker Engine's socket is the moby-worker builder's)";

// A readable reason for a transport-level failure.
std::string unavailable_reason(const grpc::Status& status) {
  const std::string& m = status.error_message();
  if (not_http2(status)) return kNotHttp2;
  if (contains(m, "connection refused")) return "connection refused";
  if (contains(m, "DNS resolution failed")) {
    // "DNS resolution failed for host:port: C-ares status is not ARES_SUCCESS
    // qtype=A name=host is_balancer=0: Domain name not found"
    std::string host = between(m, "DNS resolution failed for ", ": ");
    if (auto colon = host.rfind(':'); colon != std::string::npos) host.resize(colon);
    std::string why = m.substr(m.rfind(": ") + 2);
    if (!why.empty()) why[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(why[0])));
    return "cannot resolve '" + host + "' (DNS: " + why + ")";
  }
  if (contains(m, "no such file")) return "no such socket";
  if (contains(m, "permission denied")) return "permission denied";
  if (contains(m, "connection reset")) return "connection reset by the daemon";
  if (contains(m, "socket closed") || contains(m, "broken pipe") || contains(m, "eof") ||
      contains(m, "closed") || contains(m, "endpoint read failed")) {
    return "connection closed by the daemon";
  }
  if (contains(m, "handshaker shutdown")) return "the connection attempt was cut short";
  if (contains(m, "SETTINGS frame")) {
    return "the daemon accepted the connection but did not answer (no HTTP/2 greeting: is this "
           "a BuildKit gRPC address?)";
  }
  if (m.empty()) return "unavailable";
  std::string why = m;
  if (auto at = why.rfind("last error: "); at != std::string::npos) why = why.substr(at + 12);
  for (const char* code : {"UNKNOWN: ", "UNAVAILABLE: ", "INTERNAL: "}) {
    if (why.rfind(code, 0) == 0) why = why.substr(std::strlen(code));
  }
  for (const char* scheme : {"ipv4:", "ipv6:", "unix:", "dns:"}) {
    if (why.rfind(scheme, 0) == 0) {
      if (auto colon = why.find(": "); colon != std::string::npos) why = why.substr(colon + 2);
    }
  }
  if (!why.empty()) why[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(why[0])));
  return why;
}

// Connect failures that redialling cannot cure: names that do not exist, and
// a daemon that speaks another protocol.
bool permanent_failure(const grpc::Status& status) {
  return contains(status.error_message(), "domain name not found") || not_http2(status);
}

// A connection the daemon accepted and then dropped (reset, closed, or a
// failed read right after connecting).
bool dropped_by_daemon(const grpc::Status& status) {
  const std::string& m = status.error_message();
  return (contains(m, "endpoint read failed") || contains(m, "connection reset") ||
          contains(m, "socket closed") || contains(m, "connection closed"));
}

enum class Security { plaintext, tls_without_client_cert, mutual_tls };

Security security_of(const plugin::Transport& transport) {
  if (transport.kind != ENVD_TRANSPORT_GRPC_TARGET) return Security::plaintext;
  if (transport.tls_ca_pem.empty() && transport.tls_cert_pem.empty()) return Security::plaintext;
  return transport.tls_cert_pem.empty() ? Security::tls_without_client_cert : Security::mutual_tls;
}

// An attempt cut off by the connect deadline says only that; the attempt
// before it says why the daemon was not reached.
bool cut_by_deadline(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
         contains(status.error_message(), "handshaker shutdown");
}

Errc errc_of(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
      return Errc::invalid_argument;
    case grpc::StatusCode::NOT_FOUND:
      return Errc::not_found;
    case grpc::StatusCode::ALREADY_EXISTS:
      return Errc::already_exists;
    case grpc::StatusCode::UNAVAILABLE:
      return Errc::unavailable;
    case grpc::StatusCode::UNIMPLEMENTED:
      return Errc::unsupported;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Errc::timeout;
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
      return Errc::permission;
    case grpc::StatusCode::CANCELLED:
      return Errc::cancelled;
    default:
      return Errc::internal;
  }
}

// The reason part of "cannot <verb> buildkitd at <address>: <reason>".
std::string reason_of(const grpc::Status& status, std::chrono::milliseconds deadline) {
  if (not_http2(status)) return kNotHttp2;
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      return unavailable_reason(status);
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "no answer within " + format_duration(deadline);
    case grpc::StatusCode::UNIMPLEMENTED:
      return "the daemon does not serve the BuildKit API (" + status.error_message() + ")";
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return "access denied: " + status.error_message();
    default:
      return status.error_message().empty() ? "gRPC status " + std::to_string(status.error_code())
                                            : status.error_message();
  }
}

// A daemon's message without the "rpc error: code = NotFound desc = " that
// grpc-go puts in front of an error it passes on (one of this client's own
// session answers, quoted back: "cannot open local directory ..."): the
// words after it say what failed; the code says nothing to a user.
std::string without_grpc_wrapping(std::string message) {
  static constexpr std::string_view kPrefix = "rpc error: code = ";
  static constexpr std::string_view kDesc = " desc = ";
  for (std::size_t at = message.find(kPrefix); at != std::string::npos;
       at = message.find(kPrefix, at)) {
    std::size_t code_end = at + kPrefix.size();
    while (code_end < message.size() &&
           std::isalpha(static_cast<unsigned char>(message[code_end]))) {
      ++code_end;
    }
    if (message.compare(code_end, kDesc.size(), kDesc) != 0) {
      at = code_end;
      continue;
    }
    message.erase(at, code_end + kDesc.size() - at);
  }
  return message;
}

// `connect_deadline` is the time connect() has in all.
grpc::ChannelArguments channel_arguments(std::chrono::milliseconds connect_deadline) {
  grpc::ChannelArguments args;
  // Reconnect quickly while connect() probes a daemon that is still starting.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // gRPC also reads the "minimum reconnect backoff" as the time one
  // connection attempt has, from the TCP connect to the daemon's HTTP/2
  // SETTINGS. Set to 100 ms it failed builds on a busy buildkitd (four builds
  // at once on two loaded cores: the greeting came later, every attempt was
  // cut, and connect() gave up). Each attempt gets half the connect deadline
  // (at least a second): time enough on a loaded machine, and a daemon that
  // accepts and never answers is still told apart from one cut by the
  // deadline (the first attempt's own timeout says why).
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
              static_cast<int>(std::clamp<std::int64_t>(connect_deadline.count() / 2, 1000,
                                                        std::int64_t{20000})));
  // A dead host (no FIN, no RST) is noticed by keepalive. grpc-go servers
  // (buildkitd, dockerd) punish pings more often than every 5 minutes with
  // GOAWAY, so ping just above that. A dead daemon process on a live host
  // closes the socket and is noticed at once.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 330 * 1000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // A daemon's error can be long (a failed mount names the session's whole
  // answer); past gRPC C++'s default 8 KiB of metadata the stream is reset
  // and the error lost. grpc-go clients accept 16 MiB.
  args.SetInt(GRPC_ARG_MAX_METADATA_SIZE, 16 * 1024 * 1024);
  // The session tunnel carries file chunks; solve requests carry LLB.
  args.SetMaxReceiveMessageSize(64 * 1024 * 1024);
  return args;
}

Result<std::shared_ptr<grpc::Channel>> make_channel(plugin::Transport& transport,
                                                    std::chrono::milliseconds connect_deadline) {
  grpc::ChannelArguments args = channel_arguments(connect_deadline);
  if (transport.kind == ENVD_TRANSPORT_FD) {
    if (transport.fd < 0) {
      return Error(Errc::internal, "cannot connect to buildkitd at " + transport.description +
                                       ": the transport has no socket");
    }
    int fd = transport.release_fd();
    int flags = ::fcntl(fd, F_GETFL, 0);
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    return grpc::CreateCustomInsecureChannelFromFd("localhost", fd, args);
  }
  if (transport.kind != ENVD_TRANSPORT_GRPC_TARGET || transport.target.empty()) {
    return Error(Errc::internal, "cannot connect to buildkitd at " + transport.description +
                                     ": the transport has neither a socket nor a target");
  }
  std::string target = transport.target;
  if (target.rfind("tcp://", 0) == 0) target = target.substr(6);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

std::chrono::system_clock::time_point deadline_after(std::chrono::milliseconds d) {
  return std::chrono::system_clock::now() + d;
}

std::string platform_string(const pb::Platform& p) {
  std::string s = p.os() + "/" + p.architecture();
  if (!p.variant().empty()) s += "/" + p.variant();
  return s;
}

// Follows the Status stream of one solve on its own thread, handing updates to
// the sink in order. The stream ends by itself after the job; finish() gives it
// a grace period after the last message and then cancels it.
class StatusFollower {
 public:
  StatusFollower(bk::Control::Stub& stub, const std::string& ref, ProgressSink& sink,
                 CancelToken::State& cancel)
      : sink_(sink), guard_(cancel, [this] { context_.TryCancel(); }) {
    request_.set_ref(ref);
    thread_ = std::thread([this, &stub] { run(stub); });
  }
  StatusFollower(const StatusFollower&) = delete;
  StatusFollower& operator=(const StatusFollower&) = delete;
  ~StatusFollower() { finish(std::chrono::seconds(0)); }

  // Waits for the stream to end, at most `grace` after its last message, and
  // then joins the thread. Idempotent.
  void finish(std::chrono::milliseconds grace) {
    if (!thread_.joinable()) return;
    {
      std::unique_lock lock(mu_);
      while (!ended_) {
        if (cv_.wait_until(lock, last_message_ + grace) == std::cv_status::timeout &&
            Clock::now() >= last_message_ + grace) {
          break;
        }
      }
    }
    context_.TryCancel();
    thread_.join();
  }

  // Where the build was when it stopped, for a message: the step that ran
  // last ("[2/3] COPY . /src", "exporting to client directory"), or "" before
  // the first one.
  std::string phase() {
    std::lock_guard lock(mu_);
    return phase_;
  }

 private:
  void run(bk::Control::Stub& stub) {
    auto reader = stub.Status(&context_, request_);
    bk::StatusResponse response;
    while (reader->Read(&response)) {
      sink_.update(response);
      std::lock_guard lock(mu_);
      last_message_ = Clock::now();
      for (const auto& vertex : response.vertexes()) {
        // The latest step to start, or to report while still running.
        if (vertex.has_started() && !vertex.has_completed() && !vertex.name().empty()) {
          phase_ = vertex.name();
        }
      }
    }
    (void)reader->Finish();  // "unknown job" when the solve failed early: not ours to report
    std::lock_guard lock(mu_);
    ended_ = true;
    cv_.notify_all();
  }

  ProgressSink& sink_;
  grpc::ClientContext context_;
  CancelGuard guard_;
  bk::StatusRequest request_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool ended_ = false;
  Clock::time_point last_message_ = Clock::now();
  std::string phase_;
  std::thread thread_;
};

}  // namespace

// ---- Client ----------------------------------------------------------------

namespace {

// The workers of a ListWorkers answer, platforms as "os/arch[/variant]".
std::vector<Worker> workers_of(const bk::ListWorkersResponse& response) {
  std::vector<Worker> workers;
  for (const auto& record : response.record()) {
    Worker worker;
    worker.id = record.id();
    for (const auto& platform : record.platforms()) {
      worker.platforms.push_back(platform_string(platform));
    }
    worker.labels.insert(record.labels().begin(), record.labels().end());
    for (const auto& policy : record.gcpolicy()) {
      GcRule rule;
      rule.all = policy.all();
      // keepDuration is nanoseconds on the wire (Go's time.Duration).
      rule.keep_duration = std::chrono::duration_cast<std::chrono::seconds>(
          std::chrono::nanoseconds(policy.keepduration()));
      rule.keep_bytes = policy.reservedspace();
      rule.filters.assign(policy.filters().begin(), policy.filters().end());
      worker.gc_policy.push_back(std::move(rule));
    }
    workers.push_back(std::move(worker));
  }
  return workers;
}

}  // namespace

struct Client::State {
  // Declared first, destroyed last: the channel runs over its socket.
  std::unique_ptr<TlsTunnel> tunnel;  // set for TLS transports
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<bk::Control::Stub> stub;
  bool reconnects = false;      // a plaintext target channel redials; an fd channel cannot
  bool unix_socket = false;     // the unix builder's socket (the Engine's is a common mistake)
  bool self_contained = false;  // the driver keeps nothing running for it
  std::vector<Worker> workers;  // what connect()'s probe listed (written before `probed`)
  Client::SessionDialer session_dialer;           // empty: every session is tunnelled
  std::atomic<bool> session_dial_refused{false};  // the dialer said unsupported once

  // The connect probe's outcome; for a concurrent probe also its thread, what
  // stops it (the client going away) and what it fires when it fails (every
  // solve on the client listens).
  mutable std::mutex probe_mu;
  mutable std::condition_variable probe_cv;
  bool probed = false;
  Status probe_status;
  CancelToken probe_stop;
  CancelToken probe_failed;
  CancelToken probe_done;  // fired once the probe ended, either way
  std::thread probe_thread;

  State() = default;
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  // Runs before the members go: the probe uses the channel and the stub.
  ~State() {
    if (probe_thread.joinable()) {
      probe_stop.cancel();
      probe_thread.join();
    }
  }

  void wait_probed() const {
    std::unique_lock lock(probe_mu);
    probe_cv.wait(lock, [this] { return probed; });
  }
  bool still_probing() const {
    std::lock_guard lock(probe_mu);
    return !probed;
  }
  // Whether the probe answered and what a solve `assumed` of the daemon's
  // workers does not hold for the ones it listed.
  bool refutes(const std::function<bool(const std::vector<Worker>&)>& assumed) const {
    std::lock_guard lock(probe_mu);
    return probe_status && !assumed(workers);
  }
};

Client::Client(std::unique_ptr<State> state) : state_(std::move(state)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

void Client::set_session_dialer(SessionDialer dialer) {
  state_->session_dialer = std::move(dialer);
}

const std::string& Client::address() const { return state_->address; }

namespace {

// Dials a TLS daemon until `end`, redialling while it refuses (it may still
// be starting); verification failures end at once.
// Sleeps for `pause` unless `cancel` fires first; false if it did.
bool pause_unless_cancelled(std::chrono::milliseconds pause, const CancelToken* cancel) {
  const auto end = Clock::now() + pause;
  while (Clock::now() < end) {
    if (cancel != nullptr && cancel->cancelled()) return false;
    std::this_thread::sleep_for(
        std::min<Clock::duration>(end - Clock::now(), std::chrono::milliseconds(20)));
  }
  return cancel == nullptr || !cancel->cancelled();
}

Result<std::unique_ptr<TlsTunnel>> dial_tls(const plugin::Transport& transport,
                                            Clock::time_point end,
                                            std::chrono::milliseconds deadline,
                                            const std::string& prefix, const CancelToken* cancel) {
  auto target = parse_tcp_target(transport.target);
  if (!target) return Error(target.error().code(), prefix + target.error().message());
  TlsSettings settings{transport.tls_ca_pem, transport.tls_cert_pem, transport.tls_key_pem,
                       transport.tls_server_name};
  auto backoff = std::chrono::milliseconds(50);
  std::optional<Error> earlier;  // the last retryable failure, for when the deadline cuts the next
  for (;;) {
    auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::max(end - Clock::now(), Clock::duration(std::chrono::milliseconds(1))));
    auto tunnel = TlsTunnel::dial(*target, settings, remaining,
                                  [cancel] { return cancel != nullptr && cancel->cancelled(); });
    if (tunnel) return tunnel;
    if (tunnel.error().code() == Errc::cancelled) return tunnel.error();
    // The last attempt, made with what was left of the deadline, says less
    // than the refusal before it.
    Error failure = tunnel.error().code() == Errc::timeout && earlier ? *earlier : tunnel.error();
    const bool retry = TlsTunnel::retryable(failure);
    if (retry) earlier = failure;
    // To the deadline itself, as probe_workers (below).
    const auto left = end - Clock::now();
    if (!retry || left <= std::chrono::milliseconds(5)) {
      std::string reason = failure.message();
      if (failure.code() == Errc::timeout) reason = "no answer within " + format_duration(deadline);
      if (retry) reason += " (retried for " + format_duration(deadline) + ")";
      return Error(failure.code(), prefix + reason);
    }
    if (!pause_unless_cancelled(
            std::min(backoff, std::chrono::ceil<std::chrono::milliseconds>(left)), cancel)) {
      break;
    }
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
  return Error(Errc::cancelled, prefix + "cancelled");
}

}  // namespace

std::string filter_excluding(const std::vector<Worker>& expected) {
  if (expected.size() != 1) return "";
  const std::string& id = expected.front().id;
  // Worker ids are BuildKit's random ids or "moby"; anything else is not
  // worth escaping for containerd's filter parser.
  auto plain = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
  };
  if (id.empty() || id.size() > 128 || !std::all_of(id.begin(), id.end(), plain)) return "";
  return "id!=\"" + id + "\"";
}

namespace {

// The probe: ListWorkers until the daemon answers (its workers go to
// `workers`), refuses for good, `end` passes, or `cancel` fires (its state
// passed too: the token's own is private to Client). Errors are connect()'s.
// With `expected` (see Client::connect), first only for the other workers.
// `unix_socket`: the address is a unix socket the user named (the unix
// builder), which a daemon closing the connection may not be buildkitd's.
Status probe_workers(bk::Control::Stub& stub, bool reconnects, bool unix_socket,
                     const TlsTunnel* tunnel, Security security, Clock::time_point end,
                     std::chrono::milliseconds deadline, const CancelToken* cancel,
                     CancelToken::State* cancel_state, const std::string& prefix,
                     const std::vector<Worker>& expected, std::vector<Worker>& workers) {
  auto backoff = std::chrono::milliseconds(50);
  grpc::Status earlier;  // the last failure that said why, for when the deadline cuts the next
  int drops = 0;         // consecutive connections the daemon accepted and dropped at once
  std::string filter = filter_excluding(expected);
  for (;;) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::max(end - Clock::now(), Clock::duration::zero())));
    bk::ListWorkersRequest request;
    if (!filter.empty()) request.add_filter(filter);
    bk::ListWorkersResponse response;
    grpc::Status status;
    if (cancel_state != nullptr) {
      CancelGuard guard(*cancel_state, [&context] { context.TryCancel(); });
      status = stub.ListWorkers(&context, request, &response);
    } else {
      status = stub.ListWorkers(&context, request, &response);
    }
    if (status.ok() && !filter.empty() && response.record_size() == 0) {
      workers = expected;
      return {};
    }
    if (status.ok() && filter.empty()) {
      workers = workers_of(response);
      return {};
    }
    // Another daemon than the expected one (its workers came back), or one
    // that would not take the filter (a parse error is InvalidArgument, or
    // Unknown from a daemon that did not wrap it): all its workers, at once.
    if (!filter.empty() &&
        (status.ok() || status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
         status.error_code() == grpc::StatusCode::UNKNOWN)) {
      filter.clear();
      continue;
    }
    if (cancel != nullptr && cancel->cancelled())
      return Error(Errc::cancelled, prefix + "cancelled");
    if (cut_by_deadline(status) && !earlier.ok()) status = earlier;
    const auto code = status.error_code();
    const bool retry = code == grpc::StatusCode::UNAVAILABLE && reconnects;
    if (retry) earlier = status;
    const bool dropped = code == grpc::StatusCode::UNAVAILABLE && dropped_by_daemon(status);
    // A TLS daemon that refuses the client certificate says so in an alert
    // after the handshake (TLS 1.3); the tunnel read it.
    const std::string tls_failure = tunnel != nullptr ? tunnel->failure() : std::string();
    // A starting daemon refuses connections; one that accepts and drops them
    // again and again wants something else (TLS, most likely).
    drops = dropped ? drops + 1 : 0;
    const bool permanent = permanent_failure(status) || !tls_failure.empty() || drops >= 3;
    // Retried to the deadline itself, the last pause cut to fit: giving up
    // when the next pause would cross it ended a 3 s wait after 2.3 s.
    const auto left = end - Clock::now();
    if (!retry || permanent || left <= std::chrono::milliseconds(5)) {
      std::string reason = reason_of(status, deadline);
      if (!tls_failure.empty()) {
        reason = tls_failure;
      } else if (dropped && security == Security::tls_without_client_cert) {
        reason =
            "the daemon dropped the connection after the TLS handshake: it probably "
            "requires a client certificate (set --builder-tls-cert and --builder-tls-key)";
      } else if (dropped && security == Security::mutual_tls) {
        reason =
            "the daemon dropped the connection after the TLS handshake: it probably "
            "rejected the client certificate (tls-cert must be signed by the CA the daemon "
            "trusts)";
      } else if (dropped && security == Security::plaintext && reconnects) {
        reason += " (does it expect TLS? set --builder-tls-ca)";
      } else if (unix_socket && (reason == "connection closed by the daemon" ||
                                 reason == "connection reset by the daemon")) {
        // The Docker Engine's socket closes a gRPC connection at once, and is
        // a common thing to point the unix builder at. (Not said for the
        // other connected sockets: a docker-container or kube-pod stream, or
        // the Engine's own /grpc, which are buildkitd's or the Engine's.)
        reason +=
            " (is it a buildkitd socket? the Docker Engine's socket is the moby-worker "
            "builder's)";
      }
      if (retry && !permanent) reason += " (retried for " + format_duration(deadline) + ")";
      return Error(code == grpc::StatusCode::DEADLINE_EXCEEDED ? Errc::timeout : errc_of(code),
                   prefix + reason);
    }
    if (!pause_unless_cancelled(
            std::min(backoff, std::chrono::ceil<std::chrono::milliseconds>(left)), cancel))
      return Error(Errc::cancelled, prefix + "cancelled");
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
}

}  // namespace

Result<Client> Client::connect(plugin::Transport transport, std::chrono::milliseconds deadline,
                               const CancelToken* cancel, Probe probe,
                               std::vector<Worker> expected) {
  auto state = std::make_unique<State>();
  state->address = transport.description.empty() ? transport.target : transport.description;
  state->reconnects = transport.kind == ENVD_TRANSPORT_GRPC_TARGET;
  state->unix_socket = !state->reconnects && state->address.rfind("unix://", 0) == 0;
  state->self_contained = transport.self_contained;
  const Security security = security_of(transport);
  install_grpc_log_filter();
  const std::string prefix = "cannot connect to buildkitd at " + state->address + ": ";
  const auto start = Clock::now();
  const auto end = start + deadline;

  if (security != Security::plaintext) {
    auto tunnel = dial_tls(transport, end, deadline, prefix, cancel);
    if (!tunnel) return tunnel.error();
    state->tunnel = std::move(*tunnel);
    plugin::Transport plain;
    plain.kind = ENVD_TRANSPORT_FD;
    plain.fd = state->tunnel->release_fd();
    plain.description = transport.description;
    transport = std::move(plain);
    state->reconnects = false;
  }
  auto channel = make_channel(transport, deadline);
  if (!channel) return channel.error();
  state->channel = std::move(*channel);
  state->stub = bk::Control::NewStub(state->channel);
  util::StepTimes::global().mark("channel created");

  if (probe == Probe::wait) {
    auto probed = probe_workers(*state->stub, state->reconnects, state->unix_socket,
                                state->tunnel.get(), security, end, deadline, cancel,
                                cancel != nullptr ? cancel->state_.get() : nullptr, prefix,
                                expected, state->workers);
    if (!probed) return probed.error();
    state->probed = true;
    state->probe_done.cancel();
    return Client(std::move(state));
  }
  State* raw = state.get();
  std::optional<CancelToken> user_cancel;
  if (cancel != nullptr) user_cancel = *cancel;
  raw->probe_thread = std::thread([raw, user_cancel, security, end, deadline, prefix,
                                   expected = std::move(expected)] {
    // Ctrl-C ends the probe as it ends the solve; so does the client going away.
    std::optional<CancelGuard> forward;
    if (user_cancel) forward.emplace(*user_cancel->state_, [raw] { raw->probe_stop.cancel(); });
    Status outcome = probe_workers(*raw->stub, raw->reconnects, raw->unix_socket, raw->tunnel.get(),
                                   security, end, deadline, &raw->probe_stop,
                                   raw->probe_stop.state_.get(), prefix, expected, raw->workers);
    forward.reset();
    if (outcome) util::StepTimes::global().mark("probe answered");
    {
      std::lock_guard lock(raw->probe_mu);
      raw->probe_status = outcome;
      raw->probed = true;
    }
    raw->probe_cv.notify_all();
    if (!outcome) raw->probe_failed.cancel();
    raw->probe_done.cancel();
  });
  return Client(std::move(state));
}

Result<DaemonInfo> Client::info(std::chrono::milliseconds deadline) {
  const std::string prefix = "cannot query buildkitd at " + state_->address + ": ";
  DaemonInfo info;
  {
    grpc::ClientContext context;
    context.set_deadline(deadline_after(deadline));
    bk::InfoRequest request;
    bk::InfoResponse response;
    grpc::Status status = state_->stub->Info(&context, request, &response);
    if (status.ok()) {
      info.version = response.buildkitversion().version();
    } else if (status.error_code() != grpc::StatusCode::UNIMPLEMENTED) {
      return Error(errc_of(status.error_code()), prefix + reason_of(status, deadline));
    }
  }
  grpc::ClientContext context;
  context.set_deadline(deadline_after(deadline));
  bk::ListWorkersRequest request;
  bk::ListWorkersResponse response;
  grpc::Status status = state_->stub->ListWorkers(&context, request, &response);
  if (!status.ok()) {
    return Error(errc_of(status.error_code()), prefix + reason_of(status, deadline));
  }
  info.workers = workers_of(response);
  return info;
}

const std::vector<Worker>& Client::workers() const {
  state_->wait_probed();
  return state_->workers;
}

bool Client::self_contained() const { return state_->self_contained; }

bool Client::wait_until_connected(const CancelToken& ends) const {
  // A channel over a driver's socket is connected from the start (and gRPC
  // keeps no connectivity state for it); only a target channel dials.
  if (!state_->reconnects) return true;
  const auto& channel = state_->channel;
  auto seen = channel->GetState(true);
  while (seen != GRPC_CHANNEL_READY) {
    if (ends.cancelled() || !state_->still_probing()) {
      // A probe that answered saw the connection up; it may have gone since,
      // which the calls will say.
      return !ends.cancelled() && probe_status();
    }
    if (seen == GRPC_CHANNEL_SHUTDOWN) return false;
    channel->WaitForStateChange(seen,
                                std::chrono::system_clock::now() + std::chrono::milliseconds(20));
    seen = channel->GetState(true);
  }
  return true;
}

bool Client::probe_ended() const { return !state_->still_probing(); }

Status Client::probe_status() const {
  state_->wait_probed();
  std::lock_guard lock(state_->probe_mu);
  return state_->probe_status;
}

Result<SolveResult> Client::solve(const SolveRequest& request,
                                  const std::vector<Attachable*>& attachables,
                                  ProgressSink& progress, const CancelToken& cancel) {
  const std::string& address = state_->address;
  if (cancel.cancelled()) {
    progress.cancelled();
    progress.done();
    return Error(Errc::cancelled, "build on " + address + " cancelled");
  }
  // Every call of this solve ends when the caller cancels or, while a
  // concurrent probe runs, when the probe fails (connect() says why).
  CancelToken ends;
  CancelToken::State& cancel_state = *ends.state_;
  CancelGuard on_cancel(*cancel.state_, [ends]() mutable { ends.cancel(); });
  CancelGuard on_probe_failure(*state_->probe_failed.state_, [ends]() mutable { ends.cancel(); });
  // A remembered answer the probe refutes ends the solve as well: its
  // exports were planned for another daemon. Checked when the probe ends (at
  // once when it already has); a failed probe cancels the solve by itself.
  std::optional<CancelGuard> on_probe_done;
  if (request.assumed_workers) {
    on_probe_done.emplace(*state_->probe_done.state_, [this, &request, ends]() mutable {
      if (state_->refutes(request.assumed_workers)) ends.cancel();
    });
  }
  // Whether the solve failed because of that: the daemon may refuse the
  // exports before the probe has answered, so this waits for the probe.
  auto refuted_error = [&]() -> std::optional<Error> {
    if (!request.assumed_workers) return std::nullopt;
    state_->wait_probed();
    if (!state_->refutes(request.assumed_workers)) return std::nullopt;
    return Error(Errc::unavailable, "buildkitd at " + address +
                                        " is not the daemon this build was planned for "
                                        "(its workers changed since the last build)");
  };
  // The probe's error, when it failed: the better account of a failure.
  auto probe_failure = [this]() -> std::optional<Error> {
    if (!state_->probe_thread.joinable()) return std::nullopt;
    Status probed = probe_status();
    if (probed || probed.error().code() == Errc::cancelled) return std::nullopt;
    return probed.error();
  };
  SessionOptions options;
  options.id = random_id();
  options.name = request.session_name.empty() ? "envd" : request.session_name;
  options.shared_key = request.session_shared_key;
  options.address = address;
  // A driver's session connection is the longest step before the daemon
  // can use the session, so it is dialled first, on a thread of its own,
  // while the Solve goes out and the session's server is built.
  // The future owns the connection until it is taken, so any early return
  // below closes it (once the dial, bounded by the dialer's deadline, ended).
  std::future<Result<util::UniqueFd>> session_connection;
  if (state_->session_dialer && !state_->session_dial_refused.load()) {
    plugin::SessionSpec spec{options.id, options.name, options.shared_key,
                             Session::advertised_methods(attachables)};
    session_connection = std::async(std::launch::async, [this, spec = std::move(spec)] {
      return state_->session_dialer(spec);
    });
  }
  // While the probe runs, the calls wait for the connection itself (not for
  // the probe's answer): a daemon that is still starting refuses, and a call
  // sent then would fail at once where the probe redials.
  if (!wait_until_connected(ends)) {
    if (cancel.cancelled()) progress.cancelled();
    progress.done();
    if (cancel.cancelled()) return Error(Errc::cancelled, "build on " + address + " cancelled");
    if (auto failure = probe_failure()) return *failure;
    if (auto refuted_by_probe = refuted_error()) return *refuted_by_probe;
    return Error(Errc::unavailable, "cannot connect to buildkitd at " + address);
  }

  bk::SolveRequest solve;
  solve.set_ref(random_id());
  solve.set_session(options.id);
  solve.set_frontend(request.frontend);
  solve.mutable_frontendattrs()->insert(request.frontend_attrs.begin(),
                                        request.frontend_attrs.end());
  if (!request.definition.empty() &&
      !solve.mutable_definition()->ParseFromString(request.definition)) {
    progress.done();
    return Error(Errc::invalid_argument, "the LLB definition for " + address + " is malformed");
  }
  for (const auto& entitlement : request.entitlements) solve.add_entitlements(entitlement);
  for (const auto& entry : request.cache_exports) {
    auto* out = solve.mutable_cache()->add_exports();
    out->set_type(entry.type);
    out->mutable_attrs()->insert(entry.attrs.begin(), entry.attrs.end());
  }
  if (!request.cache_imports.empty()) {
    boost::json::array imports;
    for (const auto& entry : request.cache_imports) {
      auto* in = solve.mutable_cache()->add_imports();
      in->set_type(entry.type);
      in->mutable_attrs()->insert(entry.attrs.begin(), entry.attrs.end());
      boost::json::object attrs;
      for (const auto& [key, value] : entry.attrs) attrs[key] = value;
      imports.push_back(boost::json::object{{"Type", entry.type}, {"Attrs", std::move(attrs)}});
    }
    // The frontend resolves the imports itself (the key and the JSON field
    // names are those of BuildKit's client, which marshals CacheOptionsEntry).
    if (!request.frontend.empty()) {
      (*solve.mutable_frontendattrs())["cache-imports"] = boost::json::serialize(imports);
    }
  }
  // Daemons before v0.13 read only the first exporter from fields 3/4; newer
  // ones read the list (field 13) and ignore 3/4 when it is set.
  for (size_t i = 0; i < request.exports.size(); ++i) {
    const Export& e = request.exports[i];
    if (i == 0) {
      solve.set_exporter(e.type);
      solve.mutable_exporterattrs()->insert(e.attrs.begin(), e.attrs.end());
    }
    auto* exporter = solve.add_exporters();
    exporter->set_type(e.type);
    exporter->mutable_attrs()->insert(e.attrs.begin(), e.attrs.end());
  }

  // Builds the session's server and serves it on the driver's connection,
  // when it dialled one, or through the tunnel.
  std::unique_ptr<Session> session;
  bool direct = false;
  auto open_session = [&]() -> Status {
    auto prepared = Session::prepare(attachables, options);
    if (!prepared) return prepared.error();
    session = std::move(*prepared);
    if (session_connection.valid()) {
      Result<util::UniqueFd> connection = session_connection.get();
      if (connection) {
        direct = true;
        return session->open_direct(std::move(*connection));
      }
      if (connection.error().code() == Errc::cancelled) {
        return Error(Errc::cancelled, "build on " + address + " cancelled");
      }
      if (connection.error().code() != Errc::unsupported) {
        return Error(connection.error().code(), "cannot open a session to buildkitd at " + address +
                                                    ": " + connection.error().message());
      }
      // The daemon (or the driver) has no such route: tunnel from now on.
      state_->session_dial_refused = true;
    }
    return session->open(state_->channel);
  };

  grpc::Status status;
  bk::SolveResponse response;
  std::string phase;
  Status opened;
  std::optional<std::string> session_lost;
  {
    StatusFollower follower(*state_->stub, solve.ref(), progress, cancel_state);
    grpc::ClientContext context;
    CancelGuard guard(cancel_state, [&context] { context.TryCancel(); });
    // The Solve goes out before the session is open, as BuildKit's own
    // client sends it (the two run side by side): the daemon waits for the
    // session the Solve names when the build first needs it (up to 5 s,
    // session.Manager.Get), and the session's server and connection take a
    // few milliseconds more. If the session cannot be opened, the Solve is
    // cancelled and the session's failure reported.
    // The promise is shared with gRPC's callback, which may still be
    // returning on gRPC's thread when the future is ready.
    auto done = std::make_shared<std::promise<grpc::Status>>();
    std::future<grpc::Status> solved = done->get_future();
    util::StepTimes::global().mark("first Solve byte");
    state_->stub->async()->Solve(&context, &solve, &response,
                                 [done](grpc::Status s) { done->set_value(std::move(s)); });
    opened = open_session();
    if (opened) {
      util::StepTimes::global().mark(direct ? "session connected" : "session started");
      Session* raw_session = session.get();
      CancelGuard session_guard(cancel_state, [raw_session] { raw_session->cancel(); });
      status = solved.get();
      // Before close(), which ends the connection itself: a session
      // connection that died under the build explains its failure better
      // than the daemon's word for it (often just "EOF").
      if (!status.ok()) session_lost = session->connection_lost();
    } else {
      context.TryCancel();
      status = solved.get();
    }
    if (session) session->close();
    // After a failure the stream may never have started; don't wait long,
    // and not at all for a Solve this client cancelled itself.
    follower.finish(!opened       ? std::chrono::seconds(0)
                    : status.ok() ? std::chrono::seconds(5)
                                  : std::chrono::seconds(1));
    phase = follower.phase();
  }
  // A Ctrl-C after the daemon's answer cancelled nothing: the build stands.
  if (cancel.cancelled() && (!opened || !status.ok())) progress.cancelled();
  progress.done();
  if (!opened) {
    if (cancel.cancelled()) return Error(Errc::cancelled, "build on " + address + " cancelled");
    if (auto failure = probe_failure()) return *failure;
    if (auto refuted_by_probe = refuted_error()) return *refuted_by_probe;
    return opened.error();
  }

  if (status.ok()) {
    SolveResult result;
    result.exporter_response.insert(response.exporterresponse().begin(),
                                    response.exporterresponse().end());
    return result;
  }
  if (cancel.cancelled()) return Error(Errc::cancelled, "build on " + address + " cancelled");
  if (auto failure = probe_failure()) return *failure;
  if (auto refuted_by_probe = refuted_error()) return *refuted_by_probe;
  if (session_lost) {
    return Error(Errc::unavailable,
                 "lost the session's connection to buildkitd at " + address +
                     (phase.empty() ? " before the build's first step"
                                    : " during '" + util::printable(phase, 80) + "'") +
                     ": " + *session_lost);
  }
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      return Error(Errc::unavailable,
                   "lost the connection to buildkitd at " + address +
                       (phase.empty() ? " before the build's first step"
                                      : " during '" + util::printable(phase, 80) + "'") +
                       ": " + unavailable_reason(status));
    case grpc::StatusCode::CANCELLED:
      // Not this envd (its cancel was checked above): the daemon ended the
      // build itself, as buildkitd does when it stops. A failure, not the
      // user's Ctrl-C.
      return Error(Errc::unavailable,
                   "buildkitd at " + address + " cancelled the build" +
                       (phase.empty() ? " before its first step"
                                      : " during '" + util::printable(phase, 80) + "'") +
                       ": " +
                       (status.error_message().empty() ? "cancelled" : status.error_message()) +
                       " (not envd: is the daemon stopping?)");
    default:
      return Error(errc_of(status.error_code()),
                   status.error_message().empty() ? "the build failed on " + address
                                                  : without_grpc_wrapping(status.error_message()));
  }
}

// ---- prune -----------------------------------------------------------------

namespace {

bk::PruneRequest make_prune_request(const PruneOptions& options) {
  bk::PruneRequest request;
  request.set_all(options.all);
  request.set_keepduration(options.keep_duration.count());
  // Field 4 is keepBytes before BuildKit v0.17 and reservedSpace since: the
  // same meaning, the amount of cache to keep.
  request.set_reservedspace(options.keep_bytes);
  for (const auto& filter : options.filters) request.add_filter(filter);
  return request;
}

}  // namespace

std::string Client::prune_request_bytes(const PruneOptions& options) {
  return make_prune_request(options).SerializeAsString();
}

Result<PruneResult> Client::prune(const PruneOptions& options, std::chrono::milliseconds deadline,
                                  const CancelToken& cancel) {
  const std::string prefix = "cannot prune the cache of buildkitd at " + state_->address + ": ";
  grpc::ClientContext context;
  context.set_deadline(deadline_after(deadline));
  CancelGuard guard(*cancel.state_, [&context] { context.TryCancel(); });
  auto reader = state_->stub->Prune(&context, make_prune_request(options));
  PruneResult result;
  bk::UsageRecord record;
  while (reader->Read(&record)) {
    ++result.records;
    result.reclaimed_bytes += record.size();
  }
  grpc::Status status = reader->Finish();
  if (cancel.cancelled()) return Error(Errc::cancelled, "prune cancelled");
  if (!status.ok()) {
    return Error(errc_of(status.error_code()), prefix + reason_of(status, deadline));
  }
  return result;
}

}  // namespace envd::buildkit
