// `envd build --secret` and `--ssh`: the flag grammar, as `docker buildx build`
// and buildctl read it, and what the session needs from them (the secrets'
// values, the agents' sockets). Everything here runs before the build starts,
// so a bad value, a missing file or variable, or a dead agent fails the
// command before any daemon is contacted.
//
//   --secret id=ID[,src=FILE]      the file's contents (also source=FILE, type=file)
//   --secret id=ID,env=VAR         the variable's value (also type=env,src=VAR)
//   --secret id=ID                 $ID if that variable is set, else the file ID
//   --ssh default                  the agent at $SSH_AUTH_SOCK, as id "default"
//   --ssh ID[=SOCKET]              the agent at SOCKET (default $SSH_AUTH_SOCK)
//
// `--secret` is one CSV record of key=value fields; keys are case-insensitive.
// A later --secret with the same id replaces an earlier one. A --ssh with an
// empty id means "default"; an id given twice is an error. Paths are relative
// to the working directory.
//
// Secrets: a value larger than buildkit::kMaxSecretSize is refused. The value
// is never put into a message.
//
// SSH: only ssh-agent sockets are forwarded. buildx also accepts private key
// files (loading them into an agent of its own); envd refuses them with a
// message saying to add the key to an ssh-agent instead.
//
// Errors: Errc::invalid_argument for the grammar, key files and paths that are
// not sockets, Errc::not_found for missing files, variables and sockets,
// Errc::unavailable for an agent that does not accept a connection; every
// message is one line naming the flag, the value and the file or variable.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "buildkit/secrets.hpp"
#include "buildkit/ssh_forward.hpp"
#include "envd/result.hpp"

namespace envd::cli {

struct SecretSpec {
  std::string id;
  std::string file;  // src= (source=); empty when not given
  std::string env;   // env= (or src= with type=env); empty when not given
};

// Parses one --secret value. Reads nothing.
Result<SecretSpec> parse_secret_flag(std::string_view value);

// How a secret's file is read. A FIFO, socket or terminal (`src=/dev/stdin`)
// may keep envd waiting: when nothing has come after `notice_after`, `notice`
// is called once with a line saying what envd waits on.
struct SecretReadOptions {
  std::function<void(const std::string&)> notice;
  std::chrono::milliseconds notice_after{1000};
  // What has read standard input to its end already ("-f -"), if anything:
  // a secret from it is refused then, as it would be empty.
  std::string stdin_read_by;
};

// Parses every --secret value and reads each secret's value from its file or
// variable. /dev/stdin, /dev/fd/N and /proc/self/fd/N are read through the
// descriptor envd already holds, not opened anew. A stream (a pipe, a FIFO,
// a terminal) is read by one secret only, and standard input by none when
// `options.stdin_read_by` says it is taken: the other would be empty.
Result<buildkit::SecretStore> load_secrets(const std::vector<std::string>& values,
                                           const SecretReadOptions& options = {});

struct SshSpec {
  std::string id;                  // "default" when the value names none
  std::vector<std::string> paths;  // as given; empty means $SSH_AUTH_SOCK
};

// Parses one --ssh value: ID[=PATH[,PATH...]]. Reads nothing.
SshSpec parse_ssh_flag(std::string_view value);

// Parses every --ssh value, resolves $SSH_AUTH_SOCK where no socket is given
// and checks that each agent accepts a connection.
Result<buildkit::SshAgents> resolve_ssh_agents(const std::vector<std::string>& values);

}  // namespace envd::cli
