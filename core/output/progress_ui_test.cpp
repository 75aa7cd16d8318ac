#include "output/progress_ui.hpp"

#include <fmt/core.h>
#include <gtest/gtest.h>
#include <stdio.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include "github.com/moby/buildkit/api/services/control/control.pb.h"
#include "output/test_support.hpp"

namespace envd::output {
namespace {

namespace bk = moby::buildkit::v1;

using testing::Capture;

// No ticker thread: plain writes after every update, tty redraws only on
// updates, so a test can look at the output between updates.
constexpr std::chrono::milliseconds kNoTicks{0};

// What `out` holds so far, read through a file description of its own while
// the display's ticker may write: Capture::text() rewinds the display's own.
std::string written_so_far(const Capture& out) {
  std::ifstream in("/proc/self/fd/" + std::to_string(::fileno(out.file())), std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Waits up to 10 s for `done` to say yes about what `out` holds; whether it did.
template <typename Pred>
bool wait_for_output(const Capture& out, Pred done) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done(written_so_far(out))) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

bk::StatusResponse vertex(const std::string& digest, const std::string& name, bool started,
                          bool completed, bool cached = false, const std::string& error = "") {
  bk::StatusResponse r;
  auto* v = r.add_vertexes();
  v->set_digest(digest);
  v->set_name(name);
  v->set_cached(cached);
  if (started) v->mutable_started()->set_seconds(100);
  if (completed) {
    v->mutable_completed()->set_seconds(101);
    v->mutable_completed()->set_nanos(500000000);
  }
  v->set_error(error);
  return r;
}

bk::StatusResponse log(const std::string& digest, const std::string& msg) {
  bk::StatusResponse r;
  auto* l = r.add_logs();
  l->set_vertex(digest);
  l->set_stream(1);
  l->set_msg(msg);
  l->mutable_timestamp()->set_seconds(100);
  l->mutable_timestamp()->set_nanos(250000000);
  return r;
}

// A transfer's status under step `digest`: `current` bytes so far.
bk::StatusResponse transfer(const std::string& digest, const std::string& id,
                            const std::string& name, std::int64_t current) {
  bk::StatusResponse r;
  auto* st = r.add_statuses();
  st->set_vertex(digest);
  st->set_id(id);
  st->set_name(name);
  st->set_current(current);
  return r;
}

TEST(ProgressUi, PlainLinesNumberStepsAndMarkCachedAndDone) {
  Capture out;
  ProgressUi ui(ProgressMode::plain, out.file());
  ui.update(vertex("sha256:a", "[1/2] FROM base", false, true, /*cached=*/true));
  ui.update(vertex("sha256:b", "[2/2] RUN echo hi", true, false));
  ui.update(log("sha256:b", "hi\nthere\n"));
  ui.update(vertex("sha256:b", "[2/2] RUN echo hi", true, true));
  ui.done();
  EXPECT_EQ(out.text(),
            "#1 [1/2] FROM base\n"
            "#1 CACHED\n"
            "#2 [2/2] RUN echo hi\n"
            "#2 0.250 hi\n"
            "#2 0.250 there\n"
            "#2 DONE 1.5s\n");
  EXPECT_EQ(ui.failure_report(), "");
}

// buildkitd 0.11 may stamp a completion a few microseconds before the start.
TEST(ProgressUi, ACompletionStampedBeforeItsStartIsNoNegativeTime) {
  Capture out;
  ProgressUi ui(ProgressMode::plain, out.file());
  bk::StatusResponse r;
  auto* v = r.add_vertexes();
  v->set_digest("sha256:a");
  v->set_name("[internal] load build definition from Dockerfile");
  v->mutable_started()->set_seconds(100);
  v->mutable_started()->set_nanos(2000);
  v->mutable_completed()->set_seconds(100);
  v->mutable_completed()->set_nanos(1000);
  ui.update(r);
  ui.done();
  EXPECT_EQ(out.text(),
            "#1 [internal] load build definition from Dockerfile\n"
            "#1 DONE 0.0s\n");
}

TEST(ProgressUi, FailureReportHasTheStepAndItsLogTail) {
  Capture out;
  ProgressUi ui(ProgressMode::plain, out.file(), 0, 0, kNoTicks);
  ui.update(vertex("sha256:c", "[2/2] RUN make", true, false));
  ui.update(log("sha256:c", "compiling\nerror: boom"));
  ui.update(vertex("sha256:c", "[2/2] RUN make", true, true, false, "exit code: 2"));
  EXPECT_NE(out.text().find("#1 ERROR: exit code: 2\n"), std::string::npos) << out.text();
  EXPECT_EQ(ui.failure_report(), "------\n > [2/2] RUN make:\ncompiling\nerror: boom\n------\n");
}

TEST(ProgressUi, TtyRedrawsInPlace) {
  Capture out;
  ProgressUi ui(ProgressMode::tty, out.file(), 40, 0, kNoTicks);
  ui.update(vertex("sha256:d", "[1/1] RUN sleep 1", true, false));
  ui.update(vertex("sha256:d", "[1/1] RUN sleep 1", true, true));
  ui.done();
  std::string text = out.text();
  EXPECT_NE(text.find("[+] Building"), std::string::npos);
  EXPECT_NE(text.find("FINISHED"), std::string::npos);
  EXPECT_NE(text.find("\x1b["), std::string::npos) << "the final frame redraws the first";
  // The time flush right in 40 columns.
  EXPECT_NE(text.find("\n => [1/1] RUN sleep 1               1.5s\n"), std::string::npos) << text;
}

// A cancelled build (Ctrl-C) ends its view with the steps that were running
// marked CANCELED, as BuildKit marks the steps it stopped, and without
// FINISHED; finished and cached steps keep their outcome.
TEST(ProgressUi, ACancelledBuildMarksItsRunningStepsCanceled) {
  {
    Capture out;
    ProgressUi ui(ProgressMode::plain, out.file());
    ui.update(vertex("sha256:a", "[1/3] FROM base", false, true, /*cached=*/true));
    ui.update(vertex("sha256:b", "[2/3] RUN sleep 30", true, false));
    ui.update(vertex("sha256:c", "[3/3] RUN true", false, false));
    ui.cancelled();
    ui.done();
    EXPECT_EQ(out.text(),
              "#1 [1/3] FROM base\n"
              "#1 CACHED\n"
              "#2 [2/3] RUN sleep 30\n"
              "#2 CANCELED\n");
  }
  Capture out;
  ProgressUi ui(ProgressMode::tty, out.file(), 40, 0, kNoTicks);
  ui.update(vertex("sha256:a", "[1/2] RUN true", true, true));
  ui.update(vertex("sha256:b", "[2/2] RUN sleep 30", true, false));
  ui.update(log("sha256:b", "still going\n"));
  ui.cancelled();
  ui.done();
  std::string text = out.text();
  std::string last = text.substr(text.rfind("[+] Building"));
  EXPECT_NE(last.find(" (1/2) CANCELED"), std::string::npos) << last;
  EXPECT_EQ(last.find("FINISHED"), std::string::npos) << last;
  EXPECT_NE(last.find("\n => [1/2] RUN true                  1.5s\n"), std::string::npos) << last;
  EXPECT_NE(last.find("\n => CANCELED [2/2] RUN sleep 30"), std::string::npos) << last;
  EXPECT_EQ(last.find("still going"), std::string::npos) << "a stopped step shows no live log";
}

// A line a step writes in pieces is one line, as buildctl prints it; what is
// left without a newline is printed when the step ends. A transfer is named
// by its status's ID ("transferring context:"), as buildctl names it.
TEST(ProgressUi, PlainPrintsWholeLinesAndTransfersByTheirId) {
  Capture out;
  ProgressUi ui(ProgressMode::plain, out.file());
  ui.update(vertex("sha256:b", "[2/2] RUN printf", true, false));
  ui.update(log("sha256:b", "abc"));
  ui.update(log("sha256:b", "def\nghi\njk"));
  ui.update(log("sha256:b", "l"));
  ui.update(vertex("sha256:b", "[2/2] RUN printf", true, true));
  auto done = transfer("sha256:c", "transferring context:", "transferring", 310);
  done.mutable_statuses(0)->mutable_completed()->set_seconds(1);
  ui.update(done);
  ui.done();
  EXPECT_EQ(out.text(),
            "#1 [2/2] RUN printf\n"
            "#1 0.250 abcdef\n"
            "#1 0.250 ghi\n"
            "#1 0.250 jkl\n"
            "#1 DONE 1.5s\n"
            "#2 transferring context: 310B done\n");
}

TEST(ProgressUi, TtyShowsSizesInHumanUnitsAndARunningStepsLastLines) {
  Capture out;
  ProgressUi ui(ProgressMode::tty, out.file(), 60, 0, kNoTicks);
  ui.update(vertex("sha256:f", "[internal] load build context", true, false));
  ui.update(transfer("sha256:f", "transferring context:", "transferring", 292743494));
  ui.update(vertex("sha256:g", "[2/2] RUN make", true, false));
  for (int i = 1; i <= 8; ++i) ui.update(log("sha256:g", fmt::format("line {}\n", i)));
  ui.update(log("sha256:g", "compiling without a newline yet"));
  ui.done();
  std::string text = out.text();
  std::string last = text.substr(text.rfind("[+] Building"));
  EXPECT_NE(last.find(" => => transferring context: 292.74MB\n"), std::string::npos) << last;
  EXPECT_EQ(last.find("line 3\n"), std::string::npos) << "only the last six lines: " << last;
  EXPECT_NE(last.find(" => => # line 4\n"), std::string::npos) << last;
  EXPECT_NE(last.find(" => => # line 8\n => => # compiling without a newline yet\n"),
            std::string::npos)
      << last;
}

TEST(ProgressUi, TtyCutsLongLinesSoNoneWraps) {
  Capture out;
  ProgressUi ui(ProgressMode::tty, out.file(), 30, 0, kNoTicks);
  ui.update(vertex("sha256:h", "[1/1] RUN " + std::string(100, 'x'), true, false));
  ui.update(log("sha256:h", std::string(100, 'y') + "\n"));
  ui.done();
  std::string text = out.text();
  std::string frame = text.substr(text.rfind("[+] Building"));
  size_t start = 0;
  for (size_t nl; (nl = frame.find('\n', start)) != std::string::npos; start = nl + 1) {
    EXPECT_LE(nl - start, 30u) << frame.substr(start, nl - start);
  }
}

// A wide character takes two columns: counted as one, a line of them wrapped
// and left a stale line behind on every redraw.
TEST(ProgressUi, TtyCutsWideCharactersByTheirColumns) {
  Capture out;
  ProgressUi ui(ProgressMode::tty, out.file(), 30, 0, kNoTicks);
  std::string wide;
  for (int i = 0; i < 40; ++i) wide += "\u4f60";  // 你, two columns each
  ui.update(vertex("sha256:w", "[1/1] RUN echo " + wide, true, false));
  ui.done();
  std::string text = out.text();
  std::string frame = text.substr(text.rfind("[+] Building"));
  std::string line = frame.substr(frame.find(" => "));
  line = line.substr(0, line.find('\n'));
  // " => [1/1] RUN echo " is 19 columns; 5 wide characters fill 10 more of
  // 30, leaving room for the time (" 1.5s" does not fit beside a sixth).
  int columns = 0;
  for (unsigned char c : line) {
    if ((c & 0xC0) == 0x80) continue;
    columns += c >= 0xE0 ? 2 : 1;
  }
  EXPECT_LE(columns, 30) << line;
}

// A frame taller than the terminal would scroll its top away, where the next
// redraw cannot clear it: each redraw left a stale copy in the scrollback.
TEST(ProgressUi, TtyFramesFitTheTerminalsHeight) {
  Capture out;
  ProgressUi ui(ProgressMode::tty, out.file(), 40, 10, kNoTicks);
  bk::StatusResponse many;
  for (int i = 1; i <= 30; ++i) {
    auto* v = many.add_vertexes();
    v->set_digest(fmt::format("sha256:{}", i));
    v->set_name(fmt::format("[{}/30] RUN step{}", i, i));
    v->mutable_started()->set_seconds(100);
  }
  ui.update(many);
  std::string first = out.text();
  EXPECT_EQ(std::count(first.begin(), first.end(), '\n'), 9) << first;
  EXPECT_NE(first.find("[+] Building"), std::string::npos) << first;
  EXPECT_NE(first.find("RUN step30"), std::string::npos) << "the last lines are kept: " << first;
  EXPECT_EQ(first.find("RUN step1\n"), std::string::npos) << first;
  ui.done();
  std::string rest = out.text().substr(first.size());
  EXPECT_EQ(rest.rfind("\x1b[9F\x1b[J", 0), 0u) << "the redraw goes back over 9 lines";
  EXPECT_NE(rest.find("RUN step1 "), std::string::npos) << "the final frame is whole: " << rest;
}

TEST(ProgressUi, TtyListsStepsInTheOrderTheyStarted) {
  Capture out;
  ProgressUi ui(ProgressMode::tty, out.file(), 60, 0, kNoTicks);
  ui.update(vertex("sha256:late", "[2/2] RUN late", false, false));
  ui.update(vertex("sha256:early", "[1/2] RUN early", true, false));
  ui.update(vertex("sha256:late", "[2/2] RUN late", true, false));
  ui.done();
  std::string text = out.text();
  std::string frame = text.substr(text.rfind("[+] Building"));
  EXPECT_LT(frame.find("RUN early"), frame.find("RUN late")) << frame;
}

// What a RUN step prints, a Dockerfile's text and a daemon's error reach the
// terminal neutralised: colours and cursor movement dropped, a carriage
// return keeping what a terminal would show, other controls escaped.
TEST(ProgressUi, PlainNeutralisesWhatTheBuildPrints) {
  Capture out;
  ProgressUi ui(ProgressMode::plain, out.file());
  ui.update(vertex("sha256:e",
                   "[1/1] RUN x\x1b[2J\x1b"
                   "c",
                   true, false));
  ui.update(log("sha256:e", "\x1b[31mred\x1b[0m\n50%\r100%\r\n\x1b]0;title\aa\tb\n\abell \x1b[\n"));
  ui.update(vertex("sha256:e", "", true, true, false, "exit code: 1\n\x1b[2Jspoof"));
  ui.done();
  EXPECT_EQ(out.text(),
            "#1 [1/1] RUN x\\x1b[2J\\x1bc\n"
            "#1 0.250 red\n"
            "#1 0.250 100%\n"
            "#1 0.250 a       b\n"
            "#1 0.250 \\x07bell \\x1b[\n"
            "#1 ERROR: exit code: 1\\x0a\\x1b[2Jspoof\n");
  EXPECT_EQ(
      ui.failure_report(),
      "------\n > [1/1] RUN x\\x1b[2J\\x1bc:\nred\n100%\na       b\n\\x07bell \\x1b[\n------\n");
}

TEST(ProgressUi, TtyWritesNoEscapeButItsOwnRedraw) {
  Capture out;
  ProgressUi ui(ProgressMode::tty, out.file(), 60, 0, kNoTicks);
  ui.update(vertex("sha256:f", "[1/1] RUN \x1b]0;pwned\a", true, false));
  ui.update(transfer("sha256:f", "\x1b[1Aid", "", 10));
  // A sequence cut between two messages is still not written raw.
  ui.update(log("sha256:f", "done\n\x1b"));
  ui.update(log("sha256:f", "[2Kwiped"));
  ui.done();
  std::string text = out.text();
  // Take away the redraw's own "ESC[<n>F ESC[J"; no other escape remains.
  for (size_t at; (at = text.find("\x1b[")) != std::string::npos;) {
    size_t f = text.find("F\x1b[J", at);
    ASSERT_NE(f, std::string::npos) << text;
    ASSERT_EQ(text.find_first_not_of("0123456789", at + 2), f) << text;
    text.erase(at, f + 4 - at);
  }
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  EXPECT_EQ(text.find('\a'), std::string::npos) << text;
  EXPECT_NE(text.find(" => [1/1] RUN \\x1b]0;pwned\\x07"), std::string::npos) << text;
  EXPECT_NE(text.find("\\x1b[1Aid 10B"), std::string::npos) << text;
}

TEST(ProgressUi, HumanSizes) {
  EXPECT_EQ(human_size(0), "0B");
  EXPECT_EQ(human_size(999), "999B");
  EXPECT_EQ(human_size(1000), "1.00kB");
  EXPECT_EQ(human_size(292743494), "292.74MB");
  EXPECT_EQ(human_size(int64_t{5} * 1000 * 1000 * 1000), "5.00GB");
}

TEST(ProgressUi, ModeResolution) {
  ::unsetenv("BUILDKIT_PROGRESS");
  EXPECT_EQ(*resolve_progress_mode("auto", true), ProgressMode::tty);
  EXPECT_EQ(*resolve_progress_mode("auto", false), ProgressMode::plain);
  EXPECT_FALSE(resolve_progress_mode("tty", false));
  EXPECT_FALSE(resolve_progress_mode("fancy", true));
  ::setenv("BUILDKIT_PROGRESS", "plain", 1);
  EXPECT_EQ(*resolve_progress_mode("auto", true), ProgressMode::plain);
  EXPECT_EQ(*resolve_progress_mode("tty", true), ProgressMode::tty) << "the flag beats the env";
  // A value from the environment is said to come from there: the command
  // line had no --progress to blame.
  ::setenv("BUILDKIT_PROGRESS", "rawjson", 1);
  auto bad = resolve_progress_mode("auto", true);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(),
            "invalid progress mode 'rawjson' (from BUILDKIT_PROGRESS): expected auto, tty, plain "
            "or quiet");
  ::unsetenv("BUILDKIT_PROGRESS");
}

}  // namespace
}  // namespace envd::output

namespace envd::output {
namespace {

TEST(ProgressUi, PlainPrintsEachOutcomeOnce) {
  Capture out;
  ProgressUi ui(ProgressMode::plain, out.file(), 0, 0, kNoTicks);
  // The daemon re-sends finished vertices with every later update.
  ui.update(vertex("sha256:e", "[1/1] FROM base", true, true));
  ui.update(vertex("sha256:e", "[1/1] FROM base", true, true));
  EXPECT_EQ(out.text(), "#1 [1/1] FROM base\n#1 DONE 1.5s\n");
}

// What the Engine's BuildKit sends for "load build context": completed at
// once (its cache key), started again for the transfer, completed again; and a
// FROM that completes and then comes back cached. The last outcome is shown.
TEST(ProgressUi, PlainShowsTheOutcomeOfAStepThatRanAgain) {
  Capture out;
  ProgressUi ui(ProgressMode::plain, out.file(), 0, 0, kNoTicks);
  auto at = [](const std::string& digest, const std::string& name, std::int64_t started,
               std::int64_t completed, bool cached) {
    bk::StatusResponse r;
    auto* v = r.add_vertexes();
    v->set_digest(digest);
    v->set_name(name);
    v->set_cached(cached);
    v->mutable_started()->set_seconds(started);
    if (completed > 0) v->mutable_completed()->set_seconds(completed);
    return r;
  };
  ui.update(at("sha256:f", "[1/2] FROM base", 100, 100, false));
  ui.update(at("sha256:c", "[internal] load build context", 100, 100, false));
  ui.update(at("sha256:c", "[internal] load build context", 101, 0, false));
  ui.update(transfer("sha256:c", "transferring context:", "transferring", 310));
  // Started again and found cached in one update.
  ui.update(at("sha256:f", "[1/2] FROM base", 102, 102, true));
  ui.update(at("sha256:c", "[internal] load build context", 101, 106, false));
  // Re-sent unchanged with a later update: no third line.
  ui.update(at("sha256:c", "[internal] load build context", 101, 106, false));
  // Run again to the same outcome, nothing said between: said once.
  ui.update(at("sha256:f", "[1/2] FROM base", 107, 107, true));
  EXPECT_EQ(out.text(),
            "#1 [1/2] FROM base\n#1 DONE 0.0s\n"
            "#2 [internal] load build context\n#2 DONE 0.0s\n"
            "#1 CACHED\n"
            "#2 DONE 5.0s\n");
}

// Collected between ticks, plain lines are written step by step, as buildctl
// writes them: the daemon's last word on a transfer, sent in the message after
// its step's completion, comes before the step's DONE, and a step's lines are
// not cut by another step's.
TEST(ProgressUi, PlainWritesAStepsLateLinesBeforeItsOutcome) {
  Capture out;
  ProgressUi ui(ProgressMode::plain, out.file(), 0, 0, std::chrono::hours(1));
  ui.update(vertex("sha256:a", "[internal] load build context", true, false));
  ui.update(transfer("sha256:a", "transferring context:", "transferring", 100));
  ui.update(vertex("sha256:b", "[1/2] FROM base", true, false));
  ui.update(vertex("sha256:a", "[internal] load build context", true, true));
  auto last = transfer("sha256:a", "transferring context:", "transferring", 310);
  last.mutable_statuses(0)->mutable_completed()->set_seconds(1);
  ui.update(last);
  ui.update(log("sha256:b", "pulled\n"));
  ui.update(vertex("sha256:b", "[1/2] FROM base", true, true));
  EXPECT_EQ(written_so_far(out), "") << "nothing before the first tick";
  ui.done();
  EXPECT_EQ(out.text(),
            "#1 [internal] load build context\n"
            "#1 transferring context: 310B done\n"
            "#1 DONE 1.5s\n"
            "#2 [1/2] FROM base\n"
            "#2 0.250 pulled\n"
            "#2 DONE 1.5s\n");
}

// A display dropped without done() (a solve left by an error) still writes
// what it collected; an update after done() is written at once.
TEST(ProgressUi, PlainWritesWhatItCollectedWhenDroppedOrAfterDone) {
  Capture out;
  {
    ProgressUi ui(ProgressMode::plain, out.file(), 0, 0, std::chrono::hours(1));
    ui.update(vertex("sha256:a", "[1/1] RUN false", true, true, false, "exit code: 1"));
    EXPECT_EQ(written_so_far(out), "");
  }
  EXPECT_EQ(out.text(), "#1 [1/1] RUN false\n#1 ERROR: exit code: 1\n");
  Capture late;
  ProgressUi ui(ProgressMode::plain, late.file(), 0, 0, std::chrono::hours(1));
  ui.done();
  ui.update(vertex("sha256:b", "[1/1] FROM base", false, true, /*cached=*/true));
  EXPECT_EQ(written_so_far(late), "#1 [1/1] FROM base\n#1 CACHED\n");
}

// A step that prints a line and then nothing for a long time: the line is
// written at the next tick, without waiting for the daemon's next message.
TEST(ProgressUi, PlainWritesWhatItCollectedAtTheNextTick) {
  Capture out;
  ProgressUi ui(ProgressMode::plain, out.file(), 0, 0, std::chrono::milliseconds(20));
  ui.update(vertex("sha256:c", "[2/2] RUN sleep 600", true, false));
  ui.update(log("sha256:c", "started\n"));
  EXPECT_TRUE(wait_for_output(out, [](const std::string& text) {
    return text == "#1 [2/2] RUN sleep 600\n#1 0.250 started\n";
  })) << written_so_far(out);
  ui.done();
}

// A running step's time moves on while the daemon says nothing: the ticker
// redraws the frame; before the first update it draws none (a build that
// fails before its first step shows no empty view).
TEST(ProgressUi, TtyRedrawsAtEachTick) {
  Capture out;
  ProgressUi ui(ProgressMode::tty, out.file(), 60, 0, std::chrono::milliseconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(written_so_far(out), "") << "no frame before the first update";
  ui.update(vertex("sha256:d", "[1/1] RUN sleep 600", true, false));
  auto frames = [](const std::string& text) {
    std::size_t n = 0;
    for (auto at = text.find("[+] Building"); at != std::string::npos;
         at = text.find("[+] Building", at + 1)) {
      ++n;
    }
    return n;
  };
  EXPECT_TRUE(wait_for_output(out, [&](const std::string& text) { return frames(text) >= 3; }))
      << written_so_far(out);
  ui.done();
  EXPECT_NE(out.text().rfind("FINISHED"), std::string::npos);
}

}  // namespace
}  // namespace envd::output
