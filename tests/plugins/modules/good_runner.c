/* A working runner module. normalize_address, normalize_options and create
 * echo their input (create: the request), see test_echo. */
#include "module_util.h"

#ifndef TEST_TYPE
#define TEST_TYPE "test-runner"
#endif

#ifdef TEST_CHATTY
/* Prints from its verbs, as a debugging printf left in would: through
 * buffered stdio and with a raw write to descriptor 1. envd keeps both out
 * of its data (core/util/data_out.hpp). */
static void chatter(const char* verb) {
  printf("printf from %s\n", verb);
  char line[64];
  int n = snprintf(line, sizeof line, "write(1) from %s\n", verb);
  if (n > 0 && write(1, line, (size_t)n) < 0) return;
}
#else
static void chatter(const char* verb) { (void)verb; }
#endif

static envd_status list(const char* request_json, char** environments_json, char** error) {
  (void)request_json;
  (void)error;
  chatter("list");
  *environments_json = test_strdup("[{\"name\": \"dev\"}]");
  return ENVD_OK;
}

static envd_status inspect(const char* request_json, char** environment_json, char** error) {
  (void)request_json;
  (void)environment_json;
  *error = test_strdup("environment 'x' not found");
  return ENVD_ERR_NOT_FOUND;
}

static envd_status remove_environment(const char* request_json, char** error) {
  (void)request_json;
  (void)error;
  return ENVD_OK;
}

#if ENVD_ABI_MINOR >= 3
/* logs writes the request to out_fd and "err\n" to err_fd; attach copies
 * in_fd to out_fd until its end and exits with the number of bytes copied,
 * after calling make_raw and reporting the window size as "<rows>x<cols>\n". */
static envd_status logs(const char* request_json, const envd_stdio* stdio, char** error) {
  (void)error;
  chatter("logs");
  if (write(stdio->out_fd, request_json, strlen(request_json)) < 0 ||
      write(stdio->err_fd, "err\n", 4) < 0) {
    *error = test_strdup("cannot write");
    return ENVD_ERR_INTERNAL;
  }
  return ENVD_OK;
}

static envd_status attach(const char* request_json, const envd_stdio* stdio, int32_t* exit_code,
                          char** error) {
  (void)request_json;
  (void)error;
  stdio->make_raw(stdio->context);
  uint16_t rows = 0;
  uint16_t cols = 0;
  stdio->window_size(stdio->context, &rows, &cols);
  char line[32];
  int n = snprintf(line, sizeof line, "%ux%u\n", (unsigned)rows, (unsigned)cols);
  if (n > 0 && write(stdio->out_fd, line, (size_t)n) < 0) return ENVD_ERR_INTERNAL;
  int32_t copied = 0;
  char buffer[256];
  ssize_t got;
  while (stdio->in_fd >= 0 && (got = read(stdio->in_fd, buffer, sizeof buffer)) > 0) {
    if (write(stdio->out_fd, buffer, (size_t)got) < 0) return ENVD_ERR_INTERNAL;
    copied += (int32_t)got;
  }
  *exit_code = copied;
  return ENVD_OK;
}

#if ENVD_ABI_MINOR >= 6
/* check_create left NULL, as a module may (nothing is checked ahead). */
static const envd_runner_vtable table = {
    sizeof(envd_runner_vtable), test_echo, test_echo, test_echo, list, inspect,
    remove_environment,         logs,      attach,    NULL};
#else
static const envd_runner_vtable table = {
    sizeof(envd_runner_vtable), test_echo, test_echo, test_echo, list, inspect,
    remove_environment,         logs,      attach};
#endif
#else
static const envd_runner_vtable table = {
    sizeof(envd_runner_vtable), test_echo, test_echo, test_echo, list, inspect, remove_environment};
#endif

static const envd_plugin_descriptor descriptor = {ENVD_ABI_MAJOR,
                                                  ENVD_ABI_MINOR,
                                                  sizeof(envd_plugin_descriptor),
                                                  ENVD_KIND_RUNNER,
                                                  TEST_TYPE,
                                                  "0.9.0",
                                                  "runner for the dlopen tests",
                                                  ENVD_MATURITY_STABLE,
                                                  test_free_string,
                                                  NULL,
                                                  &table,
                                                  NULL,
                                                  NULL};

ENVD_PLUGIN_EXPORT const envd_plugin_descriptor* envd_plugin_entry(void) {
  test_log_entry(TEST_TYPE);
  return &descriptor;
}
