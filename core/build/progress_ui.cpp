#include "build/progress_ui.hpp"

#include <fmt/core.h>

#include <cstdlib>
#include <deque>

#include "github.com/moby/buildkit/api/services/control/control.pb.h"

namespace envd::build {
namespace {

namespace bk = moby::buildkit::v1;

constexpr size_t kLogTail = 12;      // log lines kept per step for failure reports
constexpr size_t kLiveLogLines = 6;  // log lines shown under a running step (tty)
constexpr auto kRedrawInterval = std::chrono::milliseconds(100);

double seconds_between(const google::protobuf::Timestamp& from,
                       const google::protobuf::Timestamp& to) {
  return static_cast<double>(to.seconds() - from.seconds()) +
         static_cast<double>(to.nanos() - from.nanos()) / 1e9;
}

}  // namespace

struct ProgressUi::Vertex {
  int number = 0;
  std::string name;
  bool cached = false;
  bool started = false;
  bool completed = false;
  bool announced = false;  // plain: the "#N name" line was printed
  bool finished = false;   // plain: its DONE/CACHED/ERROR line was printed
  std::string error;
  google::protobuf::Timestamp started_at;
  google::protobuf::Timestamp completed_at;
  std::chrono::steady_clock::time_point seen_started;
  std::string partial_line;                       // log bytes after the last newline
  std::deque<std::string> tail;                   // last complete log lines
  std::map<std::string, std::string> sub_status;  // id -> "name current/total"
};

Result<ProgressMode> resolve_progress_mode(const std::string& flag, bool out_is_terminal) {
  std::string mode = flag;
  if (mode == "auto") {
    if (const char* env = std::getenv("BUILDKIT_PROGRESS"); env != nullptr && env[0] != '\0') {
      mode = env;
    }
  }
  if (mode == "auto") return out_is_terminal ? ProgressMode::tty : ProgressMode::plain;
  if (mode == "plain") return ProgressMode::plain;
  if (mode == "quiet") return ProgressMode::quiet;
  if (mode == "tty") {
    if (!out_is_terminal) {
      return Error(Errc::invalid_argument,
                   "progress mode 'tty' needs a terminal; use --progress plain");
    }
    return ProgressMode::tty;
  }
  return Error(Errc::invalid_argument,
               "invalid progress mode '" + mode + "': expected auto, tty, plain or quiet");
}

ProgressUi::ProgressUi(ProgressMode mode, std::FILE* out)
    : mode_(mode), out_(out), start_(std::chrono::steady_clock::now()) {}

ProgressUi::~ProgressUi() = default;

int ProgressUi::number_of(const std::string& digest) {
  auto it = vertices_.find(digest);
  if (it != vertices_.end()) return it->second->number;
  auto v = std::make_unique<Vertex>();
  v->number = static_cast<int>(order_.size()) + 1;
  order_.push_back(digest);
  int number = v->number;
  vertices_.emplace(digest, std::move(v));
  return number;
}

void ProgressUi::update(const bk::StatusResponse& status) {
  for (const auto& vx : status.vertexes()) {
    number_of(vx.digest());
    Vertex& v = *vertices_.at(vx.digest());
    if (!vx.name().empty()) v.name = vx.name();
    v.cached = v.cached || vx.cached();
    if (vx.has_started() && !v.started) {
      v.started = true;
      v.started_at = vx.started();
      v.seen_started = std::chrono::steady_clock::now();
    }
    if (vx.has_completed()) {
      v.completed = true;
      v.completed_at = vx.completed();
    }
    if (!vx.error().empty()) v.error = vx.error();
  }
  for (const auto& st : status.statuses()) {
    number_of(st.vertex());
    Vertex& v = *vertices_.at(st.vertex());
    std::string text = st.name().empty() ? st.id() : st.name();
    if (st.has_completed()) {
      text += " done";
    } else if (st.total() > 0) {
      text += fmt::format(" {}/{}", st.current(), st.total());
    } else if (st.current() > 0) {
      text += fmt::format(" {}", st.current());
    }
    v.sub_status[st.id()] = text;
  }
  for (const auto& log : status.logs()) {
    number_of(log.vertex());
    Vertex& v = *vertices_.at(log.vertex());
    std::string data = v.partial_line + log.msg();
    size_t start = 0;
    for (size_t nl; (nl = data.find('\n', start)) != std::string::npos; start = nl + 1) {
      v.tail.push_back(data.substr(start, nl - start));
      if (v.tail.size() > kLogTail) v.tail.pop_front();
    }
    v.partial_line = data.substr(start);
  }
  if (mode_ == ProgressMode::plain) print_plain(status);
  if (mode_ == ProgressMode::tty) redraw(false);
}

void ProgressUi::print_plain(const bk::StatusResponse& status) {
  auto announce = [&](Vertex& v) {
    if (v.announced || v.name.empty()) return;
    v.announced = true;
    fmt::print(out_, "#{} {}\n", v.number, v.name);
  };
  for (const auto& vx : status.vertexes()) {
    Vertex& v = *vertices_.at(vx.digest());
    if (v.started || v.cached) announce(v);
  }
  for (const auto& st : status.statuses()) {
    Vertex& v = *vertices_.at(st.vertex());
    announce(v);
    if (st.has_completed()) fmt::print(out_, "#{} {}\n", v.number, v.sub_status[st.id()]);
  }
  for (const auto& log : status.logs()) {
    Vertex& v = *vertices_.at(log.vertex());
    announce(v);
    double t =
        v.started && log.has_timestamp() ? seconds_between(v.started_at, log.timestamp()) : 0.0;
    std::string_view msg = log.msg();
    while (!msg.empty()) {
      size_t nl = msg.find('\n');
      std::string_view line = msg.substr(0, nl);
      fmt::print(out_, "#{} {:.3f} {}\n", v.number, t, line);
      if (nl == std::string_view::npos) break;
      msg.remove_prefix(nl + 1);
    }
  }
  for (const auto& vx : status.vertexes()) {
    Vertex& v = *vertices_.at(vx.digest());
    if ((!vx.has_completed() && !vx.cached()) || v.finished) continue;
    v.finished = true;
    announce(v);
    if (!v.error.empty()) {
      fmt::print(out_, "#{} ERROR: {}\n", v.number, v.error);
    } else if (v.cached) {
      fmt::print(out_, "#{} CACHED\n", v.number);
    } else {
      fmt::print(out_, "#{} DONE {:.1f}s\n", v.number,
                 seconds_between(v.started_at, v.completed_at));
    }
  }
  std::fflush(out_);
}

void ProgressUi::redraw(bool final) {
  auto now = std::chrono::steady_clock::now();
  if (!final && now - last_draw_ < kRedrawInterval) return;
  last_draw_ = now;
  std::string frame;
  // Move to the start of the previous frame and clear it.
  if (drawn_lines_ > 0) frame += fmt::format("\x1b[{}F\x1b[J", drawn_lines_);
  int lines = 0;
  int finished = 0;
  for (const auto& digest : order_) {
    const Vertex& v = *vertices_.at(digest);
    if (v.completed || v.cached) ++finished;
  }
  double elapsed = std::chrono::duration<double>(now - start_).count();
  frame += fmt::format("[+] Building {:.1f}s ({}/{}){}\n", elapsed, finished, order_.size(),
                       final ? " FINISHED" : "");
  ++lines;
  for (const auto& digest : order_) {
    const Vertex& v = *vertices_.at(digest);
    if (v.name.empty() || (!v.started && !v.cached)) continue;
    std::string marker = v.cached ? "CACHED " : (!v.error.empty() ? "ERROR " : "");
    double t = v.completed ? seconds_between(v.started_at, v.completed_at)
                           : std::chrono::duration<double>(now - v.seen_started).count();
    std::string timing = v.cached ? "" : fmt::format("{:.1f}s", t);
    frame += fmt::format(" => {}{} {}\n", marker, v.name, timing);
    ++lines;
    bool running = v.started && !v.completed && !v.cached;
    if (running) {
      for (const auto& [id, text] : v.sub_status) {
        frame += fmt::format(" => => {}\n", text);
        ++lines;
      }
      size_t first = v.tail.size() > kLiveLogLines ? v.tail.size() - kLiveLogLines : 0;
      for (size_t i = first; i < v.tail.size(); ++i) {
        frame += fmt::format(" => => # {}\n", v.tail[i]);
        ++lines;
      }
    }
  }
  std::fputs(frame.c_str(), out_);
  std::fflush(out_);
  drawn_lines_ = lines;
}

void ProgressUi::done() {
  if (mode_ == ProgressMode::tty) redraw(true);
}

std::string ProgressUi::failure_report() const {
  for (const auto& digest : order_) {
    const Vertex& v = *vertices_.at(digest);
    if (v.error.empty()) continue;
    std::string report = "------\n > " + v.name + ":\n";
    for (const auto& line : v.tail) report += line + "\n";
    if (!v.partial_line.empty()) report += v.partial_line + "\n";
    report += "------\n";
    return report;
  }
  return {};
}

}  // namespace envd::build
