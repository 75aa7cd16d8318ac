#include "cli/build_secrets.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "util/csv.hpp"
#include "util/message_out.hpp"
#include "util/text.hpp"
#include "util/unique_fd.hpp"

namespace envd::cli {
namespace {

std::string single_quoted(std::string_view text) { return "'" + util::printable(text, 300) + "'"; }

Error invalid_secret(std::string_view value, const std::string& why) {
  return Error(Errc::invalid_argument, "invalid --secret " + single_quoted(value) + ": " + why);
}

// How long a FIFO may stay silent before envd says what it is waiting for.
constexpr int kFifoNoticeMs = 1000;

// Waits until `fd` (a FIFO) has data or its writer has gone. A FIFO no one
// has opened for writing yet reads as an empty file, so the wait comes before
// the read; after a second of silence the user is told what envd waits on
// (Ctrl-C still stops it: secrets are read before any signal is blocked).
Status wait_for_fifo(int fd, const std::string& path, const std::string& flag, bool& noticed) {
  pollfd p{fd, POLLIN, 0};
  while (true) {
    int ready = ::poll(&p, 1, noticed ? -1 : kFifoNoticeMs);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return Error(Errc::internal, flag + ": poll: " + std::strerror(errno));
    if (ready > 0) return {};
    noticed = true;
    util::write_message(stderr, flag + ": waiting for a writer on the FIFO " + single_quoted(path) +
                                    " (Ctrl-C stops)\n");
  }
}

// Reads at most kMaxSecretSize + 1 bytes: enough to tell a value that is too big.
Result<std::string> read_secret_file(const std::string& path, const std::string& flag) {
  auto failed = [&](int err) {
    Errc code = err == ENOENT                   ? Errc::not_found
                : err == EACCES || err == EPERM ? Errc::permission
                                                : Errc::invalid_argument;
    return Error(code, flag + ": cannot read " + single_quoted(path) + ": " + std::strerror(err));
  };
  // O_NONBLOCK: opening a FIFO would otherwise block, silently, until a writer
  // came. /dev/stdin and named pipes are legitimate sources, so a FIFO is read,
  // not refused.
  util::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) return failed(errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return failed(errno);
  bool fifo = S_ISFIFO(st.st_mode);
  if (!fifo) {
    // Files, terminals and devices are read as they always were: blocking.
    int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) return failed(errno);
  }
  bool noticed = false;
  std::string value;
  char buffer[16384];
  while (value.size() <= buildkit::kMaxSecretSize) {
    if (fifo) {
      if (auto waited = wait_for_fifo(fd.get(), path, flag, noticed); !waited) {
        return waited.error();
      }
    }
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return failed(errno);
    if (n == 0) break;
    noticed = true;  // a writer came: a pause in its data is not worth a notice
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
  auto fields = util::split_csv_record(value, "--secret");
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

Result<buildkit::SecretStore> load_secrets(const std::vector<std::string>& values) {
  buildkit::SecretStore store;
  for (const auto& value : values) {
    auto spec = parse_secret_flag(value);
    if (!spec) return spec.error();
    std::string flag = "--secret " + util::printable(value, 300);
    // Neither src nor env: the variable named like the id if it is set, else
    // the file named like it (BuildKit's rule).
    std::string env = spec->env;
    std::string file = spec->file;
    if (env.empty() && file.empty()) {
      if (std::getenv(spec->id.c_str()) != nullptr) {
        env = spec->id;
      } else {
        file = spec->id;
      }
    }
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
      auto read = read_secret_file(file, flag);
      if (!read) return read.error();
      if (read->size() > buildkit::kMaxSecretSize) {
        return Error(Errc::invalid_argument, size_error(flag, single_quoted(file)));
      }
      secret = std::move(*read);
    }
    store[spec->id] = std::move(secret);
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
