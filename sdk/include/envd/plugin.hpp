// C++ API for writing envd driver modules.
//
// A module derives one class from envd::sdk::BuilderDriver or
// envd::sdk::RunnerDriver, overrides the verbs it supports, and declares itself
// with one macro in one .cpp file:
//
//   class MyBuilder : public envd::sdk::BuilderDriver {
//    public:
//     envd::Result<std::string> normalize_address(const std::string& a) const override;
//     envd::Result<envd::sdk::Transport> dial(const envd::sdk::Request& r) override;
//   };
//   ENVD_DECLARE_BUILDER_PLUGIN(MyBuilder, "my-builder", "0.1.0",
//                               "builds on my daemon", ENVD_MATURITY_EXPERIMENTAL)
//
// The macro generates the exported C entry function of <envd/plugin_abi.h>.
// Only that C interface crosses between envd and the module: the SDK is a
// static library compiled into the module with hidden visibility. Its glue
// converts between the C ABI and these classes: it parses
// the request JSON, catches every exception (reported as ENVD_ERR_INTERNAL), and
// copies results into strings the core frees with the descriptor's free_string.
//
// Options whose values are files (TLS material, a daemon config) are declared
// in the driver class, and the core copies those files into the context's
// private directory; every verb but normalize_options then sees the absolute
// path of the stored copy as the option's value:
//
//   static constexpr const char* kFileOptions[] = {"tls-ca", "tls-cert", nullptr};
//
// Long work (pulling an image, waiting for a daemon) is reported with
// envd::sdk::report_progress(), and stopped when envd::sdk::cancelled() says
// the user pressed Ctrl-C (<envd/host.hpp>).
//
// Lifetime: the driver object is created on the first verb call (never at
// dlopen time) and lives until the process exits. The core does not call the
// same driver concurrently for one request, but may call it from several threads;
// drivers that keep mutable state must guard it.
//
// A verb that is not overridden fails with ENVD_ERR_UNSUPPORTED and the message
// "cannot <verb> yet: this version does not provide it". envd shows every
// message of a module after "builder '<type>': " (or "runner '<type>': "), so
// a message does not name its own driver.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "envd/plugin_abi.h"
#include "envd/result.hpp"

namespace envd::sdk {

// Driver options as stored with a context: string keys to string values.
using Options = std::map<std::string, std::string>;

// One call's parameters (the request JSON of plugin_abi.h, parsed).
struct Request {
  std::string context;   // the context's name
  std::string address;   // normalised address, as stored
  Options options;       // normalised driver options
  std::string data_dir;  // the context's private directory (0700)
  // The time the whole call may take. Zero means no deadline: `logs
  // --follow` without --timeout runs until the user stops it (check
  // sdk::cancelled()); a driver that turns it into a deadline must take 0 as
  // none, not as "now".
  std::chrono::milliseconds timeout{10000};
  std::string args_json = "{}";  // verb-specific arguments, a JSON object
};

// How the core reaches the BuildKit daemon (see envd_transport).
struct Transport {
  enum class Kind { fd = ENVD_TRANSPORT_FD, grpc_target = ENVD_TRANSPORT_GRPC_TARGET };
  Kind kind = Kind::fd;
  int fd = -1;               // Kind::fd: connected socket; ownership passes to the core
  std::string target;        // Kind::grpc_target: gRPC target
  std::string tls_ca_pem;    // empty: plaintext
  std::string tls_cert_pem;  // empty: no client certificate
  std::string tls_key_pem;
  std::string tls_server_name;  // empty: the target's host
  std::string description;      // e.g. "tcp://10.0.0.5:8888"
  // ABI 1.5: nothing of the module runs for this connection once dial()
  // returned, and nothing needs the process's orderly exit; the core may end
  // the process without tearing the module down (ENVD_TRANSPORT_SELF_CONTAINED).
  // Dropped for an older core, which tears down as always.
  bool self_contained = false;
};

// One build's session, for BuilderDriver::dial_session (ABI 1.4): the
// x-docker-expose-session-* values the daemon needs to register it.
struct SessionRequest {
  std::string id;
  std::string name;
  std::string shared_key;            // may be empty
  std::vector<std::string> methods;  // gRPC method paths the session serves
};

// Base class of builder drivers: transport and lifecycle of a BuildKit daemon.
// A builder never runs the build itself; the core does, over the transport.
class BuilderDriver {
 public:
  virtual ~BuilderDriver() = default;

  // Validates a user-typed address and returns the stored form. An empty input
  // asks for the default address; return an Errc::invalid_argument error naming
  // the expected form if there is none. Must not do I/O.
  virtual Result<std::string> normalize_address(const std::string& address) const = 0;

  // Validates driver options. The default accepts none: any key is rejected.
  virtual Result<Options> normalize_options(const Options& options) const;

  // Connects to (and if needed starts) the daemon.
  virtual Result<Transport> dial(const Request& request);

  // The daemon's lifecycle state as a JSON object with at least "state"
  // ("running", "stopped", "missing" or "unknown") and "detail".
  virtual Result<std::string> status(const Request& request);

  // Creates and starts a managed daemon; returns a JSON object.
  virtual Result<std::string> bootstrap(const Request& request);

  virtual Status stop(const Request& request);
  virtual Status remove(const Request& request);

  // Since ABI 1.4, optional: a connection of its own for one build's
  // session, on which the daemon is the HTTP/2 client (the Docker Engine's
  // POST /session). Returns the socket, positioned after the upgrade;
  // ownership passes to the core. The default, Errc::unsupported, makes the
  // core tunnel the session through dial()'s connection instead.
  virtual Result<int> dial_session(const Request& request, const SessionRequest& session);
};

// The user's input and output, lent to a runner's logs and attach for the
// call (see envd_stdio): the descriptors stay the core's, never close them.
struct Stdio {
  int in_fd = -1;  // -1: no input
  int out_fd = 1;
  int err_fd = 2;
  bool is_terminal = false;  // in_fd and out_fd are a terminal
  // Raw mode for passing keystrokes through; the core restores the terminal.
  std::function<void()> make_raw = [] {};
  // Stores the terminal's size; the returned counter changes with it.
  std::function<std::uint32_t(std::uint16_t& rows, std::uint16_t& columns)> window_size =
      [](std::uint16_t& rows, std::uint16_t& columns) {
        rows = 0;
        columns = 0;
        return std::uint32_t{0};
      };
};

// Base class of runner drivers: development environments.
class RunnerDriver {
 public:
  virtual ~RunnerDriver() = default;

  // As for builders; an empty address may stay empty.
  virtual Result<std::string> normalize_address(const std::string& address) const = 0;
  virtual Result<Options> normalize_options(const Options& options) const;

  // Each returns JSON text: an environment object, or an array of them for list.
  virtual Result<std::string> create(const Request& request);
  virtual Result<std::string> list(const Request& request);
  virtual Result<std::string> inspect(const Request& request);
  virtual Status remove(const Request& request);

  // Since ABI 1.3. Writes the environment's output to `stdio` (args: "name",
  // "follow", "tail"); returns when done, cancelled or past the deadline.
  virtual Status logs(const Request& request, const Stdio& stdio);
  // Since ABI 1.3. An interactive shell in the environment (args: "name",
  // "shell"); returns the shell's exit status.
  virtual Result<int> attach(const Request& request, const Stdio& stdio);
  // Since ABI 1.6. Fails as create would on this request's values (args:
  // "spec"), contacting nothing and changing nothing; the core calls it before
  // work that precedes create (envd up's build). The default checks nothing.
  // create is still called with the same request and checks for itself.
  virtual Status check_create(const Request& request);
};

// Static facts about a module, as given to the declaration macro.
struct PluginInfo {
  const char* type_name;
  const char* version;
  const char* description;
  envd_maturity maturity;
};

}  // namespace envd::sdk

// The glue the macros below instantiate in the module (not part of the API).
#include "envd/internal/plugin_glue.hpp"

// Declares the module's entry function for a builder driver class. Use once per
// module, at namespace scope, in a .cpp file.
#define ENVD_DECLARE_BUILDER_PLUGIN(DriverClass, TypeName, Version, Description, Maturity)   \
  namespace {                                                                                \
  struct EnvdPluginTraits {                                                                  \
    using Driver = DriverClass;                                                              \
    static constexpr ::envd::sdk::PluginInfo info{TypeName, Version, Description, Maturity}; \
  };                                                                                         \
  }                                                                                          \
  extern "C" ENVD_PLUGIN_EXPORT const envd_plugin_descriptor* envd_plugin_entry(void) {      \
    return ::envd::sdk::detail::BuilderGlue<EnvdPluginTraits>::descriptor();                 \
  }

// Declares the module's entry function for a runner driver class.
#define ENVD_DECLARE_RUNNER_PLUGIN(DriverClass, TypeName, Version, Description, Maturity)    \
  namespace {                                                                                \
  struct EnvdPluginTraits {                                                                  \
    using Driver = DriverClass;                                                              \
    static constexpr ::envd::sdk::PluginInfo info{TypeName, Version, Description, Maturity}; \
  };                                                                                         \
  }                                                                                          \
  extern "C" ENVD_PLUGIN_EXPORT const envd_plugin_descriptor* envd_plugin_entry(void) {      \
    return ::envd::sdk::detail::RunnerGlue<EnvdPluginTraits>::descriptor();                  \
  }
