#include "engine_ops.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>
#include <utility>

#include "config_archive.hpp"
#include "container_spec.hpp"
#include "envd/address.hpp"
#include "envd/host.hpp"
#include "envd/registry_auth.hpp"
#include "envd/relay.hpp"
#include "envd/stdio_frames.hpp"
#include "envd/text.hpp"

namespace envd::plugins::docker_container {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using sdk::FrameDemuxer;
using sdk::StdioText;

std::string string_at(const json::object& object, std::string_view key) {
  const json::value* v = object.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::string mib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / (1024.0 * 1024.0));
  return buf;
}

// Reads `fd` to its end (or the deadline), demultiplexing stdio frames.
Result<StdioText> read_frames(int fd, sdk::Deadline deadline, const std::string& what) {
  StdioText text;
  FrameDemuxer demuxer([&](int stream, std::string_view piece) {
    (stream == 2 ? text.err : text.out).append(piece);
  });
  char buf[16384];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Error(Errc::timeout, what + " did not finish in time");
    if (sdk::cancelled()) return sdk::cancelled_error(what);
    pollfd p{fd, POLLIN, 0};
    // At most 100 ms at a time, for Ctrl-C.
    int ready = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 100)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) continue;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    demuxer.feed(std::string_view(buf, static_cast<size_t>(n)));
  }
  return text;
}

Result<std::string> create_exec(sdk::DockerEngine& engine, const std::string& container,
                                const std::vector<std::string>& cmd, bool attach_stdin,
                                sdk::Deadline deadline) {
  json::array argv;
  for (const auto& a : cmd) argv.emplace_back(a);
  json::object body{{"AttachStdin", attach_stdin},
                    {"AttachStdout", true},
                    {"AttachStderr", true},
                    {"Tty", false},
                    {"Cmd", std::move(argv)}};
  auto created =
      engine.call("POST", "/containers/" + container + "/exec", json::serialize(body), deadline);
  if (!created) return created.error();
  boost::system::error_code ec;
  json::value v = json::parse(*created, ec);
  if (ec || !v.is_object() || string_at(v.as_object(), "Id").empty()) {
    return Error(Errc::internal, "the Docker Engine's answer to exec create has no Id");
  }
  return string_at(v.as_object(), "Id");
}

struct ExecInfo {
  bool running = false;
  bool exited = false;  // ExitCode is set (it is null until the process ends)
  int exit_code = -1;
};

Result<ExecInfo> inspect_exec(sdk::DockerEngine& engine, const std::string& id,
                              sdk::Deadline deadline) {
  auto body = engine.call("GET", "/exec/" + id + "/json", "", deadline);
  if (!body) return body.error();
  boost::system::error_code ec;
  json::value v = json::parse(*body, ec);
  if (ec || !v.is_object())
    return Error(Errc::internal, "the Docker Engine's exec info is not JSON");
  ExecInfo info;
  const auto& o = v.as_object();
  if (const auto* r = o.if_contains("Running"); r != nullptr && r->is_bool()) {
    info.running = r->as_bool();
  }
  if (const auto* c = o.if_contains("ExitCode"); c != nullptr && c->is_int64()) {
    info.exit_code = static_cast<int>(c->as_int64());
    info.exited = !info.running;
  }
  return info;
}

// What the engine -> core direction of a dial-stdio pump learnt, shared with
// dial_stdio() while it waits for the process to start.
struct Pump {
  std::mutex mu;
  std::condition_variable cv;
  bool engine_closed = false;
  std::string exec_id;
  std::string stderr_text;
  std::string stdout_head;  // the first bytes, shown when they are an error text
};

// What a dial-stdio said: its stderr, else its stdout when that is text
// rather than HTTP/2 (the engine writes an exec that cannot start its error
// there), as one line.
std::string what_dial_said(const Pump& pump) {
  if (!pump.stderr_text.empty()) return sdk::one_line(pump.stderr_text);
  bool text = !pump.stdout_head.empty() &&
              std::all_of(pump.stdout_head.begin(), pump.stdout_head.end(), [](char c) {
                return std::isprint(static_cast<unsigned char>(c)) != 0 ||
                       std::isspace(static_cast<unsigned char>(c)) != 0;
              });
  return text ? sdk::one_line(pump.stdout_head) : std::string();
}

// engine -> core: stdout frames are the gRPC stream, stderr is kept for errors.
// The demultiplexer keeps its state between reads, and forwards through the
// function the relay passes with each read.
class StdoutFrames {
 public:
  explicit StdoutFrames(std::shared_ptr<Pump> pump)
      : pump_(std::move(pump)),
        demuxer_([this](int stream, std::string_view piece) { take(stream, piece); }) {}
  StdoutFrames(const StdoutFrames&) = delete;
  StdoutFrames& operator=(const StdoutFrames&) = delete;

  bool feed(std::string_view data, const sdk::RelayForward& forward) {
    forward_ = &forward;
    return demuxer_.feed(data);
  }

 private:
  void take(int stream, std::string_view piece) {
    if (stream == 2) {
      std::lock_guard lock(pump_->mu);
      if (pump_->stderr_text.size() < 65536) pump_->stderr_text.append(piece);
      return;
    }
    {
      std::lock_guard lock(pump_->mu);
      if (pump_->stdout_head.size() < 512) {
        pump_->stdout_head.append(piece.substr(0, 512 - pump_->stdout_head.size()));
      }
    }
    (*forward_)(piece);
  }

  std::shared_ptr<Pump> pump_;
  const sdk::RelayForward* forward_ = nullptr;  // set by each feed()
  FrameDemuxer demuxer_;
};

}  // namespace

void DialLog::remember(const std::string& exec_id, const std::string& said) {
  std::lock_guard lock(mutex_);
  last_ = {exec_id, said};
}

DialLog::Entry DialLog::last() const {
  std::lock_guard lock(mutex_);
  return last_;
}

std::string last_dial_failure(sdk::DockerEngine& engine, const DialLog& log,
                              sdk::Deadline deadline) {
  auto [exec_id, said] = log.last();
  if (exec_id.empty()) return {};
  auto info = inspect_exec(engine, exec_id, deadline);
  if (info && info->exited && info->exit_code != 0 && said.empty()) {
    // The process has ended, so the Engine is about to close its stream, and
    // the pump then records what it said. The core can get here first: the
    // Engine writes an exec that cannot start its error text on stdout, which
    // gRPC refuses at once, before that stream ends.
    for (int i = 0; i < 50 && said.empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      auto [again_id, again_said] = log.last();
      if (again_id != exec_id) break;
      said = again_said;
    }
  }
  if (info && info->exited && info->exit_code != 0) {
    return "buildctl dial-stdio exited with " + std::to_string(info->exit_code) +
           (said.empty() ? "" : ": " + said);
  }
  return said.empty() ? std::string() : "buildctl dial-stdio said: " + said;
}

std::optional<std::chrono::system_clock::time_point> parse_engine_time(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS, then an optional fraction, then Z.
  auto digits = [&](std::size_t at, std::size_t n) -> std::optional<int> {
    if (at + n > text.size()) return std::nullopt;
    int value = 0;
    for (std::size_t i = at; i < at + n; ++i) {
      if (std::isdigit(static_cast<unsigned char>(text[i])) == 0) return std::nullopt;
      value = value * 10 + (text[i] - '0');
    }
    return value;
  };
  auto year = digits(0, 4);
  auto month = digits(5, 2);
  auto day = digits(8, 2);
  auto hour = digits(11, 2);
  auto minute = digits(14, 2);
  auto second = digits(17, 2);
  if (!year || !month || !day || !hour || !minute || !second || text[4] != '-' || text[7] != '-' ||
      text[10] != 'T' || text[13] != ':' || text[16] != ':') {
    return std::nullopt;
  }
  std::size_t end = 19;
  if (end < text.size() && text[end] == '.') {
    ++end;
    while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end])) != 0) ++end;
  }
  if (end + 1 != text.size() || text[end] != 'Z' || *year < 1970) return std::nullopt;
  std::chrono::year_month_day date{std::chrono::year(*year),
                                   std::chrono::month(static_cast<unsigned>(*month)),
                                   std::chrono::day(static_cast<unsigned>(*day))};
  if (!date.ok() || *hour > 23 || *minute > 59 || *second > 60) return std::nullopt;
  return std::chrono::sys_days(date) + std::chrono::hours(*hour) + std::chrono::minutes(*minute) +
         std::chrono::seconds(*second);
}

Result<std::optional<ContainerState>> inspect_container(sdk::DockerEngine& engine,
                                                        const std::string& name,
                                                        sdk::Deadline deadline) {
  auto answer = engine.request("GET", "/containers/" + name + "/json", "", deadline);
  if (!answer) return answer.error();
  if (answer->status == 404) return std::optional<ContainerState>();
  if (answer->status != 200) return engine.status_error(*answer);
  boost::system::error_code ec;
  json::value v = json::parse(answer->body, ec);
  if (ec || !v.is_object()) {
    return Error(Errc::internal,
                 "the Docker Engine's inspect answer for container '" + name + "' is not JSON");
  }
  const auto& o = v.as_object();
  // The Engine resolves /containers/{x} as a full id, then a name, then an
  // id prefix: with no container of this name, a name of hex digits found
  // another container (one `builder rm` then removed). Only the container
  // that has the name is the builder's.
  if (string_at(o, "Name") != "/" + name) return std::optional<ContainerState>();
  ContainerState state;
  state.id = string_at(o, "Id");
  if (const auto* s = o.if_contains("State"); s != nullptr && s->is_object()) {
    state.status = string_at(s->as_object(), "Status");
    state.error = string_at(s->as_object(), "Error");
    state.started_at = parse_engine_time(string_at(s->as_object(), "StartedAt"));
    if (const auto* c = s->as_object().if_contains("ExitCode"); c != nullptr && c->is_int64()) {
      state.exit_code = static_cast<int>(c->as_int64());
    }
  }
  if (const auto* m = o.if_contains("Mounts"); m != nullptr && m->is_array()) {
    for (const auto& mount : m->as_array()) {
      if (!mount.is_object()) continue;
      const auto& mo = mount.as_object();
      if (string_at(mo, "Type") == "bind" && string_at(mo, "Destination") == kSocketDir) {
        state.socket_dir = string_at(mo, "Source");
      }
      if (string_at(mo, "Type") == "bind" && string_at(mo, "Destination") == kConfigPath) {
        state.config_source = string_at(mo, "Source");
      }
    }
  }
  if (const auto* c = o.if_contains("Config"); c != nullptr && c->is_object()) {
    state.image = string_at(c->as_object(), "Image");
    if (const auto* l = c->as_object().if_contains("Labels"); l != nullptr && l->is_object()) {
      for (const auto& [k, val] : l->as_object()) {
        if (val.is_string()) state.labels[std::string(k)] = std::string(val.as_string());
      }
    }
  }
  return std::optional<ContainerState>(std::move(state));
}

Result<bool> have_image(sdk::DockerEngine& engine, const std::string& image,
                        sdk::Deadline deadline) {
  auto have = engine.request("GET", "/images/" + image + "/json", "", deadline);
  if (!have) return have.error();
  return have->status == 200;
}

Status ensure_image(sdk::DockerEngine& engine, const std::string& image, sdk::Deadline deadline) {
  auto have = have_image(engine, image, deadline);
  if (!have) return have.error();
  if (*have) return {};
  return pull_image(engine, image, deadline);
}

Status pull_image(sdk::DockerEngine& engine, const std::string& image, sdk::Deadline deadline) {
  ImageRef ref = split_image(image);
  // The docker CLI's credentials, credential helpers included.
  auto auth = sdk::registry_auth_header_for(ref.registry);
  if (!auth) return auth.error().wrap("cannot pull " + image);
  sdk::EngineHeaders headers{{"X-Registry-Auth", *auth}};
  sdk::report_progress("pulling " + image);
  std::map<std::string, std::pair<double, double>> layers;  // id -> (current, total)
  auto last_report = Clock::now();
  std::string failure;
  std::string path =
      "/images/create?" + sdk::format_query({{"fromImage", ref.repository}, {"tag", ref.tag}});
  auto pulled = engine.stream(
      "POST", path, "", headers, sdk::StreamMode::lines,
      [&](std::string_view line) {
        boost::system::error_code ec;
        json::value v = json::parse(line, ec);
        if (ec || !v.is_object()) return true;
        const auto& o = v.as_object();
        if (std::string error = string_at(o, "error"); !error.empty()) {
          failure = error;
          return true;
        }
        std::string id = string_at(o, "id");
        std::string status = string_at(o, "status");
        const auto* detail = o.if_contains("progressDetail");
        if (!id.empty() && detail != nullptr && detail->is_object()) {
          const auto& d = detail->as_object();
          const auto* cur = d.if_contains("current");
          const auto* tot = d.if_contains("total");
          if (cur != nullptr && tot != nullptr && cur->is_number() && tot->is_number() &&
              status == "Downloading") {
            layers[id] = {cur->to_number<double>(), tot->to_number<double>()};
          }
        }
        if (status == "Download complete" || status == "Pull complete") {
          if (auto it = layers.find(id); it != layers.end()) it->second.first = it->second.second;
        }
        if (id.empty() && !status.empty()) {
          sdk::report_progress("pulling " + image + ": " + status);
        } else if (Clock::now() - last_report > std::chrono::milliseconds(500) && !layers.empty()) {
          double cur = 0;
          double tot = 0;
          for (const auto& [_, p] : layers) {
            cur += p.first;
            tot += p.second;
          }
          sdk::report_progress("pulling " + image + ": " + mib(cur) + " of " + mib(tot));
          last_report = Clock::now();
        }
        return true;
      },
      deadline);
  if (!pulled) return pulled.error().wrap("cannot pull image " + image);
  if (!failure.empty()) {
    return Error(Errc::unavailable, "cannot pull image " + image + ": " + sdk::one_line(failure));
  }
  return {};
}

Result<std::vector<std::string>> container_logs(sdk::DockerEngine& engine, const std::string& name,
                                                int lines, sdk::Deadline deadline) {
  auto body = engine.call(
      "GET", "/containers/" + name + "/logs?stdout=1&stderr=1&tail=" + std::to_string(lines), "",
      deadline);
  if (!body) return body.error();
  // Non-TTY logs are multiplexed; the order between the two streams is kept
  // frame by frame.
  std::string text;
  FrameDemuxer demuxer([&](int /*stream*/, std::string_view piece) { text.append(piece); });
  if (!demuxer.feed(*body)) text = *body;
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(line);
  }
  return out;
}

Status put_config(sdk::DockerEngine& engine, const std::string& container, const std::string& text,
                  sdk::Deadline deadline) {
  std::string path = kConfigPath;  // /etc/buildkit/buildkitd.toml
  auto file_at = path.rfind('/');
  auto dir_at = path.rfind('/', file_at - 1);
  auto tar =
      config_tar(path.substr(dir_at + 1, file_at - dir_at - 1), path.substr(file_at + 1), text);
  if (!tar) return tar.error();
  std::size_t sent = 0;
  auto body = [&](char* buffer, std::size_t capacity) -> Result<std::size_t> {
    std::size_t n = std::min(capacity, tar->size() - sent);
    std::copy_n(tar->data() + sent, n, buffer);
    sent += n;
    return n;
  };
  auto status = engine.upload(
      "PUT", "/containers/" + container + "/archive?path=" + path.substr(0, dir_at),
      "application/x-tar", body, sdk::StreamMode::chunks, [](std::string_view) { return true; },
      deadline);
  if (!status) {
    return status.error().wrap("cannot copy buildkitd.toml into container '" + container + "'");
  }
  return {};
}

Result<ExecOutput> exec_capture(sdk::DockerEngine& engine, const std::string& container,
                                const std::vector<std::string>& cmd, sdk::Deadline deadline) {
  auto id = create_exec(engine, container, cmd, false, deadline);
  if (!id) return id.error();
  auto fd = engine.hijack("POST", "/exec/" + *id + "/start", R"({"Detach":false,"Tty":false})", {},
                          "tcp", deadline);
  if (!fd) return fd.error();
  auto text = read_frames(*fd, deadline, "'" + cmd.front() + "' in container '" + container + "'");
  ::close(*fd);
  if (!text) return text.error();
  auto info = inspect_exec(engine, *id, deadline);
  if (!info) return info.error();
  return ExecOutput{info->exit_code, std::move(text->out), std::move(text->err)};
}

Result<int> dial_stdio(sdk::DockerEngine& engine, const std::string& container,
                       sdk::Deadline deadline, const std::shared_ptr<DialLog>& log) {
  auto id = create_exec(engine, container, {"buildctl", "dial-stdio"}, true, deadline);
  if (!id) return id.error();
  auto engine_fd = engine.hijack("POST", "/exec/" + *id + "/start",
                                 R"({"Detach":false,"Tty":false})", {}, "tcp", deadline);
  if (!engine_fd) return engine_fd.error();
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    int err = errno;
    ::close(*engine_fd);
    return Error(Errc::internal, std::string("cannot create a socketpair: ") + std::strerror(err));
  }
  auto pump = std::make_shared<Pump>();
  pump->exec_id = *id;
  log->remember(*id, "");

  sdk::RelayDirection to_core;
  to_core.filter = [frames = std::make_shared<StdoutFrames>(pump)](
                       std::string_view data, const sdk::RelayForward& forward) {
    // A failed forward (the core closed its end) does not end the direction:
    // what the process says on stderr is still wanted. A malformed frame does.
    return frames->feed(data, forward);
  };
  to_core.on_end = [pump, log] {
    // Recorded before the core sees the stream end, so its diagnosis finds it.
    std::lock_guard lock(pump->mu);
    log->remember(pump->exec_id, what_dial_said(*pump));
    pump->engine_closed = true;
    pump->cv.notify_all();
  };
  // core -> engine: bytes become the process's stdin; the core closing its end
  // closes that stdin, which ends dial-stdio.
  auto relay = sdk::Relay::between("dial-stdio pump", *engine_fd, pair[1], std::move(to_core));
  if (!relay) {
    ::close(pair[0]);
    return relay.error();
  }
  sdk::relay_registry().adopt(std::move(*relay));

  // The engine answers the hijack before it starts the process: wait until
  // the process runs, so one that cannot start (no buildctl in the image) or
  // ends at once fails here with its exit code and stderr rather than as a
  // bare closed stream. A running process costs one or two inspects.
  auto backoff = std::chrono::milliseconds(2);
  for (;;) {
    auto info = inspect_exec(engine, *id, deadline);
    if (!info) {
      ::close(pair[0]);
      return info.error();
    }
    if (info->running) return pair[0];
    if (info->exited) {
      ::close(pair[0]);
      std::string err;
      {
        // stderr arrives before the stream closes; give the pump a moment.
        std::unique_lock lock(pump->mu);
        pump->cv.wait_for(lock, std::chrono::seconds(1), [&] { return pump->engine_closed; });
        err = what_dial_said(*pump);
      }
      return Error(Errc::unavailable, "buildctl dial-stdio exited with " +
                                          std::to_string(info->exit_code) + " in container '" +
                                          container + "'" + (err.empty() ? "" : ": " + err));
    }
    if (Clock::now() + backoff >= deadline) {
      ::close(pair[0]);
      return Error(Errc::timeout,
                   "buildctl dial-stdio did not start in container '" + container + "' in time");
    }
    if (!sdk::sleep_unless_cancelled(backoff)) {
      ::close(pair[0]);
      return sdk::cancelled_error("connecting to buildkitd in container '" + container + "'");
    }
    backoff = std::min(backoff * 2, std::chrono::milliseconds(50));
  }
}

}  // namespace envd::plugins::docker_container
