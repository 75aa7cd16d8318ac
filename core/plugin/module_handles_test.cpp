#include "plugin/module_handles.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "plugin/test_support.hpp"

namespace envd::plugin {
namespace {

namespace json = boost::json;

// What the in-memory module does on its next call, and what it saw.
struct FakeModule {
  envd_status status = ENVD_OK;
  const char* out = "out";        // copied to the out-parameter when not null
  const char* message = nullptr;  // copied to `error` when not null
  bool throw_std = false;
  bool throw_other = false;

  int transport_kind = ENVD_TRANSPORT_FD;
  int transport_fd = -1;
  const char* target = nullptr;
  const char* ca = nullptr;
  const char* cert = nullptr;
  const char* key = nullptr;
  const char* server_name = nullptr;
  const char* description = nullptr;
  uint32_t flags = 0;  // envd_transport.flags (ABI 1.5)

  std::string input;  // the last request JSON or input string
  uint32_t seen_struct_size = 0;
  int seen_fd = 0;
  char* last_target = nullptr;
  int calls = 0;
  int allocs = 0;
  int frees = 0;
};
FakeModule fake;

char* dup(const char* s) {
  if (s == nullptr) return nullptr;
  ++fake.allocs;
  return ::strdup(s);
}

void counting_free(char* s) {
  if (s == nullptr) return;
  ++fake.frees;
  std::free(s);
}

void maybe_throw() {
  if (fake.throw_std) throw std::runtime_error("boom");
  if (fake.throw_other) throw 42;
}

envd_status in_out(const char* in, char** out, char** error) {
  ++fake.calls;
  fake.input = in;
  maybe_throw();
  if (fake.out != nullptr) *out = dup(fake.out);
  if (fake.message != nullptr) *error = dup(fake.message);
  return fake.status;
}

envd_status in_only(const char* in, char** error) {
  ++fake.calls;
  fake.input = in;
  maybe_throw();
  if (fake.message != nullptr) *error = dup(fake.message);
  return fake.status;
}

envd_status dial(const char* in, envd_transport* t, char** error) {
  ++fake.calls;
  fake.input = in;
  fake.seen_struct_size = t->struct_size;
  fake.seen_fd = t->fd;
  maybe_throw();
  t->kind = fake.transport_kind;
  t->fd = fake.transport_fd;
  t->target = dup(fake.target);
  fake.last_target = t->target;
  t->tls_ca_pem = dup(fake.ca);
  t->tls_cert_pem = dup(fake.cert);
  t->tls_key_pem = dup(fake.key);
  t->tls_server_name = dup(fake.server_name);
  t->description = dup(fake.description);
  if (t->struct_size >= offsetof(envd_transport, flags) + sizeof t->flags) t->flags = fake.flags;
  if (fake.message != nullptr) *error = dup(fake.message);
  return fake.status;
}

envd_status dial_session(const char* in, int32_t* fd, char** error) {
  ++fake.calls;
  fake.input = in;
  fake.seen_fd = *fd;
  maybe_throw();
  *fd = fake.transport_fd;
  if (fake.message != nullptr) *error = dup(fake.message);
  return fake.status;
}

const envd_builder_vtable kSessionBuilderTable = {sizeof(envd_builder_vtable),
                                                  in_out,
                                                  in_out,
                                                  dial,
                                                  in_out,
                                                  in_out,
                                                  in_only,
                                                  in_only,
                                                  dial_session};
// An ABI 1.3 module: its table ends before dial_session (what follows in
// memory must never be read, so it is a function that would count a call).
const envd_builder_vtable kOldBuilderTable = [] {
  envd_builder_vtable table = kSessionBuilderTable;
  table.struct_size = offsetof(envd_builder_vtable, dial_session);
  return table;
}();

const envd_builder_vtable kBuilderTable = {
    sizeof(envd_builder_vtable), in_out, in_out, dial, in_out, in_out, in_only, in_only, nullptr};
const envd_runner_vtable kRunnerTable = {sizeof(envd_runner_vtable),
                                         in_out,
                                         in_out,
                                         in_out,
                                         in_out,
                                         in_out,
                                         in_only,
                                         nullptr,
                                         nullptr,
                                         nullptr};
const envd_runner_vtable kCheckingRunnerTable = [] {
  envd_runner_vtable table = kRunnerTable;
  table.check_create = in_only;
  return table;
}();
// An ABI 1.5 module's table: it ends before check_create, whose bytes here
// hold a function the core must never call.
const envd_runner_vtable kOldRunnerTable = [] {
  envd_runner_vtable table = kCheckingRunnerTable;
  table.struct_size = offsetof(envd_runner_vtable, check_create);
  return table;
}();

envd_plugin_descriptor make_descriptor(envd_plugin_kind kind, const char* type) {
  envd_plugin_descriptor d = testing::stub_descriptor(kind, type);
  d.free_string = counting_free;
  d.builder = kind == ENVD_KIND_BUILDER ? &kBuilderTable : nullptr;
  d.runner = kind == ENVD_KIND_RUNNER ? &kRunnerTable : nullptr;
  return d;
}
const envd_plugin_descriptor kBuilder = make_descriptor(ENVD_KIND_BUILDER, "mem");
const envd_plugin_descriptor kRunner = make_descriptor(ENVD_KIND_RUNNER, "memr");

bool fd_is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1 || errno != EBADF; }

class ModuleHandleTest : public ::testing::Test {
 protected:
  void SetUp() override { fake = FakeModule{}; }
  // Every string the module allocated was released exactly once.
  void TearDown() override { EXPECT_EQ(fake.allocs, fake.frees); }

  BuilderModule builder{&kBuilder};
  RunnerModule runner{&kRunner};
};

TEST_F(ModuleHandleTest, NormalizeAddressPassesInputAndCopiesTheResult) {
  fake.out = "h:8888";
  auto r = builder.normalize_address("tcp://h:8888");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, "h:8888");
  EXPECT_EQ(fake.input, "tcp://h:8888");
  EXPECT_EQ(fake.allocs, 1);
  EXPECT_EQ(builder.type(), "mem");
}

// An address goes into the store and every listing: a module's 65 MiB one
// once made the store larger than envd reads, losing every context.
TEST_F(ModuleHandleTest, AnAddressBeyond16KiBIsRefused) {
  std::string huge(16 * 1024 + 1, 'a');
  fake.out = huge.c_str();
  auto r = builder.normalize_address("x");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::internal);
  EXPECT_EQ(r.error().message(),
            "builder 'mem': normalize_address returned 16385 bytes, more than the 16384 an "
            "address may hold");
}

// What a module returns is checked where it crosses, so the error names the
// module (the store once refused such an address, blaming itself), and a
// listing shows no blank rows.
TEST_F(ModuleHandleTest, ResultsAreCheckedWhereTheyCross) {
  fake.out = "h:1\x1b[2J";
  auto address = builder.normalize_address("x");
  ASSERT_FALSE(address);
  EXPECT_EQ(address.error().message(),
            "builder 'mem': normalize_address returned an address that is not one line of UTF-8 "
            "text: 'h:1\\x1b[2J'");
  fake.out = R"({"k\u001b[31m":"v"})";
  auto options = builder.normalize_options({{"k", "v"}});
  ASSERT_FALSE(options);
  EXPECT_EQ(options.error().message(),
            "builder 'mem': normalize_options returned an invalid option name 'k\\x1b[31m'");
  fake.out = R"({"a=b":"v"})";
  EXPECT_FALSE(builder.normalize_options({{"k", "v"}}));
  fake.out = R"({"detail":"no state"})";
  auto status = builder.status({});
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().message(),
            "builder 'mem': status returned an object without a \"state\" string");
  fake.out = R"({"state":"running"})";
  EXPECT_TRUE(builder.status({}));
  for (const char* list :
       {R"([{"name":"a"},3])", R"([{"name":"a"},{"name":""}])", R"([{"name":7}])", R"(["x"])"}) {
    fake.out = list;
    auto listed = runner.list({});
    ASSERT_FALSE(listed) << list;
    EXPECT_NE(listed.error().message().find("runner 'memr': list returned item "),
              std::string::npos)
        << listed.error().message();
  }
  fake.out = R"([{"name":"a","image":"i"}])";
  EXPECT_TRUE(runner.list({}));
}

// A 64 MiB message went to stderr whole.
TEST_F(ModuleHandleTest, AModulesMessageIsCutAt16KiB) {
  std::string huge = std::string(16 * 1024 - 1, 'a') + "\u00e9" + std::string(100, 'b');
  fake.status = ENVD_ERR_UNAVAILABLE;
  fake.message = huge.c_str();
  auto r = builder.normalize_address("x");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "builder 'mem': " + std::string(16 * 1024 - 1, 'a') + "... (16485 bytes in all)");
}

TEST_F(ModuleHandleTest, EveryStatusMapsToTheSameErrcWithPrefixedMessage) {
  for (int status = ENVD_ERR_INVALID_ARGUMENT; status <= ENVD_ERR_INTERNAL; ++status) {
    fake.status = static_cast<envd_status>(status);
    fake.out = nullptr;
    fake.message = "address 'x' has no port";
    auto r = builder.normalize_address("x");
    ASSERT_FALSE(r);
    EXPECT_EQ(static_cast<int>(r.error().code()), status);
    EXPECT_EQ(r.error().message(), "builder 'mem': address 'x' has no port");
  }
}

TEST_F(ModuleHandleTest, ResultAndMessageAreFreedWhateverTheStatus) {
  fake.status = ENVD_ERR_NOT_FOUND;
  fake.out = "stray";
  fake.message = "nope";
  EXPECT_FALSE(runner.inspect({}));
  fake.status = ENVD_OK;
  fake.out = "{}";
  fake.message = "stray message";
  EXPECT_TRUE(runner.inspect({}));
  EXPECT_EQ(fake.allocs, 4);  // TearDown checks they were all freed
}

TEST_F(ModuleHandleTest, FailureWithoutMessageSaysWhichVerbFailed) {
  fake.status = ENVD_ERR_UNAVAILABLE;
  fake.out = nullptr;
  Status st = builder.stop({});
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), Errc::unavailable);
  EXPECT_EQ(st.error().message(), "builder 'mem': stop failed without a message (unavailable)");
}

TEST_F(ModuleHandleTest, UnknownStatusIsInternal) {
  fake.status = static_cast<envd_status>(77);
  fake.message = "odd";
  Status st = runner.remove({});
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), Errc::internal);
  EXPECT_EQ(st.error().message(), "runner 'memr': remove returned unknown status 77: odd");
}

TEST_F(ModuleHandleTest, SuccessWithoutResultIsInternal) {
  fake.out = nullptr;
  auto r = builder.normalize_address("x");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::internal);
  EXPECT_EQ(r.error().message(), "builder 'mem': normalize_address returned no result");
}

TEST_F(ModuleHandleTest, ExceptionsAreCaughtAsInternal) {
  fake.throw_std = true;
  auto r = builder.status({});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::internal);
  EXPECT_EQ(r.error().message(), "builder 'mem': status threw an exception: boom");

  fake.throw_std = false;
  fake.throw_other = true;
  auto t = builder.dial({});
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code(), Errc::internal);
  EXPECT_EQ(t.error().message(), "builder 'mem': dial threw an exception");
}

TEST_F(ModuleHandleTest, RequestJsonHasEveryField) {
  DriverRequest request;
  request.context = "ci";
  request.address = "h:8888";
  request.options = {{"b", "2"}, {"a", "1"}};
  request.data_dir = "/home/u/.config/envd/contexts.d/abc";
  request.timeout = std::chrono::milliseconds(2500);
  request.args_json = R"({"recreate": true})";
  fake.out = R"({"state": "running", "detail": "up"})";

  auto r = builder.bootstrap(request);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, R"({"state": "running", "detail": "up"})");

  json::value sent = json::parse(fake.input);
  EXPECT_EQ(sent, json::parse(R"({
    "context": "ci", "address": "h:8888", "options": {"a": "1", "b": "2"},
    "data_dir": "/home/u/.config/envd/contexts.d/abc", "timeout_ms": 2500,
    "args": {"recreate": true}})"));
}

TEST_F(ModuleHandleTest, BadArgsAreRejectedWithoutCallingTheModule) {
  DriverRequest request;
  request.args_json = "[1]";
  auto r = builder.status(request);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::invalid_argument);
  EXPECT_EQ(r.error().message(), "builder 'mem': request args must be a JSON object");
  request.args_json = "{";
  Status st = runner.remove(request);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), Errc::invalid_argument);
  EXPECT_EQ(fake.calls, 0);
}

TEST_F(ModuleHandleTest, NormalizeOptionsRoundTripsAnObjectOfStrings) {
  fake.out = R"({"network": "host", "image": "moby/buildkit"})";
  auto r = builder.normalize_options({{"image", "moby/buildkit:latest"}, {"network", "host"}});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, (Options{{"image", "moby/buildkit"}, {"network", "host"}}));
  EXPECT_EQ(json::parse(fake.input),
            json::parse(R"({"image": "moby/buildkit:latest", "network": "host"})"));
}

TEST_F(ModuleHandleTest, NormalizeOptionsRejectsMalformedResults) {
  fake.out = R"({"n": 1})";
  auto r = runner.normalize_options({});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::internal);
  EXPECT_EQ(r.error().message(),
            "runner 'memr': normalize_options returned option 'n' that is not a string");
  fake.out = "[]";
  r = runner.normalize_options({});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "runner 'memr': normalize_options returned JSON that is not an object");
  fake.out = "{";
  r = runner.normalize_options({});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("runner 'memr': normalize_options result: invalid JSON"),
            std::string::npos)
      << r.error().message();
}

TEST_F(ModuleHandleTest, JsonResultsMustHaveTheDocumentedShape) {
  fake.out = "[]";
  EXPECT_TRUE(runner.list({}));
  fake.out = "{}";
  auto list = runner.list({});
  ASSERT_FALSE(list);
  EXPECT_EQ(list.error().message(), "runner 'memr': list returned JSON that is not an array");
  auto create = runner.create({});
  EXPECT_TRUE(create);
  fake.out = "[]";
  auto status = builder.status({});
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().code(), Errc::internal);
  EXPECT_EQ(status.error().message(), "builder 'mem': status returned JSON that is not an object");
}

TEST_F(ModuleHandleTest, DialHandsTheSocketToTheTransport) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  fake.transport_fd = fds[1];
  fake.description = "mem://socket";
  int fd = -1;
  {
    auto t = builder.dial({});
    ASSERT_TRUE(t) << t.error().message();
    EXPECT_EQ(fake.seen_struct_size, sizeof(envd_transport));
    EXPECT_EQ(fake.seen_fd, -1);
    EXPECT_EQ(t->kind, ENVD_TRANSPORT_FD);
    EXPECT_EQ(t->fd, fds[1]);
    EXPECT_EQ(t->description, "mem://socket");
    EXPECT_TRUE(t->target.empty());
    Transport moved(std::move(*t));
    EXPECT_EQ(t->fd, -1);
    fd = moved.fd;
    EXPECT_TRUE(fd_is_open(fd));
  }
  EXPECT_FALSE(fd_is_open(fd));  // the transport closed it
  ::close(fds[0]);
}

TEST_F(ModuleHandleTest, DialTargetCopiesEveryStringAndFreesThem) {
  fake.transport_kind = ENVD_TRANSPORT_GRPC_TARGET;
  fake.transport_fd = 0;  // meaningless for a target; must not be taken (or closed)
  fake.target = "ipv4:10.0.0.5:8888";
  fake.ca = "CA";
  fake.cert = "CERT";
  fake.key = "KEY";
  fake.server_name = "buildkitd";
  fake.description = "tcp://10.0.0.5:8888";
  auto t = builder.dial({});
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->kind, ENVD_TRANSPORT_GRPC_TARGET);
  EXPECT_EQ(t->fd, -1);
  EXPECT_EQ(t->target, "ipv4:10.0.0.5:8888");
  EXPECT_EQ(t->tls_ca_pem, "CA");
  EXPECT_EQ(t->tls_cert_pem, "CERT");
  EXPECT_EQ(t->tls_key_pem, "KEY");
  EXPECT_EQ(t->tls_server_name, "buildkitd");
  EXPECT_EQ(t->description, "tcp://10.0.0.5:8888");
  EXPECT_EQ(fake.allocs, 6);
}

TEST_F(ModuleHandleTest, DialReadsTheSelfContainedFlag) {
  fake.transport_kind = ENVD_TRANSPORT_GRPC_TARGET;
  fake.target = "ipv4:10.0.0.5:8888";
  auto t = builder.dial({});
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_FALSE(t->self_contained);  // a module older than ABI 1.5 leaves the field zeroed
  fake.flags = ENVD_TRANSPORT_SELF_CONTAINED;
  t = builder.dial({});
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_TRUE(t->self_contained);
  Transport moved(std::move(*t));
  EXPECT_TRUE(moved.self_contained);
}

TEST_F(ModuleHandleTest, DialFailureLeavesTheTransportToTheModule) {
  fake.status = ENVD_ERR_UNAVAILABLE;
  fake.message = "cannot reach 10.0.0.5:8888";
  fake.target = "leftover";  // a module bug; the ABI says the core releases nothing
  auto t = builder.dial({});
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code(), Errc::unavailable);
  EXPECT_EQ(t.error().message(), "builder 'mem': cannot reach 10.0.0.5:8888");
  EXPECT_EQ(fake.frees, 1);  // the message only
  counting_free(fake.last_target);
}

// gRPC aborts the whole process on a descriptor that is not an open socket:
// a driver's double close killed envd with SIGABRT and no word.
TEST_F(ModuleHandleTest, DialRefusesADescriptorThatIsNoOpenSocket) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  fake.transport_fd = fds[0];
  auto t = builder.dial({});
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code(), Errc::internal);
  EXPECT_EQ(t.error().message(), "builder 'mem': dial returned descriptor " +
                                     std::to_string(fds[0]) + ", which is not a socket");
  EXPECT_TRUE(fd_is_open(fds[0]));  // the module's still: it may be anyone's
  ::close(fds[0]);
  ::close(fds[1]);
  fake.transport_fd = fds[0];  // closed now
  t = builder.dial({});
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().message(), "builder 'mem': dial returned descriptor " +
                                     std::to_string(fds[0]) + ", which is not open");
}

TEST_F(ModuleHandleTest, DialRejectsMalformedTransports) {
  fake.transport_fd = -1;
  fake.description = "d";
  auto t = builder.dial({});
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code(), Errc::internal);
  EXPECT_EQ(t.error().message(), "builder 'mem': dial returned an fd transport without a socket");

  fake.transport_kind = ENVD_TRANSPORT_GRPC_TARGET;
  t = builder.dial({});
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().message(),
            "builder 'mem': dial returned a target transport without a target");

  fake.transport_kind = 9;
  t = builder.dial({});
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().message(), "builder 'mem': dial returned unknown transport kind 9");

  fake.transport_kind = ENVD_TRANSPORT_GRPC_TARGET;
  fake.target = "unix:/run/b.sock";
  fake.cert = "CERT";
  t = builder.dial({});
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code(), Errc::internal);
  EXPECT_NE(t.error().message().find("certificate without its key"), std::string::npos);
}

TEST(Transport, MoveAssignmentClosesTheReplacedSocket) {
  int a[2];
  int b[2];
  ASSERT_EQ(::pipe(a), 0);
  ASSERT_EQ(::pipe(b), 0);
  Transport first;
  first.fd = a[0];
  Transport second;
  second.fd = b[0];
  first = std::move(second);
  EXPECT_FALSE(fd_is_open(a[0]));
  EXPECT_EQ(first.fd, b[0]);
  EXPECT_EQ(second.fd, -1);  // NOLINT(bugprone-use-after-move): moved-from state is specified
  int released = first.release_fd();
  EXPECT_EQ(released, b[0]);
  EXPECT_EQ(first.fd, -1);
  ::close(released);
  ::close(a[1]);
  ::close(b[1]);
}

TEST(RequestJson, DefaultsAreAnEmptyRequest) {
  auto text = to_request_json({});
  ASSERT_TRUE(text);
  EXPECT_EQ(json::parse(*text), json::parse(R"({"context": "", "address": "", "options": {},
    "data_dir": "", "timeout_ms": 10000, "args": {}})"));
}

TEST_F(ModuleHandleTest, DialSessionSendsTheSessionAndTakesTheSocket) {
  envd_plugin_descriptor descriptor = kBuilder;
  descriptor.builder = &kSessionBuilderTable;
  BuilderModule module(&descriptor);
  ASSERT_TRUE(module.has_dial_session());
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  ::close(fds[1]);
  fake.transport_fd = fds[0];
  DriverRequest request;
  request.context = "ci";
  request.args_json = R"({"image":"replaced"})";
  auto connection = module.dial_session(
      request, SessionSpec{"id1", "envd", "key", {"/a.B/C", "/grpc.health.v1.Health/Check"}});
  ASSERT_TRUE(connection) << connection.error().message();
  EXPECT_EQ(connection->get(), fds[0]);
  EXPECT_EQ(fake.seen_fd, -1);
  json::value sent = json::parse(fake.input);
  EXPECT_EQ(sent.at("context"), "ci");
  EXPECT_EQ(sent.at("args"),
            json::parse(R"({"session":{"id":"id1","name":"envd","shared_key":"key",)"
                        R"("methods":["/a.B/C","/grpc.health.v1.Health/Check"]}})"));
  connection->reset();
  EXPECT_FALSE(fd_is_open(fds[0]));
}

TEST_F(ModuleHandleTest, DialSessionIsUnsupportedWithoutTheVerb) {
  for (const envd_builder_vtable* table : {&kBuilderTable, &kOldBuilderTable}) {
    envd_plugin_descriptor descriptor = kBuilder;
    descriptor.builder = table;
    BuilderModule module(&descriptor);
    EXPECT_FALSE(module.has_dial_session());
    auto connection = module.dial_session({}, SessionSpec{"id1", "envd", "", {"/a.B/C"}});
    ASSERT_FALSE(connection);
    EXPECT_EQ(connection.error().code(), Errc::unsupported);
    EXPECT_EQ(fake.calls, 0);  // an older module's table is never read past its end
  }
}

TEST_F(ModuleHandleTest, CheckCreateIsAskedOnlyOfAModuleThatHasIt) {
  // Without the verb (NULL, or an older table) nothing is checked ahead.
  for (const envd_runner_vtable* table : {&kRunnerTable, &kOldRunnerTable}) {
    envd_plugin_descriptor descriptor = kRunner;
    descriptor.runner = table;
    fake.status = ENVD_ERR_INVALID_ARGUMENT;
    EXPECT_TRUE(RunnerModule(&descriptor).check_create({}));
    EXPECT_EQ(fake.calls, 0);
  }
  envd_plugin_descriptor descriptor = kRunner;
  descriptor.runner = &kCheckingRunnerTable;
  RunnerModule module(&descriptor);
  DriverRequest request;
  request.args_json = R"({"spec":{"image":"x","name":"bad name"}})";
  fake.message = "environment name 'bad name' is invalid";
  Status st = module.check_create(request);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), Errc::invalid_argument);
  EXPECT_EQ(st.error().message(), "runner 'memr': environment name 'bad name' is invalid");
  EXPECT_EQ(json::parse(fake.input).at("args"),
            json::parse(R"({"spec":{"image":"x","name":"bad name"}})"));
  fake.status = ENVD_OK;
  fake.message = nullptr;
  EXPECT_TRUE(module.check_create(request));
  EXPECT_EQ(fake.calls, 2);
}

// A module built before ABI 1.7 does not know its spec keys ("volumes" and
// the others): it would create the environment without them, so the core
// refuses them at its boundary.
TEST_F(ModuleHandleTest, VolumesAreNeverSentToAModuleOlderThanTheirAbi) {
  envd_plugin_descriptor descriptor = kRunner;
  descriptor.runner = &kCheckingRunnerTable;
  descriptor.abi_minor = 6;
  RunnerModule old_module(&descriptor);
  DriverRequest request;
  request.args_json = R"({"spec":{"image":"x","volumes":[{"type":"volume","target":"/d"}]}})";
  const std::string refusal =
      "runner 'memr': cannot take --volume: the module was built for ABI 1.6, whose environments "
      "have no 'volumes' (it came with ABI 1.7), and would drop it; update the module";
  Status checked = old_module.check_create(request);
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().code(), Errc::unsupported);
  EXPECT_EQ(checked.error().message(), refusal);
  auto created = old_module.create(request);
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code(), Errc::unsupported);
  EXPECT_EQ(created.error().message(), refusal);
  EXPECT_EQ(fake.calls, 0);
  // Without volumes (or with none) the older module is asked as before.
  request.args_json = R"({"spec":{"image":"x","volumes":[]}})";
  fake.out = "{}";
  EXPECT_TRUE(old_module.check_create(request));
  EXPECT_TRUE(old_module.create(request));
  EXPECT_EQ(fake.calls, 2);
  // So are the other keys of 1.7.
  for (const char* spec :
       {R"({"spec":{"image":"x","shm_size":1048576}})", R"({"spec":{"image":"x","cpuset":"0"}})",
        R"({"spec":{"image":"x","cap_add":["SYS_PTRACE"]}})"}) {
    request.args_json = spec;
    Status st = old_module.check_create(request);
    ASSERT_FALSE(st) << spec;
    EXPECT_EQ(st.error().code(), Errc::unsupported) << spec;
  }
  EXPECT_EQ(fake.calls, 2);
  descriptor.abi_minor = ENVD_ABI_MINOR;
  request.args_json = R"({"spec":{"image":"x","volumes":[{"type":"volume","target":"/d"}]}})";
  EXPECT_TRUE(RunnerModule(&descriptor).check_create(request));
  EXPECT_EQ(fake.calls, 3);
}

TEST_F(ModuleHandleTest, DialSessionFailuresAreErrorsAndLeakNoSocket) {
  envd_plugin_descriptor descriptor = kBuilder;
  descriptor.builder = &kSessionBuilderTable;
  BuilderModule module(&descriptor);
  const SessionSpec session{"id1", "envd", "", {"/a.B/C"}};

  fake.status = ENVD_ERR_UNSUPPORTED;
  fake.message = "the Docker Engine has no POST /session";
  auto unsupported = module.dial_session({}, session);
  ASSERT_FALSE(unsupported);
  EXPECT_EQ(unsupported.error().code(), Errc::unsupported);
  EXPECT_EQ(unsupported.error().message(), "builder 'mem': the Docker Engine has no POST /session");

  // A module that fails but hands a socket over anyway: closed, not leaked.
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  ::close(fds[1]);
  fake.status = ENVD_ERR_UNAVAILABLE;
  fake.message = "connection refused";
  fake.transport_fd = fds[0];
  auto refused = module.dial_session({}, session);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::unavailable);
  EXPECT_FALSE(fd_is_open(fds[0]));

  fake.status = ENVD_OK;
  fake.message = nullptr;
  fake.transport_fd = -1;
  auto empty = module.dial_session({}, session);
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code(), Errc::internal);
  EXPECT_EQ(empty.error().message(), "builder 'mem': dial_session succeeded without a socket");

  fake.throw_std = true;
  auto thrown = module.dial_session({}, session);
  ASSERT_FALSE(thrown);
  EXPECT_EQ(thrown.error().message(), "builder 'mem': dial_session threw an exception: boom");
}

}  // namespace
}  // namespace envd::plugin
