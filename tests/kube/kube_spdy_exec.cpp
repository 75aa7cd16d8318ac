// The SPDY/3.1 side of an exec, as the kubelet's remotecommand server (on
// moby/spdystream) serves it behind the apiserver's proxy: the client opens
// one stream per purpose, named by its "streamtype" header (error, stdin,
// stdout, stderr, resize), each answered with a SYN_REPLY without headers;
// the command starts once as many streams as the kubelet counts have come;
// stdin is the stdin stream's DATA until its FIN, output goes out as DATA on
// stdout and stderr; the end is a Status on the error stream (JSON for v4, the
// message of a failure for v3 and older), then RST_STREAM CANCEL on every
// stream not yet closed from our side and GOAWAY.
//
// Flow control: spdystream, on both ends of a real exec, neither sends
// WINDOW_UPDATE nor keeps to a window, so a peer that did would stall after
// 64 KiB; like the kubelet this server sends none and waits for none, and
// checks the WINDOW_UPDATE and SETTINGS it gets only for their form.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <deque>
#include <map>
#include <memory>

#include "kube_exec.hpp"
#include "kube_spdy.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace json = boost::json;

namespace envd::test::kube {
namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);
// The kubelet's DefaultStreamCreationTimeout.
constexpr auto kStreamCreationTimeout = std::chrono::seconds(30);
// After GOAWAY, how long the client has to hang up before we do.
constexpr auto kHangUpGrace = std::chrono::seconds(5);

template <class Stream>
class SpdyConnection final : public ExecConnection {
 public:
  SpdyConnection(Stream& stream, beast::flat_buffer& buffer, const ExecPlan& plan,
                 const asio::any_io_executor& ex)
      : stream_(stream), buffer_(buffer), plan_(plan), lock_(ex, 1), deadline_(ex) {}
  SpdyConnection(const SpdyConnection&) = delete;
  SpdyConnection& operator=(const SpdyConnection&) = delete;
  ~SpdyConnection() override { deadline_.cancel(); }

  // Answers the client's streams until as many as the kubelet waits for
  // have come: error, plus stdin, stdout and stderr as the plan has them,
  // plus resize for a tty (v3 and v4). "" once they have; else why not.
  asio::awaitable<std::string> accept_streams() {
    int expected = 1 + (plan_.use_stdin ? 1 : 0) + (plan_.use_stdout ? 1 : 0) +
                   (plan_.use_stderr ? 1 : 0) + (plan_.tty && resizable() ? 1 : 0);
    arm(kStreamCreationTimeout);
    while (received_ < expected) {
      spdy::Frame frame;
      std::optional<spdy::FrameError> error;
      if (!co_await read_frame(frame, error)) {
        deadline_.cancel();
        if (!protocol_error_.empty()) co_return "the client broke SPDY: " + protocol_error_;
        co_return expired_ ? "timed out waiting for client to create streams"
                           : "the client left before it created its streams";
      }
      co_await handle(frame, error);
    }
    deadline_.cancel();
    if (plan_.channel == Channel::v1) {
      // What 1.0 kubelets did, and v1 keeps: the error stream is reset at
      // once, and stdin closed from our side.
      if (error_id_ != 0) co_await reset(error_id_, spdy::RstStatus::cancel);
      if (stdin_id_ != 0 && !streams_[stdin_id_].reset) {
        streams_[stdin_id_].local_closed = true;
        co_await write(encoder_.data(stdin_id_, "", true));
      }
    }
    co_return "";
  }

  asio::awaitable<Input> receive() override {
    for (;;) {
      if (!pending_.empty()) {
        Input in = std::move(pending_.front());
        pending_.pop_front();
        co_return in;
      }
      spdy::Frame frame;
      std::optional<spdy::FrameError> error;
      if (!co_await read_frame(frame, error)) co_return Input{};
      co_await handle(frame, error);
    }
  }

  asio::awaitable<bool> send(int fd, std::string_view data) override {
    std::uint32_t id = fd == 1 ? stdout_id_ : fd == 2 ? stderr_id_ : 0;
    if (id == 0) co_return true;
    const StreamState& s = streams_[id];
    if (s.reset || s.local_closed) co_return true;  // the client reset it: dropped
    co_return co_await write(encoder_.data(id, data, false));
  }

  asio::awaitable<void> finish(const json::object& status) override {
    if (error_id_ != 0 && !streams_[error_id_].reset && !streams_[error_id_].local_closed) {
      std::string payload;
      if (plan_.channel == Channel::v4) {
        payload = json::serialize(status);
      } else if (status.at("status").as_string() != "Success") {
        payload = std::string(status.at("message").as_string());
      }
      if (!payload.empty()) co_await write(encoder_.data(error_id_, payload, false));
    }
    co_await hang_up();
  }

  // Resets every stream not closed from our side, says GOAWAY and gives the
  // client kHangUpGrace to close the connection (receive() then says gone).
  asio::awaitable<void> hang_up() {
    for (auto& [id, s] : streams_) {
      if (!s.reset && !s.local_closed) co_await reset(id, spdy::RstStatus::cancel);
    }
    if (!goaway_sent_) {
      goaway_sent_ = true;
      co_await write(encoder_.goaway(last_client_id_, spdy::GoAwayStatus::ok));
    }
    arm(kHangUpGrace);
  }

  // Reads until the client has gone.
  asio::awaitable<void> drain() {
    for (;;) {
      Input in = co_await receive();
      if (in.kind == Input::Kind::gone) break;
    }
  }

  // How the client broke the protocol, if it did (the session then ended).
  const std::string& protocol_error() const { return protocol_error_; }

 private:
  struct StreamState {
    std::string type;            // its streamtype header
    bool remote_closed = false;  // the client sent FIN
    bool local_closed = false;   // we sent FIN
    bool reset = false;          // reset by either side: what comes for it is ignored
    std::unique_ptr<json::stream_parser> sizes;  // the resize stream's JSON values
  };

  bool resizable() const { return plan_.channel == Channel::v4 || plan_.channel == Channel::v3; }

  // On expiry the socket's pending operations are cancelled (and no new read starts).
  void arm(std::chrono::seconds after) {
    expired_ = false;
    deadline_.expires_after(after);
    deadline_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      expired_ = true;
      boost::system::error_code ignored;
      beast::get_lowest_layer(stream_).socket().cancel(ignored);
    });
  }

  asio::awaitable<bool> write(std::string frame) {
    if (!writable_) co_return false;
    co_await lock_.async_send(boost::system::error_code{}, kUse);
    auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(frame), kUse);
    lock_.try_receive([](boost::system::error_code) {});
    (void)n;
    if (ec) writable_ = false;
    co_return !ec;
  }

  // The next frame, or false once the connection has ended (the client
  // hung up, the deadline passed, or the client broke the protocol).
  asio::awaitable<bool> read_frame(spdy::Frame& frame, std::optional<spdy::FrameError>& error) {
    for (;;) {
      if (broken_ || expired_) co_return false;
      auto bytes = buffer_.data();
      std::string_view view(static_cast<const char*>(bytes.data()), bytes.size());
      std::size_t used = decoder_.decode(view, &frame, &error);
      if (used > 0) {
        buffer_.consume(used);
        if (error && error->session) {
          co_await session_error(error->message);
          co_return false;
        }
        co_return true;
      }
      auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(64 * 1024), kUse);
      if (ec) {
        broken_ = true;
        co_return false;
      }
      buffer_.commit(n);
    }
  }

  // GOAWAY PROTOCOL_ERROR, and the connection is done with.
  asio::awaitable<void> session_error(const std::string& message) {
    broken_ = true;
    protocol_error_ = message;
    if (!goaway_sent_) {
      goaway_sent_ = true;
      co_await write(encoder_.goaway(last_client_id_, spdy::GoAwayStatus::protocol_error));
    }
    writable_ = false;
    boost::system::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(asio::socket_base::shutdown_both, ignored);
  }

  asio::awaitable<void> reset(std::uint32_t id, spdy::RstStatus status) {
    StreamState& s = streams_[id];
    if (s.reset) co_return;
    s.reset = true;
    if (id == stdin_id_) pending_.push_back(Input{Input::Kind::stdin_end});
    co_await write(encoder_.rst_stream(id, status));
  }

  asio::awaitable<void> handle(spdy::Frame& f, const std::optional<spdy::FrameError>& error) {
    if (!f.control) {
      co_await on_data(f, error);
      co_return;
    }
    switch (static_cast<spdy::Type>(f.type)) {
      case spdy::Type::syn_stream:
        co_await on_syn_stream(f, error);
        break;
      case spdy::Type::rst_stream:
        if (auto it = streams_.find(f.stream_id); it != streams_.end() && !it->second.reset) {
          it->second.reset = true;
          if (f.stream_id == stdin_id_) pending_.push_back(Input{Input::Kind::stdin_end});
        }
        break;
      case spdy::Type::ping:
        // The client's pings (odd ids) come back as they are; we send none.
        if (f.value % 2 == 1) co_await write(encoder_.ping(f.value));
        break;
      case spdy::Type::syn_reply:
        // This server opens no streams for a reply to answer.
        co_await reset(f.stream_id, spdy::RstStatus::protocol_error);
        break;
      case spdy::Type::headers:
      case spdy::Type::window_update:
        if (error) {
          co_await reset(error->stream_id, error->status);
        } else if (auto it = streams_.find(f.stream_id);
                   f.type == static_cast<std::uint16_t>(spdy::Type::headers) &&
                   it != streams_.end() && (f.flags & spdy::kFlagFin) != 0) {
          remote_close(f.stream_id, it->second);
        }
        break;
      case spdy::Type::goaway:  // the client opens nothing more; what is open goes on
      case spdy::Type::settings:
        break;
    }
    // Control frames of unknown types are ignored, as SPDY/3 says.
  }

  asio::awaitable<void> on_syn_stream(spdy::Frame& f,
                                      const std::optional<spdy::FrameError>& error) {
    if (f.stream_id % 2 == 0 || f.stream_id <= last_client_id_) {
      co_await session_error("SYN_STREAM for stream " + std::to_string(f.stream_id) +
                             (f.stream_id % 2 == 0
                                  ? ", an even (server) id"
                                  : " after stream " + std::to_string(last_client_id_)));
      co_return;
    }
    last_client_id_ = f.stream_id;
    if (goaway_sent_) co_return;  // after GOAWAY new streams are ignored
    if (error) {
      co_await reset(f.stream_id, error->status);
      co_return;
    }
    StreamState& s = streams_[f.stream_id];
    if (auto it = f.headers.find("streamtype"); it != f.headers.end()) s.type = it->second.front();
    s.local_closed = (f.flags & spdy::kFlagUnidirectional) != 0;
    co_await write(encoder_.syn_reply(f.stream_id, {}, false));
    // The kubelet counts each stream of a type it knows, and keeps the last
    // of each; another type it only logs.
    std::uint32_t* slot = nullptr;
    if (s.type == "error") {
      slot = &error_id_;
    } else if (s.type == "stdin") {
      slot = &stdin_id_;
    } else if (s.type == "stdout") {
      slot = &stdout_id_;
    } else if (s.type == "stderr") {
      slot = &stderr_id_;
    } else if (s.type == "resize" && resizable()) {
      slot = &resize_id_;
      s.sizes = std::make_unique<json::stream_parser>();
    }
    if (slot != nullptr) {
      *slot = f.stream_id;
      ++received_;
    }
    if ((f.flags & spdy::kFlagFin) != 0) remote_close(f.stream_id, s);
  }

  asio::awaitable<void> on_data(spdy::Frame& f, const std::optional<spdy::FrameError>& error) {
    auto it = streams_.find(f.stream_id);
    if (it == streams_.end()) {
      if (f.stream_id % 2 == 1 && f.stream_id <= last_client_id_) co_return;  // refused before
      co_await reset(f.stream_id, spdy::RstStatus::invalid_stream);
      co_return;
    }
    StreamState& s = it->second;
    if (s.reset) co_return;  // in flight when it was reset
    if (error) {
      co_await reset(f.stream_id, error->status);
      co_return;
    }
    if (s.remote_closed) {
      co_await reset(f.stream_id, spdy::RstStatus::stream_already_closed);
      co_return;
    }
    if (f.stream_id == stdin_id_ && !f.data.empty()) {
      pending_.push_back(Input{Input::Kind::stdin_data, std::move(f.data)});
    } else if (f.stream_id == resize_id_ && s.sizes) {
      read_sizes(s, f.data);
    }
    // Anything on the other streams is not read, as by the kubelet.
    if ((f.flags & spdy::kFlagFin) != 0) remote_close(f.stream_id, s);
  }

  void remote_close(std::uint32_t id, StreamState& s) {
    if (s.remote_closed) return;
    s.remote_closed = true;
    if (id == stdin_id_) pending_.push_back(Input{Input::Kind::stdin_end});
  }

  // The resize stream carries one JSON object after another; the kubelet
  // stops reading it at the first that does not parse.
  void read_sizes(StreamState& s, std::string_view data) {
    while (!data.empty()) {
      boost::system::error_code ec;
      std::size_t used = s.sizes->write_some(data.data(), data.size(), ec);
      if (ec) {
        s.sizes.reset();
        return;
      }
      data.remove_prefix(used);
      if (s.sizes->done()) {
        json::value message = s.sizes->release();
        s.sizes->reset();
        if (auto size = terminal_size(message)) {
          pending_.push_back(Input{Input::Kind::resize, "", size->first, size->second});
        }
      }
    }
  }

  Stream& stream_;
  beast::flat_buffer& buffer_;
  const ExecPlan& plan_;
  spdy::Decoder decoder_;
  spdy::Encoder encoder_;
  // One write at a time: a channel of one slot is the lock.
  asio::experimental::channel<void(boost::system::error_code)> lock_;
  asio::steady_timer deadline_;
  bool expired_ = false;
  bool writable_ = true;
  bool broken_ = false;
  bool goaway_sent_ = false;
  std::string protocol_error_;
  std::map<std::uint32_t, StreamState> streams_;
  std::uint32_t last_client_id_ = 0;
  int received_ = 0;
  std::uint32_t error_id_ = 0;
  std::uint32_t stdin_id_ = 0;
  std::uint32_t stdout_id_ = 0;
  std::uint32_t stderr_id_ = 0;
  std::uint32_t resize_id_ = 0;
  std::deque<Input> pending_;
};

}  // namespace

template <class Stream>
asio::awaitable<ExecResult> run_spdy_exec(Stream& stream, beast::flat_buffer& buffer,
                                          const ExecPlan& plan, const ExecOptions& options) {
  SpdyConnection<Stream> connection(stream, buffer, plan, co_await asio::this_coro::executor);
  std::string why = co_await connection.accept_streams();
  ExecResult result;
  if (why.empty()) {
    result = co_await run_command(connection, plan, options);
  } else {
    // The command never starts; the kubelet would leave the connection be.
    result.argv = plan.command;
    result.error = why;
    co_await connection.hang_up();
    co_await connection.drain();
  }
  result.protocol_error = connection.protocol_error();
  co_return result;
}

template asio::awaitable<ExecResult> run_spdy_exec(beast::tcp_stream&, beast::flat_buffer&,
                                                   const ExecPlan&, const ExecOptions&);
template asio::awaitable<ExecResult> run_spdy_exec(TlsStream&, beast::flat_buffer&, const ExecPlan&,
                                                   const ExecOptions&);

}  // namespace envd::test::kube
