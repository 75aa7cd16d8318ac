/* A working builder module. Built several times with different TEST_TYPE and
 * TEST_DESCRIPTION: the good builder, a second builder of another type (two
 * modules in one process) and a duplicate of the first one's type. */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "module_util.h"

#ifndef TEST_TYPE
#define TEST_TYPE "test-builder"
#endif
#ifndef TEST_DESCRIPTION
#define TEST_DESCRIPTION "builder for the dlopen tests"
#endif

#if ENVD_ABI_MINOR >= 2
/* ABI 1.2: the host's services. bootstrap reports progress through them and
 * answers whether the host cancelled, so the dlopen test sees both cross. */
static const envd_host_api* host_api = NULL;
static void set_host(const envd_host_api* host) { host_api = host; }

/* Calls the host until the process ends: the table is promised for the life
 * of the process, also after main() returns. */
static void* chatter(void* unused) {
  (void)unused;
  for (;;) {
    host_api->log(host_api->context, ENVD_LOG_DEBUG, "chatter");
    (void)host_api->cancelled(host_api->context);
  }
  return NULL;
}
#endif

/* "<type>:<address>", so a test sees which module answered. Address
 * "chatter" leaves a thread calling the host behind; "crash", "exit" and
 * "exit0" end the process as a broken module would. */
static envd_status normalize_address(const char* address, char** normalized, char** error) {
  (void)error;
  if (strcmp(address, "crash") == 0) raise(SIGSEGV);
  if (strcmp(address, "exit") == 0) exit(3);
  if (strcmp(address, "exit0") == 0) exit(0);
#if ENVD_ABI_MINOR >= 2
  pthread_t thread;
  if (strcmp(address, "chatter") == 0 && host_api != NULL &&
      pthread_create(&thread, NULL, chatter, NULL) == 0) {
    pthread_detach(thread);
  }
#endif
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

/* Stopping the daemon at address "hang" never returns and ignores the
 * host's cancellation: a driver envd must not stay deaf behind. */
static envd_status stop(const char* request_json, char** error) {
  (void)error;
  if (strstr(request_json, "\"address\":\"" TEST_TYPE ":hang\"") != NULL) {
    for (;;) pause();
  }
  return ENVD_OK;
}

static envd_status remove_daemon(const char* request_json, char** error) {
  (void)request_json;
  *error = test_strdup("nothing to remove");
  return ENVD_ERR_NOT_FOUND;
}

/* The module is built against the header of the ABI it targets: the current
 * one, or the 1.0 and 1.1 headers kept as they were (modules/abi-1.0,
 * modules/abi-1.1), so its descriptor has exactly that version's layout. */
#if ENVD_ABI_MINOR >= 1
static const char* const file_options[] = {"tls-ca", "config", NULL};
#endif

static envd_status bootstrap_with_host(const char* request_json, char** result_json, char** error) {
#if ENVD_ABI_MINOR >= 2
  if (host_api != NULL) {
    host_api->progress(host_api->context, "bootstrapping " TEST_TYPE);
    if (host_api->cancelled(host_api->context)) {
      *error = test_strdup("bootstrap of " TEST_TYPE " cancelled");
      return ENVD_ERR_CANCELLED;
    }
  }
#endif
  return bootstrap(request_json, result_json, error);
}

/* $ENVD_TEST_BUILDER_STATUS when set (a test's driver facts), else the
 * request echoed with "state": "unknown"; after $ENVD_TEST_BUILDER_STATUS_DELAY_MS milliseconds
 * when set (a driver whose look is slow). */
static envd_status status(const char* request_json, char** result_json, char** error) {
  const char* delay = getenv("ENVD_TEST_BUILDER_STATUS_DELAY_MS");
  if (delay != NULL && delay[0] != '\0') {
    struct timespec pause = {0, 0};
    long ms = strtol(delay, NULL, 10);
    pause.tv_sec = ms / 1000;
    pause.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&pause, NULL);
  }
  const char* scripted = getenv("ENVD_TEST_BUILDER_STATUS");
  if (scripted != NULL && scripted[0] != '\0') {
    *result_json = test_strdup(scripted);
    return ENVD_OK;
  }
  /* The request, with the state every status answer carries. */
  (void)error;
  *result_json = test_concat("{\"state\":\"unknown\",", request_json + 1);
  return ENVD_OK;
}

static const envd_builder_vtable table = {
    sizeof(envd_builder_vtable),
    normalize_address,
    test_echo, /* normalize_options */
    dial,
    status,
    bootstrap_with_host,
    stop,
    remove_daemon,
#if ENVD_ABI_MINOR >= 4
    NULL /* dial_session: sessions are tunnelled */
#endif
};

static const envd_plugin_descriptor descriptor = {ENVD_ABI_MAJOR,
                                                  ENVD_ABI_MINOR,
                                                  sizeof(envd_plugin_descriptor),
                                                  ENVD_KIND_BUILDER,
                                                  TEST_TYPE,
                                                  "1.2.3",
                                                  TEST_DESCRIPTION,
                                                  ENVD_MATURITY_EXPERIMENTAL,
                                                  test_free_string,
                                                  &table,
                                                  NULL
#if ENVD_ABI_MINOR >= 1
                                                  ,
                                                  file_options
#endif
#if ENVD_ABI_MINOR >= 2
                                                  ,
                                                  set_host
#endif
};

ENVD_PLUGIN_EXPORT const envd_plugin_descriptor* envd_plugin_entry(void) {
  test_log_entry(TEST_TYPE);
  return &descriptor;
}
