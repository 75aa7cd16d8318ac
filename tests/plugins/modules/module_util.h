/* Helpers shared by the test modules: plain C against <envd/plugin_abi.h> only,
 * as a third-party module built without the SDK would be. */
#ifndef ENVD_TEST_MODULE_UTIL_H
#define ENVD_TEST_MODULE_UTIL_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envd/plugin_abi.h"

#define TEST_UNUSED __attribute__((unused))

/* A malloc'd copy, released by test_free_string (the descriptor's free_string). */
static TEST_UNUSED char* test_concat(const char* a, const char* b) {
  size_t na = strlen(a);
  size_t nb = strlen(b);
  char* s = malloc(na + nb + 1);
  if (s == NULL) return NULL;
  memcpy(s, a, na);
  memcpy(s + na, b, nb + 1);
  return s;
}

static TEST_UNUSED char* test_strdup(const char* s) { return test_concat(s, ""); }

static TEST_UNUSED void test_free_string(char* s) { free(s); }

/* A verb that answers with its input: normalize_options keeps the options as
 * given, and verbs returning a JSON object echo the request, so a test sees
 * exactly what crossed the boundary. */
static TEST_UNUSED envd_status test_echo(const char* in, char** out, char** error) {
  (void)error;
  *out = test_strdup(in);
  return ENVD_OK;
}

/* Appends "<type> <pid>" to the file named by $ENVD_TEST_ENTRY_LOG, so a test
 * can count how often (and in which process) the entry function ran. */
static TEST_UNUSED void test_log_entry(const char* type) {
  const char* log = getenv("ENVD_TEST_ENTRY_LOG");
  if (log == NULL || log[0] == '\0') return;
  int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  char line[128];
  int n = snprintf(line, sizeof line, "%s %ld\n", type, (long)getpid());
  if (n > 0 && write(fd, line, (size_t)n) < 0) {
    /* nothing to do: the test will see the line missing */
  }
  close(fd);
}

#endif
