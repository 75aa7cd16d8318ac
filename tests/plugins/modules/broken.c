/* Deliberately broken modules, one per BROKEN_* definition (see
 * tests/plugins/CMakeLists.txt). Apart from the one flaw each is a valid
 * builder, so the refusal reason names exactly that flaw. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "module_util.h"

static TEST_UNUSED envd_status in_out(const char* in, char** out, char** error) {
  (void)in;
  (void)out;
  (void)error;
  return ENVD_ERR_UNSUPPORTED;
}

static TEST_UNUSED envd_status in_only(const char* in, char** error) {
  (void)in;
  (void)error;
  return ENVD_ERR_UNSUPPORTED;
}

static TEST_UNUSED envd_status dial(const char* in, envd_transport* transport, char** error) {
  (void)in;
  (void)transport;
  (void)error;
  return ENVD_ERR_UNSUPPORTED;
}

/* The one flaw of each variant, as the values that differ from a valid module. */
#if defined(BROKEN_MISSING_FUNCTION)
#define DIAL_FN NULL
#else
#define DIAL_FN dial
#endif
#if defined(BROKEN_ABI_MAJOR)
#define MODULE_ABI_MAJOR (ENVD_ABI_MAJOR + 1)
#else
#define MODULE_ABI_MAJOR ENVD_ABI_MAJOR
#endif
#if defined(BROKEN_ABI_MINOR)
#define MODULE_ABI_MINOR (ENVD_ABI_MINOR + 1)
#else
#define MODULE_ABI_MINOR ENVD_ABI_MINOR
#endif
#if defined(BROKEN_BAD_TYPE)
#define MODULE_TYPE "Bad_Type"
#else
#define MODULE_TYPE "broken"
#endif
#if defined(BROKEN_BAD_FILE_OPTION)
static const char* const file_options[] = {"tls-ca", "TLS Key", NULL};
#define FILE_OPTIONS file_options
#else
#define FILE_OPTIONS NULL
#endif
#if defined(BROKEN_WRONG_KIND) /* says builder, carries a runner table */
#define BUILDER_TABLE NULL
#define RUNNER_TABLE &runner_table
#else
#define BUILDER_TABLE &builder_table
#define RUNNER_TABLE NULL
#endif

static TEST_UNUSED const envd_builder_vtable builder_table = {
    sizeof(envd_builder_vtable), in_out, in_out, DIAL_FN, in_out, in_out, in_only, in_only, NULL};

static TEST_UNUSED const envd_runner_vtable runner_table = {
    sizeof(envd_runner_vtable), in_out, in_out, in_out, in_out, in_out, in_only, NULL, NULL, NULL};

static TEST_UNUSED const envd_plugin_descriptor descriptor = {MODULE_ABI_MAJOR,
                                                              MODULE_ABI_MINOR,
                                                              sizeof(envd_plugin_descriptor),
                                                              ENVD_KIND_BUILDER,
                                                              MODULE_TYPE,
                                                              "0.0.1",
                                                              "a deliberately broken module",
                                                              ENVD_MATURITY_EXPERIMENTAL,
                                                              test_free_string,
                                                              BUILDER_TABLE,
                                                              RUNNER_TABLE,
                                                              FILE_OPTIONS,
                                                              NULL};

#if defined(BROKEN_CTOR_CRASH)
/* Work at dlopen time, which the ABI forbids: here, a crash. */
__attribute__((constructor)) static void crash_on_load(void) {
  /* A volatile store through NULL survives any optimisation level. */
  volatile int* volatile p = NULL;
  *p = 1;
}
#endif

#if defined(BROKEN_CTOR_PRINT)
/* Output at dlopen time: loaded for use, it would land in envd's stdout,
 * the middle of a --format json answer. Left in stdio's buffer on purpose. */
__attribute__((constructor)) static void print_on_load(void) { fputs("GARBAGE\n", stdout); }
#endif

#if defined(BROKEN_CTOR_FLOOD)
/* A hostile module that finds the scan's answer pipe (a descriptor beyond
 * stdio) and floods it as it loads: the scan must stop reading at a bound. */
__attribute__((constructor)) static void flood_on_load(void) {
  static char chunk[65536];
  memset(chunk, '{', sizeof chunk);
  for (int fd = 3; fd < 64; ++fd) {
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode)) continue;
    for (int i = 0; i < 64; ++i) {
      if (write(fd, chunk, sizeof chunk) < 0) break;
    }
  }
}
#endif

#if defined(BROKEN_UNDEFINED_SYMBOL)
/* Defined nowhere: with RTLD_NOW the module fails to load. */
extern void envd_test_no_such_function(void);
#endif

#if defined(BROKEN_NO_ENTRY)
ENVD_PLUGIN_EXPORT const envd_plugin_descriptor* envd_plugin_entry_misspelled(void) {
  return &descriptor;
}
#else
ENVD_PLUGIN_EXPORT const envd_plugin_descriptor* envd_plugin_entry(void) {
#if defined(BROKEN_NULL_ENTRY)
  return NULL;
#elif defined(BROKEN_SEGV_ENTRY)
  volatile int* volatile p = NULL;
  *p = 1;
#elif defined(BROKEN_HANG_ENTRY)
  for (;;) pause();
#elif defined(BROKEN_EXIT_ENTRY)
  exit(3);
#elif defined(BROKEN_UNDEFINED_SYMBOL)
  envd_test_no_such_function();
#endif
  return &descriptor;
}
#endif
