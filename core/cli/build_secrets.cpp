#include "cli/build_secrets.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <utility>

#include "envd/csv.hpp"
#include "envd/files.hpp"
#include "util/atomic_file.hpp"
#include "util/text.hpp"
#include "util/unique_fd.hpp"

namespace envd::cli {
namespace {

std::string single_quoted(std::string_view text) { return "'" + util::printable(text, 300) + "'"; }

Error invalid_secret(std::string_view value, const std::string& why) {
  return Error(Errc::invalid_argument, "invalid --secret " + single_quoted(value) + ": " + why);
}

// Waits until `fd` can be read without blocking. The notice is given once,
// when nothing has come after `options.notice_after`: a FIFO or a terminal
// that nobody writes to would otherwise hold the build without a word (Ctrl-C
// still stops it: secrets are read before any signal is blocked).
Status wait_readable(int fd, const std::string& notice, const SecretReadOptions& options,
                     bool& noticed) {
  pollfd p{fd, POLLIN, 0};
  auto timeout = static_cast<int>(options.notice_after.count());
  while (true) {
    int ready = ::poll(&p, 1, noticed ? -1 : timeout);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return Error(Errc::internal, "poll: " + std::string(std::strerror(errno)));
    if (ready > 0) return {};
    noticed = true;
    if (options.notice) options.notice(notice);
  }
}

// Reads at most kMaxSecretSize + 1 bytes: enough to tell a value that is too big.
Result<std::string> read_secret_file(const std::string& path, const std::string& flag,
                                     const SecretReadOptions& options) {
  auto failed = [&](int err) {
    Errc code = err == ENOENT                   ? Errc::not_found
                : err == EACCES || err == EPERM ? Errc::permission
                                                : Errc::invalid_argument;
    return Error(code, flag + ": cannot read " + single_quoted(path) + ": " + std::strerror(err));
  };
  util::UniqueFd fd;
  bool held = false;
  if (auto number = util::descriptor_named(path)) {
    // Its flags are shared with whoever else holds it: left as they are.
    fd = util::UniqueFd(::fcntl(*number, F_DUPFD_CLOEXEC, 0));
    if (!fd) return failed(errno);
    held = true;
  } else {
    // O_NONBLOCK: opening a FIFO would otherwise block, silently, until a
    // writer came; named pipes are legitimate sources, so one is read, not
    // refused. A file under another process's lease refuses a non-blocking
    // open, and is opened as before.
    fd = util::UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (!fd && errno == EWOULDBLOCK)
      fd = util::UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return failed(errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return failed(errno);
  // A regular file is read as it always was. Anything else may keep envd
  // waiting, so it is polled first: a FIFO that no writer has opened yet
  // reads as an empty file, not as one that blocks.
  const bool waits = !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
  if (!held && !waits) {
    int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) return failed(errno);
  }
  const std::string notice = flag + ": nothing has arrived yet on " + single_quoted(path) + " (" +
                             sdk::file_kind(st.st_mode) + "); still waiting (Ctrl-C stops)";
  bool noticed = false;
  std::string value;
  char buffer[16384];
  while (value.size() <= buildkit::kMaxSecretSize) {
    if (waits) {
      if (auto ready = wait_readable(fd.get(), notice, options, noticed); !ready) {
        return Error(Errc::internal, flag + ": " + ready.error().message());
      }
    }
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN && waits) continue;  // polled again before the next read
    if (n < 0) return failed(errno);
    if (n == 0) break;
    noticed = true;  // something came: a pause in it is not worth a notice
    value.append(buffer, static_cast<std::size_t>(n));
  }
  return value;
}

std::string size_error(const std::string& flag, const std::string& what) {
  return flag + ": " + what + " is larger than " + std::to_string(buildkit::kMaxSecretSize / 1024) +
         " KiB, the most BuildKit accepts for a secret";
}

}  // namespace

Result<SecretSpec> parse_secret_flag(std::string_view value) {
  if (value.empty()) return invalid_secret(value, "missing id=ID");
  auto fields = sdk::split_csv_record(value, "--secret");
  if (!fields) return fields.error();
  SecretSpec spec;
  std::string type;
  for (const auto& field : *fields) {
    size_t eq = field.find('=');
    if (eq == std::string::npos) {
      return invalid_secret(value, "field " + single_quoted(field) + " must be a key=value pair");
    }
    std::string key = field.substr(0, eq);
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string val = field.substr(eq + 1);
    if (key == "type") {
      if (val != "file" && val != "env") {
        return invalid_secret(value,
                              "unsupported type " + single_quoted(val) + ", expected file or env");
      }
      type = val;
    } else if (key == "id") {
      spec.id = val;
    } else if (key == "src" || key == "source") {
      spec.file = val;
    } else if (key == "env") {
      spec.env = val;
    } else {
      return invalid_secret(value, "unexpected key " + single_quoted(key) +
                                       ", expected type, id, src (source) or env");
    }
  }
  if (spec.id.empty()) return invalid_secret(value, "missing id=ID");
  if (type == "env" && spec.env.empty()) spec.env = std::exchange(spec.file, {});
  return spec;
}

namespace {

// A secret's flag and where its value comes from.
struct SecretSource {
  std::string id;
  std::string flag;
  std::string env;   // a variable, or
  std::string file;  // a file
};

// Refuses, before anything is read, a secret that would come out empty: a
// second reader of a stream (a pipe, a FIFO, a socket: its first reader
// takes everything; a descriptor envd holds: read from where the earlier
// reader left off, whatever the file), or a reader of the standard input
// the Dockerfile came through. A device reads the same again (/dev/null, a
// terminal).
Status check_streams(const std::vector<SecretSource>& sources, const SecretReadOptions& options) {
  struct Stream {
    dev_t dev;
    ino_t ino;
    const std::string* flag;
  };
  std::vector<Stream> streams;
  struct stat stdin_st {};
  const bool stdin_known = ::fstat(STDIN_FILENO, &stdin_st) == 0;
  for (const auto& source : sources) {
    if (source.file.empty()) continue;
    const auto held = util::descriptor_named(source.file);
    struct stat st {};
    const bool known = held ? ::fstat(*held, &st) == 0 : ::stat(source.file.c_str(), &st) == 0;
    const bool stream = known && (held || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
    const bool is_stdin = held ? *held == STDIN_FILENO
                               : stream && stdin_known && st.st_dev == stdin_st.st_dev &&
                                     st.st_ino == stdin_st.st_ino;
    if (is_stdin && !options.stdin_read_by.empty()) {
      return Error(Errc::invalid_argument,
                   source.flag + ": standard input is read by " + options.stdin_read_by +
                       " (the Dockerfile), so this secret would be empty; give it in a file or "
                       "a variable");
    }
    if (!stream) continue;
    for (const auto& earlier : streams) {
      if (earlier.dev != st.st_dev || earlier.ino != st.st_ino) continue;
      return Error(Errc::invalid_argument, source.flag + ": " + single_quoted(source.file) +
                                               " is read to its end by " + *earlier.flag +
                                               "; this secret would be empty");
    }
    streams.push_back({st.st_dev, st.st_ino, &source.flag});
  }
  return {};
}

}  // namespace

Result<buildkit::SecretStore> load_secrets(const std::vector<std::string>& values,
                                           const SecretReadOptions& options) {
  std::vector<SecretSource> sources;
  for (const auto& value : values) {
    auto spec = parse_secret_flag(value);
    if (!spec) return spec.error();
    SecretSource source{spec->id, "--secret " + util::printable(value, 300), spec->env, spec->file};
    // Neither src nor env: the variable named like the id if it is set, else
    // the file named like it (BuildKit's rule).
    if (source.env.empty() && source.file.empty()) {
      if (std::getenv(spec->id.c_str()) != nullptr) {
        source.env = spec->id;
      } else {
        source.file = spec->id;
      }
    }
    sources.push_back(std::move(source));
  }
  if (auto st = check_streams(sources, options); !st) return st.error();
  buildkit::SecretStore store;
  for (const auto& [id, flag, env, file] : sources) {
    std::string secret;
    if (!env.empty()) {
      const char* set = std::getenv(env.c_str());
      if (set == nullptr) {
        return Error(Errc::not_found,
                     flag + ": environment variable " + util::printable(env, 200) + " is not set");
      }
      secret = set;
      if (secret.size() > buildkit::kMaxSecretSize) {
        return Error(Errc::invalid_argument,
                     size_error(flag, "environment variable " + util::printable(env, 200)));
      }
    } else {
      auto read = read_secret_file(file, flag, options);
      if (!read) return read.error();
      if (read->size() > buildkit::kMaxSecretSize) {
        return Error(Errc::invalid_argument, size_error(flag, single_quoted(file)));
      }
      secret = std::move(*read);
    }
    store[id] = std::move(secret);
  }
  return store;
}

SshSpec parse_ssh_flag(std::string_view value) {
  SshSpec spec;
  size_t eq = value.find('=');
  spec.id = std::string(value.substr(0, eq));
  if (spec.id.empty()) spec.id = "default";
  if (eq == std::string_view::npos) return spec;
  std::string_view rest = value.substr(eq + 1);
  while (true) {
    size_t comma = rest.find(',');
    spec.paths.emplace_back(rest.substr(0, comma));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  // "ID=" is the same as "ID": the agent at $SSH_AUTH_SOCK.
  if (spec.paths.size() == 1 && spec.paths.front().empty()) spec.paths.clear();
  return spec;
}

Result<buildkit::SshAgents> resolve_ssh_agents(const std::vector<std::string>& values) {
  buildkit::SshAgents agents;
  for (const auto& value : values) {
    SshSpec spec = parse_ssh_flag(value);
    std::string flag = "--ssh " + util::printable(value, 300);
    if (agents.count(spec.id) != 0) {
      return Error(Errc::invalid_argument,
                   flag + ": id " + single_quoted(spec.id) + " is given twice");
    }
    if (spec.paths.size() > 1) {
      return Error(Errc::invalid_argument,
                   flag + ": envd forwards one ssh-agent socket per id, not a list of paths");
    }
    std::string path;
    if (spec.paths.empty()) {
      const char* sock = std::getenv("SSH_AUTH_SOCK");
      if (sock == nullptr || *sock == '\0') {
        return Error(Errc::not_found, flag +
                                          ": SSH_AUTH_SOCK is not set; start an ssh-agent or "
                                          "give its socket as --ssh " +
                                          util::printable(spec.id, 200) + "=SOCKET");
      }
      path = sock;
    } else {
      path = spec.paths.front();
      if (path.empty()) return Error(Errc::invalid_argument, flag + ": empty socket path");
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      int err = errno;
      return Error(err == ENOENT ? Errc::not_found : Errc::permission,
                   flag + ": cannot use ssh agent socket " + single_quoted(path) + ": " +
                       std::strerror(err));
    }
    if (S_ISREG(st.st_mode)) {
      return Error(Errc::invalid_argument,
                   flag + ": " + single_quoted(path) +
                       " is a file, not an ssh-agent socket; envd forwards agents only: add the "
                       "key to one with ssh-add and pass --ssh " +
                       util::printable(spec.id, 200) + "=$SSH_AUTH_SOCK");
    }
    if (!S_ISSOCK(st.st_mode)) {
      return Error(Errc::invalid_argument,
                   flag + ": " + single_quoted(path) + " is not an ssh-agent socket");
    }
    if (auto connected = buildkit::check_agent_socket(path); !connected) {
      return connected.error().wrap(flag);
    }
    agents.emplace(spec.id, path);
  }
  return agents;
}

}  // namespace envd::cli
