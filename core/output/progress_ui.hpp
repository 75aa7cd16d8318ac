// Rendering BuildKit's status stream for people.
//
//   tty    a live view redrawn in place: one line per step with its time,
//          CACHED/DONE/ERROR markers, and the last log lines of running steps
//   plain  append-only lines, BuildKit style ("#3 [2/3] RUN make",
//          "#3 0.412 <log line>", "#3 DONE 1.2s"), for logs and CI
//
// `auto` picks tty when the output is a terminal; BUILDKIT_PROGRESS overrides
// auto. After the build, failure_report() gives the failed step's command and
// the tail of its log.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "buildkit/progress.hpp"
#include "envd/result.hpp"

namespace envd::output {

enum class ProgressMode { tty, plain, quiet };

// Resolves --progress (auto|tty|plain|quiet) with BUILDKIT_PROGRESS and whether
// `out` is a terminal. tty without a terminal is an error.
Result<ProgressMode> resolve_progress_mode(const std::string& flag, bool out_is_terminal);

// "292.74MB": decimal units with two decimals, as buildx shows transfers.
std::string human_size(std::int64_t bytes);

// How often the view catches up without a message from the daemon (below).
inline constexpr std::chrono::milliseconds kProgressTick{100};

class ProgressUi : public buildkit::ProgressSink {
 public:
  // `width` and `height` are the terminal's size for tty mode; 0 asks the
  // terminal `out` writes to on every redraw, so a resize is followed (80
  // columns and no height limit if it cannot say). Lines are cut to fit in
  // display columns (a wide character takes two), so none wraps, and step
  // times are flush right; a frame taller than the terminal keeps its header
  // and its last lines, as BuildKit's own display does, since the lines
  // scrolled off could not be redrawn over.
  //
  // Every `tick`, on a thread of its own, the view catches up: tty redraws
  // (a running step's time moves on while the daemon says nothing), plain
  // writes what it collected since the last tick, step by step, as buildctl
  // does: a status line the daemon sends in the message after its step's
  // DONE still comes before the DONE. A tick of 0 starts no thread: plain
  // writes after every update, tty redraws only on updates (tests).
  ProgressUi(ProgressMode mode, std::FILE* out, int width = 0, int height = 0,
             std::chrono::milliseconds tick = kProgressTick);
  ~ProgressUi() override;
  ProgressUi(const ProgressUi&) = delete;
  ProgressUi& operator=(const ProgressUi&) = delete;

  void update(const moby::buildkit::v1::StatusResponse& status) override;
  void done() override;
  // The steps still running are shown CANCELED (plain: "#N CANCELED"), and
  // the final frame's header says CANCELED rather than FINISHED.
  void cancelled() override;

  // For a failed build: " > <step>:" followed by the step's last log lines,
  // framed as BuildKit does; empty if no step failed.
  std::string failure_report() const;

 private:
  struct Vertex;
  void print_plain(const moby::buildkit::v1::StatusResponse& status);
  // plain: the log bytes of `v` after its last newline, as a line.
  void print_partial(Vertex& v);
  // plain: what a line of a step is. Output (a log or transfer line) that
  // comes after the step's outcome was collected goes before that outcome.
  enum class Line { heading, output, outcome };
  // plain: collects `line` of `v` for the next write.
  void collect(Vertex& v, std::string line, Line kind);
  // plain: writes what was collected, step by step.
  void write_collected();
  void redraw(bool final);
  int number_of(const std::string& digest);
  void tick_until_stopped();
  void stop_ticking();

  ProgressMode mode_;
  std::FILE* out_;
  int fixed_width_;   // 0: the terminal's, read at each redraw
  int fixed_height_;  // 0: the terminal's, read at each redraw
  int width_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
  std::map<std::string, std::unique_ptr<Vertex>> vertices_;
  std::vector<std::string> order_;  // digests in order of first appearance
  std::vector<std::string> shown_;  // digests in the order they started or were found cached
  int drawn_lines_ = 0;
  bool cancelled_ = false;
  std::vector<Vertex*> collected_;  // plain: steps with lines to write, in order
  std::size_t collected_bytes_ = 0;

  // update() comes from the status stream's thread, done() and cancelled()
  // from the command's, the ticks from ticker_.
  mutable std::mutex mu_;
  std::chrono::milliseconds tick_;
  std::condition_variable stop_;
  bool stopping_ = false;
  std::thread ticker_;
};

}  // namespace envd::output
