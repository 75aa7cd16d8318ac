// SSH access to an envd-server environment: the OpenSSH command line envd
// attaches with, and the `Host <env>.envd` block it keeps in ~/.ssh/config so
// editors' remote-SSH connect the same way. The server's SSH gateway (port
// 2222 unless the context's ssh-port option says otherwise) routes the user
// name `<login>/<env>` to the environment, with the key `envd login` uploaded.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "envd/result.hpp"

namespace envd::plugins::envd_server {

struct SshTarget {
  std::string host;  // the runner address's host
  int port = 2222;
  std::string login;  // the stored login name
  std::string environment;
  std::string identity_file;  // the private key `envd login` uploaded the public half of
  std::string known_hosts;    // the context's own known_hosts file
  // ssh's ConnectTimeout (the connection and the server's greeting), in
  // whole seconds; 0 leaves ssh's own (none). Not in the ~/.ssh/config block.
  int connect_timeout_seconds = 0;
};

// `ssh` and its arguments: every value is passed as its own word after the
// option that takes it, and the host after "--", so nothing in a name can
// become an option. `command` (may be empty: the login shell) is run
// remotely; `terminal` asks for a remote TTY.
std::vector<std::string> ssh_command(const SshTarget& target, bool terminal,
                                     const std::vector<std::string>& command);

// The block for `Host <env>.envd`, between marker lines that name it, so a
// later attach replaces it rather than adding another.
std::string ssh_config_block(const SshTarget& target);

// `config` (the text of an ssh config file, maybe empty) with the block for
// `environment` replaced by `block`, or `block` appended; nullopt when the
// block's start line has no end line (a hand edit), so nothing is guessed.
std::optional<std::string> with_block(const std::string& config, const std::string& environment,
                                      const std::string& block);

// Writes the block into `path` (normally ~/.ssh/config): read, replace, write
// a temporary file beside it and rename it over the original, keeping the
// original's mode (0600 for a new file, in a 0700 directory made if missing).
// A file that is a symlink is followed to its target, as ssh reads it.
Status update_ssh_config(const std::string& path, const SshTarget& target);

}  // namespace envd::plugins::envd_server
