#include "docker_container_builder.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string_view>
#include <system_error>
#include <thread>

#include "container_spec.hpp"
#include "engine_ops.hpp"
#include "envd/address.hpp"
#include "envd/docker_engine.hpp"
#include "envd/files.hpp"
#include "envd/host.hpp"
#include "envd/text.hpp"
#include "options.hpp"

namespace envd::plugins {
namespace {

namespace dc = docker_container;
namespace json = boost::json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kSubject = "docker-container builder address";
constexpr std::string_view kExpected =
    "<container>[?context=<docker context>], e.g. envd_buildkitd or "
    "envd_buildkitd?context=remote";
// Pulling an image may take far longer than connecting to a daemon.
constexpr std::chrono::minutes kPullTimeout{15};
constexpr int kLogLines = 20;
// What a failure may still take after the connect deadline: removing the
// container it left half made, reading the last log lines for the message.
constexpr std::chrono::seconds kCleanupTimeout{5};
// After a create that got no answer, how long the container it may have
// made is looked for (the Engine goes on with a create whose client went
// away, and makes one in tens of milliseconds).
constexpr std::chrono::seconds kCreateAnswerGrace{1};
constexpr std::chrono::seconds kLogsTimeout{2};
// A container found running that started less than this ago is waited for
// like one started here: buildkitd listens some time after its container
// starts (15 ms here, seconds on a loaded machine with a big cache).
constexpr std::chrono::seconds kFreshStart{60};

// Docker's name rules: an alphanumeric first character, then at least one of
// the alphanumerics and `extra`.
bool follows_docker_rule(std::string_view name, std::string_view extra) {
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  return name.size() >= 2 && alnum(name.front()) &&
         std::all_of(name.begin() + 1, name.end(),
                     [&](char c) { return alnum(c) || extra.find(c) != std::string_view::npos; });
}

struct Args {
  std::string image;
  bool recreate = false;
  bool keep_cache = false;
};

Args parse_args(const std::string& args_json) {
  Args args;
  boost::system::error_code ec;
  json::value v = json::parse(args_json, ec);
  if (ec || !v.is_object()) return args;
  const auto& o = v.as_object();
  if (const auto* i = o.if_contains("image"); i != nullptr && i->is_string()) {
    args.image = std::string(i->as_string());
  }
  if (const auto* r = o.if_contains("recreate"); r != nullptr && r->is_bool()) {
    args.recreate = r->as_bool();
  }
  if (const auto* k = o.if_contains("keep_cache"); k != nullptr && k->is_bool()) {
    args.keep_cache = k->as_bool();
  }
  return args;
}

// Everything a verb needs to know about the container the context asks for.
struct Target {
  std::string name;
  dc::ContainerOptions options;
  dc::ContainerSpec spec;
  std::string config_path;  // the stored or generated buildkitd.toml on this machine
  std::string config_text;
  Args args;
  std::optional<sdk::DockerEngine> engine;  // the one DOCKER_HOST names; always set
  // Looking only (status): why the context's settings cannot make a container
  // now (a seccomp profile or stored config that cannot be read), else "".
  // The spec then lacks what could not be read.
  std::string unusable;
};

Result<std::string> container_name(const std::string& address) {
  auto parsed = sdk::parse_name_with_query(address);
  if (!parsed) return parsed.error();
  if (const std::string* context = sdk::find_query_param(parsed->query, "context")) {
    return Error(Errc::unsupported,
                 "docker-container builder address '" + address + "' names the docker context '" +
                     *context +
                     "', which envd does not support: it reaches the Docker Engine that "
                     "DOCKER_HOST names; set DOCKER_HOST instead and drop '?context=" +
                     *context + "' from the address");
  }
  return parsed->name.empty() ? std::string(DockerContainerBuilder::default_container)
                              : parsed->name;
}

Result<std::string> read_file(const std::string& path) {
  auto text = sdk::read_regular_file(path);
  if (!text) {
    const std::string why =
        text.error().code() == Errc::not_found ? "" : ": " + text.error().message();
    return Error(Errc::not_found, "cannot read the stored buildkitd config '" + path + "'" + why +
                                      " (set it again with envd context update "
                                      "--buildkitd-config FILE)");
  }
  return text;
}

// The security options as the Engine takes them: a seccomp profile named by
// its path is sent as its JSON, compacted, as the docker CLI does. Read at
// every use, so an edited profile makes the container stale.
Result<std::vector<std::string>> engine_security_opts(const std::vector<std::string>& opts) {
  std::vector<std::string> out;
  for (const auto& opt : opts) {
    if (opt.rfind("seccomp=/", 0) != 0) {
      out.push_back(opt);
      continue;
    }
    const std::string path = opt.substr(8);
    auto text = sdk::read_regular_file(path);
    if (!text) {
      std::string message = "cannot read the seccomp profile '";
      message.append(path).append("' of driver option security-opt");
      if (text.error().code() != Errc::not_found) {
        message.append(" (").append(text.error().message()).append(")");
      }
      return Error(Errc::not_found, message);
    }
    boost::system::error_code ec;
    json::value profile = json::parse(*text, ec);
    if (ec || !profile.is_object()) {
      return Error(Errc::invalid_argument, "the seccomp profile '" + path +
                                               "' of driver option security-opt is not a JSON "
                                               "object" +
                                               (ec ? " (" + ec.message() + ")" : std::string()));
    }
    out.push_back("seccomp=" + json::serialize(profile));
  }
  return out;
}

// Creates `dir` and its missing parents 0700, as the store makes a context's
// private directory (fs::create_directories makes them 0755 under the usual
// umask, and the context's directory is the driver's to make when no other
// command made it yet).
std::error_code create_private_directories(const fs::path& dir) {
  std::error_code ec;
  if (dir.empty() || fs::is_directory(dir, ec)) return {};
  if (dir.has_parent_path() && dir.parent_path() != dir) {
    if (auto parent = create_private_directories(dir.parent_path())) return parent;
  }
  if (::mkdir(dir.c_str(), 0700) != 0) {
    const int err = errno;
    // Another process made it meanwhile; anything else there is no directory.
    if (err == EEXIST && fs::is_directory(dir, ec)) return {};
    return {err == EEXIST ? ENOTDIR : err, std::generic_category()};
  }
  return {};
}

// Writes `text` to `path` unless it already holds it (a rewrite would change
// nothing but the mtime), through a temporary file so a reader never sees half.
Status write_if_changed(const fs::path& path, const std::string& text) {
  // Read without blocking: whatever is not a regular file there is replaced.
  if (auto current = sdk::read_regular_file(path.string()); current && *current == text) return {};
  if (auto made = create_private_directories(path.parent_path())) {
    return Error(Errc::permission, "cannot write the generated buildkitd config '" + path.string() +
                                       "': cannot make its directory: " + made.message());
  }
  std::error_code ec;
  // A temporary of its own (O_EXCL): nothing sitting at a name is opened,
  // and two envd processes writing the config at once do not mix.
  std::string tmp = path.string() + ".XXXXXX.tmp";
  int fd = ::mkostemps(tmp.data(), 4, O_CLOEXEC);
  if (fd < 0) {
    return Error(Errc::permission, "cannot write the generated buildkitd config '" + path.string() +
                                       "': " + std::strerror(errno));
  }
  bool written = ::fchmod(fd, 0644) == 0;
  for (std::string_view left = text; written && !left.empty();) {
    ssize_t n = ::write(fd, left.data(), left.size());
    if (n < 0 && errno == EINTR) continue;
    written = n > 0;
    if (written) left.remove_prefix(static_cast<std::size_t>(n));
  }
  written = ::close(fd) == 0 && written;
  if (!written) {
    ::unlink(tmp.c_str());
    return Error(Errc::permission, "cannot write the generated buildkitd config '" + tmp + "'");
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    ::unlink(tmp.c_str());
    return Error(Errc::permission, "cannot write the generated buildkitd config '" + path.string() +
                                       "': " + ec.message());
  }
  return {};
}

// Resolves the container the request asks for; writes the generated config
// when `write_config` (status only compares).
Result<Target> prepare(const sdk::Request& request, bool write_config) {
  Target target;
  auto name = container_name(request.address);
  if (!name) return name.error();
  target.name = *name;
  auto options = dc::parse(request.options);
  if (!options) return options.error();
  target.options = std::move(*options);
  // A file the settings name that cannot be read stops a container from
  // being made; to look at one (status), it is only said.
  const bool looking = !write_config;
  auto security = engine_security_opts(target.options.security_opt);
  if (security) {
    target.options.security_opt = std::move(*security);
  } else if (looking) {
    target.unusable = security.error().message();
  } else {
    return security.error();
  }
  target.args = parse_args(request.args_json);
  std::string config_host;
  if (!target.options.config_file.empty()) {
    auto text = read_file(target.options.config_file);
    if (text) {
      target.config_text = std::move(*text);
    } else if (looking) {
      if (target.unusable.empty()) target.unusable = text.error().message();
    } else {
      return text.error();
    }
    config_host = target.options.config_file;
  } else {
    if (request.data_dir.empty()) {
      return Error(Errc::internal, "the docker-container builder needs the context's data dir");
    }
    target.config_text = dc::generated_config(target.options);
    config_host = (fs::path(request.data_dir) / "buildkitd.toml").string();
    if (write_config) {
      if (auto st = write_if_changed(config_host, target.config_text); !st) return st.error();
    }
  }
  target.config_path = config_host;
  auto engine = sdk::DockerEngine::from_env();
  if (!engine) return engine.error();
  target.engine.emplace(std::move(*engine));
  // A unix socket's Engine shares this machine's disk, so the config can be
  // bind-mounted; a tcp:// or ssh:// one may be anywhere, so it is copied in.
  bool shares_disk = !target.engine->endpoint().socket_path.empty();
  // On a shared disk buildkitd's socket can be reached without an exec per
  // connection (docs/docker-container.md, "How envd reaches buildkitd").
  std::string socket_dir;
  if (shares_disk && !target.options.rootless && !request.data_dir.empty() &&
      !dc::mounts_over_socket_dir(target.options)) {
    socket_dir = (fs::path(request.data_dir) / "run").string();
    if (write_config && create_private_directories(socket_dir)) {
      socket_dir.clear();  // then no mount: the exec still dials
    }
  }
  target.spec =
      dc::make_spec(target.name, request.context, target.options,
                    dc::effective_image(target.options, target.args.image),
                    shares_disk ? config_host : std::string(), target.config_text, socket_dir);
  return target;
}

// buildkitd's socket in the mounted directory, connected; -1 when it is not
// there or nothing answers on it (a container made without the mount, or by
// another context, an Engine in a VM, a socket this user may not open): the
// exec then dials. Connected through /proc/self/fd, so a long data directory
// cannot exceed sun_path.
int connect_mounted_socket(const std::string& dir) {
  int dir_fd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return -1;
  std::string path = "/proc/self/fd/" + std::to_string(dir_fd) + "/" + dc::kSocketName;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  // Non-blocking so a full backlog fails (EAGAIN) instead of waiting without
  // a deadline; the exec then dials.
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int rc = fd < 0 ? -1 : ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  ::close(dir_fd);
  if (rc != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  int flags = ::fcntl(fd, F_GETFL, 0);
  if (flags >= 0) (void)::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

std::string indent_logs(const Result<std::vector<std::string>>& logs) {
  if (!logs) return "";  // the Engine did not give them: nothing to say about them
  const auto& lines = *logs;
  if (lines.empty()) return "; it wrote no log lines";
  std::string out = "; its last log lines:";
  for (const auto& line : lines) out += "\n  " + line;
  return out;
}

Error exited_error(sdk::DockerEngine& engine, const std::string& name,
                   const dc::ContainerState& state) {
  auto logs = dc::container_logs(engine, name, kLogLines, sdk::deadline_after(kLogsTimeout));
  std::string why = state.status == "exited" || state.status == "dead"
                        ? "exited with code " + std::to_string(state.exit_code)
                        : "is " + state.status;
  if (!state.error.empty()) why += " (" + state.error + ")";
  return Error(Errc::unavailable, "buildkitd container '" + name + "' " + why + indent_logs(logs));
}

// Removes the container `state` of `name`, by its id (see inspect_container).
Status remove_container(sdk::DockerEngine& engine, const std::string& name,
                        const dc::ContainerState& state, sdk::Deadline deadline) {
  auto answer = engine.request("DELETE", "/containers/" + state.id + "?force=1", "", deadline);
  if (!answer) return answer.error();
  if (answer->status == 404 || answer->status == 409) return {};  // gone, or already being removed
  if (answer->status / 100 != 2) {
    return engine.status_error(*answer).wrap("cannot remove container '" + name + "'");
  }
  return {};
}

// Why `state`, the container of the builder's name, is not envd's to stop or
// remove ("" if it is): a container another tool made under that name.
std::string not_envds(const std::string& name, const dc::ContainerState& state,
                      const std::string& verb) {
  if (state.labels.contains(dc::kImageLabel) && state.labels.contains(dc::kConfigLabel)) return "";
  return "container '" + name + "' was not created by envd (it has no " + dc::kImageLabel +
         " label); envd does not " + verb + " it (use docker " + verb + " " + name +
         " if it is yours to " + verb + ")";
}

// Why the stopped container `state` cannot be started again as it is: a
// file or directory of envd's it bind-mounts is gone (the context that made
// it was removed, or another context made it), which the Engine's start
// refuses with "bind source path does not exist". nullopt if none is gone.
// Only when the Engine's files are this host's (the spec mounts files too).
std::optional<std::string> missing_mount(const dc::ContainerState& state,
                                         const dc::ContainerSpec& spec) {
  if (state.status == "running" || state.status == "paused") return std::nullopt;
  if (spec.config_host.empty() && spec.socket_dir_host.empty()) return std::nullopt;
  for (const std::string& source : {state.config_source, state.socket_dir}) {
    std::error_code ec;
    if (!source.empty() && !fs::exists(source, ec)) {
      return "it mounts " + source +
             ", which no longer exists (the context that made it was "
             "removed)";
    }
  }
  return std::nullopt;
}

// The one deadline of a bootstrap: the connect timeout (--connect-timeout),
// from the verb's start. Inspecting, creating, starting the container and
// waiting for buildkitd all share it; the image pull does not (see
// create_and_start), so its time is added to the deadline.
struct Budget {
  sdk::Deadline deadline;
  std::chrono::milliseconds timeout;
};

// `error` of the call that `phase` names ("cannot create buildkitd container
// 'x'"); when the deadline ran out, the message says which one it was.
Error in_phase(const Error& error, const std::string& phase, const Budget& budget) {
  Error wrapped = error.wrap(phase);
  if (wrapped.code() != Errc::timeout) return wrapped;
  return Error(Errc::timeout, wrapped.message() + " (connect timeout: " +
                                  std::to_string(budget.timeout.count()) + " ms)");
}

// Removes the container `id` this envd created, so that nothing half made is
// left, on a short deadline of its own, even after Ctrl-C. By id, never by
// name: the name may be another envd's container by then. `force` also
// removes it once it runs; without it a container that runs (another envd
// started it meanwhile, and may be using it) is kept.
void remove_half_made(sdk::DockerEngine& engine, const std::string& id, bool force) {
  sdk::IgnoreCancellation cleanup;
  (void)engine.request("DELETE", "/containers/" + id + (force ? "?force=1" : ""), "",
                       sdk::deadline_after(kCleanupTimeout));
}

// The label a create carries so that this envd can tell the container it
// asked for from one another envd made under the same name.
constexpr const char* kCreationLabel = "dev.envd.builder.creation";

// After a create that got no answer (cut by the deadline, Ctrl-C or a lost
// connection): the Engine goes on with it, so for a moment the container it
// made is looked for under the name, and removed if it is the one this
// create asked for (its token); another envd's is left alone.
void remove_unanswered_create(sdk::DockerEngine& engine, const std::string& name,
                              const std::string& token) {
  sdk::IgnoreCancellation cleanup;
  const auto until = Clock::now() + kCreateAnswerGrace;
  for (;;) {
    auto state = dc::inspect_container(engine, name, sdk::deadline_after(kCleanupTimeout));
    if (state && *state) {
      auto label = (*state)->labels.find(kCreationLabel);
      if (label != (*state)->labels.end() && label->second == token) {
        remove_half_made(engine, (*state)->id, false);
      }
      return;
    }
    if (!state || Clock::now() >= until) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// POST /containers/{name}/start; 304 (already started, by another envd
// bringing up the same builder) is success.
Status start_container(sdk::DockerEngine& engine, const std::string& name, sdk::Deadline deadline) {
  auto answer = engine.request("POST", "/containers/" + name + "/start", "", deadline);
  if (!answer) return answer.error();
  if (answer->status == 304 || answer->status / 100 == 2) return {};
  return engine.status_error(*answer);
}

// What create_and_start did: `id` is the container it created and started,
// "" when another envd holds the name (it is creating or removing a
// container of that name) and nothing was made here.
struct CreateOutcome {
  std::string id;
  std::string refusal;  // with no id: the Engine's words (its 409) on the name
};

Result<CreateOutcome> create_and_start(sdk::DockerEngine& engine, const Target& target,
                                       Budget& budget) {
  const auto& spec = target.spec;
  auto have = dc::have_image(engine, spec.image, budget.deadline);
  if (!have) return in_phase(have.error(), "cannot look up image " + spec.image, budget);
  if (!*have) {
    // The pull is not part of the connect deadline: a large image from a slow
    // registry may legitimately take minutes. It has its own limit, and the
    // time it took is added to the deadline of the calls after it.
    auto pull_started = Clock::now();
    if (auto st = dc::pull_image(engine, spec.image, sdk::deadline_after(kPullTimeout)); !st) {
      return st.error();
    }
    budget.deadline += Clock::now() - pull_started;
  }
  const auto deadline = budget.deadline;
  json::object volume{
      {"Name", spec.volume},
      {"Labels", json::object{{dc::kContextLabel, spec.labels.at(dc::kContextLabel)}}}};
  // A volume made here for a container that then cannot be made or started
  // holds nothing: it goes with the container, and nothing is left behind.
  bool fresh_volume = false;
  if (auto had = engine.request("GET", "/volumes/" + spec.volume, "", deadline); had) {
    fresh_volume = had->status == 404;
  }
  auto drop_fresh_volume = [&] {
    if (!fresh_volume) return;
    sdk::IgnoreCancellation cleanup;
    (void)engine.request("DELETE", "/volumes/" + spec.volume, "",
                         sdk::deadline_after(kCleanupTimeout));
  };
  if (auto v = engine.call("POST", "/volumes/create", json::serialize(volume), deadline); !v) {
    return in_phase(v.error(), "cannot create volume '" + spec.volume + "'", budget);
  }
  sdk::report_progress("creating container " + spec.name + " from " + spec.image);
  const std::string token = sdk::creation_token();
  json::value body = json::parse(spec.create_json);
  body.as_object()["Labels"].as_object()[kCreationLabel] = token;
  auto created =
      engine.call("POST", "/containers/create?name=" + spec.name, json::serialize(body), deadline);
  if (!created) {
    const Errc code = created.error().code();
    if (code == Errc::already_exists) return CreateOutcome{{}, created.error().message()};
    // The Engine answered with a refusal: nothing was made. Otherwise the
    // request may have reached it, and what it made is looked for.
    if (code != Errc::invalid_argument && code != Errc::not_found && code != Errc::permission) {
      remove_unanswered_create(engine, spec.name, token);
    }
    drop_fresh_volume();
    if (code == Errc::cancelled) return sdk::cancelled_error("bootstrap of " + spec.name);
    return in_phase(created.error(), "cannot create buildkitd container '" + spec.name + "'",
                    budget);
  }
  boost::system::error_code parse_ec;
  json::value answer = json::parse(*created, parse_ec);
  const std::string id = !parse_ec && answer.is_object() && answer.as_object().contains("Id") &&
                                 answer.as_object().at("Id").is_string()
                             ? std::string(answer.as_object().at("Id").as_string())
                             : spec.name;
  if (sdk::cancelled()) {
    remove_half_made(engine, id, false);
    drop_fresh_volume();
    return sdk::cancelled_error("bootstrap of " + spec.name);
  }
  if (spec.config_host.empty()) {
    if (auto st = dc::put_config(engine, spec.name, target.config_text, deadline); !st) {
      remove_half_made(engine, id, false);
      drop_fresh_volume();
      return in_phase(st.error(), "cannot set up buildkitd container '" + spec.name + "'", budget);
    }
  }
  sdk::report_progress("starting " + spec.name);
  if (auto started = start_container(engine, spec.name, deadline); !started) {
    // A container that never ran holds nothing worth keeping, and leaving it
    // would make the next attempt report a stale container instead of the
    // cause. Forced: the Engine may have started it though its answer was lost.
    remove_half_made(engine, id, true);
    drop_fresh_volume();
    return in_phase(started.error(), "cannot start buildkitd container '" + spec.name + "'",
                    budget);
  }
  return CreateOutcome{id, {}};
}

// Waits until buildkitd in the container answers, until the budget's
// deadline. `socket_dir`, when not empty, is the host directory where the
// container's buildkitd makes its socket: buildkitd makes it once it serves,
// so a connect there tells at no cost, and is tried every 10 ms; the exec
// (`buildctl debug workers`) is still asked every 200 ms, in case this
// machine cannot reach that socket after all. Without it, the exec is asked
// every 200 ms.
// `found_running`: the container ran before this envd looked, and may have
// answered for long; an exec that cannot run buildctl at all (126, 127) then
// ends the wait, and the dial says what is wrong.
Status wait_ready(sdk::DockerEngine& engine, const Target& target, const Budget& budget,
                  const std::string& socket_dir, bool found_running) {
  const auto& name = target.name;
  const auto deadline = budget.deadline;
  // Said once the first look finds it not answering: a build on a builder
  // that started a moment ago and answers says nothing.
  bool said = false;
  auto say = [&] {
    if (!said) sdk::report_progress("waiting for buildkitd in " + name);
    said = true;
  };
  std::string last;
  for (;;) {
    if (!socket_dir.empty()) {
      const auto next_exec = std::min(deadline, Clock::now() + std::chrono::milliseconds(200));
      for (;;) {
        if (int fd = connect_mounted_socket(socket_dir); fd >= 0) {
          ::close(fd);
          return {};
        }
        say();
        if (Clock::now() >= next_exec) break;
        if (!sdk::sleep_unless_cancelled(std::chrono::milliseconds(10))) {
          return sdk::cancelled_error("waiting for buildkitd in " + name);
        }
      }
    }
    auto run = dc::exec_capture(engine, name, {"buildctl", "debug", "workers"}, deadline);
    if (run && run->exit_code == 0) return {};
    if (found_running && run && (run->exit_code == 126 || run->exit_code == 127)) return {};
    if (!run && run.error().code() == Errc::cancelled) return run.error();
    say();
    if (run) {
      last = run->err.empty() ? run->out : run->err;
    } else if (run.error().code() != Errc::timeout || last.empty()) {
      // A probe cut short by the deadline says less than the one before it.
      last = run.error().message();
    }
    // An exited container is reported as such, even at the deadline.
    auto state = dc::inspect_container(
        engine, name, std::min(deadline, sdk::deadline_after(std::chrono::seconds(5))));
    bool out_of_time = Clock::now() + std::chrono::milliseconds(200) >= deadline;
    if (!state && !(out_of_time && state.error().code() == Errc::timeout)) {
      return in_phase(state.error(), "waiting for buildkitd in container '" + name + "'", budget);
    }
    if (state && !*state) {
      // Errc::not_found: bring_up looks again (another envd's --recreate
      // removes the container it then makes anew under the same name).
      return Error(Errc::not_found, "buildkitd container '" + name + "' disappeared");
    }
    if (state && (*state)->status != "running") return exited_error(engine, name, **state);
    if (out_of_time) {
      // The exec's "...: unknown\r\n" without its line end (it showed \x0d).
      last = sdk::one_line(std::move(last));
      auto logs = dc::container_logs(engine, name, kLogLines, sdk::deadline_after(kLogsTimeout));
      return Error(Errc::timeout, "buildkitd in container '" + name + "' did not answer within " +
                                      std::to_string(budget.timeout.count()) + " ms" +
                                      (last.empty() ? "" : " (" + last + ")") + indent_logs(logs));
    }
    if (socket_dir.empty() && !sdk::sleep_unless_cancelled(std::chrono::milliseconds(200))) {
      return sdk::cancelled_error("waiting for buildkitd in " + name);
    }
  }
}

// Sleeps 200 ms, or less if the deadline comes first; false when cancelled.
bool pause_until(sdk::Deadline deadline) {
  // Rounded up: waking a moment before the deadline would start a call that
  // cannot finish, instead of reporting the deadline. (A call can still start
  // with a moment left, after a pause that ended just before it: bring_up
  // reports the state the container stayed in, not that call's timeout.)
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
  return sdk::sleep_unless_cancelled(
      std::clamp(left, std::chrono::milliseconds(0), std::chrono::milliseconds(200)));
}

// Brings the container to running, as its state requires, within the
// budget. Returns what it did; sets `created` to the id of the container it
// created, once it did. With `recreate` (--recreate), the container it finds
// first is replaced, unless another envd replaced it meanwhile.
// A container found running is taken as ready, unless this call waited for
// another envd bringing it up, or it started less than kFreshStart ago (by
// another envd, `docker start`, a restart policy): then its buildkitd may not
// listen yet, and a dial would fail.
Result<std::string> bring_up(sdk::DockerEngine& engine, const Target& target, Budget& budget,
                             std::string& created, bool recreate) {
  const auto& name = target.name;
  bool started = false;
  std::string action;
  std::string last_state;  // for the timeout message
  bool waited = false;     // on a container another envd was creating, starting or removing
  bool fresh = false;      // found running, started a moment ago
  std::string refusal;     // the last create's refusal of the name, while none was found
  std::string socket_dir;  // where its buildkitd's socket shows on this machine, if it does
  std::string first_seen;  // the id of the container found first: the one --recreate replaces
  const std::string inspecting = "cannot inspect buildkitd container '" + name + "'";
  auto out_of_time = [&] {
    std::string why;
    if (!last_state.empty()) {
      why = " (it stayed " + last_state + ")";
    } else if (!refusal.empty()) {
      // Never found under the name, yet refused it each time: a name the
      // Engine still reserves for a container it lost (a crash mid-create).
      why = ": the Engine refused the name each time, yet has no container of that name (" +
            refusal +
            "); restarting the Docker Engine frees a name it kept for a container it "
            "lost";
    }
    return Error(Errc::timeout, "buildkitd container '" + name +
                                    "' did not reach the running state within " +
                                    std::to_string(budget.timeout.count()) + " ms" + why);
  };
  for (;;) {
    if (Clock::now() >= budget.deadline) return out_of_time();
    auto state = dc::inspect_container(engine, name, budget.deadline);
    if (!state) {
      // An inspect the deadline cut short while the container sat in a state
      // it had to leave: that state, not the last call, is the news.
      if (state.error().code() == Errc::timeout && !last_state.empty() &&
          Clock::now() >= budget.deadline) {
        return out_of_time();
      }
      return in_phase(state.error(), inspecting, budget);
    }
    if (!*state) {
      auto made = create_and_start(engine, target, budget);
      if (!made) return made.error();
      if (made->id.empty()) {
        // Another envd holds the name (its create, or its removal, is under
        // way): its container is looked at again after a pause, not raced.
        refusal = made->refusal;
        if (!pause_until(budget.deadline)) return sdk::cancelled_error("bootstrap of " + name);
        waited = true;
        continue;
      }
      created = made->id;
      if (action.empty()) action = "created";
      // Made here: the fresh container a --recreate asks for.
      recreate = false;
      started = true;
      continue;
    }
    const auto& s = **state;
    last_state = s.status;
    refusal.clear();
    if (first_seen.empty()) first_seen = s.id;
    // Another envd replaced the container this one meant to (its own
    // --recreate, at the same time): that one is as fresh as a recreate
    // here would make it, and replacing it would cut that envd's wait short.
    if (recreate && s.id != first_seen && s.id != created) {
      recreate = false;
      waited = true;
    }
    if (s.status == "removing" || s.status == "restarting") {
      if (!pause_until(budget.deadline)) return sdk::cancelled_error("bootstrap of " + name);
      waited = true;
      continue;
    }
    if (s.status == "dead") {
      sdk::report_progress("removing dead container " + name + " to recreate it");
      if (auto st = remove_container(engine, name, s, budget.deadline); !st) {
        std::string what = "buildkitd container '" + name;
        what += "' is dead and envd cannot replace it (remove it with 'docker rm -f ";
        what += name;
        what += "' or see the Docker Engine's log)";
        return in_phase(st.error(), what, budget);
      }
      action = "recreated";
      recreate = false;  // the dead one was what there was to replace
      // The engine may still report it dead for a moment.
      if (!pause_until(budget.deadline)) return sdk::cancelled_error("bootstrap of " + name);
      continue;
    }
    if (started && s.status == "exited") return exited_error(engine, name, s);
    auto reason = dc::stale_reason(s.labels, target.spec);
    if (!reason) reason = missing_mount(s, target.spec);
    if (reason || recreate) {
      if (!recreate) {
        return Error(Errc::already_exists,
                     "buildkitd container '" + name + "' does not match the context: " + *reason +
                         "; run 'envd bootstrap --recreate' to replace it (the build cache in "
                         "volume '" +
                         target.spec.volume + "' is kept)");
      }
      sdk::report_progress("removing container " + name + " to recreate it");
      if (auto st = remove_container(engine, name, s, budget.deadline); !st) {
        return in_phase(st.error(), "cannot replace buildkitd container '" + name + "'", budget);
      }
      recreate = false;
      action = "recreated";
      continue;
    }
    if (s.status == "running") {
      // Its mount of this context's socket directory, not any: another
      // context's directory may be one this user cannot reach.
      if (!target.spec.socket_dir_host.empty() && s.socket_dir == target.spec.socket_dir_host) {
        socket_dir = s.socket_dir;
      }
      // Against this machine's clock: an Engine elsewhere whose clock is
      // ahead costs one wait that finds buildkitd answering.
      const auto now = std::chrono::system_clock::now();
      fresh = s.started_at && *s.started_at + kFreshStart > now;
      break;
    }
    if (s.status == "paused") {
      sdk::report_progress("unpausing " + name);
      if (auto r = engine.call("POST", "/containers/" + s.id + "/unpause", "", budget.deadline);
          !r) {
        return in_phase(r.error(), "cannot unpause buildkitd container '" + name + "'", budget);
      }
      if (action.empty()) action = "unpaused";
      continue;
    }
    // created or exited
    if (s.status == "created" && target.spec.config_host.empty()) {
      // An envd stopped between create and start may not have copied it yet.
      if (auto st = dc::put_config(engine, name, target.config_text, budget.deadline); !st) {
        return in_phase(st.error(), "cannot set up buildkitd container '" + name + "'", budget);
      }
    }
    sdk::report_progress("starting " + name);
    if (auto r = start_container(engine, s.id, budget.deadline); !r) {
      return in_phase(r.error(), "cannot start buildkitd container '" + name + "'", budget);
    }
    if (action.empty()) action = "started";
    started = true;
  }
  if (action.empty() && !waited && !fresh) return std::string("running");
  // Brought up here, by another envd this one waited for, or a moment ago:
  // its buildkitd may not listen yet.
  if (auto st = wait_ready(engine, target, budget, socket_dir, action.empty() && !waited); !st) {
    // Removed while this one waited for it: by another envd's --recreate,
    // which makes it anew (or by hand): looked at again from the start,
    // without recreating what is found then.
    if (st.error().code() != Errc::not_found || Clock::now() >= budget.deadline) {
      return st.error();
    }
    if (!pause_until(budget.deadline)) return sdk::cancelled_error("bootstrap of " + name);
    auto again = bring_up(engine, target, budget, created, false);
    if (!again) return again.error();
    return action.empty() ? *again : action;
  }
  return action.empty() ? std::string("running") : action;
}

// bring_up(), and when the user cancels it after it created the container,
// removes that container again (it never became ready; its cache volume is
// kept): Ctrl-C leaves nothing half made. A container that started but whose
// buildkitd did not answer in time is kept: its logs say why, and the next
// attempt uses it.
Result<std::string> ensure(sdk::DockerEngine& engine, const Target& target, Budget& budget) {
  std::string created;  // the id of the container this call created
  auto result = bring_up(engine, target, budget, created, target.args.recreate);
  if (!result && result.error().code() == Errc::cancelled && !created.empty()) {
    // Another envd may have waited for this container and be using it: one
    // whose buildkitd answers is not half made, and is kept.
    sdk::IgnoreCancellation cleanup;
    auto ready = dc::exec_capture(engine, created, {"buildctl", "debug", "workers"},
                                  sdk::deadline_after(kCleanupTimeout));
    if (!ready || ready->exit_code != 0) {
      sdk::report_progress("removing " + target.name + ", which was cancelled before it was ready");
      remove_half_made(engine, created, true);
    }
  }
  return result;
}

}  // namespace

Result<std::string> DockerContainerBuilder::normalize_address(const std::string& address) const {
  auto fail = [&](const std::string& reason) {
    return sdk::address_error(kSubject, address, reason, kExpected);
  };
  auto rest = sdk::strip_optional_scheme(address, "docker-container");
  if (!rest) return fail(rest.error().message());
  auto parsed = sdk::parse_name_with_query(*rest);
  if (!parsed) return fail(parsed.error().message());
  if (auto keys = sdk::check_query_keys(parsed->query, {"context"}); !keys) {
    return fail(keys.error().message());
  }
  if (parsed->name.empty()) parsed->name = default_container;
  if (!follows_docker_rule(parsed->name, "_.-")) {
    return fail("container name '" + parsed->name +
                "' does not follow Docker's rule [a-zA-Z0-9][a-zA-Z0-9_.-]+");
  }
  if (const std::string* context = sdk::find_query_param(parsed->query, "context")) {
    if (!follows_docker_rule(*context, "_.+-")) {
      return fail("docker context '" + *context +
                  "' does not follow Docker's rule [a-zA-Z0-9][a-zA-Z0-9_.+-]+");
    }
  }
  return parsed->to_string();
}

Result<sdk::Options> DockerContainerBuilder::normalize_options(const sdk::Options& options) const {
  return dc::normalize(options);
}

Result<sdk::Transport> DockerContainerBuilder::dial(const sdk::Request& request) {
  auto target = prepare(request, true);
  if (!target) return target.error();
  auto& engine = target->engine;
  Budget budget{sdk::deadline_after(request.timeout), request.timeout};
  auto ensured = ensure(*engine, *target, budget);
  if (!ensured) return ensured.error();
  sdk::Transport transport;
  transport.kind = sdk::Transport::Kind::fd;
  transport.description = "docker-container://" + target->name;
  auto mounted = [&]() -> bool {
    if (target->spec.socket_dir_host.empty()) return false;
    int fd = connect_mounted_socket(target->spec.socket_dir_host);
    if (fd < 0) return false;
    transport.fd = fd;
    // buildkitd's own socket: nothing of this module runs for it (the docker
    // exec below is relayed, and so is not).
    transport.self_contained = true;
    return true;
  };
  if (mounted()) return transport;
  // The same deadline: bringing the container up and dialling it is one connect.
  auto fd = dc::dial_stdio(*engine, target->name, budget.deadline, dials_);
  if (!fd) return fd.error();
  transport.fd = *fd;
  return transport;
}

Result<std::string> DockerContainerBuilder::bootstrap(const sdk::Request& request) {
  auto target = prepare(request, true);
  if (!target) return target.error();
  auto& engine = target->engine;
  Budget budget{sdk::deadline_after(request.timeout), request.timeout};
  auto action = ensure(*engine, *target, budget);
  if (!action) return action.error();
  json::object out{{"container", target->name},
                   {"image", target->spec.image},
                   {"volume", target->spec.volume},
                   {"config", target->config_path},
                   {"action", *action}};
  return json::serialize(out);
}

Result<std::string> DockerContainerBuilder::status(const sdk::Request& request) {
  auto target = prepare(request, false);
  if (!target) return target.error();
  auto& engine = target->engine;
  auto deadline = sdk::deadline_after(request.timeout);
  auto state = dc::inspect_container(*engine, target->name, deadline);
  if (!state) return state.error();
  json::object out{{"container", target->name},
                   {"volume", target->spec.volume},
                   {"config", target->config_path}};
  if (!target->unusable.empty()) out["unusable"] = target->unusable;
  if (!*state) {
    out["state"] = "missing";
    out["detail"] =
        "container '" + target->name + "' does not exist; " +
        (target->unusable.empty()
             ? "envd bootstrap (or the first build) creates it from " + target->spec.image
             : "it cannot be created until this is mended: " + target->unusable);
    out["image"] = target->spec.image;
    return json::serialize(out);
  }
  const auto& s = **state;
  auto label = s.labels.find(dc::kImageLabel);
  out["image"] = label != s.labels.end() ? label->second : s.image;
  out["container_state"] = s.status;
  out["state"] = s.status == "running" ? "running" : "stopped";
  std::string detail = "container '" + target->name + "' is " + s.status;
  if (s.status == "exited" || s.status == "dead") {
    out["exit_code"] = s.exit_code;
    detail += " (exit code " + std::to_string(s.exit_code) + ")";
  }
  if (!s.error.empty()) detail += ": " + s.error;
  // Whether it matches settings that cannot be read is not known.
  std::optional<std::string> reason;
  if (target->unusable.empty()) {
    reason = dc::stale_reason(s.labels, target->spec);
    if (!reason) reason = missing_mount(s, target->spec);
  } else {
    detail += "; the context's settings cannot be used (" + target->unusable + ")";
  }
  if (reason) {
    out["stale"] = *reason;
    detail += "; it does not match the context (" + *reason + "): envd bootstrap --recreate";
  }
  out["detail"] = detail;
  json::array logs;
  if (auto lines = dc::container_logs(*engine, target->name, kLogLines, deadline)) {
    for (auto& line : *lines) logs.emplace_back(line);
  }
  out["logs"] = std::move(logs);
  if (std::string failure = dc::last_dial_failure(*engine, *dials_, deadline); !failure.empty()) {
    out["dial_error"] = failure;
  }
  return json::serialize(out);
}

Status DockerContainerBuilder::stop(const sdk::Request& request) {
  auto name = container_name(request.address);
  if (!name) return name.error();
  auto engine = sdk::DockerEngine::from_env();
  if (!engine) return engine.error();
  // Bounded by the timeout alone: a silent Engine is given up on then.
  auto state = dc::inspect_container(*engine, *name, sdk::deadline_after(request.timeout));
  if (!state) return state.error();
  if (!*state) {
    return Error(Errc::not_found, "there is no buildkitd container '" + *name + "' to stop");
  }
  if (std::string why = not_envds(*name, **state, "stop"); !why.empty()) {
    return Error(Errc::permission, why);
  }
  const std::string id = (*state)->id;
  // buildkitd gets 10 s to finish what it is writing before SIGKILL.
  auto answer = engine->request("POST", "/containers/" + id + "/stop?t=10", "",
                                sdk::deadline_after(request.timeout + std::chrono::seconds(10)));
  if (!answer) return answer.error();
  if (answer->status == 404) {
    return Error(Errc::not_found, "there is no buildkitd container '" + *name + "' to stop");
  }
  if (answer->status != 204 && answer->status != 304) {
    auto again = engine->call("POST", "/containers/" + id + "/stop?t=0", "",
                              sdk::deadline_after(request.timeout));
    if (!again) return again.error().wrap("cannot stop buildkitd container '" + *name + "'");
  }
  return {};
}

Status DockerContainerBuilder::remove(const sdk::Request& request) {
  auto name = container_name(request.address);
  if (!name) return name.error();
  Args args = parse_args(request.args_json);
  auto engine = sdk::DockerEngine::from_env();
  if (!engine) return engine.error();
  // The look at the container is bounded by the timeout alone, so a silent
  // Engine is given up on then; the removal of a running buildkitd (killed,
  // its volume unmounted) gets 10 s more.
  auto state = dc::inspect_container(*engine, *name, sdk::deadline_after(request.timeout));
  if (!state) return state.error();
  if (*state) {
    if (std::string why = not_envds(*name, **state, "remove"); !why.empty()) {
      return Error(Errc::permission, why + "; its volume is left too");
    }
  }
  auto deadline = sdk::deadline_after(request.timeout + std::chrono::seconds(10));
  bool removed_any = false;
  if (*state) {
    if (auto st = remove_container(*engine, *name, **state, deadline); !st) return st;
    removed_any = true;
  }
  if (!args.keep_cache) {
    std::string volume = *name + "_state";
    auto answer = engine->request("DELETE", "/volumes/" + volume, "", deadline);
    if (!answer) return answer.error();
    if (answer->status / 100 == 2) {
      removed_any = true;
    } else if (answer->status != 404) {
      auto again = engine->call("DELETE", "/volumes/" + volume, "", deadline);
      if (!again) return again.error().wrap("cannot remove volume '" + volume + "'");
    }
  }
  if (!request.data_dir.empty()) {
    std::error_code ec;
    fs::remove(fs::path(request.data_dir) / "buildkitd.toml", ec);
  }
  if (!removed_any) {
    return Error(Errc::not_found, "there is no buildkitd container '" + *name + "'" +
                                      (args.keep_cache ? "" : " nor volume '" + *name + "_state'") +
                                      " to remove");
  }
  return {};
}

}  // namespace envd::plugins
