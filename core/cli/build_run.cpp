// `envd build`'s work, in envd-client (cli/client/program.hpp): resolve the
// context, let its builder driver hand over a transport, and run the build
// with the core's BuildKit client. The flags are in build_command.cpp.
#include "cli/client/commands.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/core.h>
#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "buildkit/auth.hpp"
#include "buildkit/cache_dirs.hpp"
#include "buildkit/client.hpp"
#include "buildkit/content_store.hpp"
#include "buildkit/filesend.hpp"
#include "buildkit/filesync.hpp"
#include "buildkit/grpc_process.hpp"
#include "buildkit/patterns.hpp"
#include "buildkit/secrets.hpp"
#include "buildkit/ssh_forward.hpp"
#include "cli/build_command.hpp"
#include "cli/build_options.hpp"
#include "cli/build_secrets.hpp"
#include "cli/builder_target.hpp"
#include "cli/daemon_answer.hpp"
#include "cli/flag_values.hpp"
#include "cli/output_file.hpp"
#include "cli/stdin_dockerfile.hpp"
#include "context/resolve.hpp"
#include "envd/docker_engine.hpp"
#include "output/export_rules.hpp"
#include "output/image_load.hpp"
#include "output/image_name.hpp"
#include "output/image_push.hpp"
#include "output/output_spec.hpp"
#include "output/progress_ui.hpp"
#include "util/atomic_file.hpp"
#include "util/data_out.hpp"
#include "util/duration.hpp"
#include "util/json.hpp"
#include "util/message_out.hpp"
#include "util/paths.hpp"
#include "util/step_times.hpp"
#include "util/terminal.hpp"
#include "util/text.hpp"

namespace envd::cli {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using output::OutputSpec;

// ---- envd build ------------------------------------------------------------

// The Dockerfile is read by the session when the daemon asks: what would
// stop that is said now, in the words that fit.
Status check_dockerfile(const fs::path& dockerfile) {
  const std::string quoted = "Dockerfile '" + dockerfile.string() + "'";
  std::error_code ec;
  auto status = fs::status(dockerfile, ec);
  if (status.type() == fs::file_type::not_found) {
    return Error(Errc::not_found, quoted + " does not exist");
  }
  if (ec) return Error(Errc::permission, "cannot read " + quoted + ": " + ec.message());
  if (fs::is_directory(status)) return Error(Errc::invalid_argument, quoted + " is a directory");
  if (!fs::is_regular_file(status)) {
    // `-f /dev/stdin` with a pipe: what was meant is a Dockerfile on stdin.
    const bool stream = status.type() == fs::file_type::fifo ||
                        status.type() == fs::file_type::character ||
                        status.type() == fs::file_type::socket;
    return Error(Errc::invalid_argument,
                 quoted + " is not a regular file" +
                     (stream ? " (a Dockerfile on standard input is given as -f -)" : ""));
  }
  if (::access(dockerfile.c_str(), R_OK) != 0) {
    return Error(Errc::permission, "cannot read " + quoted + ": " + std::strerror(errno));
  }
  return {};
}

// The file a frontend reads as `name` in a directory it was sent: the sender
// follows the name's symbolic links (fsutil's FollowPaths) and the frontend
// resolves them inside the sent tree, so an absolute target starts at `root`
// and ".." stops there. A link out of the directory therefore names a path
// inside it, usually none. nullopt when a part is missing or not a directory,
// or after 40 links (a loop).
std::optional<fs::path> file_in_sent_tree(const fs::path& root, const std::string& name) {
  auto parts_of = [](const std::string& path) {
    std::vector<std::string> parts;
    for (std::size_t start = 0; start <= path.size();) {
      auto slash = std::min(path.find('/', start), path.size());
      if (slash > start) parts.push_back(path.substr(start, slash - start));
      start = slash + 1;
    }
    return parts;
  };
  std::vector<std::string> pending = parts_of(name);  // in reverse: next at the back
  std::reverse(pending.begin(), pending.end());
  fs::path resolved;  // relative to root, free of links
  int links = 0;
  while (!pending.empty()) {
    std::string part = std::move(pending.back());
    pending.pop_back();
    if (part == ".") continue;
    if (part == "..") {
      resolved = resolved.has_parent_path() ? resolved.parent_path() : fs::path();
      continue;
    }
    const fs::path candidate = root / resolved / part;
    struct stat st {};
    if (::lstat(candidate.c_str(), &st) != 0) return std::nullopt;
    if (S_ISLNK(st.st_mode)) {
      if (++links > 40) return std::nullopt;
      std::error_code ec;
      const std::string target = fs::read_symlink(candidate, ec).string();
      if (ec) return std::nullopt;
      if (target.starts_with('/')) resolved.clear();
      auto target_parts = parts_of(target);
      pending.insert(pending.end(), target_parts.rbegin(), target_parts.rend());
      continue;
    }
    if (!pending.empty() && !S_ISDIR(st.st_mode)) return std::nullopt;
    resolved /= part;
  }
  return root / resolved;
}

// The Dockerfile as the daemon is sent it: its directory and its name. The
// frontend resolves a link among them inside that directory, so a link that
// leads out of it (`-f /etc/df` to /srv/Dockerfile, `-f /dev/stdin` with a
// file on stdin) would name a file the daemon cannot see; such a Dockerfile
// is sent from where the link leads. One the frontend finds as given keeps
// its own name and directory (and so its `<name>.dockerignore`).
fs::path dockerfile_as_sent(const fs::path& dockerfile) {
  std::error_code ec;
  auto inside = file_in_sent_tree(dockerfile.parent_path(), dockerfile.filename().string());
  if (inside && fs::equivalent(*inside, dockerfile, ec)) return dockerfile;
  fs::path resolved = fs::canonical(dockerfile, ec);
  return ec ? dockerfile : resolved;
}

// The text of the ignore file `name` in `root` as the frontend reads it;
// nullopt when it reads none (a missing file, one it cannot read).
std::optional<std::string> ignore_file_text(const fs::path& root, const std::string& name) {
  constexpr size_t kLimit = 16 << 20;
  auto path = file_in_sent_tree(root, name);
  if (!path) return std::nullopt;
  auto text = util::read_file(*path, kLimit);
  if (!text) return std::nullopt;
  return std::move(*text);
}

// The context's ignore file, as the Dockerfile frontend picks it (one
// named after the Dockerfile beside it, else the context's .dockerignore),
// and each named directory context's .dockerignore, checked now: their
// patterns come back to the session only once the build has started,
// without the file's name or line. A file the frontend would not read (one
// that cannot be read, a link out of its directory) is left alone, as the
// frontend leaves it.
Status check_ignore_files(const fs::path& context_dir, const fs::path& dockerfile,
                          const std::map<std::string, fs::path>& named_dirs) {
  auto check = [](const fs::path& root, const std::string& name,
                  const std::string& text) -> Status {
    if (auto st = buildkit::check_ignore_text(text); !st) {
      return st.error().wrap("ignore file '" + (root / name).lexically_normal().string() + "'");
    }
    return {};
  };
  const fs::path dockerfile_dir = dockerfile.parent_path();
  const std::string own_name = dockerfile.filename().string() + ".dockerignore";
  if (auto own = ignore_file_text(dockerfile_dir, own_name)) {
    if (auto st = check(dockerfile_dir, own_name, *own); !st) return st;
  } else if (auto shared = ignore_file_text(context_dir, ".dockerignore")) {
    if (auto st = check(context_dir, ".dockerignore", *shared); !st) return st;
  }
  for (const auto& [name, dir] : named_dirs) {
    auto text = ignore_file_text(dir, ".dockerignore");
    if (!text) continue;
    if (auto st = check(dir, ".dockerignore", *text); !st) {
      return st.error().wrap("--build-context " + name);
    }
  }
  return {};
}

// What creating `path` would run into, found without creating anything (the
// directory of a type=local export is made when the export arrives, the file
// of a tarball when its first bytes do): the path, or else its nearest
// existing parent, must be a directory envd may write to; a file must not be
// a directory. The reason is in strerror's words, as creating would say it.
Status check_creatable(const fs::path& given, bool directory, const std::string& what) {
  auto refuse = [&](int error) {
    return Error(Errc::internal, what + ": " + std::strerror(error));
  };
  std::error_code ec;
  // A symbolic link to nothing yet: a file is written through it, as
  // open(2) follows it, so what must be creatable is the path it leads to;
  // a directory is not made through one (mkdir(2) does not follow it).
  fs::path path = given;
  for (int links = 0; fs::is_symlink(fs::symlink_status(path, ec)); ++links) {
    if (links == 40) return refuse(ELOOP);  // as the kernel counts them
    fs::path target = fs::read_symlink(path, ec);
    if (ec) return refuse(ec.value());
    path = target.is_absolute() ? target : fs::absolute(path, ec).parent_path() / target;
  }
  auto status = fs::status(path, ec);
  if (directory && path != given && !fs::exists(status)) return refuse(EEXIST);
  if (fs::exists(status)) {
    if (directory != fs::is_directory(status)) return refuse(directory ? ENOTDIR : EISDIR);
    if (::access(path.c_str(), directory ? (W_OK | X_OK) : W_OK) != 0) return refuse(errno);
    return {};
  }
  fs::path parent = fs::absolute(path, ec).parent_path();
  while (!parent.empty() && !fs::exists(parent, ec)) {
    if (!directory) return refuse(ENOENT);  // a file's directory is not made for it
    if (parent == parent.parent_path()) break;
    parent = parent.parent_path();
  }
  if (!fs::is_directory(parent, ec)) return refuse(ENOTDIR);
  if (::access(parent.c_str(), W_OK | X_OK) != 0) return refuse(errno);
  return {};
}

// Whether the export's destination can be made: a directory, or a file in an
// existing directory, that envd may write.
Status check_output_destination(const output::OutputSpec& spec) {
  switch (spec.destination) {
    case output::OutputSpec::Destination::directory:
      return check_creatable(spec.dest, true, "cannot create output directory '" + spec.dest + "'");
    case output::OutputSpec::Destination::file:
      return check_creatable(spec.dest, false, "cannot create '" + spec.dest + "'");
    case output::OutputSpec::Destination::none:
    case output::OutputSpec::Destination::standard_output:
      return {};
  }
  return {};
}

// The image's names (-t, or the default one): as an exporter takes several,
// one comma-separated `name`, and as messages say them ("a:1 and a:latest").
struct ImageNames {
  std::string exported;
  std::string shown;

  explicit ImageNames(const std::vector<std::string>& names)
      : exported(output::exporter_name(names)) {
    for (size_t i = 0; i < names.size(); ++i) {
      shown += (i == 0 ? "" : i + 1 == names.size() ? " and " : ", ") + names[i];
    }
  }
};

// The names of an exporter's comma-separated `name` attribute, as messages
// say them ("a:1 and a:2").
std::string shown_names(const std::string& exported) {
  std::vector<std::string> names;
  for (size_t start = 0; start <= exported.size();) {
    size_t comma = std::min(exported.find(',', start), exported.size());
    if (comma > start) names.push_back(exported.substr(start, comma - start));
    start = comma + 1;
  }
  return ImageNames(names).shown;
}

// Where the exported result goes, and what the session must serve for it.
struct ExportPlan {
  buildkit::Export exporter;
  std::unique_ptr<buildkit::FileSendTarget> target;
  std::shared_ptr<OutputFile> output_file;  // a tarball's file destination
  std::string description;
  // Set when the `docker` exporter's tarball goes into the local Engine.
  std::unique_ptr<output::ImageLoader> loader;
  // Names to push through the Engine after a `moby` export (push=true).
  std::vector<std::string> push_names;
  // Names the daemon itself pushes (an `image` export with push=true).
  std::vector<std::string> daemon_push_names;
};

bool has_moby_worker(const std::vector<buildkit::Worker>& workers) {
  return std::any_of(workers.begin(), workers.end(),
                     [](const buildkit::Worker& worker) { return worker.id == "moby"; });
}

bool has_moby_worker(const buildkit::DaemonInfo& info) { return has_moby_worker(info.workers); }

// The names an export asks the daemon to push: BuildKit's image exporter
// pushes every name of its comma-separated `name` when push is true ("push",
// "push=1" and "push=True" too).
std::vector<std::string> daemon_pushes(const buildkit::Export& exporter) {
  auto push = exporter.attrs.find("push");
  auto name = exporter.attrs.find("name");
  if (exporter.type != "image" || push == exporter.attrs.end() ||
      !output::attribute_is_true(push->second) || name == exporter.attrs.end()) {
    return {};
  }
  std::vector<std::string> names;
  size_t start = 0;
  while (start <= name->second.size()) {
    size_t comma = name->second.find(',', start);
    if (comma == std::string::npos) comma = name->second.size();
    if (comma > start) names.push_back(name->second.substr(start, comma - start));
    start = comma + 1;
  }
  return names;
}

// Follows output::choose_export (export_rules.hpp) and sets up what the
// session must serve for the chosen exporter.
Result<ExportPlan> plan_export(const BuildRequest& req, const ImageNames& names,
                               const buildkit::DaemonInfo& info, const std::string& builder,
                               std::chrono::milliseconds connect_timeout) {
  ExportPlan plan;
  std::optional<OutputSpec> spec;
  if (!req.output.empty()) {
    auto parsed = output::parse_output(req.output, util::is_terminal(util::data_fd()));
    if (!parsed) return parsed.error();
    spec = std::move(*parsed);
  }
  auto choice = output::choose_export(spec ? &*spec : nullptr, names.exported,
                                      has_moby_worker(info), builder);
  if (!choice) return choice.error();
  plan.exporter = std::move(choice->exporter);
  plan.push_names = std::move(choice->push_names);
  if (plan.push_names.empty()) plan.daemon_push_names = daemon_pushes(plan.exporter);
  if (choice->load_into_engine) {
    // The `docker` tarball goes into the Engine at DOCKER_HOST as it arrives.
    std::string failed = "cannot load " + names.shown + " into the local Docker Engine";
    auto engine = sdk::DockerEngine::from_env();
    if (!engine) return engine.error().wrap(failed);
    auto loader = output::ImageLoader::start(std::move(*engine), connect_timeout);
    if (!loader) return loader.error().wrap(failed);
    plan.target = buildkit::FileSendTarget::stream((*loader)->sink());
    plan.description = "the Docker Engine at " + (*loader)->endpoint().url;
    plan.loader = std::move(*loader);
    return plan;
  }
  if (!spec) {
    plan.description = "the Docker Engine as " + names.shown;
    return plan;
  }
  if (auto st = check_output_destination(*spec); !st) return st.error();
  switch (spec->destination) {
    case OutputSpec::Destination::directory: {
      plan.target = buildkit::FileSendTarget::directory(fs::absolute(spec->dest));
      plan.description = "directory " + spec->dest;
      break;
    }
    case OutputSpec::Destination::file:
    case OutputSpec::Destination::standard_output: {
      if (spec->destination == OutputSpec::Destination::file) {
        plan.output_file = std::make_shared<OutputFile>(spec->dest);
        plan.description = "file " + spec->dest;
        plan.target = buildkit::FileSendTarget::stream(
            [file = plan.output_file](std::string_view chunk) { return file->write(chunk); });
      } else {
        plan.description = "standard output";
        plan.target = buildkit::FileSendTarget::stream(
            buildkit::FileSendTarget::fd_sink(util::data_fd(), plan.description));
      }
      break;
    }
    case OutputSpec::Destination::none:
      if (plan.exporter.type == "moby") {
        plan.description = "the Docker Engine as " + shown_names(plan.exporter.attrs.at("name"));
      } else if (plan.exporter.type == "image") {
        // Not pushed (a push says "Pushed"): only the daemon has it.
        plan.description = "the builder's own image store (not pushed; push=true pushes it)";
      } else {
        plan.description = plan.exporter.type + " exporter";
      }
      break;
  }
  return plan;
}

Result<buildkit::SolveRequest> solve_request(const BuildRequest& req, const fs::path& dockerfile) {
  buildkit::SolveRequest solve;
  solve.frontend = "dockerfile.v0";
  auto& attrs = solve.frontend_attrs;
  // Every attribute is a protobuf string: text that is not UTF-8 would be
  // logged by protobuf and refused by a daemon only after the session set-up.
  std::string filename = dockerfile.filename().string();
  if (auto st = check_utf8("--file", filename); !st) return st.error();
  if (auto st = check_utf8("--target", req.target); !st) return st.error();
  attrs["filename"] = std::move(filename);
  for (const auto& arg : req.build_args) {
    auto parsed = parse_env_value(arg, "--build-arg");
    if (!parsed) return parsed.error();
    if (parsed->bare) {
      // docker build's --build-arg KEY: the value of KEY in envd's
      // environment; an unset KEY is left out (the Dockerfile's default).
      const char* value = std::getenv(parsed->key.c_str());
      if (value == nullptr) continue;
      if (auto st = check_utf8("--build-arg " + parsed->key + " (its value in envd's environment)",
                               value);
          !st) {
        return st.error();
      }
      parsed->value = value;
    }
    attrs["build-arg:" + parsed->key] = parsed->value;
  }
  if (!req.target.empty()) attrs["target"] = req.target;
  if (!req.platform.empty()) attrs["platform"] = req.platform;
  if (req.no_cache) attrs["no-cache"] = "";
  if (req.network == "none") {
    attrs["force-network-mode"] = "none";
  } else if (req.network == "host") {
    attrs["force-network-mode"] = "host";
    solve.entitlements.push_back("network.host");
  } else if (req.network != "default") {
    return Error(Errc::invalid_argument,
                 "invalid --network '" + req.network + "': expected default, none or host");
  }
  for (const auto& value : req.cache_to) {
    auto entry = parse_cache_export("--cache-to", value);
    if (!entry) return entry.error();
    solve.cache_exports.push_back(std::move(*entry));
  }
  for (const auto& value : req.cache_from) {
    auto entry = parse_cache_import("--cache-from", value);
    if (!entry) return entry.error();
    solve.cache_imports.push_back(std::move(*entry));
  }
  FrontendFlags flags;
  flags.labels = req.labels;
  flags.add_hosts = req.add_hosts;
  flags.pull = req.pull;
  std::set<std::string> context_names;
  for (const auto& value : req.build_contexts) {
    auto named = parse_build_context(value);
    if (!named) return named.error();
    // A name is one context, of whichever kind: a second is refused, not
    // taken over the first.
    if (!context_names.insert(named->name).second) {
      return Error(Errc::invalid_argument, "invalid --build-context '" + util::printable(value) +
                                               "': '" + named->name + "' is given twice");
    }
    flags.contexts.push_back(std::move(*named));
  }
  if (auto st = add_frontend_flags(flags, attrs); !st) return st.error();
  return solve;
}

// --platform in containerd's grammar: a comma-separated list of
// OS[(OSVERSION)][/ARCH[/VARIANT]], each part letters, digits, '_', '-' or
// '.' ("linux/arm64/v8.0", "windows(10.0.20348)/amd64"). A daemon would
// refuse anything else only after the session and the context were set up.
Status check_platforms(const std::string& value) {
  if (value.empty()) return {};
  auto bad = [&](const std::string& why) {
    return Error(Errc::invalid_argument, "invalid --platform '" + util::printable(value, 80) +
                                             "': " + why +
                                             "; expected e.g. linux/amd64 or "
                                             "linux/amd64,linux/arm64/v8");
  };
  auto word_ok = [](const std::string& word) {
    return std::all_of(word.begin(), word.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.';
    });
  };
  auto part_ok = [&](std::string part, bool os) {
    // The OS may carry its version in parentheses.
    if (os && !part.empty() && part.back() == ')') {
      const std::size_t open = part.find('(');
      if (open == std::string::npos || !word_ok(part.substr(open + 1, part.size() - open - 2))) {
        return false;
      }
      part.resize(open);
    }
    return !part.empty() && word_ok(part);
  };
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = value.find(',', start);
    const std::string item =
        value.substr(start, comma == std::string::npos ? comma : comma - start);
    if (item.empty()) return bad("a platform in the list is empty");
    std::size_t parts = 0;
    bool ok = true;
    for (std::size_t from = 0;;) {
      const std::size_t slash = item.find('/', from);
      ok = ok &&
           part_ok(item.substr(from, slash == std::string::npos ? slash : slash - from), from == 0);
      ++parts;
      if (slash == std::string::npos) break;
      from = slash + 1;
    }
    if (!ok || parts > 3) {
      return bad("'" + util::printable(item, 40) + "' is not OS[/ARCH[/VARIANT]]");
    }
    if (comma == std::string::npos) return {};
    start = comma + 1;
  }
}

// This machine's build node: 32 random hex digits kept in the cache
// directory, made on first use. Empty when it can be neither read nor made;
// the transfer key then still names the directory.
std::string build_node_id() {
  auto cache = util::cache_dir();
  if (!cache) return {};
  const fs::path file = *cache / "build-node-id";
  auto valid = [](const std::string& id) {
    return id.size() == 32 && std::all_of(id.begin(), id.end(), [](char c) {
             return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
  };
  if (auto text = util::read_file(file)) {
    std::string id = text->substr(0, text->find('\n'));
    if (valid(id)) return id;
  }
  // Not kept over a FIFO (its write would wait for a reader for ever) or
  // anything else that is not a file.
  if (util::holds_other_than_a_file(file)) return {};
  std::random_device device;
  std::string id;
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 8; ++i) {
    unsigned bits = device();
    for (int j = 0; j < 4; ++j, bits >>= 4) id += kHex[bits & 0xf];
  }
  std::error_code ec;
  fs::create_directories(*cache, ec);
  if (ec || !util::write_file_atomically(file, id + "\n", 0600, util::ReadOnlyFile::replace)) {
    return {};
  }
  return id;
}

// The session's shared key. BuildKit keeps the last transfer of a context
// under it and asks only for the files whose size, time or mode changed, so
// it must name the directory: with one key for every build, a project whose
// files matched another's in size and time was built from the other's
// content. Keyed as the docker CLI keys it, on this machine and the
// directory's absolute path, so a rebuild sends only what changed.
std::string context_transfer_key(const fs::path& context_dir) {
  std::error_code ec;
  fs::path canonical = fs::weakly_canonical(context_dir, ec);  // one key for ./x, x/ and x
  if (ec) canonical = context_dir;
  std::string digest = buildkit::sha256_digest(build_node_id() + ":" + canonical.string());
  return digest.substr(digest.find(':') + 1);
}

// The named build contexts that are directories, by name, for the session's
// FileSync (the frontend asks for them as local:NAME).
Result<std::map<std::string, fs::path>> named_context_dirs(const BuildRequest& req) {
  std::map<std::string, fs::path> dirs;
  for (const auto& value : req.build_contexts) {
    auto named = parse_build_context(value);
    if (!named) return named.error();
    if (named->directory.empty()) continue;
    if (named->name == "context" || named->name == "dockerfile") {
      return Error(Errc::invalid_argument,
                   "invalid --build-context '" + value + "': '" + named->name +
                       "' is the name of the build's own directory; choose another name");
    }
    // A name given twice was refused with the Solve's attributes.
    dirs.emplace(named->name, named->directory);
  }
  return dirs;
}

// A Dockerfile frontend older than named contexts (BuildKit v0.10; the
// Engine 20.10's own) ignores `context:NAME` and takes `FROM NAME` or
// `COPY --from=NAME` for an image on Docker Hub, which then fails to
// resolve: when the failure names a directory context's NAME as that image,
// say why. An image context (docker-image://) is left out: resolving its
// reference is what a newer frontend does too.
std::string named_context_hint(const BuildRequest& req, const std::string& failure) {
  for (const auto& value : req.build_contexts) {
    auto named = parse_build_context(value);
    if (!named || named->directory.empty()) continue;
    const std::string image = named->name.find('/') == std::string::npos
                                  ? "docker.io/library/" + named->name
                                  : "docker.io/" + named->name;
    const std::string in_url = image.substr(image.find('/')) + "/manifests/";
    if (failure.find(image + ":") == std::string::npos &&
        failure.find(image + "@") == std::string::npos &&
        failure.find(in_url) == std::string::npos) {
      continue;
    }
    return " (the builder's Dockerfile frontend took --build-context '" + named->name +
           "' for an image: it predates named contexts, which need BuildKit v0.10 or later, "
           "as in Docker Engine 23 or a docker-container builder)";
  }
  return {};
}

// Why the Engine's embedded BuildKit refuses a cache of `type`: it exports
// cache only inline and imports it only from a registry or a local directory.
std::string moby_cache_refusal(const std::string& type, bool exporting) {
  std::string text = "the Docker Engine's embedded BuildKit cannot ";
  text += exporting ? "export" : "import";
  text.append(" build cache as type=").append(type).append(" (");
  text.append(exporting ? "--cache-to" : "--cache-from").append("): it ");
  text += exporting ? "exports cache only as type=inline"
                    : "imports cache only from type=registry and type=local";
  return text +
         "; build on a buildkitd (docker-container, tcp, unix or kube-pod builder) for the "
         "other types";
}

// What a moby-worker builder will refuse, said before it is contacted (and
// before a local cache directory is made for an export it refuses).
Status check_moby_caches(const buildkit::SolveRequest& solve) {
  for (const auto& entry : solve.cache_exports) {
    if (entry.type != "inline")
      return Error(Errc::unsupported, moby_cache_refusal(entry.type, true));
  }
  for (const auto& entry : solve.cache_imports) {
    if (entry.type != "registry" && entry.type != "local") {
      return Error(Errc::unsupported, moby_cache_refusal(entry.type, false));
    }
  }
  return {};
}

// The daemon's refusal of a cache type (`unknown cache exporter: "registry"`),
// said plainly (moby_cache_refusal on the Engine). "" for other errors.
std::string explain_cache_refusal(const std::string& message, const buildkit::DaemonInfo& info) {
  for (const char* what : {"exporter", "importer"}) {
    std::string marker = std::string("unknown cache ") + what + ": \"";
    auto at = message.find(marker);
    if (at == std::string::npos) continue;
    auto start = at + marker.size();
    auto end = message.find('"', start);
    std::string type = message.substr(start, end == std::string::npos ? end : end - start);
    bool exporting = std::string(what) == "exporter";
    if (has_moby_worker(info)) return moby_cache_refusal(type, exporting);
    std::string text = "this buildkitd has no cache ";
    text.append(what).append(" of type=").append(type).append(" (");
    return text.append(exporting ? "--cache-to" : "--cache-from").append(")");
  }
  return {};
}

// A failed build must not leave an earlier build's ID behind. A regular file
// is removed; a link to one is kept and the file emptied (unlinking would
// remove the link); a device or FIFO (/dev/null, a pipe) and a descriptor
// (/dev/stdout) are left alone. The ID is written once
// the build has succeeded, the same three ways (write_file_atomically).
Status clear_earlier_iidfile(const std::string& path) {
  // /dev/stdout and its kind: the ID is written through the descriptor;
  // emptying the file behind it would truncate the user's redirected log.
  if (util::descriptor_named(path)) return {};
  auto failed = [&](const char* what, int err) {
    const Errc code =
        err == EACCES || err == EPERM || err == EROFS ? Errc::permission : Errc::internal;
    return Error(code, fmt::format("cannot {} the earlier --iidfile '{}' (a failed build must "
                                   "not leave its ID): {}",
                                   what, util::printable(path), std::strerror(err)));
  };
  struct stat link {};
  if (::lstat(path.c_str(), &link) != 0) return {};  // none, or checked before
  if (S_ISREG(link.st_mode)) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return failed("remove", errno);
    return {};
  }
  struct stat target {};
  if (!S_ISLNK(link.st_mode) || ::stat(path.c_str(), &target) != 0 || !S_ISREG(target.st_mode)) {
    return {};
  }
  // O_NONBLOCK: should the link have come to name a FIFO meanwhile, the
  // open does not wait for a reader.
  const int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return failed("empty", errno);
  ::close(fd);
  return {};
}

// Writes what a pipeline reads back: --iidfile and --metadata-file. A file
// that cannot be written fails the command, after the build.
Status write_build_results(const BuildRequest& req, const buildkit::SolveResult& result) {
  if (!req.iidfile.empty()) {
    std::string id = image_id(result.exporter_response);
    if (id.empty()) {
      return Error(Errc::invalid_argument,
                   "--iidfile: the export made no image (the output is files), so there is no "
                   "image ID to write to '" +
                       req.iidfile + "'");
    }
    if (auto st = util::write_file_atomically(fs::absolute(req.iidfile), id, 0644); !st) {
      return st.error().wrap("cannot write --iidfile");
    }
  }
  if (!req.metadata_file.empty()) {
    std::string text = util::to_pretty_json(build_metadata(result.exporter_response));
    if (auto st = util::write_file_atomically(fs::absolute(req.metadata_file), text, 0644); !st) {
      return st.error().wrap("cannot write --metadata-file");
    }
  }
  return {};
}

// Runs `hand_over` when it goes out of scope, on every return.
class LeftToExit {
 public:
  explicit LeftToExit(std::function<void()> hand_over) : hand_over_(std::move(hand_over)) {}
  LeftToExit(const LeftToExit&) = delete;
  LeftToExit& operator=(const LeftToExit&) = delete;
  ~LeftToExit() { hand_over_(); }

 private:
  std::function<void()> hand_over_;
};

// ENVD_TIMINGS=1 prints, when a build ends, where its wall time went:
// reaching the builder (dial + probe), the solve (the daemon's work plus the
// session's transfers) and what follows it (load, push). bench/build.sh uses
// it to show the daemon's share of a cached rebuild, the floor no client can
// go below. A second line gives each step's time since the process began
// (util/step_times.hpp), "first Solve byte" being when the Solve request is
// handed to gRPC (bench/first-solve.sh reads it).
class BuildTimings {
 public:
  using Clock = std::chrono::steady_clock;
  explicit BuildTimings(const Invocation& invocation)
      : enabled_(std::getenv("ENVD_TIMINGS") != nullptr), start_(Clock::now()) {
    if (!enabled_ || !invocation.process_start) return;
    auto& steps = util::StepTimes::global();
    steps.start(*invocation.process_start);
    steps.mark("main", invocation.main_entered);
    steps.mark("build", start_);
  }
  BuildTimings(const BuildTimings&) = delete;
  BuildTimings& operator=(const BuildTimings&) = delete;
  ~BuildTimings() {
    if (!enabled_) return;
    auto end = Clock::now();
    auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
    // Only the phases the build reached.
    std::string line =
        fmt::format("envd: timings: connect {:.3f} s", seconds(connected_.value_or(end) - start_));
    if (connected_) {
      line += fmt::format(", solve {:.3f} s", seconds(solved_.value_or(end) - *connected_));
    }
    if (solved_) line += fmt::format(", after {:.3f} s", seconds(end - *solved_));
    if (left_to_exit_) line += " (the connection left to the process's end)";
    util::write_message(stderr, fmt::format("{}\n", line));
    auto& steps = util::StepTimes::global();
    steps.mark("end", end);
    if (steps.started())
      util::write_message(stderr, fmt::format("envd: timings: {}\n", steps.report()));
  }
  // A step of the build, for the second line.
  static void step(std::string_view name) { util::StepTimes::global().mark(name); }
  void connected() {
    connected_ = Clock::now();
    util::StepTimes::global().mark("connected", *connected_);
  }
  void solved() {
    solved_ = Clock::now();
    util::StepTimes::global().mark("solved", *solved_);
  }
  // The client and gRPC go to the process's end, not torn down.
  void left_to_exit() { left_to_exit_ = true; }

 private:
  bool enabled_;
  Clock::time_point start_;
  std::optional<Clock::time_point> connected_;
  std::optional<Clock::time_point> solved_;
  bool left_to_exit_ = false;
};

}  // namespace

Status run_build(Invocation& invocation, const BuildRequest& req) {
  BuildTimings timings(invocation);
  // Validate everything local before contacting anything.
  // The flags' own values first: a bad one is the user's error whatever the
  // directory holds.
  auto mode = output::resolve_progress_mode(req.quiet ? "quiet" : req.progress,
                                            util::is_terminal(STDERR_FILENO));
  if (!mode) return mode.error();
  auto timeout = connect_timeout(req.connect_timeout);
  if (!timeout) return timeout.error();
  // `-` is a Dockerfile on standard input and no context, as in docker
  // build; `-f -` the Dockerfile alone (stdin_dockerfile.hpp). What the
  // Dockerfile's own path would be checked for is checked first.
  const bool no_context = req.path == "-";
  const bool dockerfile_on_stdin = no_context || req.file == "-";
  if (std::string mistake = stdin_build_mistake(req); !mistake.empty()) {
    return Error(Errc::invalid_argument, mistake);
  }
  std::optional<fs::path> checked_dir;
  if (!no_context) {
    auto dir = build_context_dir(req.path);
    if (!dir) return dir.error();
    checked_dir = std::move(*dir);
  }
  std::optional<StdinDockerfile> stdin_dockerfile;
  if (dockerfile_on_stdin) {
    auto read = StdinDockerfile::read(no_context ? "'-'" : "-f -");
    if (!read) return read.error();
    stdin_dockerfile.emplace(std::move(*read));
  }
  const fs::path context_dir = no_context ? stdin_dockerfile->empty_context() : *checked_dir;
  fs::path dockerfile = stdin_dockerfile   ? stdin_dockerfile->dockerfile()
                        : req.file.empty() ? context_dir / "Dockerfile"
                                           : fs::absolute(req.file);
  if (auto st = check_dockerfile(dockerfile); !st) return st;
  dockerfile = dockerfile_as_sent(dockerfile);
  auto image_names = output::image_names(req.tags, context_dir);
  if (!image_names) return image_names.error();
  const ImageNames names(*image_names);
  const std::string& tag = names.shown;
  auto solve = solve_request(req, dockerfile);
  if (!solve) return solve.error();
  solve->session_shared_key = context_transfer_key(context_dir);
  auto named_dirs = named_context_dirs(req);
  if (!named_dirs) return named_dirs.error();
  if (auto st = check_ignore_files(context_dir, dockerfile, *named_dirs); !st) return st;
  // Secret values are read now, so a missing file or variable fails before
  // anything is contacted; they stay in memory only.
  SecretReadOptions secret_reading;
  if (!req.quiet) {
    secret_reading.notice = [](const std::string& line) { inform(line); };
  }
  if (dockerfile_on_stdin) secret_reading.stdin_read_by = no_context ? "'-'" : "-f -";
  auto secrets = load_secrets(req.secrets, secret_reading);
  if (!secrets) return secrets.error();
  auto ssh_agents = resolve_ssh_agents(req.ssh);
  if (!ssh_agents) return ssh_agents.error();
  if (auto st = check_platforms(req.platform); !st) return st;
  // A local cache directory is made once the daemon is reached; what would
  // stop that (a file in its place, a read-only parent) is told first.
  for (const auto& entry : solve->cache_exports) {
    auto dest = entry.attrs.find("dest");
    if (entry.type != "local" || dest == entry.attrs.end()) continue;
    if (auto st = check_creatable(dest->second, true,
                                  "cannot create the cache directory '" + dest->second + "'");
        !st) {
      return st;
    }
  }
  for (const auto* path : {&req.iidfile, &req.metadata_file}) {
    if (path->empty()) continue;
    // Written through the descriptor (/dev/fd/1's directory takes no file).
    if (util::descriptor_named(*path)) continue;
    std::error_code parent_ec;
    fs::path parent = fs::absolute(*path).parent_path();
    if (!fs::is_directory(parent, parent_ec)) {
      return Error(Errc::not_found, "cannot write '" + *path + "': directory '" + parent.string() +
                                        "' does not exist");
    }
    if (fs::is_directory(*path, parent_ec)) {
      return Error(Errc::invalid_argument, "cannot write '" + *path + "': it is a directory");
    }
    // What is not a regular file (/dev/null, a FIFO) is written in place:
    // its directory need take no file.
    if (struct stat st{}; ::stat(path->c_str(), &st) == 0 && !S_ISREG(st.st_mode)) continue;
    // A read-only file is refused now, not after the build (or, for
    // --iidfile, removed with the earlier build's ID).
    if (auto st = util::check_replaceable(fs::absolute(*path)); !st) return st;
    // The file is written beside itself and renamed into place: its
    // directory must take a new file (not read-only, not immutable).
    if (::access(parent.c_str(), W_OK | X_OK) != 0) {
      return Error(Errc::permission, "cannot write '" + *path + "': cannot create a file in '" +
                                         parent.string() + "': " + std::strerror(errno));
    }
  }
  if (!req.output.empty()) {
    if (auto st = check_utf8("--output", req.output); !st) return st;
    // Checked again when the export is planned; a mistyped flag is told
    // before a builder is bootstrapped or a daemon contacted.
    auto spec = output::parse_output(req.output, util::is_terminal(util::data_fd()));
    if (!spec) {
      // The CSV reader names the flag and the value itself.
      if (spec.error().message().rfind("invalid --output '", 0) == 0) return spec.error();
      return spec.error().wrap("--output '" + util::printable(req.output, 80) + "'");
    }
    const std::string quoted_output = "--output '" + util::printable(req.output, 80) + "'";
    // A destination envd cannot write is told before a builder is started
    // (docker-container may create one), and again when the export is planned.
    if (auto st = check_output_destination(*spec); !st) return st;
    if (spec->destination == output::OutputSpec::Destination::standard_output) {
      if (util::was_closed_at_start(STDOUT_FILENO)) {
        return Error(Errc::invalid_argument, quoted_output +
                                                 ": standard output is closed, so the " +
                                                 spec->type + " would be lost; give dest=FILE");
      }
      // Nothing else may go where the archive goes: a line after it is a
      // corrupt archive for whatever reads the stream.
      if (req.quiet && req.quiet_prints_image_id && spec->type != "tar") {
        return Error(Errc::invalid_argument,
                     "-q prints the image ID on standard output, where " + quoted_output +
                         " writes the " + spec->type +
                         " archive; use --progress quiet (and --iidfile FILE for the ID)");
      }
      for (const auto& [flag, path] : {std::pair{"--iidfile", &req.iidfile},
                                       std::pair{"--metadata-file", &req.metadata_file}}) {
        if (util::names_standard_output(*path)) {
          return Error(Errc::invalid_argument, std::string(flag) + " '" + *path +
                                                   "' is standard output, where " + quoted_output +
                                                   " writes the " + spec->type +
                                                   " archive; give it a file");
        }
      }
    }
    // A push needs a name of the user's: the default one (<dir>:dev) is a
    // Docker Hub name nobody chose.
    if (spec->type == "image" && req.tags.empty() && !spec->attrs.contains("name")) {
      if (auto push = spec->attrs.find("push");
          push != spec->attrs.end() && output::attribute_is_true(push->second)) {
        return Error(Errc::invalid_argument,
                     quoted_output +
                         ": a push needs the image's name: give -t NAME[:TAG] or "
                         "name=REF");
      }
    }
  }
  if (!req.iidfile.empty() && !req.output.empty()) {
    // As buildx: files make no image, so there is no ID to write.
    auto spec = output::parse_output(req.output, util::is_terminal(util::data_fd()));
    if (spec && (spec->type == "local" || spec->type == "tar")) {
      return Error(Errc::invalid_argument,
                   "--iidfile needs an image; --output type=" + spec->type + " writes files");
    }
  }
  if (!req.iidfile.empty()) {
    if (auto st = clear_earlier_iidfile(req.iidfile); !st) return st;
  }

  // Driver progress (pulling a builder image...) follows --progress too.
  invocation.quiet_progress = *mode == output::ProgressMode::quiet;
  BuildTimings::step("checked");
  // gRPC starts on its own thread while the builder is resolved (the
  // context read, the driver module loaded); declared before the client, so
  // it outlives every channel.
  auto grpc_ready = std::make_shared<buildkit::GrpcWarmUp>();
  auto target = resolve_builder(invocation);
  if (!target) return target.error();
  if (target->context.builder == "moby-worker") {
    if (auto st = check_moby_caches(*solve); !st) {
      return st.error().wrap("build failed on " + target->context.builder_endpoint());
    }
  }
  BuildTimings::step("driver loaded");
  // resolve_builder() blocked SIGINT/SIGTERM/SIGHUP before gRPC starts its threads,
  // which inherit the mask: a signal reaches its watcher, which cancels this.
  buildkit::CancelToken cancel = target->cancel;
  // The connect probe (ListWorkers) names the daemon's workers, and they
  // decide the exporter when there is no --output (a moby worker takes the
  // image itself). With --output, or with the answer remembered from the last
  // build on this context (daemon_answer.hpp), the Solve goes out beside the
  // probe instead of a round trip after it: a failed probe cancels the build
  // and is what it reports, and one that refutes the remembered answer has
  // the build planned again from its own.
  // Any remembered answer, with --output too, spares the daemon most of the
  // probe's work (buildkit::Client::connect's `expected`).
  auto last_answer = load_daemon_answer(target->context);
  std::optional<std::vector<buildkit::Worker>> remembered;
  if (req.output.empty()) remembered = last_answer;
  const auto probe = req.output.empty() && !remembered ? buildkit::Client::Probe::wait
                                                       : buildkit::Client::Probe::concurrent;
  auto client = connect_builder(*target, *timeout, "{}", probe,
                                last_answer.value_or(std::vector<buildkit::Worker>{}));
  if (!client) return client.error();
  // The build is over and so is the process, whatever its outcome: closing
  // the channel and joining gRPC's threads would only make the user wait
  // (0.5 to 4 ms after a success, docs/performance.md; after an upload the
  // daemon's death cut short, up to 10 s, while a poller gRPC started for
  // the session's stuck write finishes its wait). Only when the driver said
  // nothing of it runs for the connection: a driver's relay or helper is
  // ended by its orderly teardown, which the process's end without
  // destructors would skip. Declared after the client, so it goes first.
  LeftToExit hand_over([&] {
    if (!req.ends_the_process || !client || !client->self_contained()) return;
    invocation.leave_to_exit(grpc_ready);
    invocation.leave_to_exit(std::make_shared<buildkit::Client>(std::move(*client)));
    timings.left_to_exit();
  });
  // The probe's answer is all the build needs (the exporter, the wording of a
  // cache refusal), so no Info and no second ListWorkers.
  auto info = std::make_optional<buildkit::DaemonInfo>();
  if (probe == buildkit::Client::Probe::wait) {
    info->workers = client->workers();
  } else if (remembered) {
    info->workers = *remembered;
  }
  timings.connected();

  std::map<std::string, fs::path> sync_dirs = std::move(*named_dirs);
  sync_dirs["context"] = context_dir;
  sync_dirs["dockerfile"] = dockerfile.parent_path();
  buildkit::FileSyncProvider files(std::move(sync_dirs));
  buildkit::AuthProvider auth;
  buildkit::SecretsProvider secret_provider(std::move(*secrets));
  buildkit::SshForwardProvider ssh_provider(std::move(*ssh_agents));
  // Local cache directories are served through the session's content store.
  auto local_caches = buildkit::prepare_local_caches(solve->cache_exports, solve->cache_imports);
  if (!local_caches) return local_caches.error();
  for (const auto& warning : local_caches->warnings) warn(warning);
  buildkit::ContentStoreProvider cache_store(local_caches->dirs);
  std::vector<buildkit::Attachable*> attachables{&files, &auth};
  if (!req.secrets.empty()) attachables.push_back(&secret_provider);
  if (!req.ssh.empty()) attachables.push_back(&ssh_provider);
  if (!local_caches->dirs.empty()) attachables.push_back(&cache_store);

  ExportPlan plan;
  std::optional<output::ProgressUi> progress;
  std::optional<Result<buildkit::SolveResult>> outcome;
  for (bool replanned = false;;) {
    auto planned = plan_export(req, names, *info, target->context.builder, *timeout);
    if (!planned) return planned.error();
    plan = std::move(*planned);
    solve->exports.assign(1, plan.exporter);
    solve->assumed_workers = nullptr;
    if (remembered && !replanned) {
      solve->assumed_workers = [moby = has_moby_worker(*info)](const auto& workers) {
        return has_moby_worker(workers) == moby;
      };
    }
    std::vector<buildkit::Attachable*> served = attachables;
    if (plan.target) served.push_back(plan.target.get());
    progress.emplace(*mode, stderr);
    {
      // With the probe beside the Solve, the connect returned at once: the
      // wait for a daemon that does not answer is the Solve's, and is said
      // as a connect's is (once the probe has kept it waiting a while).
      std::shared_ptr<void> notice;
      if (probe == buildkit::Client::Probe::concurrent && !replanned) {
        notice =
            connect_wait_notice(*target, *timeout, [c = &*client] { return !c->probe_ended(); });
      }
      outcome.emplace(client->solve(*solve, served, *progress, cancel));
    }
    if (*outcome || !solve->assumed_workers || cancel.cancelled() || !client->probe_status() ||
        solve->assumed_workers(client->workers())) {
      break;
    }
    // Planned for the daemon this context reached last time, and the probe
    // says this one differs: plan again from what a probe says, on a
    // connection of its own (a daemon may end the one whose solve was
    // cancelled: the Engine's tunnel answers the next call with GOAWAY).
    if (plan.loader) plan.loader->abandon();
    replanned = true;
    if (!req.quiet) {
      inform("the builder at " + client->address() +
             " is not the daemon of the last build; starting the build again");
    }
    auto fresh = connect_builder(*target, *timeout, "{}", buildkit::Client::Probe::wait);
    if (!fresh) return fresh.error();
    client = std::move(fresh);
    info->workers = client->workers();
  }
  // Remembered for the next build (replacing one the probe refuted), once
  // the probe has answered (a build with --output may end before it does).
  if (client->probe_ended() && client->probe_status()) {
    save_daemon_answer(target->context, client->workers());
  }
  auto& result = *outcome;
  timings.solved();
  if (!result) {
    // Read before abandon(): the tarball it cuts short is refused too.
    Status load_failure = plan.loader ? plan.loader->failure() : Status{};
    if (plan.loader) plan.loader->abandon();
    if (plan.output_file) plan.output_file->abandon();
    std::string report = progress->failure_report();
    if (!report.empty()) util::write_message(stderr, fmt::format("{}", report));
    if (result.error().code() == Errc::cancelled) {
      return Error(Errc::cancelled, "build cancelled");
    }
    // This end failed the export (a full disk, a path it cannot create): the
    // cause, whatever the daemon made of the stream it cut (often "EOF").
    // The Engine's load has its own report below.
    if (plan.target && !plan.loader) {
      if (std::string local = plan.target->local_failure(); !local.empty()) {
        return Error(Errc::internal, "the export to " + plan.description + " failed: " + local);
      }
    }
    // A concurrent probe that failed is why the build did (the client
    // returned its error); say it as a failed connect is said.
    if (probe == buildkit::Client::Probe::concurrent) {
      if (auto probed = client->probe_status(); !probed) {
        return connect_failure(*target, probed.error(), *timeout);
      }
      info->workers = client->workers();
    }
    // The Engine failed the load and so stopped the export: that is the cause,
    // not what the daemon made of it.
    if (!load_failure) {
      return load_failure.error().wrap("cannot load " + tag + " from " + client->address() +
                                       " into the Docker Engine");
    }
    if (auto explained = explain_cache_refusal(result.error().message(), *info);
        !explained.empty()) {
      return Error(result.error().code(),
                   "build failed on " + client->address() + ": " + explained);
    }
    Error failure = result.error();
    // An Engine started without a bridge (dockerd --bridge=none) runs no
    // RUN step on the default network, and says only that it has none.
    if (failure.message().find("network bridge not found") != std::string::npos &&
        req.network == "default") {
      failure = Error(failure.code(), failure.message() +
                                          " (the Engine has no bridge network: build with "
                                          "--network none or --network host)");
    }
    if (std::string hint = named_context_hint(req, report + failure.message()); !hint.empty()) {
      failure = Error(failure.code(), failure.message() + hint);
    }
    // Name the builder, unless the client's message already does.
    if (failure.message().find(client->address()) != std::string::npos) return failure;
    return failure.wrap("build failed on " + client->address());
  }
  if (plan.output_file) {
    // An export with no bytes still makes its (empty) file.
    if (auto st = plan.output_file->commit(); !st) return st;
  }
  if (auto st = buildkit::record_local_cache_exports(*local_caches, result->exporter_response);
      !st) {
    if (plan.loader) plan.loader->abandon();
    return st.error().wrap("built " + tag + " but cannot record its local cache");
  }
  // With --quiet, only the image ID goes out (to stdout), as docker build -q.
  auto say = [&req](const std::string& message) {
    if (!req.quiet) inform(message);
  };
  auto finish = [&]() -> Status {
    if (auto st = write_build_results(req, *result); !st) return st;
    if (req.quiet && req.quiet_prints_image_id) {
      std::string id = image_id(result->exporter_response);
      if (!id.empty()) fmt::print(util::data_out(), "{}\n", id);
    }
    return {};
  };
  if (plan.loader) {
    auto loaded = plan.loader->finish();
    if (!loaded) {
      return loaded.error().wrap("built " + tag + " but cannot load it into the Docker Engine at " +
                                 plan.loader->endpoint().url);
    }
    say("Loaded " + tag + " into the Docker Engine at " + plan.loader->endpoint().url);
    return finish();
  }
  if (!plan.daemon_push_names.empty()) {
    // The daemon pushed them; what was pushed is what the user asked about.
    auto digest = result->exporter_response.find("containerimage.digest");
    std::string suffix =
        digest == result->exporter_response.end() ? "" : " (" + digest->second + ")";
    for (const auto& name : plan.daemon_push_names) {
      std::string line = "Pushed " + name;
      line += suffix;
      say(line);
    }
    return finish();
  }
  // The image's name is the export's own when it has one and -t was not
  // given (--output type=docker,name=app:1): what the tarball is tagged.
  std::string built = tag;
  if (auto name = plan.exporter.attrs.find("name");
      req.tags.empty() && name != plan.exporter.attrs.end() && !name->second.empty()) {
    built = shown_names(name->second);
  }
  say("Built " + built + ", exported to " + plan.description);
  if (!plan.push_names.empty()) {
    // The moby-worker builder's engine is the one at DOCKER_HOST.
    auto engine = sdk::DockerEngine::from_env();
    if (!engine) return engine.error().wrap("cannot push " + plan.push_names.front());
    output::PushOptions push;
    push.mode = *mode;
    push.cancelled = [&cancel] { return cancel.cancelled(); };
    std::string first_digest;
    for (const auto& name : plan.push_names) {
      auto pushed = output::push_image(*engine, name, push);
      if (!pushed) return pushed.error();
      say("Pushed " + name + (pushed->empty() ? "" : " (" + *pushed + ")"));
      if (first_digest.empty()) first_digest = *pushed;
    }
    // --metadata-file then names what the registry holds, not the image ID.
    record_engine_push(result->exporter_response, plan.push_names, first_digest);
  }
  return finish();
}

}  // namespace envd::cli
