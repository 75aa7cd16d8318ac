/* A working runner module. normalize_address, normalize_options and create
 * echo their input (create: the request), see test_echo. */
#include "module_util.h"

static envd_status list(const char* request_json, char** environments_json, char** error) {
  (void)request_json;
  (void)error;
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

static const envd_runner_vtable table = {
    sizeof(envd_runner_vtable), test_echo, test_echo, test_echo, list, inspect, remove_environment};

static const envd_plugin_descriptor descriptor = {ENVD_ABI_MAJOR,
                                                  ENVD_ABI_MINOR,
                                                  sizeof(envd_plugin_descriptor),
                                                  ENVD_KIND_RUNNER,
                                                  "test-runner",
                                                  "0.9.0",
                                                  "runner for the dlopen tests",
                                                  ENVD_MATURITY_STABLE,
                                                  test_free_string,
                                                  NULL,
                                                  &table,
                                                  NULL,
                                                  NULL};

ENVD_PLUGIN_EXPORT const envd_plugin_descriptor* envd_plugin_entry(void) {
  test_log_entry("test-runner");
  return &descriptor;
}
