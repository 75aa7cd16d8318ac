/* Runs inside a build step (RUN --mount=type=ssh): asks the forwarded
   ssh-agent at $SSH_AUTH_SOCK for its identities, as `ssh-add -l` does, and
   prints "keys N" and one "comment C" line per key. With an argument, sends
   that agent message type instead (e.g. 19, remove all identities) and prints
   the answer's type, so a test can see the forwarding refuse it. Static, so
   it runs in an image with nothing else. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static unsigned be32(const unsigned char* p) {
  return (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | p[3];
}

static int read_exactly(int fd, unsigned char* buf, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, buf, n);
    if (r <= 0) return -1;
    buf += r;
    n -= (size_t)r;
  }
  return 0;
}

int main(int argc, char** argv) {
  const char* path = getenv("SSH_AUTH_SOCK");
  if (path == NULL) {
    fprintf(stderr, "agent_list: SSH_AUTH_SOCK is not set\n");
    return 2;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
  if (fd < 0 || connect(fd, (struct sockaddr*)&addr, sizeof addr) != 0) {
    perror("agent_list: connect");
    return 3;
  }
  unsigned char type = argc > 1 ? (unsigned char)atoi(argv[1]) : 11; /* REQUEST_IDENTITIES */
  unsigned char request[5] = {0, 0, 0, 1, type};
  if (write(fd, request, sizeof request) != (ssize_t)sizeof request) return 4;
  unsigned char header[4];
  if (read_exactly(fd, header, sizeof header) != 0) return 5;
  unsigned length = be32(header);
  if (length == 0 || length > 1024 * 1024) return 6;
  unsigned char* answer = malloc(length);
  if (answer == NULL || read_exactly(fd, answer, length) != 0) return 7;
  if (argc > 1) {
    printf("answer %u\n", answer[0]);
    return 0;
  }
  if (answer[0] != 12 || length < 5) { /* IDENTITIES_ANSWER */
    printf("answer %u\n", answer[0]);
    return 8;
  }
  unsigned keys = be32(answer + 1);
  unsigned at = 5;
  printf("keys %u\n", keys);
  for (unsigned k = 0; k < keys && at + 4 <= length; ++k) {
    at += 4 + be32(answer + at); /* the key blob */
    if (at + 4 > length) break;
    unsigned comment = be32(answer + at);
    if (at + 4 + comment > length) break;
    printf("comment %.*s\n", (int)comment, (const char*)(answer + at + 4));
    at += 4 + comment;
  }
  return 0;
}
