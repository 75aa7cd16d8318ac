#include "envd/plugin.hpp"

#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string_view>
#include <utility>

namespace envd::sdk::detail {
namespace {

namespace json = boost::json;

// What a worker knows about its call. Its messages do not name the driver:
// the core prefixes every module message with "builder '<type>': ".
struct Call {
  std::string_view verb;  // completes "cannot <verb> yet", e.g. "report status"
};

struct FreeDeleter {
  void operator()(char* s) const { std::free(s); }
};
using CString = std::unique_ptr<char, FreeDeleter>;

// A malloc'ed copy the core releases with free_string; null if out of memory.
CString copy_string(std::string_view text) {
  CString copy(static_cast<char*>(std::malloc(text.size() + 1)));
  if (copy) {
    std::memcpy(copy.get(), text.data(), text.size());
    copy.get()[text.size()] = '\0';
  }
  return copy;
}

envd_status report(char** error, envd_status code, std::string_view message) {
  if (error != nullptr) *error = copy_string(message).release();
  return code;
}

// The one place exceptions end: no C++ exception may cross the C boundary, and
// building the message can itself throw (bad_alloc).
envd_status report_exception(const Call& call, char** error, const char* what) noexcept {
  try {
    std::string reason = what != nullptr && *what != '\0' ? what : "unknown exception";
    return report(error, ENVD_ERR_INTERNAL, "failed to " + std::string(call.verb) + ": " + reason);
  } catch (...) {
    return ENVD_ERR_INTERNAL;
  }
}

bool is_error_status(Errc code) {
  auto value = static_cast<int>(code);
  return value >= ENVD_ERR_INVALID_ARGUMENT && value <= ENVD_ERR_INTERNAL;
}

envd_status report(const Call& call, char** error, const Error& failure) {
  if (!is_error_status(failure.code())) {
    return report(error, ENVD_ERR_INTERNAL,
                  "failed to " + std::string(call.verb) + " with an invalid error code " +
                      std::to_string(static_cast<int>(failure.code())) + ": " + failure.message());
  }
  auto code = static_cast<envd_status>(failure.code());
  if (!failure.message().empty()) return report(error, code, failure.message());
  if (failure.code() == Errc::unsupported) {
    return report(error, code,
                  "cannot " + std::string(call.verb) + " yet: this version does not provide it");
  }
  return report(error, code, "failed to " + std::string(call.verb) + " without saying why");
}

// Runs a worker body, turning any exception into ENVD_ERR_INTERNAL. *error is
// cleared first, so the core never sees (or frees) a stale pointer.
template <typename Body>
envd_status guarded(const Call& call, char** error, Body&& body) noexcept {
  if (error != nullptr) *error = nullptr;
  try {
    return body();
  } catch (const std::exception& e) {
    return report_exception(call, error, e.what());
  } catch (...) {
    return report_exception(call, error, nullptr);
  }
}

// As guarded, for workers that return a string through `out`.
template <typename Body>
envd_status guarded(const Call& call, char** out, char** error, Body&& body) noexcept {
  if (out != nullptr) *out = nullptr;
  return guarded(call, error, [&] {
    if (out == nullptr) {
      return report(error, ENVD_ERR_INVALID_ARGUMENT,
                    "was asked to " + std::string(call.verb) + " without an output parameter");
    }
    return body();
  });
}

// Stores `text` in *out. The core reads a C string, which ends at its first
// NUL: text holding one would arrive cut, so it is refused.
envd_status deliver(const std::string& text, char** out, char** error) {
  if (auto nul = text.find('\0'); nul != std::string::npos) {
    return report(error, ENVD_ERR_INTERNAL,
                  "returned text with a NUL byte at offset " + std::to_string(nul));
  }
  CString copy = copy_string(text);
  if (!copy) return report(error, ENVD_ERR_INTERNAL, "ran out of memory");
  *out = copy.release();
  return ENVD_OK;
}

Result<Options> options_from_json(const json::value& value) {
  if (!value.is_object()) return Error(Errc::invalid_argument, "expected a JSON object");
  Options options;
  for (const auto& [key, item] : value.get_object()) {
    if (!item.is_string()) {
      return Error(Errc::invalid_argument,
                   "the value of '" + std::string(key) + "' is not a string");
    }
    options.emplace(std::string(key), std::string(item.get_string()));
  }
  return options;
}

std::string options_to_json(const Options& options) {
  json::object object;
  for (const auto& [key, value] : options) object[key] = value;
  return json::serialize(object);
}

Result<json::value> parse_json(const char* text) {
  if (text == nullptr) return Error(Errc::invalid_argument, "no JSON text (NULL)");
  boost::system::error_code ec;
  json::value value = json::parse(text, ec);
  if (ec) return Error(Errc::invalid_argument, "invalid JSON: " + ec.message());
  return value;
}

Result<std::string> string_field(const json::object& object, std::string_view key) {
  const json::value* value = object.if_contains(key);
  if (value == nullptr) return std::string();
  if (!value->is_string()) {
    return Error(Errc::invalid_argument, "field '" + std::string(key) + "' must be a string");
  }
  return std::string(value->get_string());
}

// The request JSON of plugin_abi.h. Absent fields keep Request's defaults;
// unknown fields are ignored; a present field of the wrong type is an error.
Result<Request> parse_request_json(const char* text) {
  auto parsed = parse_json(text);
  if (!parsed) return parsed.error();
  if (!parsed->is_object()) return Error(Errc::invalid_argument, "expected a JSON object");
  const json::object& object = parsed->get_object();

  Request request;
  for (auto [key, field] :
       {std::pair{"context", &request.context}, std::pair{"address", &request.address},
        std::pair{"data_dir", &request.data_dir}}) {
    auto value = string_field(object, key);
    if (!value) return value.error();
    *field = std::move(*value);
  }
  if (const json::value* options = object.if_contains("options")) {
    auto parsed_options = options_from_json(*options);
    if (!parsed_options) return parsed_options.error().wrap("field 'options'");
    request.options = std::move(*parsed_options);
  }
  if (const json::value* timeout = object.if_contains("timeout_ms")) {
    bool valid = (timeout->is_int64() && timeout->get_int64() >= 0) || timeout->is_uint64();
    if (!valid) {
      return Error(Errc::invalid_argument, "field 'timeout_ms' must be a non-negative integer");
    }
    auto ms = timeout->is_int64()
                  ? timeout->get_int64()
                  : static_cast<int64_t>(std::min<uint64_t>(timeout->get_uint64(), INT64_MAX));
    request.timeout = std::chrono::milliseconds(ms);
  }
  if (const json::value* args = object.if_contains("args")) {
    if (!args->is_object()) return Error(Errc::invalid_argument, "field 'args' must be an object");
    request.args_json = json::serialize(*args);
  }
  return request;
}

Result<Request> parse_request(const char* text) {
  auto request = parse_request_json(text);
  if (!request) return request.error().wrap("got a malformed request");
  return request;
}

template <typename Factory>
envd_status normalize_address(const Call& call, Factory factory, const char* address, char** out,
                              char** error) {
  return guarded(call, out, error, [&] {
    if (address == nullptr) {
      return report(error, ENVD_ERR_INVALID_ARGUMENT, "got no address (NULL)");
    }
    auto normalized = factory().normalize_address(address);
    if (!normalized) return report(call, error, normalized.error());
    return deliver(*normalized, out, error);
  });
}

template <typename Factory>
envd_status normalize_options(const Call& call, Factory factory, const char* options_json,
                              char** out, char** error) {
  return guarded(call, out, error, [&] {
    auto parsed = parse_json(options_json);
    Result<Options> options = parsed ? options_from_json(*parsed) : Result<Options>(parsed.error());
    if (!options) {
      return report(error, ENVD_ERR_INVALID_ARGUMENT,
                    "options must be a JSON object of strings: " + options.error().message());
    }
    auto normalized = factory().normalize_options(*options);
    if (!normalized) {
      const Error& failure = normalized.error();
      if (failure.code() == Errc::invalid_argument && failure.message().empty() &&
          !options->empty()) {
        return report(error, ENVD_ERR_INVALID_ARGUMENT,
                      "unknown option '" + options->begin()->first + "' (it takes no options)");
      }
      return report(call, error, failure);
    }
    return deliver(options_to_json(*normalized), out, error);
  });
}

// A verb that takes a request and returns JSON text.
template <typename Factory, typename Verb>
envd_status text_verb(const Call& call, Factory factory, const char* request_json, char** out,
                      char** error, Verb verb) {
  return guarded(call, out, error, [&] {
    auto request = parse_request(request_json);
    if (!request) return report(error, ENVD_ERR_INVALID_ARGUMENT, request.error().message());
    Result<std::string> result = verb(factory(), *request);
    if (!result) return report(call, error, result.error());
    return deliver(*result, out, error);
  });
}

// A verb that takes a request and returns nothing.
template <typename Factory, typename Verb>
envd_status status_verb(const Call& call, Factory factory, const char* request_json, char** error,
                        Verb verb) {
  return guarded(call, error, [&] {
    auto request = parse_request(request_json);
    if (!request) return report(error, ENVD_ERR_INVALID_ARGUMENT, request.error().message());
    Status result = verb(factory(), *request);
    if (!result) return report(call, error, result.error());
    return ENVD_OK;
  });
}

bool covers(const envd_transport* transport, size_t offset, size_t size) {
  return transport->struct_size >= offset + size;
}

// A transport field the core's struct may lack (an older core), for messages.
struct OptionalField {
  const char* name;
  const std::string* value;
  size_t offset;
  char* envd_transport::*member;
};

// Copies `result` into the caller's struct. All or nothing: on failure the
// struct is untouched and the driver's socket is closed here, because the
// driver handed it over and nobody else will.
envd_status deliver_transport(const Transport& result, envd_transport* transport, char** error) {
  struct Socket {
    int fd;
    ~Socket() {
      if (fd >= 0) ::close(fd);
    }
  } socket{result.kind == Transport::Kind::fd ? result.fd : -1};

  if (result.kind == Transport::Kind::fd && socket.fd < 0) {
    return report(error, ENVD_ERR_INTERNAL, "dialled but returned no socket");
  }
  if (result.kind == Transport::Kind::grpc_target && result.target.empty()) {
    return report(error, ENVD_ERR_INTERNAL, "dialled but returned an empty gRPC target");
  }
  if (result.kind != Transport::Kind::fd && result.kind != Transport::Kind::grpc_target) {
    return report(error, ENVD_ERR_INTERNAL,
                  "dialled but returned an unknown transport kind " +
                      std::to_string(static_cast<int>(result.kind)));
  }
  if (result.tls_cert_pem.empty() != result.tls_key_pem.empty()) {
    return report(error, ENVD_ERR_INTERNAL,
                  "dialled but returned a TLS client certificate without its key, "
                  "or a key without its certificate");
  }

  const std::string no_target;
  const OptionalField fields[] = {
      {"target", result.kind == Transport::Kind::grpc_target ? &result.target : &no_target,
       offsetof(envd_transport, target), &envd_transport::target},
      {"tls_ca_pem", &result.tls_ca_pem, offsetof(envd_transport, tls_ca_pem),
       &envd_transport::tls_ca_pem},
      {"tls_cert_pem", &result.tls_cert_pem, offsetof(envd_transport, tls_cert_pem),
       &envd_transport::tls_cert_pem},
      {"tls_key_pem", &result.tls_key_pem, offsetof(envd_transport, tls_key_pem),
       &envd_transport::tls_key_pem},
      {"tls_server_name", &result.tls_server_name, offsetof(envd_transport, tls_server_name),
       &envd_transport::tls_server_name},
      {"description", &result.description, offsetof(envd_transport, description),
       &envd_transport::description},
  };
  CString copies[std::size(fields)];
  for (size_t i = 0; i < std::size(fields); ++i) {
    const OptionalField& field = fields[i];
    if (field.value->empty()) continue;
    if (!covers(transport, field.offset, sizeof(char*))) {
      // A description is cosmetic; anything else would change what the core
      // connects to (or drop TLS), so refuse instead of silently losing it.
      if (std::string_view(field.name) == "description") continue;
      return report(error, ENVD_ERR_UNSUPPORTED,
                    "needs the transport field '" + std::string(field.name) +
                        "', which this envd does not know (its envd_transport has " +
                        std::to_string(transport->struct_size) + " bytes)");
    }
    copies[i] = copy_string(*field.value);
    if (!copies[i]) return report(error, ENVD_ERR_INTERNAL, "ran out of memory");
  }

  transport->kind = static_cast<int32_t>(result.kind);
  transport->fd = std::exchange(socket.fd, -1);
  // A hint that lets the core skip work: an older core, whose struct has no
  // room for it, tears down as always.
  if (result.self_contained &&
      covers(transport, offsetof(envd_transport, flags), sizeof(uint32_t))) {
    transport->flags |= ENVD_TRANSPORT_SELF_CONTAINED;
  }
  for (size_t i = 0; i < std::size(fields); ++i) {
    if (copies[i]) transport->*fields[i].member = copies[i].release();
  }
  return ENVD_OK;
}

// The "session" object of dial_session's args (plugin_abi.h, ABI 1.4). The
// id and at least one method are required: the daemon can do nothing with a
// session it cannot name or call.
Result<SessionRequest> parse_session(const Request& request) {
  auto args = parse_json(request.args_json.c_str());
  if (!args) return args.error();
  const json::value* session =
      args->is_object() ? args->get_object().if_contains("session") : nullptr;
  if (session == nullptr || !session->is_object()) {
    return Error(Errc::invalid_argument, "args has no 'session' object");
  }
  const json::object& object = session->get_object();
  SessionRequest out;
  for (auto [key, field] : {std::pair{"id", &out.id}, std::pair{"name", &out.name},
                            std::pair{"shared_key", &out.shared_key}}) {
    auto value = string_field(object, key);
    if (!value) return value.error().wrap("field 'session'");
    *field = std::move(*value);
  }
  if (out.id.empty()) return Error(Errc::invalid_argument, "the session has no id");
  const json::value* methods = object.if_contains("methods");
  if (methods == nullptr || !methods->is_array() || methods->get_array().empty()) {
    return Error(Errc::invalid_argument, "the session has no 'methods' array");
  }
  for (const auto& method : methods->get_array()) {
    if (!method.is_string()) {
      return Error(Errc::invalid_argument, "the session's methods must be strings");
    }
    out.methods.emplace_back(method.get_string());
  }
  return out;
}

}  // namespace

void free_string(char* s) { std::free(s); }

envd_status builder_normalize_address(BuilderFactory f, const char* address, char** out,
                                      char** error) {
  return normalize_address(Call{"normalize addresses"}, f, address, out, error);
}

envd_status builder_normalize_options(BuilderFactory f, const char* options_json, char** out,
                                      char** error) {
  return normalize_options(Call{"normalize options"}, f, options_json, out, error);
}

envd_status builder_dial(BuilderFactory f, const char* request, envd_transport* transport,
                         char** error) {
  Call call{"dial"};
  return guarded(call, error, [&] {
    // kind and fd are the fields every envd_transport must have.
    if (transport == nullptr ||
        !covers(transport, offsetof(envd_transport, fd), sizeof transport->fd)) {
      return report(error, ENVD_ERR_INVALID_ARGUMENT,
                    "was asked to dial without a usable envd_transport");
    }
    auto parsed = parse_request(request);
    if (!parsed) return report(error, ENVD_ERR_INVALID_ARGUMENT, parsed.error().message());
    auto result = f().dial(*parsed);
    if (!result) return report(call, error, result.error());
    return deliver_transport(*result, transport, error);
  });
}

envd_status builder_dial_session(BuilderFactory f, const char* request, int32_t* fd, char** error) {
  Call call{"open a session connection"};
  return guarded(call, error, [&] {
    if (fd == nullptr) {
      return report(error, ENVD_ERR_INVALID_ARGUMENT,
                    "was asked to open a session connection without an fd");
    }
    *fd = -1;
    auto parsed = parse_request(request);
    if (!parsed) return report(error, ENVD_ERR_INVALID_ARGUMENT, parsed.error().message());
    auto session = parse_session(*parsed);
    if (!session) {
      return report(error, ENVD_ERR_INVALID_ARGUMENT,
                    "got a malformed session request: " + session.error().message());
    }
    auto result = f().dial_session(*parsed, *session);
    if (!result) return report(call, error, result.error());
    if (*result < 0) {
      return report(error, ENVD_ERR_INTERNAL, "opened a session connection but returned no socket");
    }
    *fd = *result;
    return ENVD_OK;
  });
}

envd_status builder_status(BuilderFactory f, const char* request, char** out, char** error) {
  return text_verb(Call{"report status"}, f, request, out, error,
                   [](BuilderDriver& d, const Request& r) { return d.status(r); });
}

envd_status builder_bootstrap(BuilderFactory f, const char* request, char** out, char** error) {
  return text_verb(Call{"bootstrap"}, f, request, out, error,
                   [](BuilderDriver& d, const Request& r) { return d.bootstrap(r); });
}

envd_status builder_stop(BuilderFactory f, const char* request, char** error) {
  return status_verb(Call{"stop"}, f, request, error,
                     [](BuilderDriver& d, const Request& r) { return d.stop(r); });
}

envd_status builder_remove(BuilderFactory f, const char* request, char** error) {
  return status_verb(Call{"remove"}, f, request, error,
                     [](BuilderDriver& d, const Request& r) { return d.remove(r); });
}

envd_status runner_normalize_address(RunnerFactory f, const char* address, char** out,
                                     char** error) {
  return normalize_address(Call{"normalize addresses"}, f, address, out, error);
}

envd_status runner_normalize_options(RunnerFactory f, const char* options_json, char** out,
                                     char** error) {
  return normalize_options(Call{"normalize options"}, f, options_json, out, error);
}

envd_status runner_create(RunnerFactory f, const char* request, char** out, char** error) {
  return text_verb(Call{"create environments"}, f, request, out, error,
                   [](RunnerDriver& d, const Request& r) { return d.create(r); });
}

envd_status runner_list(RunnerFactory f, const char* request, char** out, char** error) {
  return text_verb(Call{"list environments"}, f, request, out, error,
                   [](RunnerDriver& d, const Request& r) { return d.list(r); });
}

envd_status runner_inspect(RunnerFactory f, const char* request, char** out, char** error) {
  return text_verb(Call{"inspect environments"}, f, request, out, error,
                   [](RunnerDriver& d, const Request& r) { return d.inspect(r); });
}

envd_status runner_remove(RunnerFactory f, const char* request, char** error) {
  return status_verb(Call{"remove environments"}, f, request, error,
                     [](RunnerDriver& d, const Request& r) { return d.remove(r); });
}

envd_status runner_check_create(RunnerFactory f, const char* request, char** error) {
  return status_verb(Call{"check environment specs"}, f, request, error,
                     [](RunnerDriver& d, const Request& r) { return d.check_create(r); });
}

namespace {

// The core's envd_stdio as the driver's Stdio; fields an older core's struct
// lacks keep their defaults (there is none older than 1.3 yet, but the rule
// holds for every struct that crosses).
Result<Stdio> stdio_from(const envd_stdio* io) {
  if (io == nullptr || io->struct_size < offsetof(envd_stdio, window_size) + sizeof io->window_size)
    return Error(Errc::invalid_argument, "no usable input and output (envd_stdio)");
  Stdio stdio;
  stdio.in_fd = io->in_fd;
  stdio.out_fd = io->out_fd;
  stdio.err_fd = io->err_fd;
  stdio.is_terminal = io->is_terminal != 0;
  if (io->make_raw != nullptr) stdio.make_raw = [io] { io->make_raw(io->context); };
  if (io->window_size != nullptr) {
    stdio.window_size = [io](std::uint16_t& rows, std::uint16_t& columns) {
      return io->window_size(io->context, &rows, &columns);
    };
  }
  return stdio;
}

}  // namespace

envd_status runner_logs(RunnerFactory f, const char* request, const envd_stdio* stdio,
                        char** error) {
  Call call{"show logs"};
  return guarded(call, error, [&] {
    auto parsed = parse_request(request);
    if (!parsed) return report(error, ENVD_ERR_INVALID_ARGUMENT, parsed.error().message());
    auto io = stdio_from(stdio);
    if (!io) return report(error, ENVD_ERR_INVALID_ARGUMENT, io.error().message());
    Status result = f().logs(*parsed, *io);
    if (!result) return report(call, error, result.error());
    return ENVD_OK;
  });
}

envd_status runner_attach(RunnerFactory f, const char* request, const envd_stdio* stdio,
                          int32_t* exit_code, char** error) {
  Call call{"attach"};
  return guarded(call, error, [&] {
    if (exit_code == nullptr) {
      return report(error, ENVD_ERR_INVALID_ARGUMENT,
                    "was asked to attach without an exit code parameter");
    }
    auto parsed = parse_request(request);
    if (!parsed) return report(error, ENVD_ERR_INVALID_ARGUMENT, parsed.error().message());
    auto io = stdio_from(stdio);
    if (!io) return report(error, ENVD_ERR_INVALID_ARGUMENT, io.error().message());
    Result<int> code = f().attach(*parsed, *io);
    if (!code) return report(call, error, code.error());
    *exit_code = *code;
    return ENVD_OK;
  });
}

}  // namespace envd::sdk::detail
