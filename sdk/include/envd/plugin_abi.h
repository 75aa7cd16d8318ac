/*
 * envd plugin ABI: the one contract between the envd core and a driver module.
 *
 * A driver module is a shared library that exports exactly one C symbol,
 * ENVD_PLUGIN_ENTRY_SYMBOL, a function returning a pointer to a static
 * envd_plugin_descriptor. Everything the core learns about the module, and every
 * call it makes into it, goes through that descriptor.
 *
 * Rules that keep this boundary stable (see docs/design/plugin-abi.md):
 *   - Only plain C types cross: integers, enums, NUL-terminated UTF-8 strings and
 *     the structs below. Structured data crosses as JSON text.
 *   - Structs only ever grow at the end. Each starts with a size field so the core
 *     can read an older, shorter struct; a field the module's struct_size does not
 *     cover is treated as absent (NULL / 0).
 *   - The core accepts a module whose abi_major equals ENVD_ABI_MAJOR and whose
 *     abi_minor is <= ENVD_ABI_MINOR. Anything else is refused before any function
 *     of the module is called.
 *   - No C++ exception ever crosses. A function reports failure by returning a
 *     non-zero envd_status and, when `error` is not NULL, storing a message there.
 *   - Every string or buffer a module returns through an out-parameter is owned by
 *     the caller from then on and must be released with the descriptor's
 *     free_string. The core sets every out-parameter to NULL before a call and
 *     frees whatever non-NULL string it finds afterwards, on success and on
 *     failure alike (dial() is the exception: see envd_transport). Strings inside
 *     the descriptor itself are static and owned by the module.
 *   - Modules are never unloaded by the core, and must not do work in static
 *     constructors: the entry function may be called by a scanning process that
 *     only wants the descriptor.
 *   - Unless a function says otherwise, the core may call it from any thread, but
 *     never concurrently for the same request.
 *
 * Since ABI 1.2 the core also hands each module, once, a table of host
 * services (envd_host_api: progress, log, cancellation). Nothing else crosses:
 * no C++ type, no exception, no symbol of the core or of the SDK's C++ layer
 * (which is compiled into each module, with hidden visibility).
 *
 * Plugin authors normally do not use this header directly: <envd/plugin.hpp>
 * gives them C++ base classes and the ENVD_DECLARE_*_PLUGIN macros that generate
 * the entry function and translate exceptions into status codes.
 */
#ifndef ENVD_PLUGIN_ABI_H
#define ENVD_PLUGIN_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* C names, lower_case by design. NOLINTBEGIN(readability-identifier-naming) */

/* The ABI version this header describes. Bump the minor when appending fields or
 * functions; bump the major (and reset the minor) for anything else. A unit test
 * pins a hash of this header to these numbers, so an edit without a bump fails. */
#define ENVD_ABI_MAJOR 1
#define ENVD_ABI_MINOR 7

/* The name of the exported entry function, type envd_plugin_entry_fn. */
#define ENVD_PLUGIN_ENTRY_SYMBOL "envd_plugin_entry"

/* Marks the entry function as the module's only exported symbol. */
#if defined(__GNUC__)
#define ENVD_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define ENVD_PLUGIN_EXPORT
#endif

/* Result of every fallible call. Values are stable; new ones may be appended. */
typedef enum envd_status {
  ENVD_OK = 0,
  ENVD_ERR_INVALID_ARGUMENT = 1, /* the input (address, option, spec) is malformed */
  ENVD_ERR_NOT_FOUND = 2,        /* the named object does not exist */
  ENVD_ERR_ALREADY_EXISTS = 3,   /* the named object exists already */
  ENVD_ERR_UNAVAILABLE = 4,      /* the daemon or endpoint cannot be reached */
  ENVD_ERR_UNSUPPORTED = 5,      /* this driver does not offer that verb (yet) */
  ENVD_ERR_TIMEOUT = 6,          /* a deadline passed */
  ENVD_ERR_PERMISSION = 7,       /* access was denied */
  ENVD_ERR_CANCELLED = 8,        /* the operation was interrupted */
  ENVD_ERR_INTERNAL = 9,         /* anything else, including a caught exception */
  /* Since ABI 1.3. Not a status: it makes the type as wide as int32_t in C
   * and C++ alike, so whatever value a module returns is well-defined for the
   * core to read (and report as unknown). */
  ENVD_STATUS_RANGE_ = 0x7fffffff
} envd_status;

typedef enum envd_plugin_kind {
  ENVD_KIND_BUILDER = 1, /* reaches a BuildKit daemon: descriptor.builder is set */
  ENVD_KIND_RUNNER = 2   /* runs environments: descriptor.runner is set */
} envd_plugin_kind;

typedef enum envd_maturity {
  ENVD_MATURITY_STABLE = 1,
  ENVD_MATURITY_EXPERIMENTAL = 2
} envd_maturity;

/*
 * The request every driver verb receives, as JSON text (UTF-8, one object):
 *   {
 *     "context":    "<context name>",
 *     "address":    "<normalised address, as stored; may be empty for runners>",
 *     "options":    { "<key>": "<value>", ... },  driver options stored with the context
 *     "data_dir":   "<absolute path of the context's private directory, 0700>",
 *     "timeout_ms": <deadline for the whole call, integer milliseconds>,
 *     "args":       { ... }                        verb-specific arguments
 *   }
 * Unknown keys must be ignored. The core owns the string; it is valid for the
 * duration of the call only.
 */

/* How the core reaches a BuildKit daemon after dial(). */
typedef enum envd_transport_kind {
  /* `fd` is a connected stream socket; the core speaks HTTP/2 gRPC over it. */
  ENVD_TRANSPORT_FD = 1,
  /* `target` is a gRPC target (e.g. "ipv4:10.0.0.5:8888", "unix:/run/b.sock");
   * the core opens the channel itself, with TLS when the tls_* fields say so. */
  ENVD_TRANSPORT_GRPC_TARGET = 2
} envd_transport_kind;

/* Since ABI 1.5. Bits of envd_transport.flags. */
typedef enum envd_transport_flag {
  /* Nothing of the module runs for this connection once dial() returned (no
   * relay, no helper process: the core dialled the target itself), and the
   * module has nothing to do at the process's end. The core may then end the
   * process when the command is done without closing the connection or
   * running the module's static destructors (tcp and unix set it, as do
   * moby-worker and docker-container when their socket is the daemon's
   * own). A driver that relays its socket, or stands a helper behind its
   * target (a port forward), must not. The same holds for dial_session's
   * connection of the same build. */
  ENVD_TRANSPORT_SELF_CONTAINED = 1
} envd_transport_flag;

/*
 * Filled in by a builder's dial(). The core zero-initialises it, sets fd to -1
 * and sets struct_size before the call. On success, ownership of `fd` and of every
 * non-NULL string passes to the core (strings are freed with free_string).
 * On failure the module must leave nothing the core has to release.
 */
typedef struct envd_transport {
  uint32_t struct_size;
  int32_t kind;          /* envd_transport_kind */
  int32_t fd;            /* ENVD_TRANSPORT_FD: the connected socket, else -1 */
  char* target;          /* ENVD_TRANSPORT_GRPC_TARGET: the target, else NULL */
  char* tls_ca_pem;      /* PEM CA bundle; NULL means no TLS */
  char* tls_cert_pem;    /* PEM client certificate; NULL unless mutual TLS */
  char* tls_key_pem;     /* PEM client key; set iff tls_cert_pem is */
  char* tls_server_name; /* name to verify; NULL means the target's host */
  char* description;     /* how to name the daemon in messages, e.g. "tcp://h:p" */
  uint32_t flags;        /* since ABI 1.5: envd_transport_flag bits, else 0 */
} envd_transport;

/*
 * A builder driver. Every function but dial_session is required (a module
 * that cannot do a verb returns ENVD_ERR_UNSUPPORTED with a message saying
 * so). `error`, when not NULL, receives a one-line message (lowercase, no
 * trailing period) on failure.
 */
typedef struct envd_builder_vtable {
  uint32_t struct_size;

  /* Validates the address a user typed and returns its stored form (for
   * example "tcp://h:8888" -> "h:8888"). An empty input asks for the driver's
   * default address; a driver without one fails with ENVD_ERR_INVALID_ARGUMENT
   * and says which form it expects. Pure: no I/O, no daemon contact. */
  envd_status (*normalize_address)(const char* address, char** normalized, char** error);

  /* Validates driver options given as a JSON object of strings and returns the
   * stored form (same shape). Unknown keys are an ENVD_ERR_INVALID_ARGUMENT. */
  envd_status (*normalize_options)(const char* options_json, char** normalized_json, char** error);

  /* Connects to the daemon (bootstrapping it when the driver manages one) and
   * fills *transport. `request_json` is the request described above. */
  envd_status (*dial)(const char* request_json, envd_transport* transport, char** error);

  /* Reports the daemon's lifecycle state as a JSON object, at least
   * {"state": "running|stopped|missing|unknown", "detail": "..."}. Must return
   * within the request's timeout_ms. */
  envd_status (*status)(const char* request_json, char** status_json, char** error);

  /* Creates and starts the daemon if the driver manages one. args may carry
   * {"recreate": true}. Returns a JSON object describing what was done. */
  envd_status (*bootstrap)(const char* request_json, char** result_json, char** error);

  /* Stops the managed daemon, keeping its state. */
  envd_status (*stop)(const char* request_json, char** error);

  /* Removes the managed daemon; args may carry {"keep_cache": true}. */
  envd_status (*remove)(const char* request_json, char** error);

  /* Since ABI 1.4, and optional: NULL (or beyond the module's struct_size) or
   * ENVD_ERR_UNSUPPORTED means the daemon has no such route, and the core
   * tunnels the session through Control.Session on dial()'s connection.
   *
   * Opens a connection of its own for one build's session: the daemon is the
   * HTTP/2 client on it and calls the session's services (file sync, auth,
   * secrets, health), which the core serves. The Docker Engine's
   * POST /session, upgraded to h2c, is one. args carries
   *   {"session": {"id": "<uuid>", "name": "<name>", "shared_key": "<key>",
   *                "methods": ["/moby.filesync.v1.FileSync/DiffCopy", ...]}}
   * (the x-docker-expose-session-* values). The core sets *fd to -1 before
   * the call. On success *fd is a connected stream socket whose first byte
   * to read is the first the daemon sent after the upgrade, and the core owns
   * it; on failure the module leaves *fd at -1 and closes what it opened.
   * Called once per build, while dial()'s connection is in use. */
  envd_status (*dial_session)(const char* request_json, int32_t* fd, char** error);
} envd_builder_vtable;

/*
 * Since ABI 1.3. The user's input and output, lent to a runner's logs and
 * attach for the call only. The descriptors stay owned by the core (a module
 * must not close them); the functions may be called from any thread.
 */
typedef struct envd_stdio {
  uint32_t struct_size;
  int32_t in_fd;       /* the user's input, or -1 when there is none */
  int32_t out_fd;      /* output */
  int32_t err_fd;      /* error output (may equal out_fd) */
  int32_t is_terminal; /* non-zero: in_fd and out_fd are a terminal */
  void* context;       /* passed back unchanged to the functions below */

  /* Puts the terminal into raw mode (no echo, no line editing, no signals
   * from keys), for a module that passes keystrokes through as they come. The
   * core restores the terminal after the call. A no-op without a terminal. */
  void (*make_raw)(void* context);

  /* Stores the terminal's current size and returns a counter that changes
   * whenever the size does, so a module polling it (at least every 100 ms)
   * knows when to resize the remote terminal. Zero rows and columns without
   * a terminal. */
  uint32_t (*window_size)(void* context, uint16_t* rows, uint16_t* columns);
} envd_stdio;

/*
 * A runner driver. Environments cross as JSON objects; `args` in the request
 * carries {"name": "<environment>"} for inspect/remove and {"spec": {...}} for
 * create. Same error conventions as the builder table.
 *
 * The spec's keys (docs/runners.md describes their values): "name", "image",
 * "env", "ports", "cpus", "memory", "gpus", "restart", "network", "command",
 * "force", and since ABI 1.7 "volumes" (an array of {"type": "bind" or
 * "volume", "source", "target", "read_only"}), "shm_size" (bytes of
 * /dev/shm), "cpuset" ("0-3", "1,3") and "cap_add" (capability names such as
 * "SYS_PTRACE"). A module must honour each key it is given or refuse the
 * request (ENVD_ERR_INVALID_ARGUMENT); it must not drop one unread. The core
 * sends the keys of 1.7 only when the user gives them, and never to a module
 * built for an ABI older than 1.7.
 */
typedef struct envd_runner_vtable {
  uint32_t struct_size;

  /* As for builders. An empty address is allowed and may stay empty. */
  envd_status (*normalize_address)(const char* address, char** normalized, char** error);
  envd_status (*normalize_options)(const char* options_json, char** normalized_json, char** error);

  /* Creates an environment; returns it as a JSON object. */
  envd_status (*create)(const char* request_json, char** environment_json, char** error);
  /* Returns a JSON array of environment objects. */
  envd_status (*list)(const char* request_json, char** environments_json, char** error);
  /* Returns one environment object, ENVD_ERR_NOT_FOUND if there is none. */
  envd_status (*inspect)(const char* request_json, char** environment_json, char** error);
  /* Removes an environment, ENVD_ERR_NOT_FOUND if there is none. */
  envd_status (*remove)(const char* request_json, char** error);

  /* Since ABI 1.3; either may be NULL (the core then says the runner cannot
   * do it). Both take {"name": "<environment>"} in args and work on `stdio`,
   * which the core owns; they return when the work is done, the user
   * cancelled (ENVD_ERR_CANCELLED) or the request's deadline passed.
   *
   * logs: writes the environment's output to stdio->out_fd (and, where the
   * runner keeps them apart, its error output to stdio->err_fd). args may
   * carry "follow": true (keep writing until the environment stops or the
   * user cancels; timeout_ms is then 0, meaning none, unless the user gave a
   * timeout) and "tail": K (only the last K lines; absent means all). A
   * non-zero timeout_ms bounds the whole call. */
  envd_status (*logs)(const char* request_json, const struct envd_stdio* stdio, char** error);

  /* attach: an interactive shell in the environment, reading stdio->in_fd and
   * writing stdio->out_fd (and err_fd without a terminal), until the shell
   * ends; *exit_code receives its exit status. args may carry "shell": [argv].
   * With a terminal the module calls stdio->make_raw before it starts copying
   * input and follows stdio->window_size. timeout_ms bounds reaching the
   * environment and starting the shell, not the session. */
  envd_status (*attach)(const char* request_json, const struct envd_stdio* stdio,
                        int32_t* exit_code, char** error);

  /* Since ABI 1.6; may be NULL (nothing is checked ahead). Checks a create
   * request (args {"spec": {...}}, as create takes it) without contacting
   * anything and without a side effect: the spec's values (the environment's
   * name first), the address, and what the runner needs on disk (a login).
   * It fails as create would fail on them. The core calls it before work that
   * precedes create, so that `envd up --name 'bad name'` fails before its
   * build, not after; create must still check everything itself. */
  envd_status (*check_create)(const char* request_json, char** error);
} envd_runner_vtable;

/* Since ABI 1.2. Severity of a envd_host_api.log line. */
typedef enum envd_log_level {
  ENVD_LOG_DEBUG = 1,   /* shown only when the user asks for diagnostics (ENVD_DEBUG=1) */
  ENVD_LOG_INFO = 2,    /* likewise */
  ENVD_LOG_WARNING = 3, /* shown as "envd: warning: <line>" */
  ENVD_LOG_ERROR = 4    /* shown as "envd: warning: <line>" too; a failure is still a status */
} envd_log_level;

/*
 * Since ABI 1.2. What the host offers a module while it works, handed over once
 * through the descriptor's set_host. Every function may be called from any
 * thread, at any time after set_host, and returns quickly; `context` is the
 * host's and must be passed back unchanged. Strings are NUL-terminated UTF-8,
 * owned by the caller and valid for the call only. The table and `context` stay
 * valid for the life of the process. Like every struct here it only grows at
 * the end: a module checks struct_size before reading a field it did not know
 * in an older version.
 */
typedef struct envd_host_api {
  uint32_t struct_size;
  void* context;

  /* One line of progress of long work (pulling an image, waiting for a daemon),
   * without a trailing newline. The host shows it (or not, with --progress
   * quiet); a module never writes to stdout or stderr itself. */
  void (*progress)(void* context, const char* line);

  /* A diagnostic line; `level` is an envd_log_level. */
  void (*log)(void* context, int32_t level, const char* line);

  /* Non-zero once the user asked to stop (Ctrl-C, SIGTERM). A module polls it
   * in every wait (I/O, child processes, sleeps between probes), at least every
   * 100 ms, and then stops, undoes what it half did (a container it created,
   * a child it started), and returns ENVD_ERR_CANCELLED. */
  int32_t (*cancelled)(void* context);
} envd_host_api;

/*
 * What the entry function returns: static data owned by the module, valid for
 * the life of the process. Fields after struct_size are read only if
 * struct_size covers them.
 */
typedef struct envd_plugin_descriptor {
  uint16_t abi_major;   /* ENVD_ABI_MAJOR the module was built with */
  uint16_t abi_minor;   /* ENVD_ABI_MINOR the module was built with */
  uint32_t struct_size; /* sizeof(envd_plugin_descriptor) in the module's build */

  int32_t kind;            /* envd_plugin_kind */
  const char* type_name;   /* driver type used in contexts, e.g. "tcp"; matches
                              ^[a-z0-9][a-z0-9-]{0,31}$; unique per kind (a builder
                              and a runner may share a name) */
  const char* version;     /* the module's own version, e.g. "0.1.0"; shown cut at 64 bytes */
  const char* description; /* one line, no trailing period; shown cut at 256 bytes */
  int32_t maturity;        /* envd_maturity; an unknown value is shown as "unknown" */

  /* Releases any string or buffer the module handed to the core. NULL is a no-op. */
  void (*free_string)(char* s);

  const envd_builder_vtable* builder; /* non-NULL iff kind == ENVD_KIND_BUILDER */
  const envd_runner_vtable* runner;   /* non-NULL iff kind == ENVD_KIND_RUNNER */

  /* Since ABI 1.1. The driver options whose values are files (TLS material, a
   * daemon config), as a NULL-terminated array of option keys, or NULL for
   * none. At most 16 keys, each matching ^[a-z0-9][a-z0-9.-]{0,63}$. When a user
   * sets such an option the core copies the file into the context's private
   * directory (0600), so the context keeps working when the original moves and
   * travels with `context export`. normalize_options sees the path the user
   * typed; every other verb's request carries the absolute path of the stored
   * copy. */
  const char* const* file_options;

  /* Since ABI 1.2. Receives the host's services; the core calls it once, after
   * validating the descriptor and before any verb, in the process that uses the
   * driver (never in a scan). NULL when the module wants none. */
  void (*set_host)(const envd_host_api* host);
} envd_plugin_descriptor;

/*
 * The entry function. Returns the module's descriptor, or NULL if the module
 * cannot work in this process (it should then have printed nothing; the core
 * reports the module as refused). Must be cheap and free of side effects other
 * than lazy initialisation; it may be called more than once.
 */
typedef const envd_plugin_descriptor* (*envd_plugin_entry_fn)(void);

/* NOLINTEND(readability-identifier-naming) */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ENVD_PLUGIN_ABI_H */
