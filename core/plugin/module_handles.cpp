#include "plugin/module_handles.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cassert>
#include <cstddef>
#include <cstring>
#include <exception>
#include <functional>
#include <utility>

#include "plugin/call_in_flight.hpp"
#include "plugin/descriptor.hpp"
#include "util/json.hpp"
#include "util/text.hpp"

namespace envd::plugin {
namespace {

// Why `fd`, handed over by a module as a connection, cannot be one ("" if it
// can): it must be an open socket. One that is open but no socket stays the
// module's (it may even be one of envd's own, such as stdout).
// The longest address a module may give back: far beyond any URL, selector
// or path a user types, and far below what would swell the store.
constexpr std::size_t kMaxAddressBytes = std::size_t{16} * 1024;

// The longest message of a module's shown: an environment's last log lines
// fit many times over.
constexpr std::size_t kMaxMessageBytes = std::size_t{16} * 1024;

std::string socket_problem(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return "descriptor " + std::to_string(fd) + ", which is not open";
  if (!S_ISSOCK(st.st_mode)) return "descriptor " + std::to_string(fd) + ", which is not a socket";
  return "";
}

namespace json = boost::json;

// One string the module handed over; released with the module's free_string.
class ModuleString {
 public:
  explicit ModuleString(void (*free_fn)(char*), char* s = nullptr) : free_(free_fn), s_(s) {}
  ModuleString(const ModuleString&) = delete;
  ModuleString& operator=(const ModuleString&) = delete;
  ~ModuleString() {
    if (s_ == nullptr) return;
    try {
      free_(s_);
    } catch (...) {  // a module built without the SDK may throw even here
    }
  }
  char** out() { return &s_; }
  bool empty() const { return s_ == nullptr; }
  std::string copy() const { return s_ == nullptr ? std::string() : std::string(s_); }

 private:
  void (*free_)(char*);
  char* s_;
};

const char* status_name(int status) {
  switch (status) {
    case ENVD_ERR_INVALID_ARGUMENT:
      return "invalid argument";
    case ENVD_ERR_NOT_FOUND:
      return "not found";
    case ENVD_ERR_ALREADY_EXISTS:
      return "already exists";
    case ENVD_ERR_UNAVAILABLE:
      return "unavailable";
    case ENVD_ERR_UNSUPPORTED:
      return "unsupported";
    case ENVD_ERR_TIMEOUT:
      return "timeout";
    case ENVD_ERR_PERMISSION:
      return "permission denied";
    case ENVD_ERR_CANCELLED:
      return "cancelled";
    case ENVD_ERR_INTERNAL:
      return "internal error";
    default:
      return nullptr;
  }
}

// The calling side of one module: the prefix for its messages and its free_string.
// What a verb's JSON result lacks of the shape the ABI gives it, or "".
using ResultShape = std::function<std::string(const json::value&)>;

class Boundary {
 public:
  Boundary(const envd_plugin_descriptor* desc, const char* kind)
      : desc_(desc),
        driver_(std::string(kind) + " '" + desc->type_name + "'"),
        prefix_(driver_ + ": ") {}

  Error error(Errc code, const std::string& message) const {
    return Error(code, prefix_ + message);
  }

  // Runs fn(char** error) -> envd_status, catching everything, and turns the
  // status and message into a Status.
  template <typename Fn>
  Status invoke(const char* verb, Fn&& fn) const {
    ModuleString message(desc_->free_string);
    int status = ENVD_ERR_INTERNAL;
    try {
      // A crash or exit() inside is said as the module's (call_in_flight.hpp).
      CallInFlight in_flight(driver_, verb);
      status = static_cast<int>(fn(message.out()));
    } catch (const std::exception& e) {
      return error(Errc::internal, std::string(verb) + " threw an exception: " + e.what());
    } catch (...) {
      return error(Errc::internal, std::string(verb) + " threw an exception");
    }
    if (status == ENVD_OK) return {};
    const char* name = status_name(status);
    if (name == nullptr) {
      std::string text = std::string(verb) + " returned unknown status " + std::to_string(status);
      if (!message.empty()) text += ": " + bounded(message.copy());
      return error(Errc::internal, text);
    }
    if (message.empty() || message.copy().empty()) {
      return error(static_cast<Errc>(status),
                   std::string(verb) + " failed without a message (" + name + ")");
    }
    return error(static_cast<Errc>(status), bounded(message.copy()));
  }

  // A module's message as envd shows it: at most kMaxMessageBytes (a 64 MiB
  // one went to stderr whole), cut where a UTF-8 character starts.
  static std::string bounded(std::string text) {
    if (text.size() <= kMaxMessageBytes) return text;
    std::size_t cut = kMaxMessageBytes;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    std::size_t all = text.size();
    text.resize(cut);
    text += "... (" + std::to_string(all) + " bytes in all)";
    return text;
  }

  // As invoke, for fn(char** out, char** error): the result string, required on success.
  template <typename Fn>
  Result<std::string> invoke_out(const char* verb, Fn&& fn) const {
    ModuleString out(desc_->free_string);
    Status st = invoke(verb, [&](char** message) { return fn(out.out(), message); });
    if (!st) return st.error();
    if (out.empty()) return error(Errc::internal, std::string(verb) + " returned no result");
    return out.copy();
  }

  // invoke_out, then checks the result is JSON of the expected kind and, with
  // `shape`, what shape() says of it ("" when it holds what the ABI asks).
  template <typename Fn>
  Result<std::string> invoke_json(const char* verb, json::kind expected, Fn&& fn,
                                  const ResultShape& shape) const {
    auto out = invoke_out(verb, std::forward<Fn>(fn));
    if (!out) return out;
    auto parsed = util::parse_json(*out, std::string(verb) + " result");
    if (!parsed) return error(Errc::internal, parsed.error().message());
    if (parsed->kind() != expected) {
      const char* want = expected == json::kind::array ? "an array" : "an object";
      return error(Errc::internal, std::string(verb) + " returned JSON that is not " + want);
    }
    if (shape) {
      if (std::string problem = shape(*parsed); !problem.empty()) {
        return error(Errc::internal, std::string(verb) + " returned " + problem);
      }
    }
    return out;
  }

  void (*free_string() const)(char*) { return desc_->free_string; }

 private:
  const envd_plugin_descriptor* desc_;
  std::string driver_;  // "builder 'tcp'"
  std::string prefix_;
};

json::object options_to_json(const Options& options) {
  json::object object;
  for (const auto& [key, value] : options) object[key] = value;
  return object;
}

Result<Options> options_from_json(const std::string& text) {
  auto parsed = util::parse_json(text, "normalize_options result");
  if (!parsed) return parsed.error();
  if (!parsed->is_object()) {
    return Error(Errc::internal, "normalize_options returned JSON that is not an object");
  }
  Options options;
  for (const auto& [key, value] : parsed->get_object()) {
    if (!value.is_string()) {
      return Error(Errc::internal, "normalize_options returned option '" + std::string(key) +
                                       "' that is not a string");
    }
    options[std::string(key)] = std::string(value.get_string());
  }
  return options;
}

Result<Options> normalize_options(const Boundary& boundary, const Options& options,
                                  envd_status (*fn)(const char*, char**, char**)) {
  std::string input = json::serialize(options_to_json(options));
  auto out = boundary.invoke_out("normalize_options", [&](char** result, char** message) {
    return fn(input.c_str(), result, message);
  });
  if (!out) return out.error();
  auto parsed = options_from_json(*out);
  if (!parsed) return boundary.error(Errc::internal, parsed.error().message());
  // Keys are stored and shown, and given on the command line as K=V.
  for (const auto& [key, value] : *parsed) {
    if (key.empty() || util::printable(key) != key || key.find('=') != std::string::npos) {
      return boundary.error(Errc::internal, "normalize_options returned an invalid option name '" +
                                                util::printable(key, 200) + "'");
    }
  }
  return parsed;
}

Result<std::string> normalize_address(const Boundary& boundary, std::string_view address,
                                      envd_status (*fn)(const char*, char**, char**)) {
  std::string input(address);
  auto normalized = boundary.invoke_out("normalize_address", [&](char** result, char** message) {
    return fn(input.c_str(), result, message);
  });
  // An address is stored in the context store and shown in every listing.
  if (normalized && normalized->size() > kMaxAddressBytes) {
    return boundary.error(Errc::internal,
                          "normalize_address returned " + std::to_string(normalized->size()) +
                              " bytes, more than the " + std::to_string(kMaxAddressBytes) +
                              " an address may hold");
  }
  // The store takes only UTF-8 text, and a listing shows it: the module is
  // named for it here, not the store later.
  if (normalized && util::printable(*normalized) != *normalized) {
    return boundary.error(Errc::internal,
                          "normalize_address returned an address that is not one line of UTF-8 "
                          "text: '" +
                              util::printable(*normalized, 200) + "'");
  }
  return normalized;
}

// A verb taking the request and returning JSON of `expected` kind (and of
// `shape`, when given).
Result<std::string> json_verb(const Boundary& boundary, const char* verb, json::kind expected,
                              const DriverRequest& request,
                              envd_status (*fn)(const char*, char**, char**),
                              const ResultShape& shape = {}) {
  auto text = to_request_json(request);
  if (!text) return boundary.error(text.error().code(), text.error().message());
  return boundary.invoke_json(
      verb, expected,
      [&](char** result, char** message) { return fn(text->c_str(), result, message); }, shape);
}

// plugin_abi.h: a status is at least {"state", "detail"}; what envd reports
// on is the state.
std::string status_shape(const json::value& status) {
  const json::value* state = status.as_object().if_contains("state");
  return state != nullptr && state->is_string() ? "" : "an object without a \"state\" string";
}

// Environment objects, each named: anything else would be a blank row in
// `envd envs ls` and passed on as it is by --format json.
std::string list_shape(const json::value& list) {
  const json::array& items = list.as_array();
  for (std::size_t i = 0; i < items.size(); ++i) {
    const json::value* name =
        items[i].is_object() ? items[i].as_object().if_contains("name") : nullptr;
    if (name == nullptr || !name->is_string() || name->as_string().empty()) {
      return "item " + std::to_string(i) +
             " that is not an environment object with a \"name\" string";
    }
  }
  return {};
}

Status plain_verb(const Boundary& boundary, const char* verb, const DriverRequest& request,
                  envd_status (*fn)(const char*, char**)) {
  auto text = to_request_json(request);
  if (!text) return boundary.error(text.error().code(), text.error().message());
  return boundary.invoke(verb, [&](char** message) { return fn(text->c_str(), message); });
}

}  // namespace

Result<std::string> to_request_json(const DriverRequest& request) {
  auto args = util::parse_json(request.args_json, "request args");
  if (!args) return args.error();
  if (!args->is_object()) {
    return Error(Errc::invalid_argument, "request args must be a JSON object");
  }
  json::object object;
  object["context"] = request.context;
  object["address"] = request.address;
  object["options"] = options_to_json(request.options);
  object["data_dir"] = request.data_dir;
  object["timeout_ms"] = static_cast<std::int64_t>(request.timeout.count());
  object["args"] = std::move(*args);
  return json::serialize(object);
}

// ---- Transport

Transport::Transport(Transport&& other) noexcept
    : kind(other.kind),
      fd(std::exchange(other.fd, -1)),
      target(std::move(other.target)),
      tls_ca_pem(std::move(other.tls_ca_pem)),
      tls_cert_pem(std::move(other.tls_cert_pem)),
      tls_key_pem(std::move(other.tls_key_pem)),
      tls_server_name(std::move(other.tls_server_name)),
      description(std::move(other.description)),
      self_contained(other.self_contained) {}

Transport& Transport::operator=(Transport&& other) noexcept {
  if (this != &other) {
    if (fd >= 0) ::close(fd);
    kind = other.kind;
    fd = std::exchange(other.fd, -1);
    target = std::move(other.target);
    tls_ca_pem = std::move(other.tls_ca_pem);
    tls_cert_pem = std::move(other.tls_cert_pem);
    tls_key_pem = std::move(other.tls_key_pem);
    tls_server_name = std::move(other.tls_server_name);
    description = std::move(other.description);
    self_contained = other.self_contained;
  }
  return *this;
}

Transport::~Transport() {
  if (fd >= 0) ::close(fd);
}

int Transport::release_fd() { return std::exchange(fd, -1); }

// ---- BuilderModule

BuilderModule::BuilderModule(const envd_plugin_descriptor* descriptor) : desc_(descriptor) {
  assert(desc_ != nullptr && desc_->builder != nullptr && desc_->free_string != nullptr);
}

std::vector<std::string> BuilderModule::file_options() const { return plugin::file_options(desc_); }

Result<std::string> BuilderModule::normalize_address(std::string_view address) const {
  return plugin::normalize_address(Boundary(desc_, "builder"), address,
                                   desc_->builder->normalize_address);
}

Result<Options> BuilderModule::normalize_options(const Options& options) const {
  return plugin::normalize_options(Boundary(desc_, "builder"), options,
                                   desc_->builder->normalize_options);
}

Result<Transport> BuilderModule::dial(const DriverRequest& request) const {
  Boundary boundary(desc_, "builder");
  auto text = to_request_json(request);
  if (!text) return boundary.error(text.error().code(), text.error().message());

  envd_transport raw;
  std::memset(&raw, 0, sizeof raw);
  raw.struct_size = sizeof raw;
  raw.fd = -1;
  Status st = boundary.invoke(
      "dial", [&](char** message) { return desc_->builder->dial(text->c_str(), &raw, message); });
  if (!st) return st.error();  // on failure the module keeps ownership of everything

  // Success: every string is ours. Adopt them first so they are freed on any path.
  auto free_fn = boundary.free_string();
  ModuleString target(free_fn, raw.target), ca(free_fn, raw.tls_ca_pem),
      cert(free_fn, raw.tls_cert_pem), key(free_fn, raw.tls_key_pem),
      server_name(free_fn, raw.tls_server_name), description(free_fn, raw.description);

  Transport transport;
  transport.kind = raw.kind;
  // Zeroed above: a module older than ABI 1.5 leaves it so.
  transport.self_contained = (raw.flags & ENVD_TRANSPORT_SELF_CONTAINED) != 0;
  switch (raw.kind) {
    case ENVD_TRANSPORT_FD:
      if (raw.fd < 0) {
        return boundary.error(Errc::internal, "dial returned an fd transport without a socket");
      }
      // gRPC aborts the process on a descriptor that is not an open socket
      // (a driver's double close, a pipe): checked here, where it is the
      // driver's fault.
      if (std::string problem = socket_problem(raw.fd); !problem.empty()) {
        return boundary.error(Errc::internal, "dial returned " + problem);
      }
      transport.fd = raw.fd;
      break;
    case ENVD_TRANSPORT_GRPC_TARGET:
      if (target.empty()) {
        return boundary.error(Errc::internal, "dial returned a target transport without a target");
      }
      break;
    default:
      return boundary.error(Errc::internal,
                            "dial returned unknown transport kind " + std::to_string(raw.kind));
  }
  if (cert.empty() != key.empty()) {
    return boundary.error(Errc::internal,
                          "dial returned a TLS client certificate without its key, or a key "
                          "without a certificate");
  }
  transport.target = target.copy();
  transport.tls_ca_pem = ca.copy();
  transport.tls_cert_pem = cert.copy();
  transport.tls_key_pem = key.copy();
  transport.tls_server_name = server_name.copy();
  transport.description = description.copy();
  return transport;
}

bool BuilderModule::has_dial_session() const {
  // A field past the module's struct_size is not there at all: never read it.
  return desc_->builder->struct_size >=
             offsetof(envd_builder_vtable, dial_session) + sizeof(void*) &&
         desc_->builder->dial_session != nullptr;
}

Result<util::UniqueFd> BuilderModule::dial_session(DriverRequest request,
                                                   const SessionSpec& session) const {
  Boundary boundary(desc_, "builder");
  if (!has_dial_session()) {
    return boundary.error(Errc::unsupported, "the module cannot open session connections");
  }
  json::array methods;
  for (const auto& method : session.methods) methods.emplace_back(method);
  request.args_json =
      json::serialize(json::object{{"session", json::object{{"id", session.id},
                                                            {"name", session.name},
                                                            {"shared_key", session.shared_key},
                                                            {"methods", std::move(methods)}}}});
  auto text = to_request_json(request);
  if (!text) return boundary.error(text.error().code(), text.error().message());
  int32_t fd = -1;
  Status st = boundary.invoke("dial_session", [&](char** message) {
    return desc_->builder->dial_session(text->c_str(), &fd, message);
  });
  if (!st) {
    // The ABI says a failing module leaves -1; one that did not leaks nothing.
    if (fd >= 0) ::close(fd);
    return st.error();
  }
  if (fd < 0) {
    return boundary.error(Errc::internal, "dial_session succeeded without a socket");
  }
  if (std::string problem = socket_problem(fd); !problem.empty()) {
    return boundary.error(Errc::internal, "dial_session returned " + problem);
  }
  return util::UniqueFd(fd);
}

Result<std::string> BuilderModule::status(const DriverRequest& request) const {
  return json_verb(Boundary(desc_, "builder"), "status", json::kind::object, request,
                   desc_->builder->status, status_shape);
}

Result<std::string> BuilderModule::bootstrap(const DriverRequest& request) const {
  return json_verb(Boundary(desc_, "builder"), "bootstrap", json::kind::object, request,
                   desc_->builder->bootstrap);
}

Status BuilderModule::stop(const DriverRequest& request) const {
  return plain_verb(Boundary(desc_, "builder"), "stop", request, desc_->builder->stop);
}

Status BuilderModule::remove(const DriverRequest& request) const {
  return plain_verb(Boundary(desc_, "builder"), "remove", request, desc_->builder->remove);
}

// ---- RunnerModule

RunnerModule::RunnerModule(const envd_plugin_descriptor* descriptor) : desc_(descriptor) {
  assert(desc_ != nullptr && desc_->runner != nullptr && desc_->free_string != nullptr);
}

std::vector<std::string> RunnerModule::file_options() const { return plugin::file_options(desc_); }

Result<std::string> RunnerModule::normalize_address(std::string_view address) const {
  return plugin::normalize_address(Boundary(desc_, "runner"), address,
                                   desc_->runner->normalize_address);
}

Result<Options> RunnerModule::normalize_options(const Options& options) const {
  return plugin::normalize_options(Boundary(desc_, "runner"), options,
                                   desc_->runner->normalize_options);
}

Status RunnerModule::check_spec_keys(const DriverRequest& request) const {
  // The spec keys ABI 1.7 added, with the flag that gives each.
  constexpr uint16_t kKeysMinor = 7;
  static constexpr std::pair<const char*, const char*> kKeys[] = {{"volumes", "--volume"},
                                                                  {"shm_size", "--shm-size"},
                                                                  {"cpuset", "--cpu-set"},
                                                                  {"cap_add", "--cap-add"}};
  if (desc_->abi_minor >= kKeysMinor) return {};
  auto args = util::parse_json(request.args_json, "request args");
  if (!args || !args->is_object()) return {};  // to_request_json names that
  const json::value* spec = args->as_object().if_contains("spec");
  if (spec == nullptr || !spec->is_object()) return {};
  for (const auto& [key, flag] : kKeys) {
    const json::value* value = spec->as_object().if_contains(key);
    if (value == nullptr || (value->is_array() && value->as_array().empty())) continue;
    return Boundary(desc_, "runner")
        .error(Errc::unsupported,
               std::string("cannot take ") + flag + ": the module was built for ABI " +
                   std::to_string(desc_->abi_major) + "." + std::to_string(desc_->abi_minor) +
                   ", whose environments have no '" + key +
                   "' (it came with ABI 1.7), and would drop it; update the module");
  }
  return {};
}

Result<std::string> RunnerModule::create(const DriverRequest& request) const {
  if (auto st = check_spec_keys(request); !st) return st.error();
  return json_verb(Boundary(desc_, "runner"), "create", json::kind::object, request,
                   desc_->runner->create);
}

Result<std::string> RunnerModule::list(const DriverRequest& request) const {
  return json_verb(Boundary(desc_, "runner"), "list", json::kind::array, request,
                   desc_->runner->list, list_shape);
}

Result<std::string> RunnerModule::inspect(const DriverRequest& request) const {
  return json_verb(Boundary(desc_, "runner"), "inspect", json::kind::object, request,
                   desc_->runner->inspect);
}

Status RunnerModule::remove(const DriverRequest& request) const {
  return plain_verb(Boundary(desc_, "runner"), "remove", request, desc_->runner->remove);
}

Status RunnerModule::check_create(const DriverRequest& request) const {
  if (auto st = check_spec_keys(request); !st) return st;
  const envd_runner_vtable& table = *desc_->runner;
  // A field past the module's struct_size is not there at all: never read it.
  if (table.struct_size < offsetof(envd_runner_vtable, check_create) + sizeof(void*) ||
      table.check_create == nullptr) {
    return {};
  }
  return plain_verb(Boundary(desc_, "runner"), "check_create", request, table.check_create);
}

namespace {

// envd_stdio over a RunnerStdio; the module calls back through `context`.
envd_stdio to_c_stdio(const RunnerStdio& stdio) {
  envd_stdio io{};
  io.struct_size = sizeof io;
  io.in_fd = stdio.in_fd;
  io.out_fd = stdio.out_fd;
  io.err_fd = stdio.err_fd;
  io.is_terminal = stdio.is_terminal ? 1 : 0;
  io.context = const_cast<RunnerStdio*>(&stdio);  // NOLINT(cppcoreguidelines-pro-type-const-cast)
  io.make_raw = [](void* context) {
    try {
      static_cast<RunnerStdio*>(context)->make_raw();
    } catch (...) {  // a C caller cannot take an exception
    }
  };
  io.window_size = [](void* context, uint16_t* rows, uint16_t* columns) -> uint32_t {
    uint16_t r = 0;
    uint16_t c = 0;
    uint32_t generation = 0;
    try {
      const auto& size = static_cast<RunnerStdio*>(context)->window_size;
      if (size) generation = size(r, c);
    } catch (...) {
    }
    if (rows != nullptr) *rows = r;
    if (columns != nullptr) *columns = c;
    return generation;
  };
  return io;
}

}  // namespace

Status RunnerModule::check_verb(const char* verb, std::size_t end,
                                bool (*present)(const envd_runner_vtable&)) const {
  Boundary boundary(desc_, "runner");
  // A field past the module's struct_size is not there at all: never read it.
  if (desc_->runner->struct_size < end) {
    return boundary.error(Errc::unsupported,
                          std::string("cannot ") + verb + ": the module was built for ABI " +
                              std::to_string(desc_->abi_major) + "." +
                              std::to_string(desc_->abi_minor) +
                              ", which has no such verb (it came with ABI 1.3); update the module");
  }
  if (!present(*desc_->runner)) {
    return boundary.error(Errc::unsupported,
                          std::string("cannot ") + verb + ": the module does not provide it");
  }
  return {};
}

Status RunnerModule::logs(const DriverRequest& request, const RunnerStdio& stdio) const {
  Status available = check_verb("show logs", offsetof(envd_runner_vtable, logs) + sizeof(void*),
                                [](const envd_runner_vtable& t) { return t.logs != nullptr; });
  if (!available) return available;
  Boundary boundary(desc_, "runner");
  auto text = to_request_json(request);
  if (!text) return boundary.error(text.error().code(), text.error().message());
  envd_stdio io = to_c_stdio(stdio);
  return boundary.invoke(
      "logs", [&](char** message) { return desc_->runner->logs(text->c_str(), &io, message); });
}

Result<int> RunnerModule::attach(const DriverRequest& request, const RunnerStdio& stdio) const {
  Status available = check_verb("attach", offsetof(envd_runner_vtable, attach) + sizeof(void*),
                                [](const envd_runner_vtable& t) { return t.attach != nullptr; });
  if (!available) return available.error();
  Boundary boundary(desc_, "runner");
  auto text = to_request_json(request);
  if (!text) return boundary.error(text.error().code(), text.error().message());
  envd_stdio io = to_c_stdio(stdio);
  int32_t exit_code = -1;
  Status attached = boundary.invoke("attach", [&](char** message) {
    return desc_->runner->attach(text->c_str(), &io, &exit_code, message);
  });
  if (!attached) return attached.error();
  return static_cast<int>(exit_code);
}

}  // namespace envd::plugin
