#include "build/progress_ui.hpp"

#include <gtest/gtest.h>
#include <stdio.h>

#include <cstdlib>
#include <string>

#include "build/test_support.hpp"
#include "github.com/moby/buildkit/api/services/control/control.pb.h"

namespace envd::build {
namespace {

namespace bk = moby::buildkit::v1;

using testing::Capture;

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

TEST(ProgressUi, FailureReportHasTheStepAndItsLogTail) {
  Capture out;
  ProgressUi ui(ProgressMode::plain, out.file());
  ui.update(vertex("sha256:c", "[2/2] RUN make", true, false));
  ui.update(log("sha256:c", "compiling\nerror: boom"));
  ui.update(vertex("sha256:c", "[2/2] RUN make", true, true, false, "exit code: 2"));
  EXPECT_NE(out.text().find("#1 ERROR: exit code: 2\n"), std::string::npos) << out.text();
  EXPECT_EQ(ui.failure_report(), "------\n > [2/2] RUN make:\ncompiling\nerror: boom\n------\n");
}

TEST(ProgressUi, TtyRedrawsInPlace) {
  Capture out;
  ProgressUi ui(ProgressMode::tty, out.file());
  ui.update(vertex("sha256:d", "[1/1] RUN sleep 1", true, false));
  ui.update(vertex("sha256:d", "[1/1] RUN sleep 1", true, true));
  ui.done();
  std::string text = out.text();
  EXPECT_NE(text.find("[+] Building"), std::string::npos);
  EXPECT_NE(text.find("FINISHED"), std::string::npos);
  EXPECT_NE(text.find("\x1b["), std::string::npos) << "the final frame redraws the first";
  EXPECT_NE(text.find(" => [1/1] RUN sleep 1 1.5s"), std::string::npos) << text;
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
  ::unsetenv("BUILDKIT_PROGRESS");
}

}  // namespace
}  // namespace envd::build

namespace envd::build {
namespace {

TEST(ProgressUi, PlainPrintsEachOutcomeOnce) {
  Capture out;
  ProgressUi ui(ProgressMode::plain, out.file());
  // The daemon re-sends finished vertices with every later update.
  ui.update(vertex("sha256:e", "[1/1] FROM base", true, true));
  ui.update(vertex("sha256:e", "[1/1] FROM base", true, true));
  EXPECT_EQ(out.text(), "#1 [1/1] FROM base\n#1 DONE 1.5s\n");
}

}  // namespace
}  // namespace envd::build
