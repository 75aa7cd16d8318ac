// HTTP framing with the Engine: requests with a JSON or chunked body, whole
// and streamed answers, the hijack of a connection, and the daemon's errors.
#include "engine_connection.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "envd/text.hpp"

namespace envd::sdk::engine {
namespace {

constexpr std::size_t kMaxHeadBytes = std::size_t{64} * 1024;
constexpr std::size_t kStreamBuffer = std::size_t{64} * 1024;

// Whether `head` ends with the blank line that closes an HTTP head.
bool ends_head(const std::string& head) {
  return head.size() >= 4 && head.compare(head.size() - 4, 4, "\r\n\r\n") == 0;
}

Errc code_for_status(int status) {
  switch (status) {
    case 400:
      return Errc::invalid_argument;
    case 401:
    case 403:
      return Errc::permission;
    case 404:
      return Errc::not_found;
    case 409:
      return Errc::already_exists;
    default:
      return Errc::internal;
  }
}

// The daemon's explanation of a failed call: the "message" of its JSON error
// body. The daemon's words are quoted printably: they are one line, and never
// drive a terminal.
std::string daemon_message(std::string_view request, int status, std::string_view body) {
  error_code ec;
  auto value = boost::json::parse(body, ec);
  if (!ec && value.is_object()) {
    if (auto* message = value.as_object().if_contains("message"); message && message->is_string())
      return printable(message->as_string());
  }
  // Not the Engine API's error: what answered is named by the request and
  // the status, with a short line of text quoted ("404 page not found"); a
  // page of HTML or many lines (a proxy's, a web server's) is not.
  std::string_view text = body;
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  std::string said = printable(request, 200) + ": HTTP status " + std::to_string(status);
  if (text.empty()) return said + " with no explanation";
  if (text.front() == '<') return said + " and an HTML page, not the Engine API's error";
  if (text.size() > 200 || text.find('\n') != std::string_view::npos) {
    return said + " and " + std::to_string(body.size()) +
           " bytes of text, not the Engine API's error";
  }
  return said + ": " + printable(text);
}

}  // namespace

Error answer_error(const std::string& url, std::string_view request, int status,
                   std::string_view body) {
  return Error(code_for_status(status),
               "the Docker Engine at " + url + ": " + daemon_message(request, status, body));
}

bool Delivery::put(std::string_view data) {
  if (data.empty()) return true;
  if (mode_ == StreamMode::chunks) return callback_(data);
  pending_.append(data);
  std::size_t start = 0;
  for (auto nl = pending_.find('\n'); nl != std::string::npos; nl = pending_.find('\n', start)) {
    std::string_view line(pending_.data() + start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    start = nl + 1;
    if (!callback_(line)) return false;
  }
  pending_.erase(0, start);
  return true;
}

bool Delivery::finish() {
  if (mode_ == StreamMode::chunks || pending_.empty()) return true;
  std::string rest = std::move(pending_);
  pending_.clear();
  return callback_(rest);
}

Error Connection::status_error(std::string_view what, int status, std::string_view body) const {
  return answer_error(endpoint_.url, what, status, body);
}

Error Connection::cancelled(std::string_view what) const {
  return Error(Errc::cancelled, "reading the answer of the Docker Engine at " + endpoint_.url +
                                    " to " + std::string(what) + " was stopped by the caller");
}

template <typename Body>
void Connection::prepare(http::request<Body>& req, std::string_view method,
                         const std::string& target) {
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(http::field::host, "docker");
  req.set(http::field::user_agent, "envd");
}

// Writes a request with an optional JSON body; a non-empty `upgrade` asks
// for Connection: Upgrade to that protocol.
Status Connection::send(std::string_view method, const std::string& target,
                        std::string_view body_json, const EngineHeaders& headers,
                        std::string_view upgrade, std::string_view what) {
  http::request<http::string_body> req;
  prepare(req, method, target);
  for (const auto& [name, value] : headers) req.insert(name, value);
  if (!upgrade.empty()) {
    req.set(http::field::connection, "Upgrade");
    req.set(http::field::upgrade, upgrade);
  }
  if (!body_json.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = std::string(body_json);
  }
  req.prepare_payload();
  if (auto ec = io([&](auto& s, auto h) { http::async_write(s, req, std::move(h)); })) {
    return write_error(ec, what);
  }
  return {};
}

// A failed write. A TLS daemon that refused the client certificate after
// the handshake has sent an alert and closed, so the write meets a reset;
// the alert, still in the receive queue, says why.
Error Connection::write_error(error_code ec, std::string_view what) {
  if (tls_ && (ec == asio::error::connection_reset || ec == asio::error::broken_pipe)) {
    char byte = 0;
    auto alert = run([&](auto h) { tls_->async_read_some(asio::buffer(&byte, 1), std::move(h)); });
    if (alert.category() == asio::error::get_ssl_category()) return tls_error(alert);
  }
  return io_error(ec, what);
}

Result<EngineResponse> Connection::exchange(std::string_view method, const std::string& target,
                                            std::string_view body_json,
                                            const EngineHeaders& headers, std::string_view what,
                                            std::string* api_version) {
  if (auto sent = send(method, target, body_json, headers, "", what); !sent) {
    return sent.error();
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  if (auto ec = io([&](auto& s, auto h) { http::async_read(s, buffer_, parser, std::move(h)); })) {
    return io_error(ec, what);
  }
  auto& res = parser.get();
  if (api_version) *api_version = std::string(res["Api-Version"]);
  return EngineResponse{static_cast<int>(res.result_int()), std::move(res.body()),
                        std::string(what)};
}

// Reads a response and streams a 2xx body to `delivery`.
Result<int> Connection::read_streamed(Delivery& delivery, std::string_view what) {
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  if (auto ec =
          io([&](auto& s, auto h) { http::async_read_header(s, buffer_, parser, std::move(h)); })) {
    return io_error(ec, what);
  }
  int status = static_cast<int>(parser.get().result_int());
  if (status < 200 || status > 299) {
    http::response_parser<http::string_body> whole(std::move(parser));
    if (!whole.is_done()) {
      if (auto ec =
              io([&](auto& s, auto h) { http::async_read(s, buffer_, whole, std::move(h)); })) {
        return io_error(ec, what);
      }
    }
    return status_error(what, status, whole.get().body());
  }
  std::vector<char> chunk(kStreamBuffer);
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    // read_some, not read: read waits until the buffer is full or the body
    // ends, so a live stream (followed logs, events, a push's progress)
    // reached the caller only 64 KiB at a time, or at its end.
    auto ec = io([&](auto& s, auto h) { http::async_read_some(s, buffer_, parser, std::move(h)); });
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return io_error(ec, what);
    std::size_t n = chunk.size() - parser.get().body().size;
    if (n > 0 && !delivery.put(std::string_view(chunk.data(), n))) return cancelled(what);
  }
  if (!delivery.finish()) return cancelled(what);
  return status;
}

Result<int> Connection::stream(std::string_view method, const std::string& target,
                               std::string_view body_json, const EngineHeaders& headers,
                               Delivery& delivery, std::string_view what) {
  if (auto sent = send(method, target, body_json, headers, "", what); !sent) {
    return sent.error();
  }
  return read_streamed(delivery, what);
}

Result<int> Connection::upload(std::string_view method, const std::string& target,
                               std::string_view content_type, const EngineBodySource& source,
                               Delivery& delivery, std::string_view what) {
  http::request<http::buffer_body> req;
  prepare(req, method, target);
  req.set(http::field::content_type, content_type);
  req.chunked(true);
  req.body().data = nullptr;
  req.body().more = true;
  http::request_serializer<http::buffer_body> serializer(req);
  auto ec = io([&](auto& s, auto h) { http::async_write_header(s, serializer, std::move(h)); });
  std::vector<char> chunk(kStreamBuffer);
  while (!ec) {
    auto n = source(chunk.data(), chunk.size());
    if (!n) return n.error();
    req.body().data = *n ? chunk.data() : nullptr;
    req.body().size = *n;
    req.body().more = *n != 0;
    ec = io([&](auto& s, auto h) { http::async_write(s, serializer, std::move(h)); });
    if (ec == http::error::need_buffer) ec = {};
    if (*n == 0) break;
  }
  if (ec) {
    // The daemon may have refused the body early; its answer says why.
    if (ec != beast::error::timeout && stream_.socket().is_open()) {
      auto answer = read_streamed(delivery, what);
      if (!answer) return answer.error();
    }
    return io_error(ec, what);
  }
  return read_streamed(delivery, what);
}

// Appends to `head` what has already arrived of it on the plain socket, up to
// and including its blank line, never past it: a peek finds where the head
// ends, and only that much is read. The 101 answer to an upgrade comes in
// one segment, so after its first byte the rest takes two system calls where
// reading byte by byte through the event loop took one asynchronous
// operation per byte (about 150). A
// transport that cannot peek (not a socket) leaves `head` as it was, and the
// caller goes on a byte at a time.
void Connection::take_arrived_head(std::string& head) {
  const int fd = stream_.socket().native_handle();
  std::array<char, 4096> peeked{};
  std::size_t room = std::min(peeked.size(), kMaxHeadBytes - std::min(head.size(), kMaxHeadBytes));
  ssize_t n = ::recv(fd, peeked.data(), room, MSG_PEEK | MSG_DONTWAIT);
  if (n <= 0) return;
  // The blank line may begin in what `head` already holds (up to 3 bytes).
  std::size_t carried = std::min<std::size_t>(head.size(), 3);
  std::string joined = head.substr(head.size() - carried);
  joined.append(peeked.data(), static_cast<std::size_t>(n));
  std::size_t end = joined.find("\r\n\r\n");
  std::size_t take = end == std::string::npos ? static_cast<std::size_t>(n) : end + 4 - carried;
  ssize_t got = ::recv(fd, peeked.data(), take, MSG_DONTWAIT);
  if (got > 0) head.append(peeked.data(), static_cast<std::size_t>(got));
}

// Sends an upgrade request and reads the answer's head; on 101/200 the
// connection is left with nothing of the upgraded protocol consumed.
Status Connection::hijack(std::string_view method, const std::string& target,
                          std::string_view body_json, const EngineHeaders& headers,
                          std::string_view protocol, std::string_view what) {
  if (auto sent = send(method, target, body_json, headers, protocol, what); !sent) {
    return sent.error();
  }
  // Everything after the head's blank line belongs to the upgraded protocol
  // and must stay in the socket, so the head is never over-read: one byte is
  // awaited (under the deadline), then the rest that has arrived is taken up
  // to the blank line (take_arrived_head). Over TLS the bytes come from the
  // TLS layer's buffer one at a time, which costs no system call.
  std::string head;
  char byte = 0;
  while (!ends_head(head)) {
    if (head.size() >= kMaxHeadBytes) {
      return Error(Errc::internal, "the Docker Engine at " + endpoint_.url +
                                       " sent a response head over 64 KiB to " + std::string(what));
    }
    auto ec = io([&](auto& s, auto h) { s.async_read_some(asio::buffer(&byte, 1), std::move(h)); });
    if (ec) return io_error(ec, what);
    head.push_back(byte);
    if (!tls_ && !ends_head(head)) take_arrived_head(head);
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  parser.eager(false);
  error_code ec;
  parser.put(asio::buffer(head), ec);
  if (ec && ec != http::error::need_more) return io_error(ec, what);
  if (!parser.is_header_done()) return io_error(http::error::partial_message, what);
  int status = static_cast<int>(parser.get().result_int());
  if (status == 101 || status == 200) return {};
  if (!parser.is_done()) {
    if (auto e = io([&](auto& s, auto h) { http::async_read(s, buffer_, parser, std::move(h)); })) {
      return io_error(e, what);
    }
  }
  return status_error(what, status, parser.get().body());
}

// After a plain hijack(): the socket itself, blocking, owned by the caller.
// Nothing may be buffered: the parser was only ever given the head.
Result<int> Connection::take_socket() {
  stream_.expires_never();
  error_code ec;
  auto socket = stream_.release_socket();
  int fd = socket.release(ec);
  if (ec) return Error(Errc::internal, "cannot take over the hijacked socket: " + ec.message());
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
    int saved = errno;
    ::close(fd);
    return Error(Errc::internal,
                 std::string("cannot make the hijacked socket blocking: ") + std::strerror(saved));
  }
  return fd;
}

}  // namespace envd::sdk::engine
