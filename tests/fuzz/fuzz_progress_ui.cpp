// BuildKit's status stream into the progress display, in plain and tty mode,
// written to memory. The daemon names the steps and sends their logs and
// errors: none of it may reach the terminal as a control character or escape
// sequence. Every line the display writes must already be printable() (tty
// mode's own cursor movement, ESC [ n F ESC [ J, taken out first).
//
// The input is a script, one update per line, fields split at '|':
//   v<digest>|<name>|<flags>|<error>   a vertex; flags: s started, c completed,
//                                      C cached
//   s<vertex>|<id>|<name>|<current>|<total>|<flags>   a status (c completed)
//   l<vertex>|<message>                a log; "\n" in the message is a newline
//   w<vertex>|<short>|<detail>         a warning
#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "envd/text.hpp"
#include "fuzz_input.hpp"
#include "github.com/moby/buildkit/api/services/control/control.pb.h"
#include "output/progress_ui.hpp"

namespace bk = moby::buildkit::v1;
using envd::fuzz::require;

namespace {

std::vector<std::string> fields_of(std::string_view line) {
  std::vector<std::string> fields;
  size_t start = 0;
  for (;;) {
    size_t bar = line.find('|', start);
    fields.emplace_back(line.substr(start, bar == std::string_view::npos ? bar : bar - start));
    if (bar == std::string_view::npos) return fields;
    start = bar + 1;
  }
}

std::string field(const std::vector<std::string>& fields, size_t i) {
  return i < fields.size() ? fields[i] : std::string();
}

bool has_flag(const std::vector<std::string>& fields, size_t i, char flag) {
  return field(fields, i).find(flag) != std::string::npos;
}

std::int64_t number(const std::string& text) { return std::strtoll(text.c_str(), nullptr, 10); }

std::string unescape_newlines(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == 'n') {
      out += '\n';
      ++i;
    } else {
      out += text[i];
    }
  }
  return out;
}

// One script line as one update; false for a line that is none.
bool update_of(const std::string& line, bk::StatusResponse& update) {
  if (line.empty()) return false;
  auto fields = fields_of(std::string_view(line).substr(1));
  switch (line[0]) {
    case 'v': {
      auto* v = update.add_vertexes();
      v->set_digest(field(fields, 0));
      v->set_name(field(fields, 1));
      v->set_cached(has_flag(fields, 2, 'C'));
      if (has_flag(fields, 2, 's')) v->mutable_started()->set_seconds(100);
      if (has_flag(fields, 2, 'c')) v->mutable_completed()->set_seconds(102);
      v->set_error(field(fields, 3));
      return true;
    }
    case 's': {
      auto* s = update.add_statuses();
      s->set_vertex(field(fields, 0));
      s->set_id(field(fields, 1));
      s->set_name(field(fields, 2));
      s->set_current(number(field(fields, 3)));
      s->set_total(number(field(fields, 4)));
      s->mutable_started()->set_seconds(100);
      if (has_flag(fields, 5, 'c')) s->mutable_completed()->set_seconds(101);
      return true;
    }
    case 'l': {
      auto* l = update.add_logs();
      l->set_vertex(field(fields, 0));
      l->set_stream(1);
      l->set_msg(unescape_newlines(
          line.substr(line.find('|') == std::string::npos ? line.size() : line.find('|') + 1)));
      l->mutable_timestamp()->set_seconds(101);
      return true;
    }
    case 'w': {
      auto* w = update.add_warnings();
      w->set_vertex(field(fields, 0));
      w->set_level(1);
      w->set_short_(field(fields, 1));
      w->add_detail(field(fields, 2));
      return true;
    }
    default:
      return false;
  }
}

// Runs the script through a display in `mode` and returns what it wrote;
// with a `tick` of an hour, plain collects every line until done().
std::string render(const std::vector<bk::StatusResponse>& updates, envd::output::ProgressMode mode,
                   std::chrono::milliseconds tick = std::chrono::milliseconds(0)) {
  char* buffer = nullptr;
  size_t length = 0;
  FILE* out = ::open_memstream(&buffer, &length);
  require(out != nullptr, "open_memstream failed");
  {
    envd::output::ProgressUi ui(mode, out, 60, 0, tick);
    for (const auto& update : updates) ui.update(update);
    ui.done();
    // The failure report goes to stderr after a failed build: it must be as
    // clean as the rest.
    std::string report = ui.failure_report();
    std::fputs(report.c_str(), out);
  }
  std::fclose(out);
  std::string text(buffer, length);
  std::free(buffer);
  return text;
}

// The display's own cursor movement in tty mode: ESC [ <n> F ESC [ J.
std::string without_redraws(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 2, "\x1b[") == 0) {
      size_t j = i + 2;
      while (j < text.size() && text[j] >= '0' && text[j] <= '9') ++j;
      if (j > i + 2 && text.compare(j, 4, "F\x1b[J") == 0) {
        i = j + 4;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

void require_printable_lines(const std::string& text) {
  for (const auto& line : envd::fuzz::lines(text)) {
    if (envd::sdk::printable(line) != line) {
      std::fprintf(stderr, "fuzz: the display wrote a line that is not printable: %s\n",
                   envd::sdk::printable(line).c_str());
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<bk::StatusResponse> updates;
  for (const auto& line : envd::fuzz::lines(envd::fuzz::as_text(data, size))) {
    bk::StatusResponse update;
    if (update_of(line, update)) updates.push_back(std::move(update));
    if (updates.size() >= 200) break;
  }
  const std::string plain = render(updates, envd::output::ProgressMode::plain);
  require_printable_lines(plain);
  // Collected and written step by step, the lines are the same ones: only
  // their order may differ.
  auto sorted_lines = [](const std::string& text) {
    std::vector<std::string> out = envd::fuzz::lines(text);
    std::sort(out.begin(), out.end());
    return out;
  };
  const std::string collected =
      render(updates, envd::output::ProgressMode::plain, std::chrono::hours(1));
  if (sorted_lines(collected) != sorted_lines(plain)) {
    std::fprintf(stderr, "fuzz: plain wrote other lines when it collected them:\n%s\n---\n%s\n",
                 plain.c_str(), collected.c_str());
    std::abort();
  }
  require_printable_lines(without_redraws(render(updates, envd::output::ProgressMode::tty)));
  return 0;
}
