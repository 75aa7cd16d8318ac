// Drives the SDK glue the way the core does: through the C function pointers of
// a descriptor built by BuilderGlue/RunnerGlue, exactly as the declaration
// macros build it, but without a shared library.
#include "envd/plugin.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace envd::sdk {
namespace {

// A string returned through the ABI, released with the descriptor's free_string.
class Owned {
 public:
  explicit Owned(const envd_plugin_descriptor* desc) : desc_(desc) {}
  ~Owned() { desc_->free_string(s_); }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  char** out() { return &s_; }
  const char* get() const { return s_; }
  std::string str() const { return s_ == nullptr ? "<null>" : s_; }

 private:
  const envd_plugin_descriptor* desc_;
  char* s_ = reinterpret_cast<char*>(0x1);  // must be overwritten by every call
};

bool fd_is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

// --- A builder that overrides every verb, steered by the test ---------------

std::function<Result<Transport>(const Request&)> g_dial;
std::function<Result<int>(const Request&, const SessionRequest&)> g_dial_session;

class EchoBuilder : public BuilderDriver {
 public:
  Result<std::string> normalize_address(const std::string& address) const override {
    if (address == "throw") throw std::runtime_error("address parser exploded");
    if (address == "throw-int") throw 42;
    if (address == "nul") return std::string("echo:a\0b", 8);
    if (address.empty()) return Error(Errc::invalid_argument, "echo needs an address");
    return "echo:" + address;
  }
  Result<Options> normalize_options(const Options& options) const override {
    Options normalized;
    for (const auto& [key, value] : options) {
      if (key != "mode") return Error(Errc::invalid_argument, "echo takes only 'mode'");
      normalized[key] = value == "FAST" ? "fast" : value;
    }
    return normalized;
  }
  Result<Transport> dial(const Request& request) override { return g_dial(request); }
  Result<int> dial_session(const Request& request, const SessionRequest& session) override {
    return g_dial_session(request, session);
  }
  Result<std::string> status(const Request& r) override {
    std::string options;
    for (const auto& [key, value] : r.options) options += key + "=" + value + ";";
    return r.context + "|" + r.address + "|" + options + "|" + r.data_dir + "|" +
           std::to_string(r.timeout.count()) + "|" + r.args_json;
  }
  Result<std::string> bootstrap(const Request& /*request*/) override {
    throw std::runtime_error("docker is down");
  }
  Status stop(const Request& /*request*/) override {
    return Error(Errc::unavailable, "cannot reach the echo daemon");
  }
  Status remove(const Request& /*request*/) override { return Error(Errc::timeout, ""); }
};

struct EchoTraits {
  using Driver = EchoBuilder;
  static constexpr PluginInfo info{"echo", "1.2.3", "echoes requests", ENVD_MATURITY_EXPERIMENTAL};
};

// --- Drivers that override only what they must ------------------------------

class BareBuilder : public BuilderDriver {
 public:
  Result<std::string> normalize_address(const std::string& address) const override {
    return address;
  }
};

struct BareBuilderTraits {
  using Driver = BareBuilder;
  static constexpr PluginInfo info{"bare", "0.1.0", "does nothing", ENVD_MATURITY_STABLE};
};

class BareRunner : public RunnerDriver {
 public:
  Result<std::string> normalize_address(const std::string& address) const override {
    return address;
  }
};

struct BareRunnerTraits {
  using Driver = BareRunner;
  static constexpr PluginInfo info{"plain", "0.2.0", "runs nothing", ENVD_MATURITY_STABLE};
};

// A driver whose construction fails once: the factory runs inside the guard.
int g_fragile_attempts = 0;

class FragileBuilder : public BuilderDriver {
 public:
  FragileBuilder() {
    if (g_fragile_attempts++ == 0) throw std::runtime_error("cannot read its configuration");
  }
  Result<std::string> normalize_address(const std::string& address) const override {
    return address;
  }
};

struct FragileTraits {
  using Driver = FragileBuilder;
  static constexpr PluginInfo info{"fragile", "0.1.0", "fails once", ENVD_MATURITY_STABLE};
};

const envd_plugin_descriptor* echo() { return detail::BuilderGlue<EchoTraits>::descriptor(); }
const envd_plugin_descriptor* bare() {
  return detail::BuilderGlue<BareBuilderTraits>::descriptor();
}
const envd_plugin_descriptor* plain() { return detail::RunnerGlue<BareRunnerTraits>::descriptor(); }

constexpr const char* kRequest = R"({"context":"ci","address":"h:1","options":{},
  "data_dir":"/d","timeout_ms":5000,"args":{}})";

constexpr const char* kSessionRequest = R"({"context":"ci","timeout_ms":5000,
  "args":{"session":{"id":"s1","name":"ctx","shared_key":"k",
                     "methods":["/a.B/C","/grpc.health.v1.Health/Check"]}}})";

// --- Descriptor ----------------------------------------------------------------

TEST(PluginGlue, DescriptorsCarryTheTraits) {
  const envd_plugin_descriptor* d = echo();
  EXPECT_EQ(d->abi_major, ENVD_ABI_MAJOR);
  EXPECT_EQ(d->abi_minor, ENVD_ABI_MINOR);
  EXPECT_EQ(d->struct_size, sizeof(envd_plugin_descriptor));
  EXPECT_EQ(d->kind, ENVD_KIND_BUILDER);
  EXPECT_STREQ(d->type_name, "echo");
  EXPECT_STREQ(d->version, "1.2.3");
  EXPECT_STREQ(d->description, "echoes requests");
  EXPECT_EQ(d->maturity, ENVD_MATURITY_EXPERIMENTAL);
  ASSERT_NE(d->builder, nullptr);
  EXPECT_EQ(d->runner, nullptr);
  EXPECT_EQ(d->builder->struct_size, sizeof(envd_builder_vtable));
  EXPECT_EQ(echo(), d);  // static, the same every call

  const envd_plugin_descriptor* r = plain();
  EXPECT_EQ(r->kind, ENVD_KIND_RUNNER);
  EXPECT_EQ(r->builder, nullptr);
  ASSERT_NE(r->runner, nullptr);
  EXPECT_EQ(r->runner->struct_size, sizeof(envd_runner_vtable));
  r->free_string(nullptr);  // a no-op
}

// --- normalize_address ---------------------------------------------------------

TEST(PluginGlue, NormalizeAddressReturnsAnOwnedString) {
  Owned out(echo());
  Owned error(echo());
  EXPECT_EQ(echo()->builder->normalize_address("h:1", out.out(), error.out()), ENVD_OK);
  EXPECT_EQ(out.str(), "echo:h:1");
  EXPECT_EQ(error.get(), nullptr);
}

TEST(PluginGlue, DriverErrorsKeepTheirCodeAndMessage) {
  Owned out(echo());
  Owned error(echo());
  EXPECT_EQ(echo()->builder->normalize_address("", out.out(), error.out()),
            ENVD_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(out.get(), nullptr);
  EXPECT_EQ(error.str(), "echo needs an address");
}

TEST(PluginGlue, ExceptionsBecomeInternalErrors) {
  Owned out(echo());
  Owned error(echo());
  EXPECT_EQ(echo()->builder->normalize_address("throw", out.out(), error.out()), ENVD_ERR_INTERNAL);
  EXPECT_EQ(out.get(), nullptr);
  EXPECT_EQ(error.str(), "failed to normalize addresses: address parser exploded");

  Owned out2(echo());
  Owned error2(echo());
  EXPECT_EQ(echo()->builder->normalize_address("throw-int", out2.out(), error2.out()),
            ENVD_ERR_INTERNAL);
  EXPECT_EQ(error2.str(), "failed to normalize addresses: unknown exception");

  Owned out3(echo());
  Owned error3(echo());
  EXPECT_EQ(echo()->builder->bootstrap(kRequest, out3.out(), error3.out()), ENVD_ERR_INTERNAL);
  EXPECT_EQ(out3.get(), nullptr);
  EXPECT_EQ(error3.str(), "failed to bootstrap: docker is down");
}

TEST(PluginGlue, ExceptionFromTheDriverConstructorIsCaughtAndRetried) {
  const envd_plugin_descriptor* d = detail::BuilderGlue<FragileTraits>::descriptor();
  Owned out(d);
  Owned error(d);
  EXPECT_EQ(d->builder->normalize_address("x", out.out(), error.out()), ENVD_ERR_INTERNAL);
  EXPECT_EQ(error.str(), "failed to normalize addresses: cannot read its configuration");

  Owned out2(d);
  Owned error2(d);
  EXPECT_EQ(d->builder->normalize_address("x", out2.out(), error2.out()), ENVD_OK);
  EXPECT_EQ(out2.str(), "x");
}

TEST(PluginGlue, ErrorOutParameterMayBeNull) {
  Owned out(echo());
  EXPECT_EQ(echo()->builder->normalize_address("", out.out(), nullptr), ENVD_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(echo()->builder->normalize_address("throw", out.out(), nullptr), ENVD_ERR_INTERNAL);
  EXPECT_EQ(echo()->builder->stop(kRequest, nullptr), ENVD_ERR_UNAVAILABLE);
  EXPECT_EQ(bare()->builder->remove(kRequest, nullptr), ENVD_ERR_UNSUPPORTED);
  EXPECT_EQ(echo()->builder->normalize_address("ok", out.out(), nullptr), ENVD_OK);
  EXPECT_EQ(out.str(), "echo:ok");
}

// A C string ends at its first NUL: the core would see "echo:a" and store
// it, so text with one is refused, not cut.
TEST(PluginGlue, AResultWithANulByteIsRefusedNotCut) {
  Owned out(echo());
  Owned error(echo());
  EXPECT_EQ(echo()->builder->normalize_address("nul", out.out(), error.out()), ENVD_ERR_INTERNAL);
  EXPECT_EQ(out.get(), nullptr);
  EXPECT_EQ(error.str(), "returned text with a NUL byte at offset 6");
}

TEST(PluginGlue, NullInputsAndOutputsAreInvalidArguments) {
  Owned out(echo());
  Owned error(echo());
  EXPECT_EQ(echo()->builder->normalize_address(nullptr, out.out(), error.out()),
            ENVD_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(error.str(), "got no address (NULL)");

  Owned error2(echo());
  EXPECT_EQ(echo()->builder->normalize_address("h:1", nullptr, error2.out()),
            ENVD_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(error2.str(), "was asked to normalize addresses without an output parameter");

  Owned error3(echo());
  EXPECT_EQ(echo()->builder->status(nullptr, out.out(), error3.out()), ENVD_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(error3.str(), "got a malformed request: no JSON text (NULL)");
}

// --- Requests ------------------------------------------------------------------

TEST(PluginGlue, RequestIsParsedIntoTheRequestStruct) {
  Owned out(echo());
  Owned error(echo());
  const char* request = R"({"context":"ci","address":"10.0.0.5:8888",
      "options":{"b":"2","a":"1"},"data_dir":"/var/ctx","timeout_ms":2500,
      "args":{"recreate":true,"n":[1,2]},"future_key":{"ignored":1}})";
  EXPECT_EQ(echo()->builder->status(request, out.out(), error.out()), ENVD_OK) << error.str();
  EXPECT_EQ(out.str(), R"(ci|10.0.0.5:8888|a=1;b=2;|/var/ctx|2500|{"recreate":true,"n":[1,2]})");
}

TEST(PluginGlue, MissingRequestFieldsKeepTheirDefaults) {
  Owned out(echo());
  Owned error(echo());
  EXPECT_EQ(echo()->builder->status("{}", out.out(), error.out()), ENVD_OK) << error.str();
  EXPECT_EQ(out.str(), "||||10000|{}");
}

TEST(PluginGlue, MalformedRequestsAreInvalidArguments) {
  const std::pair<const char*, const char*> cases[] = {
      {"not json", "invalid JSON: "},
      {"[1,2]", "expected a JSON object"},
      {R"({"context":5})", "field 'context' must be a string"},
      {R"({"data_dir":null})", "field 'data_dir' must be a string"},
      {R"({"timeout_ms":-1})", "field 'timeout_ms' must be a non-negative integer"},
      {R"({"timeout_ms":"5"})", "field 'timeout_ms' must be a non-negative integer"},
      {R"({"timeout_ms":1.5})", "field 'timeout_ms' must be a non-negative integer"},
      {R"({"options":{"a":1}})", "field 'options': the value of 'a' is not a string"},
      {R"({"options":[]})", "field 'options': expected a JSON object"},
      {R"({"args":[]})", "field 'args' must be an object"},
  };
  for (const auto& [request, reason] : cases) {
    Owned out(echo());
    Owned error(echo());
    EXPECT_EQ(echo()->builder->status(request, out.out(), error.out()), ENVD_ERR_INVALID_ARGUMENT)
        << request;
    EXPECT_EQ(out.get(), nullptr);
    EXPECT_TRUE(error.str().starts_with(std::string("got a malformed request: ") + reason))
        << error.str();
  }
}

// --- Unsupported verbs ---------------------------------------------------------

TEST(PluginGlue, DefaultBuilderVerbsSayTheyAreNotAvailableYet) {
  const envd_builder_vtable* b = bare()->builder;
  auto expect_unsupported = [](envd_status status, const Owned& error, const char* verb) {
    EXPECT_EQ(status, ENVD_ERR_UNSUPPORTED);
    EXPECT_EQ(error.str(),
              std::string("cannot ") + verb + " yet: this version does not provide it");
  };
  {
    envd_transport transport{};
    transport.struct_size = sizeof transport;
    Owned error(bare());
    expect_unsupported(b->dial(kRequest, &transport, error.out()), error, "dial");
    EXPECT_EQ(transport.fd, 0);  // untouched: still the core's zero-initialised struct
    EXPECT_EQ(transport.kind, 0);
  }
  {
    Owned out(bare());
    Owned error(bare());
    expect_unsupported(b->status(kRequest, out.out(), error.out()), error, "report status");
    EXPECT_EQ(out.get(), nullptr);
  }
  {
    Owned out(bare());
    Owned error(bare());
    expect_unsupported(b->bootstrap(kRequest, out.out(), error.out()), error, "bootstrap");
    EXPECT_EQ(out.get(), nullptr);
  }
  {
    Owned error(bare());
    expect_unsupported(b->stop(kRequest, error.out()), error, "stop");
  }
  {
    Owned error(bare());
    expect_unsupported(b->remove(kRequest, error.out()), error, "remove");
  }
  {
    Owned error(bare());
    int32_t fd = 7;
    expect_unsupported(b->dial_session(kSessionRequest, &fd, error.out()), error,
                       "open a session connection");
    EXPECT_EQ(fd, -1);
  }
}

TEST(PluginGlue, DefaultRunnerVerbsSayTheyAreNotAvailableYet) {
  const envd_runner_vtable* r = plain()->runner;
  auto expect_unsupported = [](envd_status status, const Owned& error, const char* verb) {
    EXPECT_EQ(status, ENVD_ERR_UNSUPPORTED);
    EXPECT_EQ(error.str(),
              std::string("cannot ") + verb + " yet: this version does not provide it");
  };
  {
    Owned out(plain());
    Owned error(plain());
    expect_unsupported(r->create(kRequest, out.out(), error.out()), error, "create environments");
    EXPECT_EQ(out.get(), nullptr);
  }
  {
    Owned out(plain());
    Owned error(plain());
    expect_unsupported(r->list(kRequest, out.out(), error.out()), error, "list environments");
  }
  {
    Owned out(plain());
    Owned error(plain());
    expect_unsupported(r->inspect(kRequest, out.out(), error.out()), error, "inspect environments");
  }
  {
    Owned error(plain());
    expect_unsupported(r->remove(kRequest, error.out()), error, "remove environments");
  }
  // check_create (ABI 1.6) is always in the table; by default it checks
  // nothing, and create says what it says.
  ASSERT_NE(r->check_create, nullptr);
  Owned error(plain());
  EXPECT_EQ(r->check_create(kRequest, error.out()), ENVD_OK);
  EXPECT_EQ(error.get(), nullptr);
  Owned malformed(plain());
  EXPECT_EQ(r->check_create("{", malformed.out()), ENVD_ERR_INVALID_ARGUMENT);
}

TEST(PluginGlue, UnsupportedCheckStillNeedsAWellFormedRequest) {
  Owned error(bare());
  EXPECT_EQ(bare()->builder->stop("{", error.out()), ENVD_ERR_INVALID_ARGUMENT);
}

TEST(PluginGlue, AnEmptyMessageForOtherCodesIsFilledIn) {
  Owned error(echo());
  EXPECT_EQ(echo()->builder->remove(kRequest, error.out()), ENVD_ERR_TIMEOUT);
  EXPECT_EQ(error.str(), "failed to remove without saying why");

  Owned error2(echo());
  EXPECT_EQ(echo()->builder->stop(kRequest, error2.out()), ENVD_ERR_UNAVAILABLE);
  EXPECT_EQ(error2.str(), "cannot reach the echo daemon");
}

// --- normalize_options ---------------------------------------------------------

TEST(PluginGlue, DefaultOptionsAcceptOnlyAnEmptyObject) {
  Owned out(bare());
  Owned error(bare());
  EXPECT_EQ(bare()->builder->normalize_options("{}", out.out(), error.out()), ENVD_OK);
  EXPECT_EQ(out.str(), "{}");

  Owned out2(bare());
  Owned error2(bare());
  EXPECT_EQ(
      bare()->builder->normalize_options(R"({"zeta":"1","alpha":"2"})", out2.out(), error2.out()),
      ENVD_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(out2.get(), nullptr);
  EXPECT_EQ(error2.str(), "unknown option 'alpha' (it takes no options)");

  Owned out3(plain());
  Owned error3(plain());
  EXPECT_EQ(plain()->runner->normalize_options(R"({"x":"1"})", out3.out(), error3.out()),
            ENVD_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(error3.str(), "unknown option 'x' (it takes no options)");
}

TEST(PluginGlue, OptionsMustBeAnObjectOfStrings) {
  const std::pair<const char*, const char*> cases[] = {
      {"[]", "expected a JSON object"},
      {R"({"mode":1})", "the value of 'mode' is not a string"},
      {R"({"mode":null})", "the value of 'mode' is not a string"},
      {"{", "invalid JSON: "},
      {nullptr, "no JSON text (NULL)"},
  };
  for (const auto& [json, reason] : cases) {
    Owned out(echo());
    Owned error(echo());
    EXPECT_EQ(echo()->builder->normalize_options(json, out.out(), error.out()),
              ENVD_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(out.get(), nullptr);
    EXPECT_TRUE(
        error.str().starts_with(std::string("options must be a JSON object of strings: ") + reason))
        << error.str();
  }
}

TEST(PluginGlue, OverriddenOptionsAreNormalisedAndReturnedAsJson) {
  Owned out(echo());
  Owned error(echo());
  EXPECT_EQ(echo()->builder->normalize_options(R"({"mode":"FAST"})", out.out(), error.out()),
            ENVD_OK);
  EXPECT_EQ(out.str(), R"({"mode":"fast"})");

  Owned out2(echo());
  Owned error2(echo());
  EXPECT_EQ(echo()->builder->normalize_options(R"({"speed":"1"})", out2.out(), error2.out()),
            ENVD_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(error2.str(), "echo takes only 'mode'");
}

// --- dial and the transport struct --------------------------------------------------

// A connected socket pair: `driver_end` is what a driver would hand over.
struct SocketPair {
  int driver_end = -1;
  int peer = -1;
  SocketPair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0) {
      driver_end = fds[0];
      peer = fds[1];
    }
  }
  ~SocketPair() { ::close(peer); }
  SocketPair(const SocketPair&) = delete;
  SocketPair& operator=(const SocketPair&) = delete;
};

// A transport struct with recognisable garbage past the caller's struct_size.
struct GuardedTransport {
  envd_transport t;
  char* const sentinel = reinterpret_cast<char*>(0x5e47);
  explicit GuardedTransport(size_t struct_size) {
    std::memset(&t, 0, sizeof t);
    t.struct_size = static_cast<uint32_t>(struct_size);
    for (char** p : {&t.target, &t.tls_ca_pem, &t.tls_cert_pem, &t.tls_key_pem, &t.tls_server_name,
                     &t.description}) {
      if (reinterpret_cast<char*>(p) >= reinterpret_cast<char*>(&t) + struct_size) *p = sentinel;
    }
  }
  void release(const envd_plugin_descriptor* d) {
    for (char** p : {&t.target, &t.tls_ca_pem, &t.tls_cert_pem, &t.tls_key_pem, &t.tls_server_name,
                     &t.description}) {
      if (*p != sentinel) d->free_string(*p);
      *p = nullptr;
    }
  }
};

TEST(PluginGlue, DialHandsOverTheSocketAndStrings) {
  SocketPair pair;
  ASSERT_GE(pair.driver_end, 0);
  std::string seen_context;
  g_dial = [&](const Request& r) -> Result<Transport> {
    seen_context = r.context;
    Transport t;
    t.kind = Transport::Kind::fd;
    t.fd = pair.driver_end;
    t.target = "ignored for fd transports";
    t.description = "echo://h:1";
    return t;
  };
  GuardedTransport g(sizeof(envd_transport));
  Owned error(echo());
  ASSERT_EQ(echo()->builder->dial(kRequest, &g.t, error.out()), ENVD_OK) << error.str();
  EXPECT_EQ(seen_context, "ci");
  EXPECT_EQ(g.t.kind, ENVD_TRANSPORT_FD);
  EXPECT_EQ(g.t.fd, pair.driver_end);
  EXPECT_EQ(g.t.target, nullptr);
  EXPECT_EQ(g.t.tls_ca_pem, nullptr);
  EXPECT_EQ(g.t.tls_server_name, nullptr);
  ASSERT_NE(g.t.description, nullptr);
  EXPECT_STREQ(g.t.description, "echo://h:1");
  EXPECT_TRUE(fd_is_open(g.t.fd));
  ::close(g.t.fd);  // the core owns it now
  g.release(echo());
}

TEST(PluginGlue, DialCanReturnAGrpcTargetWithTls) {
  g_dial = [](const Request&) -> Result<Transport> {
    Transport t;
    t.kind = Transport::Kind::grpc_target;
    t.target = "ipv4:10.0.0.5:8888";
    t.tls_ca_pem = "CA";
    t.tls_cert_pem = "CERT";
    t.tls_key_pem = "KEY";
    t.tls_server_name = "buildkitd";
    return t;
  };
  GuardedTransport g(sizeof(envd_transport));
  Owned error(echo());
  ASSERT_EQ(echo()->builder->dial(kRequest, &g.t, error.out()), ENVD_OK) << error.str();
  EXPECT_EQ(g.t.kind, ENVD_TRANSPORT_GRPC_TARGET);
  EXPECT_EQ(g.t.fd, -1);
  EXPECT_STREQ(g.t.target, "ipv4:10.0.0.5:8888");
  EXPECT_STREQ(g.t.tls_ca_pem, "CA");
  EXPECT_STREQ(g.t.tls_cert_pem, "CERT");
  EXPECT_STREQ(g.t.tls_key_pem, "KEY");
  EXPECT_STREQ(g.t.tls_server_name, "buildkitd");
  EXPECT_EQ(g.t.description, nullptr);
  g.release(echo());
}

TEST(PluginGlue, DialWritesOnlyFieldsInsideTheCallersStructSize) {
  SocketPair pair;
  ASSERT_GE(pair.driver_end, 0);
  g_dial = [&](const Request&) -> Result<Transport> {
    Transport t;
    t.fd = pair.driver_end;
    t.description = "cosmetic, dropped for an old core";
    return t;
  };
  // An older core whose struct ends after tls_server_name: no description.
  GuardedTransport g(offsetof(envd_transport, description));
  Owned error(echo());
  ASSERT_EQ(echo()->builder->dial(kRequest, &g.t, error.out()), ENVD_OK) << error.str();
  EXPECT_EQ(g.t.fd, pair.driver_end);
  EXPECT_EQ(g.t.description, g.sentinel);
  ::close(g.t.fd);
  g.release(echo());
}

// ABI 1.5: the driver's word that nothing of it runs for the connection.
TEST(PluginGlue, DialSaysWhenTheTransportIsSelfContained) {
  for (bool self_contained : {true, false}) {
    SCOPED_TRACE(self_contained);
    g_dial = [&](const Request&) -> Result<Transport> {
      Transport t;
      t.kind = Transport::Kind::grpc_target;
      t.target = "ipv4:127.0.0.1:1234";
      t.self_contained = self_contained;
      return t;
    };
    GuardedTransport g(sizeof(envd_transport));
    Owned error(echo());
    ASSERT_EQ(echo()->builder->dial(kRequest, &g.t, error.out()), ENVD_OK) << error.str();
    EXPECT_EQ(g.t.flags, self_contained ? uint32_t{ENVD_TRANSPORT_SELF_CONTAINED} : 0U);
    g.release(echo());
  }
}

// A hint: an older core, whose struct ends before the field, is not refused
// and not written past.
TEST(PluginGlue, DialDropsTheSelfContainedHintForAnOlderCore) {
  g_dial = [](const Request&) -> Result<Transport> {
    Transport t;
    t.kind = Transport::Kind::grpc_target;
    t.target = "ipv4:127.0.0.1:1234";
    t.self_contained = true;
    return t;
  };
  GuardedTransport g(offsetof(envd_transport, flags));
  g.t.flags = 0x5e47;
  Owned error(echo());
  ASSERT_EQ(echo()->builder->dial(kRequest, &g.t, error.out()), ENVD_OK) << error.str();
  EXPECT_STREQ(g.t.target, "ipv4:127.0.0.1:1234");
  EXPECT_EQ(g.t.flags, 0x5e47U);
  g.release(echo());
}

TEST(PluginGlue, DialRefusesToDropFieldsThatChangeTheConnection) {
  SocketPair pair;
  ASSERT_GE(pair.driver_end, 0);
  g_dial = [&](const Request&) -> Result<Transport> {
    Transport t;
    t.fd = pair.driver_end;
    t.tls_ca_pem = "CA";  // dropping it would silently turn TLS off
    return t;
  };
  GuardedTransport g(offsetof(envd_transport, target));  // only kind and fd
  int caller_fd = ::dup(pair.peer);                      // what the caller had in .fd must survive
  g.t.fd = caller_fd;
  Owned error(echo());
  EXPECT_EQ(echo()->builder->dial(kRequest, &g.t, error.out()), ENVD_ERR_UNSUPPORTED);
  EXPECT_EQ(error.str(),
            "needs the transport field 'tls_ca_pem', which this envd does not "
            "know (its envd_transport has " +
                std::to_string(offsetof(envd_transport, target)) + " bytes)");
  EXPECT_EQ(g.t.kind, 0);
  EXPECT_EQ(g.t.fd, caller_fd);
  EXPECT_TRUE(fd_is_open(caller_fd));
  EXPECT_FALSE(fd_is_open(pair.driver_end));  // the glue closed the driver's socket
  EXPECT_EQ(g.t.tls_ca_pem, g.sentinel);
  ::close(caller_fd);
}

TEST(PluginGlue, DialFailuresLeaveTheStructUntouched) {
  g_dial = [](const Request&) -> Result<Transport> {
    return Error(Errc::unavailable, "cannot reach buildkitd at h:1");
  };
  GuardedTransport g(sizeof(envd_transport));
  g.t.fd = 0;
  Owned error(echo());
  EXPECT_EQ(echo()->builder->dial(kRequest, &g.t, error.out()), ENVD_ERR_UNAVAILABLE);
  EXPECT_EQ(error.str(), "cannot reach buildkitd at h:1");
  EXPECT_EQ(g.t.kind, 0);
  EXPECT_EQ(g.t.fd, 0);
  EXPECT_EQ(g.t.target, nullptr);
  EXPECT_EQ(g.t.description, nullptr);
  EXPECT_TRUE(fd_is_open(0));

  g_dial = [](const Request&) -> Result<Transport> { throw std::runtime_error("socket exploded"); };
  Owned error2(echo());
  EXPECT_EQ(echo()->builder->dial(kRequest, &g.t, error2.out()), ENVD_ERR_INTERNAL);
  EXPECT_EQ(error2.str(), "failed to dial: socket exploded");
  EXPECT_EQ(g.t.kind, 0);
}

TEST(PluginGlue, DialRejectsInconsistentTransports) {
  g_dial = [](const Request&) -> Result<Transport> { return Transport{}; };  // fd kind, fd -1
  GuardedTransport g(sizeof(envd_transport));
  Owned error(echo());
  EXPECT_EQ(echo()->builder->dial(kRequest, &g.t, error.out()), ENVD_ERR_INTERNAL);
  EXPECT_EQ(error.str(), "dialled but returned no socket");

  g_dial = [](const Request&) -> Result<Transport> {
    Transport t;
    t.kind = Transport::Kind::grpc_target;
    return t;
  };
  Owned error2(echo());
  EXPECT_EQ(echo()->builder->dial(kRequest, &g.t, error2.out()), ENVD_ERR_INTERNAL);
  EXPECT_EQ(error2.str(), "dialled but returned an empty gRPC target");

  SocketPair pair;
  ASSERT_GE(pair.driver_end, 0);
  g_dial = [&](const Request&) -> Result<Transport> {
    Transport t;
    t.fd = pair.driver_end;
    t.tls_cert_pem = "CERT";  // and no key
    return t;
  };
  Owned error3(echo());
  EXPECT_EQ(echo()->builder->dial(kRequest, &g.t, error3.out()), ENVD_ERR_INTERNAL);
  EXPECT_TRUE(
      error3.str().starts_with("dialled but returned a TLS client certificate without its key"));
  EXPECT_FALSE(fd_is_open(pair.driver_end));
  EXPECT_EQ(g.t.kind, 0);
  EXPECT_EQ(g.t.tls_cert_pem, nullptr);
}

TEST(PluginGlue, DialNeedsAUsableTransportStruct) {
  Owned error(echo());
  EXPECT_EQ(echo()->builder->dial(kRequest, nullptr, error.out()), ENVD_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(error.str(), "was asked to dial without a usable envd_transport");

  envd_transport tiny{};
  tiny.struct_size = sizeof(uint32_t);  // not even kind and fd
  Owned error2(echo());
  EXPECT_EQ(echo()->builder->dial(kRequest, &tiny, error2.out()), ENVD_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(tiny.kind, 0);
}

// --- dial_session (ABI 1.4) ------------------------------------------------------

TEST(PluginGlue, DialSessionParsesTheSessionAndHandsOverTheSocket) {
  SocketPair pair;
  ASSERT_GE(pair.driver_end, 0);
  SessionRequest seen;
  std::string seen_context;
  g_dial_session = [&](const Request& r, const SessionRequest& session) -> Result<int> {
    seen_context = r.context;
    seen = session;
    return pair.driver_end;
  };
  ASSERT_NE(echo()->builder->dial_session, nullptr);
  Owned error(echo());
  int32_t fd = -1;
  ASSERT_EQ(echo()->builder->dial_session(kSessionRequest, &fd, error.out()), ENVD_OK)
      << error.str();
  EXPECT_EQ(error.get(), nullptr);
  EXPECT_EQ(fd, pair.driver_end);
  EXPECT_EQ(seen_context, "ci");
  EXPECT_EQ(seen.id, "s1");
  EXPECT_EQ(seen.name, "ctx");
  EXPECT_EQ(seen.shared_key, "k");
  EXPECT_EQ(seen.methods, (std::vector<std::string>{"/a.B/C", "/grpc.health.v1.Health/Check"}));
  ::close(fd);  // the core owns it now
}

TEST(PluginGlue, DialSessionFailuresLeaveNoSocket) {
  g_dial_session = [](const Request&, const SessionRequest&) -> Result<int> {
    return Error(Errc::unsupported, "the Docker Engine has no POST /session");
  };
  {
    Owned error(echo());
    int32_t fd = 5;
    EXPECT_EQ(echo()->builder->dial_session(kSessionRequest, &fd, error.out()),
              ENVD_ERR_UNSUPPORTED);
    EXPECT_EQ(error.str(), "the Docker Engine has no POST /session");
    EXPECT_EQ(fd, -1);
  }
  g_dial_session = [](const Request&, const SessionRequest&) -> Result<int> { return -1; };
  {
    Owned error(echo());
    int32_t fd = -1;
    EXPECT_EQ(echo()->builder->dial_session(kSessionRequest, &fd, error.out()), ENVD_ERR_INTERNAL);
    EXPECT_EQ(error.str(), "opened a session connection but returned no socket");
  }
  g_dial_session = [](const Request&, const SessionRequest&) -> Result<int> {
    throw std::runtime_error("hijack exploded");
  };
  {
    Owned error(echo());
    int32_t fd = -1;
    EXPECT_EQ(echo()->builder->dial_session(kSessionRequest, &fd, error.out()), ENVD_ERR_INTERNAL);
    EXPECT_EQ(error.str(), "failed to open a session connection: hijack exploded");
    EXPECT_EQ(fd, -1);
  }
}

TEST(PluginGlue, DialSessionRefusesMalformedSessions) {
  int calls = 0;
  g_dial_session = [&](const Request&, const SessionRequest&) -> Result<int> {
    ++calls;
    return -1;
  };
  const std::pair<const char*, const char*> cases[] = {
      {R"({"args":{}})", "args has no 'session' object"},
      {R"({"args":{"session":[]}})", "args has no 'session' object"},
      {R"({"args":{"session":{"methods":["/a.B/C"]}}})", "the session has no id"},
      {R"({"args":{"session":{"id":"s","methods":[]}}})", "the session has no 'methods' array"},
      {R"({"args":{"session":{"id":"s","methods":[1]}}})", "the session's methods must be strings"},
      {R"({"args":{"session":{"id":7,"methods":["/a.B/C"]}}})",
       "field 'session': field 'id' must be a string"},
  };
  for (const auto& [request, reason] : cases) {
    Owned error(echo());
    int32_t fd = -1;
    EXPECT_EQ(echo()->builder->dial_session(request, &fd, error.out()), ENVD_ERR_INVALID_ARGUMENT)
        << request;
    EXPECT_EQ(error.str(), std::string("got a malformed session request: ") + reason) << request;
    EXPECT_EQ(fd, -1);
  }
  Owned error(echo());
  EXPECT_EQ(echo()->builder->dial_session(kSessionRequest, nullptr, error.out()),
            ENVD_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace envd::sdk
