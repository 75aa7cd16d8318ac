/* A working builder module. Built several times with different TEST_TYPE and
 * TEST_DESCRIPTION: the good builder, a second builder of another type (two
 * modules in one process) and a duplicate of the first one's type. */
#include <sys/socket.h>

#include "module_util.h"

#ifndef TEST_TYPE
#define TEST_TYPE "test-builder"
#endif
#ifndef TEST_DESCRIPTION
#define TEST_DESCRIPTION "builder for the dlopen tests"
#endif

/* "<type>:<address>", so a test sees which module answered. */
static envd_status normalize_address(const char* address, char** normalized, char** error) {
  (void)error;
  *normalized = test_concat(TEST_TYPE ":", address);
  return ENVD_OK;
}

/* A socketpair whose far end has already sent a greeting and closed. */
static envd_status dial(const char* request_json, envd_transport* transport, char** error) {
  (void)request_json;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    *error = test_strdup("socketpair failed");
    return ENVD_ERR_INTERNAL;
  }
  static const char greeting[] = "hello from " TEST_TYPE "\n";
  if (write(sv[1], greeting, sizeof greeting - 1) < 0) {
    /* the test will notice the missing greeting */
  }
  close(sv[1]);
  transport->kind = ENVD_TRANSPORT_FD;
  transport->fd = sv[0];
  transport->description = test_strdup(TEST_TYPE "://socketpair");
  return ENVD_OK;
}

static envd_status bootstrap(const char* request_json, char** result_json, char** error) {
  (void)request_json;
  (void)error;
  *result_json = test_strdup("{\"bootstrapped\": \"" TEST_TYPE "\"}");
  return ENVD_OK;
}

static envd_status stop(const char* request_json, char** error) {
  (void)request_json;
  (void)error;
  return ENVD_OK;
}

static envd_status remove_daemon(const char* request_json, char** error) {
  (void)request_json;
  *error = test_strdup("nothing to remove");
  return ENVD_ERR_NOT_FOUND;
}

static const envd_builder_vtable table = {sizeof(envd_builder_vtable),
                                          normalize_address,
                                          test_echo, /* normalize_options */
                                          dial,
                                          test_echo, /* status: echoes the request */
                                          bootstrap,
                                          stop,
                                          remove_daemon};

/* TEST_ABI_1_0 builds the module as a 1.0 module would be: older minor, a
 * descriptor that ends before file_options. */
#if defined(TEST_ABI_1_0)
#define MODULE_MINOR 0
#define MODULE_DESCRIPTOR_SIZE \
  (offsetof(envd_plugin_descriptor, runner) + sizeof(const envd_runner_vtable*))
#define MODULE_FILE_OPTIONS NULL
#else
#define MODULE_MINOR ENVD_ABI_MINOR
#define MODULE_DESCRIPTOR_SIZE sizeof(envd_plugin_descriptor)
static const char* const file_options[] = {"tls-ca", "config", NULL};
#define MODULE_FILE_OPTIONS file_options
#endif

static const envd_plugin_descriptor descriptor = {
    ENVD_ABI_MAJOR, MODULE_MINOR,       MODULE_DESCRIPTOR_SIZE,     ENVD_KIND_BUILDER, TEST_TYPE,
    "1.2.3",        TEST_DESCRIPTION,   ENVD_MATURITY_EXPERIMENTAL, test_free_string,  &table,
    NULL,           MODULE_FILE_OPTIONS};

ENVD_PLUGIN_EXPORT const envd_plugin_descriptor* envd_plugin_entry(void) {
  test_log_entry(TEST_TYPE);
  return &descriptor;
}
