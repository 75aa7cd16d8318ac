// A stand-in for envd-server's SSH gateway (containerssh in front of each
// environment's sshd), on 127.0.0.1, built on libssh's server API. It speaks
// real SSH to the real OpenSSH client `envd attach` runs, and is as strict as
// the gateway on what the client must get right: only public-key auth, only
// the user name `<login>/<env>` it was told, only the key the login uploaded.
// Where the real gateway proxies to the environment's container, this one
// starts /bin/sh on a pseudo-terminal (or pipes, without a pty request) with
// ENVD_GATEWAY_USER set to the user name, forwards window changes, and sends
// the shell's exit status.
//
//   envd_test_ssh_gateway --user alice/dev --authorized-key key.pub
//
// Prints the port it listens on, then serves sessions (one child process
// each) until killed.
#include <fcntl.h>
#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

struct Session {
  std::string expected_user;
  ssh_key authorized = nullptr;
  bool authenticated = false;
  ssh_channel channel = nullptr;
  bool want_pty = false;
  winsize size{};
  pid_t child = -1;
  int input_fd = -1;   // the shell's stdin (the pty master with a pty)
  int output_fd = -1;  // its stdout and stderr (the same master with a pty)
  bool started = false;
};

int auth_publickey(ssh_session /*session*/, const char* user, ssh_key pubkey, char signature_state,
                   void* userdata) {
  auto* s = static_cast<Session*>(userdata);
  if (s->expected_user != user) {
    std::fprintf(stderr, "ssh_gateway: refused user '%s'\n", user);
    return SSH_AUTH_DENIED;
  }
  if (ssh_key_cmp(pubkey, s->authorized, SSH_KEY_CMP_PUBLIC) != 0) {
    std::fprintf(stderr, "ssh_gateway: refused a key that was not uploaded\n");
    return SSH_AUTH_DENIED;
  }
  if (signature_state == SSH_PUBLICKEY_STATE_NONE) return SSH_AUTH_SUCCESS;  // a probe
  if (signature_state == SSH_PUBLICKEY_STATE_VALID) {
    s->authenticated = true;
    return SSH_AUTH_SUCCESS;
  }
  return SSH_AUTH_DENIED;
}

int pty_request(ssh_session /*session*/, ssh_channel /*channel*/, const char* /*term*/, int width,
                int height, int /*pxwidth*/, int /*pxheight*/, void* userdata) {
  auto* s = static_cast<Session*>(userdata);
  s->want_pty = true;
  s->size.ws_col = static_cast<unsigned short>(width);
  s->size.ws_row = static_cast<unsigned short>(height);
  return SSH_OK;
}

int window_change(ssh_session /*session*/, ssh_channel /*channel*/, int width, int height,
                  int /*pxwidth*/, int /*pxheight*/, void* userdata) {
  auto* s = static_cast<Session*>(userdata);
  s->size.ws_col = static_cast<unsigned short>(width);
  s->size.ws_row = static_cast<unsigned short>(height);
  if (s->want_pty && s->input_fd >= 0) ::ioctl(s->input_fd, TIOCSWINSZ, &s->size);
  return SSH_OK;
}

[[noreturn]] void exec_shell(const Session& s, const char* command) {
  ::setenv("ENVD_GATEWAY_USER", s.expected_user.c_str(), 1);
  ::setenv("PS1", "$ ", 1);
  if (command != nullptr) {
    ::execl("/bin/sh", "sh", "-c", command, static_cast<char*>(nullptr));
  } else {
    ::execl("/bin/sh", "sh", static_cast<char*>(nullptr));
  }
  ::_exit(127);
}

int start(Session* s, const char* command) {
  if (s->started) return SSH_ERROR;
  if (s->want_pty) {
    int master = -1;
    pid_t pid = ::forkpty(&master, nullptr, nullptr, &s->size);
    if (pid < 0) return SSH_ERROR;
    if (pid == 0) exec_shell(*s, command);
    s->child = pid;
    s->input_fd = master;
    s->output_fd = master;
  } else {
    int in[2];
    int out[2];
    if (::pipe(in) != 0 || ::pipe(out) != 0) return SSH_ERROR;
    pid_t pid = ::fork();
    if (pid < 0) return SSH_ERROR;
    if (pid == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::dup2(out[1], 2);
      ::close(in[1]);
      ::close(out[0]);
      exec_shell(*s, command);
    }
    ::close(in[0]);
    ::close(out[1]);
    s->child = pid;
    s->input_fd = in[1];
    s->output_fd = out[0];
  }
  s->started = true;
  return SSH_OK;
}

int shell_request(ssh_session /*session*/, ssh_channel /*channel*/, void* userdata) {
  return start(static_cast<Session*>(userdata), nullptr);
}

int exec_request(ssh_session /*session*/, ssh_channel /*channel*/, const char* command,
                 void* userdata) {
  return start(static_cast<Session*>(userdata), command);
}

int channel_data(ssh_session /*session*/, ssh_channel /*channel*/, void* data, uint32_t len,
                 int /*is_stderr*/, void* userdata) {
  auto* s = static_cast<Session*>(userdata);
  if (s->input_fd < 0) return static_cast<int>(len);
  const char* p = static_cast<const char*>(data);
  uint32_t left = len;
  while (left > 0) {
    ssize_t n = ::write(s->input_fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    p += n;
    left -= static_cast<uint32_t>(n);
  }
  return static_cast<int>(len);
}

void channel_eof(ssh_session /*session*/, ssh_channel /*channel*/, void* userdata) {
  auto* s = static_cast<Session*>(userdata);
  // Without a pty the shell's stdin ends with the client's.
  if (!s->want_pty && s->input_fd >= 0) {
    ::close(s->input_fd);
    s->input_fd = -1;
  }
}

ssh_channel_callbacks_struct g_channel_callbacks{};

ssh_channel channel_open(ssh_session session, void* userdata) {
  auto* s = static_cast<Session*>(userdata);
  if (s->channel != nullptr) return nullptr;
  s->channel = ssh_channel_new(session);
  g_channel_callbacks.userdata = s;
  g_channel_callbacks.channel_data_function = channel_data;
  g_channel_callbacks.channel_eof_function = channel_eof;
  g_channel_callbacks.channel_pty_request_function = pty_request;
  g_channel_callbacks.channel_pty_window_change_function = window_change;
  g_channel_callbacks.channel_shell_request_function = shell_request;
  g_channel_callbacks.channel_exec_request_function = exec_request;
  ssh_callbacks_init(&g_channel_callbacks);
  ssh_set_channel_callbacks(s->channel, &g_channel_callbacks);
  return s->channel;
}

// One client, in its own process.
int serve(ssh_session session, Session& s) {
  ssh_server_callbacks_struct server_callbacks{};
  server_callbacks.userdata = &s;
  server_callbacks.auth_pubkey_function = auth_publickey;
  server_callbacks.channel_open_request_session_function = channel_open;
  ssh_callbacks_init(&server_callbacks);
  ssh_set_server_callbacks(session, &server_callbacks);
  if (ssh_handle_key_exchange(session) != SSH_OK) {
    std::fprintf(stderr, "ssh_gateway: key exchange failed: %s\n", ssh_get_error(session));
    return 1;
  }
  ssh_set_auth_methods(session, SSH_AUTH_METHOD_PUBLICKEY);
  ssh_event event = ssh_event_new();
  ssh_event_add_session(event, session);
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!(s.authenticated && s.channel != nullptr && s.started)) {
    if (ssh_event_dopoll(event, 100) == SSH_ERROR) return 1;
    if (std::chrono::steady_clock::now() > give_up) return 1;
  }
  bool output_open = true;
  int status = -1;
  char buffer[4096];
  while (output_open || status < 0) {
    if (ssh_event_dopoll(event, 20) == SSH_ERROR) break;
    while (output_open) {
      pollfd p{s.output_fd, POLLIN, 0};
      if (::poll(&p, 1, 0) <= 0) break;
      ssize_t n = ::read(s.output_fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {  // EOF, or EIO from a pty whose shell has gone
        output_open = false;
        break;
      }
      ssh_channel_write(s.channel, buffer, static_cast<uint32_t>(n));
    }
    if (status < 0) {
      int raw = 0;
      if (::waitpid(s.child, &raw, WNOHANG) == s.child) {
        status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
      }
    }
    if (!ssh_channel_is_open(s.channel)) break;
  }
  if (status >= 0) ssh_channel_request_send_exit_status(s.channel, status);
  ssh_channel_send_eof(s.channel);
  ssh_channel_close(s.channel);
  for (int i = 0; i < 10; ++i) ssh_event_dopoll(event, 20);
  ssh_disconnect(session);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string user;
  std::string key_file;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--user") user = argv[i + 1];
    if (flag == "--authorized-key") key_file = argv[i + 1];
  }
  if (user.empty() || key_file.empty()) {
    std::fprintf(stderr, "usage: %s --user LOGIN/ENV --authorized-key FILE\n", argv[0]);
    return 2;
  }
  ::signal(SIGCHLD, SIG_DFL);
  ssh_init();
  Session proto;
  proto.expected_user = user;
  if (ssh_pki_import_pubkey_file(key_file.c_str(), &proto.authorized) != SSH_OK) {
    std::fprintf(stderr, "ssh_gateway: cannot read %s\n", key_file.c_str());
    return 2;
  }
  ssh_key host_key = nullptr;
  if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &host_key) != SSH_OK) return 2;
  ssh_bind bind = ssh_bind_new();
  unsigned int port = 0;
  ssh_bind_options_set(bind, SSH_BIND_OPTIONS_BINDADDR, "127.0.0.1");
  ssh_bind_options_set(bind, SSH_BIND_OPTIONS_BINDPORT, &port);
  ssh_bind_options_set(bind, SSH_BIND_OPTIONS_IMPORT_KEY, host_key);
  if (ssh_bind_listen(bind) != SSH_OK) {
    std::fprintf(stderr, "ssh_gateway: cannot listen: %s\n", ssh_get_error(bind));
    return 2;
  }
  sockaddr_in address{};
  socklen_t length = sizeof address;
  ::getsockname(ssh_bind_get_fd(bind), reinterpret_cast<sockaddr*>(&address), &length);
  std::printf("%d\n", ntohs(address.sin_port));
  std::fflush(stdout);
  for (;;) {
    ssh_session session = ssh_new();
    if (ssh_bind_accept(bind, session) != SSH_OK) {
      ssh_free(session);
      continue;
    }
    pid_t pid = ::fork();
    if (pid == 0) {
      ssh_bind_free(bind);
      Session s = proto;
      int rc = serve(session, s);
      ssh_free(session);
      ::_exit(rc);
    }
    ssh_free(session);
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
  }
}
