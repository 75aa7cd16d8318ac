#include "output/progress_ui.hpp"

#include <fmt/core.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <exception>
#include <iterator>
#include <string_view>

#include "github.com/moby/buildkit/api/services/control/control.pb.h"
#include "util/message_out.hpp"
#include "util/text.hpp"

namespace envd::output {
namespace {

namespace bk = moby::buildkit::v1;

constexpr size_t kLogTail = 12;            // log lines kept per step for failure reports
constexpr size_t kPlainLineLimit = 16384;  // plain: a log line longer is shown in parts
constexpr size_t kLiveLogLines = 6;        // log lines shown under a running step (tty)
constexpr auto kRedrawInterval = std::chrono::milliseconds(100);
// plain: collected lines are written before the next tick past this many bytes
// (a step that prints fast), so what waits stays small.
constexpr size_t kCollectedLimit = size_t{64} << 10;

constexpr int kDefaultWidth = 80;

// The size of the terminal `out` writes to: {columns, rows}, each 0 when it
// cannot say.
std::pair<int, int> terminal_size(std::FILE* out) {
  winsize size{};
  if (out != nullptr && ::ioctl(::fileno(out), TIOCGWINSZ, &size) == 0) {
    return {size.ws_col, size.ws_row};
  }
  return {0, 0};
}

// The code point of the UTF-8 sequence at text[i] (i at its first byte);
// a malformed byte stands for itself.
char32_t code_point_at(std::string_view text, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char b = byte(i);
  int extra = b >= 0xF0 ? 3 : b >= 0xE0 ? 2 : b >= 0xC0 ? 1 : 0;
  if (extra > 0 && i + static_cast<size_t>(extra) >= text.size()) return b;
  char32_t cp = extra == 0 ? b : b & (0x3F >> extra);
  for (int k = 1; k <= extra; ++k) cp = (cp << 6) | (byte(i + static_cast<size_t>(k)) & 0x3F);
  return cp;
}

// The columns a terminal gives a code point: 0 for a combining mark, 2 for
// the wide East Asian scripts and emoji, else 1 (what wcwidth says, without
// depending on the process's locale).
int columns_of_code_point(char32_t c) {
  if ((c >= 0x0300 && c <= 0x036F) || (c >= 0x200B && c <= 0x200F) || c == 0xFE0F) return 0;
  const bool wide = (c >= 0x1100 && c <= 0x115F) || (c >= 0x2E80 && c <= 0x303E) ||
                    (c >= 0x3041 && c <= 0x33FF) || (c >= 0x3400 && c <= 0x4DBF) ||
                    (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xA000 && c <= 0xA4CF) ||
                    (c >= 0xAC00 && c <= 0xD7A3) || (c >= 0xF900 && c <= 0xFAFF) ||
                    (c >= 0xFE30 && c <= 0xFE4F) || (c >= 0xFF00 && c <= 0xFF60) ||
                    (c >= 0xFFE0 && c <= 0xFFE6) || (c >= 0x1F300 && c <= 0x1F64F) ||
                    (c >= 0x1F900 && c <= 0x1F9FF) || (c >= 0x20000 && c <= 0x3FFFD);
  return wide ? 2 : 1;
}

// Cuts `text` to at most `width` display columns (a wide character counts
// two), so no line wraps: a wrapped line would break the redraw's count.
std::string fit(std::string_view text, int width) {
  if (width <= 0) return {};
  int columns = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) continue;  // continuation byte
    columns += columns_of_code_point(code_point_at(text, i));
    if (columns > width) return std::string(text.substr(0, i));
  }
  return std::string(text);
}

int columns_of(std::string_view text) {
  int columns = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) continue;
    columns += columns_of_code_point(code_point_at(text, i));
  }
  return columns;
}

// `left` and `right` on one line of `width` columns, `right` flush right,
// `left` cut to make room.
std::string justify(const std::string& left, const std::string& right, int width) {
  if (right.empty()) return fit(left, width);
  const int room = width - columns_of(right) - 1;
  std::string head = fit(left, room);
  return head + std::string(static_cast<size_t>(std::max(1, room - columns_of(head) + 1)), ' ') +
         right;
}

// One line of a step's output as it is safe to show. BuildKit passes a RUN's
// bytes through untouched, so a Dockerfile or a package it installs could
// otherwise move the cursor, clear the screen or retitle the terminal (docker
// and buildx print them raw). Colour and cursor sequences (CSI, OSC) are
// dropped; a carriage return, which progress bars redraw with, keeps what a
// terminal would leave: the text after it; a tab becomes spaces to the next
// stop of 8 so the tty view can count columns; every other control character
// is escaped by printable().
std::string shown_line(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (size_t cr = line.rfind('\r'); cr != std::string_view::npos) line.remove_prefix(cr + 1);
  std::string plain;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (c == '\x1b' && i + 1 < line.size() && line[i + 1] == '[') {
      // CSI: parameter and intermediate bytes, then one final byte.
      size_t k = i + 2;
      while (k < line.size() && line[k] >= 0x20 && line[k] <= 0x3f) ++k;
      if (k < line.size() && line[k] >= 0x40 && line[k] <= 0x7e) {
        i = k;
        continue;
      }
    } else if (c == '\x1b' && i + 1 < line.size() && line[i + 1] == ']') {
      // OSC: ends with BEL or ESC backslash.
      size_t bel = line.find('\a', i + 2);
      size_t st = line.find("\x1b\\", i + 2);
      size_t end = std::min(bel, st == std::string_view::npos ? st : st + 1);
      if (end != std::string_view::npos) {
        i = end;
        continue;
      }
    } else if (c == '\t') {
      plain.append(8 - columns_of(plain) % 8, ' ');
      continue;
    }
    plain += c;
  }
  return util::printable(plain);
}

// Never below zero: buildkitd 0.11 may stamp a step's completion a few
// microseconds before its start, which printed "DONE -0.0s".
double seconds_between(const envd::wellknown::Timestamp& from,
                       const envd::wellknown::Timestamp& to) {
  double seconds = static_cast<double>(to.seconds() - from.seconds()) +
                   static_cast<double>(to.nanos() - from.nanos()) / 1e9;
  return seconds > 0 ? seconds : 0.0;
}

}  // namespace

std::string human_size(std::int64_t bytes) {
  static const char* const units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  if (bytes < 1000) return fmt::format("{}B", bytes);
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1000 && unit + 1 < std::size(units)) {
    value /= 1000;
    ++unit;
  }
  return fmt::format("{:.2f}{}", value, units[unit]);
}

struct ProgressUi::Vertex {
  int number = 0;
  std::string name;
  bool cached = false;
  bool started = false;
  bool completed = false;
  bool announced = false;              // plain: the "#N name" line was printed
  bool finished = false;               // plain: its DONE/CACHED/ERROR line was printed
  bool shown = false;                  // tty: in shown_
  std::vector<std::string> collected;  // plain: lines not yet written
  bool outcome_last = false;           // plain: collected ends with its DONE/CACHED/ERROR
  std::string last_line;               // plain: the line collected last, wherever it went
  std::string error;
  envd::wellknown::Timestamp started_at;
  envd::wellknown::Timestamp completed_at;
  std::chrono::steady_clock::time_point seen_started;
  std::string partial_line;      // log bytes after the last newline
  std::string plain_partial;     // plain: the same, not yet printed (whole lines only)
  double plain_partial_at = 0;   // plain: when its first piece came
  std::deque<std::string> tail;  // last complete log lines
  std::map<std::string, std::string> sub_status;  // id -> "name current/total"
};

Result<ProgressMode> resolve_progress_mode(const std::string& flag, bool out_is_terminal) {
  std::string mode = flag;
  std::string from;  // where a mode the user did not type came from
  if (mode == "auto") {
    if (const char* env = std::getenv("BUILDKIT_PROGRESS"); env != nullptr && env[0] != '\0') {
      mode = env;
      from = " (from BUILDKIT_PROGRESS)";
    }
  }
  if (mode == "auto") return out_is_terminal ? ProgressMode::tty : ProgressMode::plain;
  if (mode == "plain") return ProgressMode::plain;
  if (mode == "quiet") return ProgressMode::quiet;
  if (mode == "tty") {
    if (!out_is_terminal) {
      return Error(Errc::invalid_argument,
                   "progress mode 'tty'" + from + " needs a terminal; use --progress plain");
    }
    return ProgressMode::tty;
  }
  return Error(Errc::invalid_argument, "invalid progress mode '" + util::printable(mode, 60) + "'" +
                                           from + ": expected auto, tty, plain or quiet");
}

ProgressUi::ProgressUi(ProgressMode mode, std::FILE* out, int width, int height,
                       std::chrono::milliseconds tick)
    : mode_(mode),
      out_(out),
      fixed_width_(width > 0 ? width : 0),
      fixed_height_(height > 0 ? height : 0),
      width_(width > 0 ? width : kDefaultWidth),
      start_(std::chrono::steady_clock::now()),
      tick_(mode == ProgressMode::quiet ? std::chrono::milliseconds(0) : tick) {
  if (tick_.count() <= 0) return;
  // Started with Ctrl-C, SIGTERM and SIGHUP blocked, which the thread
  // inherits: they are the signal watcher's (cli/signal_watcher.hpp), also
  // when the view is made before the watcher. Every other signal is left
  // as it was (SIGPIPE from a closed stderr still ends envd).
  struct BlockedWhileStarting {
    sigset_t old{};
    BlockedWhileStarting() {
      sigset_t watched;
      sigemptyset(&watched);
      for (int signal : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&watched, signal);
      pthread_sigmask(SIG_BLOCK, &watched, &old);
    }
    ~BlockedWhileStarting() { pthread_sigmask(SIG_SETMASK, &old, nullptr); }
    BlockedWhileStarting(const BlockedWhileStarting&) = delete;
    BlockedWhileStarting& operator=(const BlockedWhileStarting&) = delete;
  } blocked;
  ticker_ = std::thread([this] { tick_until_stopped(); });
}

ProgressUi::~ProgressUi() {
  stop_ticking();
  // Without done() (a solve left by an error): what was collected still goes out.
  std::lock_guard lock(mu_);
  try {
    if (mode_ == ProgressMode::plain) write_collected();
  } catch (const std::exception&) {  // out of memory for the text: nothing better to do
  }
}

void ProgressUi::tick_until_stopped() {
  std::unique_lock lock(mu_);
  while (!stop_.wait_for(lock, tick_, [this] { return stopping_; })) {
    if (mode_ == ProgressMode::plain) write_collected();
    // Not before the first frame: a build that fails before its first step
    // shows no empty view.
    if (mode_ == ProgressMode::tty && drawn_lines_ > 0) redraw(false);
  }
}

void ProgressUi::stop_ticking() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  stop_.notify_all();
  if (ticker_.joinable()) ticker_.join();
}

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
  std::lock_guard lock(mu_);
  for (const auto& vx : status.vertexes()) {
    number_of(vx.digest());
    Vertex& v = *vertices_.at(vx.digest());
    // Names and errors come from the daemon (a Dockerfile's text, a
    // frontend's words): shown printably, like every other outside string.
    if (!vx.name().empty()) v.name = util::printable(vx.name());
    // BuildKit runs some steps twice and says so: "load build context"
    // completes once for its cache key and again after the transfer, and a
    // FROM completes and then comes back cached. A step seen completed that
    // starts again is shown again, so its last outcome is what stays on
    // screen and in the log.
    bool starts_again = vx.has_started() &&
                        (!vx.has_completed() || vx.started().seconds() != v.started_at.seconds() ||
                         vx.started().nanos() != v.started_at.nanos());
    if (v.completed && starts_again) {
      v.completed = false;
      v.finished = false;
      v.started = false;
      v.cached = false;
      v.outcome_last = false;  // what comes now is the new run's
    }
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
    if (!vx.error().empty()) v.error = util::printable(vx.error());
    // The live view lists steps in the order they started (or were found
    // cached), as buildx does, not in the order the daemon first named them.
    if ((v.started || v.cached) && !v.shown) {
      v.shown = true;
      shown_.push_back(vx.digest());
    }
  }
  for (const auto& st : status.statuses()) {
    number_of(st.vertex());
    Vertex& v = *vertices_.at(st.vertex());
    // The status's ID says what moves ("transferring context:", a layer's
    // digest); its name only the action ("transferring"). buildctl and buildx
    // show the ID.
    std::string text = util::printable(st.id().empty() ? st.name() : st.id());
    // Sizes in decimal units as buildx shows them: "transferring context: 292.74MB".
    if (st.total() > 0) {
      text += " " + human_size(st.current()) + " / " + human_size(st.total());
    } else if (st.current() > 0) {
      text += " " + human_size(st.current());
    }
    if (st.has_completed()) text += " done";
    v.sub_status[st.id()] = text;
  }
  for (const auto& log : status.logs()) {
    number_of(log.vertex());
    Vertex& v = *vertices_.at(log.vertex());
    std::string data = v.partial_line + log.msg();
    size_t start = 0;
    for (size_t nl; (nl = data.find('\n', start)) != std::string::npos; start = nl + 1) {
      v.tail.push_back(shown_line(std::string_view(data).substr(start, nl - start)));
      if (v.tail.size() > kLogTail) v.tail.pop_front();
    }
    // Kept raw: the rest of this line may come in the next message (an
    // escape sequence cut in two included); shown through shown_line().
    v.partial_line = data.substr(start);
  }
  if (mode_ == ProgressMode::plain) {
    print_plain(status);
    // With no ticks (0, or none left after done()), now.
    if (tick_.count() <= 0 || stopping_ || collected_bytes_ > kCollectedLimit) write_collected();
  }
  if (mode_ == ProgressMode::tty) redraw(false);
}

void ProgressUi::collect(Vertex& v, std::string line, Line kind) {
  collected_bytes_ += line.size();
  v.last_line = line;
  if (v.collected.empty()) collected_.push_back(&v);
  if (kind == Line::output && v.outcome_last) {
    v.collected.insert(v.collected.end() - 1, std::move(line));
  } else {
    v.collected.push_back(std::move(line));
    v.outcome_last = kind == Line::outcome;
  }
}

void ProgressUi::write_collected() {
  if (collected_.empty()) return;
  std::string text;
  text.reserve(collected_bytes_);
  for (Vertex* v : collected_) {
    for (const std::string& line : v->collected) text += line;
    v->collected.clear();
    v->outcome_last = false;
  }
  collected_.clear();
  collected_bytes_ = 0;
  util::write_message(out_, text);
  std::fflush(out_);
}

void ProgressUi::print_plain(const bk::StatusResponse& status) {
  auto announce = [&](Vertex& v) {
    if (v.announced || v.name.empty()) return;
    v.announced = true;
    collect(v, fmt::format("#{} {}\n", v.number, v.name), Line::heading);
  };
  for (const auto& vx : status.vertexes()) {
    Vertex& v = *vertices_.at(vx.digest());
    if (v.started || v.cached) announce(v);
  }
  for (const auto& st : status.statuses()) {
    Vertex& v = *vertices_.at(st.vertex());
    announce(v);
    if (st.has_completed()) {
      collect(v, fmt::format("#{} {}\n", v.number, v.sub_status[st.id()]), Line::output);
    }
  }
  // Whole lines, as buildctl prints them: a line written in pieces ("abc",
  // then "def\n" a second later) is one line, at the time of its first piece.
  for (const auto& log : status.logs()) {
    Vertex& v = *vertices_.at(log.vertex());
    announce(v);
    double t =
        v.started && log.has_timestamp() ? seconds_between(v.started_at, log.timestamp()) : 0.0;
    if (v.plain_partial.empty()) v.plain_partial_at = t;
    std::string data = v.plain_partial + log.msg();
    std::size_t start = 0;
    for (std::size_t nl; (nl = data.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line = std::string_view(data).substr(start, nl - start);
      collect(v,
              fmt::format("#{} {:.3f} {}\n", v.number, start == 0 ? v.plain_partial_at : t,
                          shown_line(line)),
              Line::output);
    }
    v.plain_partial = data.substr(start);
    if (start > 0) v.plain_partial_at = t;
    // Output that never ends its line (a progress bar) is shown all the same.
    if (v.plain_partial.size() > kPlainLineLimit) print_partial(v);
  }
  for (const auto& vx : status.vertexes()) {
    Vertex& v = *vertices_.at(vx.digest());
    if ((!vx.has_completed() && !vx.cached()) || v.finished) continue;
    v.finished = true;
    announce(v);
    print_partial(v);
    std::string outcome = !v.error.empty() ? fmt::format("#{} ERROR: {}\n", v.number, v.error)
                          : v.cached       ? fmt::format("#{} CACHED\n", v.number)
                                           : fmt::format("#{} DONE {:.1f}s\n", v.number,
                                                         seconds_between(v.started_at, v.completed_at));
    // A step run again to the same outcome with nothing said between (a FROM
    // the Engine resolves twice) says it once.
    if (outcome == v.last_line) continue;
    collect(v, std::move(outcome), Line::outcome);
  }
}

void ProgressUi::redraw(bool final) {
  auto now = std::chrono::steady_clock::now();
  if (!final && now - last_draw_ < kRedrawInterval) return;
  last_draw_ = now;
  // The terminal's size now: a resize is followed from the next frame on.
  auto [columns, rows] = terminal_size(out_);
  width_ = fixed_width_ > 0 ? fixed_width_ : columns > 0 ? columns : kDefaultWidth;
  const int height = fixed_height_ > 0 ? fixed_height_ : rows;
  std::vector<std::string> body;  // the frame's lines, each ending in '\n'
  std::string frame;
  int finished = 0;
  for (const auto& digest : order_) {
    const Vertex& v = *vertices_.at(digest);
    if (v.completed || v.cached) ++finished;
  }
  double elapsed = std::chrono::duration<double>(now - start_).count();
  const std::string header =
      justify(fmt::format("[+] Building {:.1f}s ({}/{}){}", elapsed, finished, order_.size(),
                          !final       ? ""
                          : cancelled_ ? " CANCELED"
                                       : " FINISHED"),
              "", width_) +
      "\n";
  for (const auto& digest : shown_) {
    const Vertex& v = *vertices_.at(digest);
    if (v.name.empty()) continue;
    const bool stopped = cancelled_ && v.started && !v.completed && !v.cached;
    std::string marker = v.cached           ? "CACHED "
                         : !v.error.empty() ? "ERROR "
                         : stopped          ? "CANCELED "
                                            : "";
    double t = v.completed ? seconds_between(v.started_at, v.completed_at)
                           : std::chrono::duration<double>(now - v.seen_started).count();
    std::string timing = v.cached ? "" : fmt::format("{:.1f}s", t);
    body.push_back(justify(" => " + marker + v.name, timing, width_) + "\n");
    bool running = v.started && !v.completed && !v.cached && !stopped;
    if (running) {
      for (const auto& [id, text] : v.sub_status) {
        body.push_back(justify(" => => " + text, "", width_) + "\n");
      }
      // The last lines of its output, the unfinished one included, as buildx shows them.
      std::vector<std::string> shown(v.tail.begin(), v.tail.end());
      if (!v.partial_line.empty()) shown.push_back(shown_line(v.partial_line));
      size_t first = shown.size() > kLiveLogLines ? shown.size() - kLiveLogLines : 0;
      for (size_t i = first; i < shown.size(); ++i) {
        body.push_back(justify(" => => # " + shown[i], "", width_) + "\n");
      }
    }
  }
  // Taller than the terminal, the top of the frame would scroll away, where
  // the next redraw cannot reach it, and stay as a stale copy: the header and
  // the last lines that fit are drawn (the final frame is drawn whole, once).
  std::size_t first = 0;
  if (!final && height > 2 && body.size() + 1 > static_cast<std::size_t>(height - 1)) {
    first = body.size() - static_cast<std::size_t>(height - 2);
  }
  // Move to the start of the previous frame and clear it.
  if (drawn_lines_ > 0) frame += fmt::format("\x1b[{}F\x1b[J", drawn_lines_);
  frame += header;
  for (std::size_t i = first; i < body.size(); ++i) frame += body[i];
  std::fputs(frame.c_str(), out_);
  std::fflush(out_);
  drawn_lines_ = static_cast<int>(1 + body.size() - first);
}

void ProgressUi::print_partial(Vertex& v) {
  if (v.plain_partial.empty()) return;
  collect(v,
          fmt::format("#{} {:.3f} {}\n", v.number, v.plain_partial_at, shown_line(v.plain_partial)),
          Line::output);
  v.plain_partial.clear();
}

void ProgressUi::done() {
  // The last frame or lines are this call's: no tick comes after them.
  stop_ticking();
  std::lock_guard lock(mu_);
  if (mode_ == ProgressMode::tty) redraw(true);
  if (mode_ != ProgressMode::plain) return;
  for (const auto& digest : order_) print_partial(*vertices_.at(digest));
  write_collected();
}

void ProgressUi::cancelled() {
  std::lock_guard lock(mu_);
  cancelled_ = true;
  if (mode_ != ProgressMode::plain) return;
  for (const auto& digest : order_) {
    Vertex& v = *vertices_.at(digest);
    print_partial(v);
    if (!v.announced || v.finished || v.cached || v.completed) continue;
    v.finished = true;
    collect(v, fmt::format("#{} CANCELED\n", v.number), Line::outcome);
  }
  write_collected();
}

std::string ProgressUi::failure_report() const {
  std::lock_guard lock(mu_);
  for (const auto& digest : order_) {
    const Vertex& v = *vertices_.at(digest);
    if (v.error.empty()) continue;
    std::string report = "------\n > " + v.name + ":\n";
    for (const auto& line : v.tail) report += line + "\n";
    if (!v.partial_line.empty()) report += shown_line(v.partial_line) + "\n";
    report += "------\n";
    return report;
  }
  return {};
}

}  // namespace envd::output
