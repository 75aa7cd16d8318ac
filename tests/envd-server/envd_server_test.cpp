// The envd-server runner end to end on loopback: `envd login`/`logout`
// through the built binary, and the module's environment verbs through the
// core's registry, against envd_test_envd_server (fake_envd_server.cpp), which
// answers as envd-server's REST API does.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli_harness.hpp"
#include "envd/http_client.hpp"
#include "envd/process.hpp"
#include "loopback_servers.hpp"
#include "plugin/registry.hpp"
#include "pty_session.hpp"
#include "services/loopback.hpp"

namespace envd::test {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using plugin::DriverRequest;

class EnvdServerTest : public CliTest {
 protected:
  static void SetUpTestSuite() {
    registry_ = new plugin::Registry(plugin::Registry::discover({ENVD_BUILD_PLUGIN_DIR}, {}));
  }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
  }

  void SetUp() override {
    CliTest::SetUp();
    ENVD_REQUIRE_MODULES("envd-server runner", "tcp builder");
  }

  // A context "es" on `url`, in use.
  void create_context(const std::string& url, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"context",
                                     "create",
                                     "--name",
                                     "es",
                                     "--builder",
                                     "tcp",
                                     "--builder-address",
                                     "tcp://127.0.0.1:1",
                                     "--runner",
                                     "envd-server",
                                     "--runner-address",
                                     url,
                                     "--use"};
    args.insert(args.end(), extra.begin(), extra.end());
    envd_ok(args);
  }

  fs::path data_dir() {
    json::object store = read_store();
    for (const auto& ctx : store["contexts"].as_array()) {
      if (ctx.as_object().at("name") == "es") {
        return config_dir() / "contexts.d" / std::string(ctx.as_object().at("id").as_string());
      }
    }
    ADD_FAILURE() << "no context es";
    return {};
  }
  fs::path login_file() { return data_dir() / "runner-login.json"; }
  json::object stored_login() { return json::parse(read_text(login_file())).as_object(); }

  DriverRequest request(const std::string& url, const std::string& args_json = "{}") {
    DriverRequest r;
    r.context = "es";
    r.address = url;
    r.data_dir = data_dir().string();
    r.args_json = args_json;
    return r;
  }

  plugin::RunnerModule driver() {
    auto d = registry_->runner("envd-server");
    EXPECT_TRUE(d) << d.error().message();
    return *d;
  }

  static plugin::Registry* registry_;
};

plugin::Registry* EnvdServerTest::registry_ = nullptr;

// The one error line of a failed command (progress and warnings may come
// before it).
std::string one_line(const std::string& err) {
  std::size_t at = err.find("envd: error: ");
  EXPECT_NE(at, std::string::npos) << err;
  if (at == std::string::npos) return err;
  std::string line = err.substr(at);
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << err;
  return line;
}

TEST_F(EnvdServerTest, NoAuthLoginRegistersUploadsTheKeyAndStoresTheToken) {
  FakeServer server({"--no-auth"});
  ASSERT_TRUE(server.started());
  create_context(server.url());
  auto out = envd_ok({"login", "-u", "alice"});
  EXPECT_EQ(out.out, "Login succeeded\n");
  EXPECT_NE(out.err.find("no password given: registering 'alice' on a server in no-auth mode"),
            std::string::npos)
      << out.err;
  // Upstream's key, made with ssh-keygen, is uploaded as "default".
  std::string pub = read_text(config_dir() / "id_rsa_envd.pub");
  EXPECT_EQ(pub.rfind("ssh-rsa ", 0), 0u) << pub;
  auto state = server.state();
  ASSERT_TRUE(state.contains("alice")) << json::serialize(state);
  std::string uploaded(state["alice"].as_object()["keys"].as_object()["default"].as_string());
  EXPECT_EQ(uploaded + "\n", pub);
  // The token, 0600 in the context's private directory.
  EXPECT_EQ(mode_of(login_file()), 0600u);
  auto login = stored_login();
  EXPECT_EQ(login["server"], json::value(server.url()));
  EXPECT_EQ(login["login_name"], "alice");
  EXPECT_EQ(login["identity_token"], "envd-2-alice");  // register issued envd-1-alice

  EXPECT_EQ(std::string(login["ssh_public_key"].as_string()) + "\n", pub);  // accepted

  // Again: register answers 409 and the key 409, both fine; the new token
  // replaces the old one (upstream keeps the old). The key the server keeps
  // is the one the stored login says it accepted: nothing to warn about.
  auto again = envd_ok({"login", "-u", "alice"});
  EXPECT_EQ(stored_login()["identity_token"], "envd-3-alice");
  EXPECT_EQ(again.err.find("already holds an SSH key"), std::string::npos) << again.err;
  EXPECT_EQ(stored_login()["ssh_public_key"], login["ssh_public_key"]);
  EXPECT_EQ(pub, read_text(config_dir() / "id_rsa_envd.pub"));  // the key is kept

  // A record of another key (the user's .pub was replaced since) is no proof.
  auto edited = stored_login();
  edited["ssh_public_key"] = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC0ther envd";
  write_text(login_file(), json::serialize(edited));
  auto other = envd_ok({"login", "-u", "alice"});
  EXPECT_NE(other.err.find("already holds an SSH key for 'alice'"), std::string::npos) << other.err;
  EXPECT_FALSE(stored_login().contains("ssh_public_key"));

  // After a logout that record is gone, and the server's 409 does not say
  // whose key it holds: the user is told what to check.
  envd_ok({"logout"});
  auto after_logout = envd_ok({"login", "-u", "alice"});
  EXPECT_EQ(stored_login()["identity_token"], "envd-5-alice");
  EXPECT_NE(
      after_logout.err.find("envd: warning: the envd server already holds an SSH key for 'alice' "
                            "and keeps it; envd attach works only if it is the one in " +
                            (config_dir() / "id_rsa_envd").string() + ".pub"),
      std::string::npos)
      << after_logout.err;
  EXPECT_FALSE(stored_login().contains("ssh_public_key"));

  // The token is a credential: an export leaves it out (and has no private
  // material to warn about).
  auto exported = envd_ok({"context", "export", "es", (home() / "es.tar").string()});
  EXPECT_EQ(exported.err.find("private material"), std::string::npos) << exported.err;
  sdk::ProcessOptions tar;
  tar.argv = {"tar", "tf", (home() / "es.tar").string()};
  auto listing = sdk::run_process(tar);
  ASSERT_TRUE(listing);
  EXPECT_EQ(listing->out.find("runner-login"), std::string::npos) << listing->out;

  // Nor is it shown: inspect (JSON) and ls (text and JSON) never show the
  // token.
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"context", "inspect", "es"},
                                             {"context", "ls"},
                                             {"context", "ls", "--format", "json"}}) {
    auto shown = envd_ok(args);
    EXPECT_EQ((shown.out + shown.err).find("envd-5-alice"), std::string::npos)
        << sdk::format_command(args) << "\n"
        << shown.out;
  }
}

// The name goes into the URL's path (/api/v1/users/<name>/keys): one that
// would leave its segment, or put a control character into the request
// line, is refused before the server is asked anything.
TEST_F(EnvdServerTest, ALoginNameThatIsNotOnePathSegmentIsRefused) {
  FakeServer server({"--no-auth"});
  ASSERT_TRUE(server.started());
  create_context(server.url());
  for (const std::string name :
       {"../../admin", "..", "a b?x=1#f", "a\x1b[31m", "a/b", "\xff\xfe"}) {
    SCOPED_TRACE(name);
    auto r = envd({"login", "-u", name});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(one_line(r.err).rfind("envd: error: invalid login name '", 0), 0U) << r.err;
    EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << r.err;
  }
  EXPECT_EQ(server.state().size(), 0U) << json::serialize(server.state());
  EXPECT_FALSE(fs::exists(login_file()));
  // Refused before the SSH key is made (it was made first).
  EXPECT_FALSE(fs::exists(config_dir() / "id_rsa_envd"));
  // What stays in its segment percent-encoded reaches the server as typed
  // (a quote went into the request line raw).
  for (const std::string name : {"a\"b", "j\xc3\xb6rg"}) {
    SCOPED_TRACE(name);
    envd_ok({"login", "-u", name});
    auto state = server.state();
    ASSERT_TRUE(state.contains(name)) << json::serialize(state);
    EXPECT_TRUE(state[name].as_object()["keys"].as_object().contains("default"))
        << json::serialize(state);
  }
}

// Environment names go into the URL's path, and the server names a pod and
// a Service after them: the docker runner holds them to Docker's rule, this
// one to Kubernetes' DNS-1035 label. A space used to break the ~/.ssh/config
// block attach writes; "my.env" or "1abc" made a pod whose Service the
// cluster refused, leaving the pod behind.
TEST_F(EnvdServerTest, AnEnvironmentNameThatIsNoDns1035LabelIsRefused) {
  FakeServer server({"--no-auth"});
  ASSERT_TRUE(server.started());
  create_context(server.url());
  envd_ok({"login", "-u", "alice"});
  for (const std::string& name :
       std::vector<std::string>{"..", "a/b", "a\x1b[31m", "a b", "Dev", "1abc", "my.env", "dev-",
                                std::string(64, 'a')}) {
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {"down", name},
             {"envs", "describe", name},
             {"run", "--image", "registry.local/py:3", "--name", name}}) {
      SCOPED_TRACE(args[0] + " " + name);
      auto r = envd(args);
      EXPECT_EQ(r.exit_code, 1);
      EXPECT_EQ(r.out, "");
      EXPECT_NE(one_line(r.err).find("environment name '"), std::string::npos) << r.err;
      EXPECT_NE(r.err.find("must be 1 to 63 lowercase letters, digits and '-', starting with a "
                           "letter and ending with a letter or digit"),
                std::string::npos)
          << r.err;
      EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << r.err;
    }
  }
  EXPECT_EQ(json::serialize(server.state()["alice"].as_object()["environments"]), "[]");
  envd_ok({"run", "--image", "registry.local/py:3", "--name", std::string(63, 'a')});
}

TEST_F(EnvdServerTest, PasswordLoginReplacesTheTokenAndLogoutRemovesIt) {
  FakeServer server({});
  ASSERT_TRUE(server.started());
  ASSERT_EQ(server.register_user("bob", "s3cret"), 200);
  create_context(server.url());
  auto wrong = envd({"login", "-u", "bob", "--password-stdin"}, {}, "nope\n");
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_EQ(one_line(wrong.err), "envd: error: cannot log in as 'bob': the envd server at " +
                                     server.url() +
                                     " answered 401: crypto/bcrypt: hashedPassword is not the hash "
                                     "of the given password\n");
  EXPECT_FALSE(fs::exists(login_file()));
  EXPECT_EQ((wrong.out + wrong.err).find("nope"), std::string::npos) << "the password is not shown";
  auto unknown = envd({"login", "-u", "carol", "--password-stdin"}, {}, "s3cret\n");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_EQ(one_line(unknown.err),
            "envd: error: cannot log in as 'carol': the envd server at " + server.url() +
                " answered 500 with no reason, as it does for a login name it does not know "
                "(register it first, or check -u)\n");

  auto first = envd({"login", "-u", "bob", "--password-stdin"}, {}, "s3cret\n");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(first.err, "");  // no no-auth warning with a password
  EXPECT_EQ(stored_login()["identity_token"], "envd-2-bob");
  auto second = envd({"login", "-u", "bob", "--password-stdin"}, {}, "s3cret\n");
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(stored_login()["identity_token"], "envd-3-bob");

  // A login file made read-only (or unreadable) is what "run envd login"
  // mends: a new login replaces it with a private one.
  fs::permissions(login_file(), fs::perms::none);
  auto third = envd({"login", "-u", "bob", "--password-stdin"}, {}, "s3cret\n");
  ASSERT_EQ(third.exit_code, 0) << third.err;
  EXPECT_EQ(stored_login()["identity_token"], "envd-4-bob");
  EXPECT_EQ(fs::status(login_file()).permissions(), fs::perms::owner_read | fs::perms::owner_write);

  auto out = envd_ok({"logout"});
  EXPECT_EQ(out.err, "Removed the login of context 'es'\n");
  EXPECT_FALSE(fs::exists(login_file()));
  out = envd_ok({"logout"});
  EXPECT_EQ(out.err, "Not logged in to the envd server of context 'es'\n");
}

TEST_F(EnvdServerTest, DockerRunnerNeedsNoLogin) {
  ENVD_REQUIRE_MODULES("docker runner");
  envd_ok({"context", "create", "--name", "d", "--builder", "tcp", "--builder-address",
           "tcp://127.0.0.1:1", "--use"});
  auto out = envd_ok({"login"});
  EXPECT_EQ(out.err,
            "envd: warning: login is not needed for the docker runner of context 'd', skipping\n");
}

TEST_F(EnvdServerTest, EnvironmentsThroughTheModule) {
  FakeServer server({"--no-auth", "--running-after-ms", "1500", "--terminating-ms", "700"});
  ASSERT_TRUE(server.started());
  create_context(server.url());
  envd_ok({"login", "-u", "carol"});
  auto runner = driver();
  std::string spec = R"({"spec":{"image":"registry.local/py:3","name":"dev","cpus":2}})";

  auto start = std::chrono::steady_clock::now();
  auto created = runner.create(request(server.url(), spec));
  ASSERT_TRUE(created) << created.error().message();
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1400));
  auto env = json::parse(*created).as_object();
  EXPECT_EQ(env["name"], "dev");
  EXPECT_EQ(env["status"], "running");
  EXPECT_EQ(env["image"], "registry.local/py:3");
  EXPECT_EQ(env["endpoint"], "carol/dev@127.0.0.1:2222");
  // The pod's own variables, as the server shows them.
  EXPECT_EQ(env["env"].as_object().at("ENVD_WORKDIR"), "/home/envd/dev");
  // What the server got: upstream's request shape.
  auto stored = server.state()["carol"].as_object()["environments"].as_array()[0].as_object();
  EXPECT_EQ(json::serialize(stored["request"]),
            R"({"name":"dev","spec":{"image":"registry.local/py:3"},)"
            R"("resource":{"gpu":"0","shm":"2048Mi","cpu":"2"}})");

  auto listed = runner.list(request(server.url()));
  ASSERT_TRUE(listed) << listed.error().message();
  auto items = json::parse(*listed).as_array();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].as_object().at("name"), "dev");

  auto found = runner.inspect(request(server.url(), R"({"name":"dev"})"));
  ASSERT_TRUE(found) << found.error().message();
  EXPECT_EQ(json::parse(*found).as_object().at("status"), "running");

  // The server answers a create of a name it has with a 500 after a round
  // trip to Kubernetes: envd looks first.
  auto again = runner.create(request(server.url(), spec));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::already_exists);
  EXPECT_EQ(again.error().message(),
            "runner 'envd-server': cannot create environment 'dev': the envd server at " +
                server.url() + " already has one of that name (pass --force to replace it)");

  // A remove waits until the pod has terminated: until then the name is
  // taken.
  start = std::chrono::steady_clock::now();
  ASSERT_TRUE(runner.remove(request(server.url(), R"({"name":"dev"})")));
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(650));
  auto gone = runner.inspect(request(server.url(), R"({"name":"dev"})"));
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), Errc::not_found);
  EXPECT_EQ(gone.error().message(),
            "runner 'envd-server': cannot get environment 'dev': the envd "
            "server at " +
                server.url() + " answered 404: pods \"dev\" not found");
  // The server answers 200 for a name it has not: envd looks first.
  auto removed = runner.remove(request(server.url(), R"({"name":"dev"})"));
  ASSERT_FALSE(removed);
  EXPECT_EQ(removed.error().code(), Errc::not_found);
  EXPECT_EQ(removed.error().message(),
            "runner 'envd-server': no environment 'dev' on the envd server at " + server.url());
  listed = runner.list(request(server.url()));
  ASSERT_TRUE(listed) << listed.error().message();
  EXPECT_EQ(*listed, "[]");
}

TEST_F(EnvdServerTest, CreateGivesUpAtItsDeadline) {
  FakeServer server({"--no-auth", "--running-after-ms", "60000"});
  ASSERT_TRUE(server.started());
  create_context(server.url());
  envd_ok({"login", "-u", "dan"});
  auto r = request(server.url(), R"({"spec":{"image":"x","name":"slow"}})");
  r.timeout = std::chrono::milliseconds(1500);
  auto created = driver().create(r);
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code(), Errc::timeout);
  EXPECT_EQ(created.error().message(),
            "runner 'envd-server': environment 'slow' on the envd server at " + server.url() +
                " is not running after 1.5 s (phase Pending); it is left as it is (envd down "
                "removes it)");
}

// --force on a name the server has: removed, waited for while its pod
// terminates, created again. The server never answers a create with 409, so
// replacing on a 409 (as before) never happened against it.
TEST_F(EnvdServerTest, ForceReplacesAnEnvironmentOnceItsPodHasGone) {
  FakeServer server({"--no-auth", "--terminating-ms", "800"});
  ASSERT_TRUE(server.started());
  create_context(server.url());
  envd_ok({"login", "-u", "gil"});
  envd_ok({"run", "--image", "registry.local/py:3", "--name", "f1"});
  auto plain = envd({"run", "--image", "registry.local/py:3", "--name", "f1"});
  EXPECT_EQ(plain.exit_code, 1);
  EXPECT_NE(plain.err.find("already has one of that name (pass --force to replace it)"),
            std::string::npos)
      << plain.err;
  auto start = std::chrono::steady_clock::now();
  auto forced = envd({"run", "--image", "registry.local/other:1", "--name", "f1", "--force"});
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(750));
  EXPECT_NE(forced.err.find("waiting for environment 'f1' to be removed"), std::string::npos)
      << forced.err;
  auto envs = server.state()["gil"].as_object()["environments"].as_array();
  ASSERT_EQ(envs.size(), 1u) << json::serialize(envs);
  EXPECT_EQ(envs[0].as_object()["spec"].as_object()["image"], "registry.local/other:1");
}

// What the server's runtime would drop (env, a command, ports, volumes) is refused,
// not sent; nothing is made.
TEST_F(EnvdServerTest, WhatTheServerWouldDropIsRefused) {
  FakeServer server({"--no-auth"});
  ASSERT_TRUE(server.started());
  create_context(server.url());
  envd_ok({"login", "-u", "ida"});
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"-e", "A=1"}, "envd-server does not pass environment variables (-e) to an environment"},
      {{"-p", ":8888"},
       "envd-server publishes the SSH port and the ports the image's envd labels "
       "declare; -p cannot be given"},
      {{"-v", "/srv:/srv"}, "envd-server mounts no host directory or volume (-v)"},
      {{"--cpu-set", "0"}, "envd-server takes no CPU set (--cpu-set)"},
      {{"--cap-add", "SYS_PTRACE"}, "envd-server adds no capability (--cap-add)"},
      {{"--", "sleep", "9"},
       "envd-server runs the image's own command; a command cannot be "
       "given"}};
  for (const auto& [extra, said] : cases) {
    std::vector<std::string> args = {"run", "--image", "registry.local/py:3", "--name", "x"};
    args.insert(args.end(), extra.begin(), extra.end());
    SCOPED_TRACE(sdk::format_command(args));
    auto r = envd(args);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(one_line(r.err).find(said), std::string::npos) << r.err;
  }
  EXPECT_EQ(json::serialize(server.state()["ida"].as_object()["environments"]), "[]");
}

// The server checks a pod's owner label against the login: another user's
// environment is refused with "mismatch loginname" (401 on get, 500 on
// remove), which no new login mends.
TEST_F(EnvdServerTest, AnotherUsersEnvironmentIsSaidToBeTheirs) {
  FakeServer server({});
  ASSERT_TRUE(server.started());
  ASSERT_EQ(server.register_user("erin", "pw"), 200);
  ASSERT_EQ(server.register_user("frank", "pw"), 200);
  create_context(server.url());
  ASSERT_EQ(envd({"login", "-u", "erin", "--password-stdin"}, {}, "pw").exit_code, 0);
  envd_ok({"run", "--image", "registry.local/py:3", "--name", "dev"});
  ASSERT_EQ(envd({"login", "-u", "frank", "--password-stdin"}, {}, "pw").exit_code, 0);
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"envs", "describe", "dev"},
           {"down", "dev"},
           {"run", "--image", "registry.local/py:3", "--name", "dev"}}) {
    SCOPED_TRACE(sdk::format_command(args));
    auto r = envd(args);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(one_line(r.err).find("it belongs to another user of the envd server at " +
                                   server.url() + " (it answered 401: mismatch loginname)"),
              std::string::npos)
        << r.err;
    EXPECT_EQ(r.err.find("run envd login"), std::string::npos) << r.err;
  }
  EXPECT_EQ(server.state()["erin"].as_object()["environments"].as_array().size(), 1u);
}

TEST_F(EnvdServerTest, ATokenTheServerRefusesSaysRunEnvdLogin) {
  FakeServer server({});
  ASSERT_TRUE(server.started());
  ASSERT_EQ(server.register_user("erin", "pw"), 200);
  create_context(server.url());
  auto runner = driver();
  auto listed = runner.list(request(server.url()));
  ASSERT_FALSE(listed);
  EXPECT_EQ(listed.error().code(), Errc::permission);
  EXPECT_EQ(listed.error().message(), "runner 'envd-server': not logged in to the envd server at " +
                                          server.url() + " in context 'es'; run envd login");

  auto in = envd({"login", "-u", "erin", "--password-stdin"}, {}, "pw");
  ASSERT_EQ(in.exit_code, 0) << in.err;
  ASSERT_TRUE(runner.list(request(server.url())));
  // A token the server does not know (expired, or from before a restart).
  auto login = stored_login();
  login["identity_token"] = "envd-99-erin";
  write_text(login_file(), json::serialize(login));
  listed = runner.list(request(server.url()));
  ASSERT_FALSE(listed);
  EXPECT_EQ(listed.error().code(), Errc::permission);
  EXPECT_EQ(listed.error().message(),
            "runner 'envd-server': cannot list environments: the envd "
            "server at " +
                server.url() + " answered 401: the token is invalid; run envd login");
  // Another user's token is refused too.
  ASSERT_EQ(server.register_user("frank", "pw"), 200);
  auto other = envd({"login", "-u", "frank", "--password-stdin"}, {}, "pw");
  ASSERT_EQ(other.exit_code, 0) << other.err;
  login = stored_login();
  login["login_name"] = "erin";
  write_text(login_file(), json::serialize(login));
  listed = runner.list(request(server.url()));
  ASSERT_FALSE(listed);
  EXPECT_NE(listed.error().message().find("answered 401: the token is not for user erin"),
            std::string::npos)
      << listed.error().message();
}

TEST_F(EnvdServerTest, AnUnreachableServerIsOneLine) {
  create_context("http://127.0.0.1:1");
  auto out = envd({"login", "-u", "x"});
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_EQ(one_line(out.err),
            "envd: error: cannot connect to the envd server at http://127.0.0.1:1: connection "
            "refused (is the envd server running?)\n");
  // The module says whether it runs.
  write_text(login_file(),
             R"({"server":"http://127.0.0.1:1","login_name":"x","identity_token":"t"})");
  auto listed = driver().list(request("http://127.0.0.1:1"));
  ASSERT_FALSE(listed);
  EXPECT_EQ(listed.error().code(), Errc::unavailable);
  EXPECT_EQ(listed.error().message(),
            "runner 'envd-server': cannot connect to the envd server at http://127.0.0.1:1: "
            "connection refused (is the envd server running?)");
}

TEST_F(EnvdServerTest, APasswordInEnvdServerHostIsRefusedAndNotEchoed) {
  // A context without --runner-address takes the server from ENVD_SERVER_HOST.
  envd_ok({"context", "create", "--name", "es", "--builder", "tcp", "--builder-address",
           "tcp://127.0.0.1:1", "--runner", "envd-server", "--use"});
  // A password, one with a '/' (not percent-encoded), and a scheme that is
  // not HTTP: each refused before anything is made, no secret repeated.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"http://me:s3cret@127.0.0.1:1",
       "the envd server address 'http://me:xxxxx@127.0.0.1:1' (from ENVD_SERVER_HOST) is "
       "invalid: a password in the address is not allowed\n"},
      {"http://me:s3/cret@127.0.0.1:1",
       "the envd server address 'http://me:xxxxx@127.0.0.1:1' (from ENVD_SERVER_HOST) is "
       "invalid: port 's3' is not a number from 1 to 65535\n"},
      {"tcp://127.0.0.1:1",
       "the envd server address 'tcp://127.0.0.1:1' (from ENVD_SERVER_HOST) is invalid: it is "
       "not an http:// or https:// URL\n"},
      // What --runner-address refuses is refused here too (they were taken).
      {"http://me@127.0.0.1:1",
       "the envd server address 'http://me@127.0.0.1:1' (from ENVD_SERVER_HOST) is invalid: a "
       "user name is not accepted (log in with envd login)\n"},
      {"http://127.0.0.1:1/?x=1",
       "the envd server address 'http://127.0.0.1:1/?x=1' (from ENVD_SERVER_HOST) is invalid: "
       "query parameters are not accepted\n"}};
  for (const auto& [address, said] : cases) {
    SCOPED_TRACE(address);
    std::map<std::string, std::optional<std::string>> env = {{"ENVD_SERVER_HOST", address}};
    auto login = envd({"login", "-u", "x"}, env);
    EXPECT_EQ(login.exit_code, 1);
    EXPECT_EQ(one_line(login.err), "envd: error: " + said) << login.err;
    // Refused before anything is made: no SSH key, no login.
    EXPECT_FALSE(fs::exists(config_dir() / "id_rsa_envd"));
    EXPECT_FALSE(fs::exists(login_file()));
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"envs", "ls"}, {"envs", "ls", "--format", "json"}}) {
      auto out = envd(args, env);
      EXPECT_EQ(out.exit_code, 1);
      EXPECT_EQ(one_line(out.err), "envd: error: runner 'envd-server': " + said) << out.err;
      EXPECT_EQ(out.err.find("cret"), std::string::npos) << out.err;
    }
  }
}

// ENVD_SERVER_HOST is read as a context's address is stored: a trailing '/'
// made every path start with "//", which the server's router does not take.
TEST_F(EnvdServerTest, EnvdServerHostWithATrailingSlashIsTheServer) {
  FakeServer server({"--no-auth"});
  ASSERT_TRUE(server.started());
  envd_ok({"context", "create", "--name", "es", "--builder", "tcp", "--builder-address",
           "tcp://127.0.0.1:1", "--runner", "envd-server", "--use"});
  std::map<std::string, std::optional<std::string>> env = {
      {"ENVD_SERVER_HOST", server.url() + "/"}};
  auto login = envd({"login", "-u", "jo"}, env);
  ASSERT_EQ(login.exit_code, 0) << login.err;
  EXPECT_EQ(stored_login()["server"], json::value(server.url()));
  auto ls = envd({"envs", "ls"}, env);
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
}

// The token goes back in a header on every call: one holding CR LF would
// have let the server's text pass for headers, or a request, of envd's own.
TEST_F(EnvdServerTest, ATokenHoldingAControlCharacterIsNotStored) {
  FakeServer server({"--no-auth", "--token-prefix", "tok\r\nX-Injected: yes\r\n\r\nGET /x "});
  ASSERT_TRUE(server.started());
  create_context(server.url());
  auto r = envd({"login", "-u", "kim"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(one_line(r.err), "envd: error: the envd server at " + server.url() +
                                 " answered the login with an identity_token holding a control "
                                 "or non-ASCII character; it is not stored\n");
  EXPECT_FALSE(fs::exists(login_file()));
  // One stored by hand is refused by the module before it reaches the wire.
  write_text(login_file(), R"({"server":")" + server.url() +
                               R"(","login_name":"kim","identity_token":"t\r\nX: y"})");
  auto ls = envd({"envs", "ls"});
  EXPECT_EQ(ls.exit_code, 1);
  EXPECT_NE(ls.err.find("the value of header 'Authorization' holds a control character"),
            std::string::npos)
      << ls.err;
}

// A server that takes connections (the kernel's backlog) and never answers:
// a hung envd server. Every runner command gives up at its --timeout.
TEST_F(EnvdServerTest, ASilentServerIsGivenUpAtTheTimeoutFlag) {
  int port = 0;
  int listener = listen_loopback(&port);
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  create_context(url);
  write_text(login_file(), R"({"server":")" + url +
                               R"(","login_name":"x","identity_token":"t","identity_file":"/k"})");

  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"envs", "ls", "--timeout", "1s"},
        {"envs", "describe", "dev", "--timeout", "1s"},
        {"down", "dev", "--timeout=1s"},
        {"attach", "dev", "--timeout", "1s"},
        {"login", "-u", "x", "--password-stdin", "--timeout", "1s"}}) {
    SCOPED_TRACE(args[0] + " " + args[1]);
    const auto started = std::chrono::steady_clock::now();
    auto out = envd(args, {}, "pw\n");
    const auto took = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(out.exit_code, 1);
    EXPECT_NE(one_line(out.err).find("the envd server at " + url + " did not answer"),
              std::string::npos)
        << out.err;
    EXPECT_GE(took, std::chrono::milliseconds(900));
    EXPECT_LT(took, std::chrono::seconds(10)) << "the 30 s default was used";
  }
  ::close(listener);
}

// A CA and a server certificate for 127.0.0.1 signed by it, and another CA.
struct Certificates {
  fs::path dir, ca, other_ca, cert, key;
};

Certificates make_certificates(const fs::path& dir) {
  Certificates c{dir, dir / "ca.pem", dir / "other-ca.pem", dir / "server.pem", dir / "server.key"};
  std::string d = dir.string();
  sdk::ProcessOptions options;
  options.argv = {
      "bash", "-c",
      "set -e; cd '" + d +
          "'\n"
          "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
          "-subj /CN=envd-test-ca 2>/dev/null\n"
          "openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem -days "
          "2 "
          "-subj /CN=envd-other-ca 2>/dev/null\n"
          "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
          "-subj /CN=127.0.0.1 2>/dev/null\n"
          "printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf\n"
          "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
          "-out server.pem -days 2 -extfile ext.cnf 2>/dev/null\n"};
  options.timeout = std::chrono::seconds(60);
  auto made = sdk::run_process(options);
  EXPECT_TRUE(made && made->exit_code == 0) << (made ? made->err : made.error().message());
  return c;
}

TEST_F(EnvdServerTest, HttpsIsVerifiedAgainstTheGivenCa) {
  fs::create_directories(home() / "certs");
  auto certs = make_certificates(home() / "certs");
  FakeServer server(
      {"--no-auth", "--tls-cert", certs.cert.string(), "--tls-key", certs.key.string()}, true);
  ASSERT_TRUE(server.started());
  create_context(server.url());
  fs::create_directories(data_dir());
  write_text(login_file(),
             R"({"server":")" + server.url() + R"(","login_name":"g","identity_token":"t"})");
  auto runner = driver();

  auto r = request(server.url());
  r.options["runner-tls-ca"] = certs.ca.string();
  auto listed = runner.list(r);
  ASSERT_TRUE(listed) << listed.error().message();
  EXPECT_EQ(*listed, "[]");

  r.options["runner-tls-ca"] = certs.other_ca.string();
  listed = runner.list(r);
  ASSERT_FALSE(listed);
  EXPECT_EQ(listed.error().code(), Errc::unavailable);
  EXPECT_EQ(listed.error().message(),
            "runner 'envd-server': cannot connect to the envd server at " + server.url() +
                " over TLS: its certificate is not signed by the CA "
                "in '" +
                certs.other_ca.string() + "'");

  // Without a CA: the system's, which do not know the test CA.
  r.options.clear();
  listed = runner.list(r);
  ASSERT_FALSE(listed);
  EXPECT_EQ(listed.error().message(),
            "runner 'envd-server': cannot connect to the envd server at " + server.url() +
                " over TLS: its certificate is not signed by the "
                "system's CA certificates");
}

// The CA given with --runner-tls-ca is copied into the store and used by
// `envd login`; another CA is refused.
TEST_F(EnvdServerTest, RunnerTlsCaIsStoredAndUsedByLogin) {
  fs::create_directories(home() / "certs");
  auto certs = make_certificates(home() / "certs");
  FakeServer server(
      {"--no-auth", "--tls-cert", certs.cert.string(), "--tls-key", certs.key.string()}, true);
  ASSERT_TRUE(server.started());
  create_context(server.url(), {"--runner-tls-ca", certs.ca.string()});
  fs::path stored = data_dir() / "files" / "runner-tls-ca";
  EXPECT_EQ(read_text(stored), read_text(certs.ca));
  EXPECT_EQ(mode_of(stored), 0600u);
  json::object store = read_store();
  EXPECT_EQ(json::serialize(store["contexts"].as_array()[1].as_object()["runner_options"]),
            R"({"runner-tls-ca":"files/runner-tls-ca"})");
  auto in = envd({"login", "-u", "tls"});
  ASSERT_EQ(in.exit_code, 0) << in.err;

  envd_ok({"context", "update", "es", "--runner-tls-ca", certs.other_ca.string()});
  EXPECT_EQ(read_text(stored), read_text(certs.other_ca));
  auto refused = envd({"login", "-u", "tls"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(one_line(refused.err), "envd: error: cannot connect to the envd server at " +
                                       server.url() +
                                       " over TLS: its certificate is not signed by the CA in '" +
                                       stored.string() + "'\n");
  // A CA file OpenSSL cannot read is refused, the stored one kept.
  fs::path cut = home() / "certs" / "cut.pem";
  write_text(cut, read_text(certs.ca).substr(0, 120) + "\n-----END CERTIFICATE-----\n");
  auto unreadable = envd({"context", "update", "es", "--runner-tls-ca", cut.string()});
  EXPECT_EQ(unreadable.exit_code, 1);
  EXPECT_EQ(unreadable.err.rfind("envd: error: --runner-tls-ca '" + cut.string() +
                                     "' cannot be read as a certificate: ",
                                 0),
            0U)
      << unreadable.err;
  EXPECT_EQ(read_text(stored), read_text(certs.other_ca));
  // A plain http:// address has no TLS for a CA to verify: refused, with
  // the CA given, and with the address moved to http:// under a stored one.
  const std::string plain = "http://127.0.0.1:1";
  const std::string plain_refusal =
      "envd: error: --runner-tls-ca verifies an https:// runner, but the runner address '" + plain +
      "' is plain HTTP: give an https:// address, or remove the CA (--runner-tls-ca '')\n";
  auto over_http = envd({"context", "create", "--name", "h", "--builder", "tcp",
                         "--builder-address", "tcp://127.0.0.1:1", "--runner", "envd-server",
                         "--runner-address", plain, "--runner-tls-ca", certs.ca.string()});
  EXPECT_EQ(over_http.exit_code, 1);
  EXPECT_EQ(over_http.err, plain_refusal);
  auto moved = envd({"context", "update", "es", "--runner-address", plain});
  EXPECT_EQ(moved.exit_code, 1);
  EXPECT_EQ(moved.err, plain_refusal);
  EXPECT_EQ(read_text(stored), read_text(certs.other_ca));
  // Removing it falls back to the system's CAs.
  envd_ok({"context", "update", "es", "--runner-tls-ca", ""});
  EXPECT_FALSE(fs::exists(stored));
  // Another runner type drops the option and its file.
  envd_ok({"context", "update", "es", "--runner-tls-ca", certs.ca.string()});
  EXPECT_TRUE(fs::exists(stored));
  ENVD_REQUIRE_MODULES("docker runner");
  envd_ok({"context", "update", "es", "--runner", "docker", "--runner-address", ""});
  EXPECT_FALSE(fs::exists(stored));
  store = read_store();
  EXPECT_FALSE(store["contexts"].as_array()[1].as_object().contains("runner_options"))
      << json::serialize(store);
  // A runner that takes no CA says so.
  auto docker = envd({"context", "create", "--name", "d", "--builder", "tcp", "--builder-address",
                      "tcp://127.0.0.1:1", "--runner-tls-ca", certs.ca.string()});
  EXPECT_EQ(docker.exit_code, 1);
  EXPECT_EQ(one_line(docker.err),
            "envd: error: the 'docker' runner takes no TLS material (--runner-tls-ca)\n");
}

// The runner commands (envd run, envs ls/describe, down) on envd-server.
TEST_F(EnvdServerTest, RunnerCommandsThroughTheBinary) {
  FakeServer server({"--no-auth", "--running-after-ms", "200"});
  ASSERT_TRUE(server.started());
  create_context(server.url());
  envd_ok({"login", "-u", "hana"});
  auto run = envd_ok({"run", "--image", "registry.local/py:3", "--name", "dev"});
  EXPECT_EQ(run.out, "dev\n");
  auto ls = envd_ok({"envs", "ls", "--format", "json"});
  auto items = json::parse(ls.out).as_array();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].as_object().at("endpoint"), "hana/dev@127.0.0.1:2222");
  auto described = envd_ok({"envs", "describe", "dev"});
  EXPECT_NE(described.out.find("running"), std::string::npos) << described.out;
  // The endpoint names the gateway's port, as attach reaches it.
  envd_ok({"context", "update", "es", "--runner-opt", "ssh-port=2022"});
  ls = envd_ok({"envs", "ls", "--format", "json"});
  EXPECT_EQ(json::parse(ls.out).as_array().at(0).as_object().at("endpoint"),
            "hana/dev@127.0.0.1:2022");
  EXPECT_EQ(envd_ok({"down", "dev"}).out, "dev\n");
  auto missing = envd({"down", "dev"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(one_line(missing.err),
            "envd: error: runner 'envd-server': no environment 'dev' on "
            "the envd server at " +
                server.url() + "\n");

  // A name with a terminal escape is refused before the server is asked:
  // shown, not obeyed.
  auto hostile = envd({"down", "dev\x1b[2J"});
  EXPECT_EQ(hostile.exit_code, 1);
  EXPECT_EQ(hostile.err.find('\x1b'), std::string::npos) << hostile.err;
  EXPECT_NE(hostile.err.find("environment name 'dev\\x1b[2J' is invalid"), std::string::npos)
      << hostile.err;
}

// envd attach on envd-server: OpenSSH to the gateway as <login>/<env> with
// the key login uploaded, on a real terminal; the exit code comes back, the
// ~/.ssh/config block is written once and replaced, not duplicated, and the
// gateway's host key is kept per context (trust on first use).
// An SSH gateway that takes the connection and never greets: attach gives
// up when its --timeout is spent (ssh's ConnectTimeout), not never.
TEST_F(EnvdServerTest, AttachGivesUpOnASilentGatewayAtItsTimeout) {
  FakeServer server({"--no-auth"});
  ASSERT_TRUE(server.started());
  create_context(server.url());
  envd_ok({"login", "-u", "alice"});
  envd_ok({"run", "--image", "registry.local/py:3", "--name", "dev"});
  int port = 0;
  int gateway = listen_loopback(&port);
  envd_ok({"context", "update", "es", "--runner-opt", "ssh-port=" + std::to_string(port)});
  const auto started = std::chrono::steady_clock::now();
  auto out = envd({"attach", "dev", "--timeout", "2s"});
  const auto took = std::chrono::steady_clock::now() - started;
  ::close(gateway);
  EXPECT_EQ(out.exit_code, 255) << out.err;  // ssh's own status for a connection failure
  EXPECT_NE(out.err.find("timed out"), std::string::npos) << out.err;
  EXPECT_LT(took, std::chrono::seconds(15)) << out.err;
}

TEST_F(EnvdServerTest, AttachSshesToTheGatewayAndWritesTheSshConfigBlock) {
  FakeServer server({"--no-auth"});
  ASSERT_TRUE(server.started());
  create_context(server.url());
  envd_ok({"login", "-u", "alice"});
  envd_ok({"run", "--image", "registry.local/py:3", "--name", "dev"});

  // The gateway accepts only the key the server holds for alice.
  auto state = server.state();
  std::string uploaded(state["alice"].as_object()["keys"].as_object()["default"].as_string());
  write_text(home() / "authorized.pub", uploaded + "\n");
  SshGateway gateway("alice/dev", home() / "authorized.pub");
  ASSERT_GT(gateway.port(), 0);
  envd_ok(
      {"context", "update", "es", "--runner-opt", "ssh-port=" + std::to_string(gateway.port())});
  std::string user_config = "Host elsewhere\n  User someone\n";
  write_text(home() / ".ssh" / "config", user_config);

  auto session = PtySession::start(
      {"/bin/sh", "-c", std::string(envd_binary()) + " attach dev; echo attach-exit=$?"},
      full_env(), 30, 90);
  ASSERT_TRUE(session);
  session->type("echo user=$ENVD_GATEWAY_USER; stty size\r");
  EXPECT_TRUE(session->wait_for("user=alice/dev", std::chrono::seconds(20))) << session->output();
  EXPECT_TRUE(session->wait_for("30 90", std::chrono::seconds(10))) << session->output();
  session->resize(41, 121);
  bool resized = false;
  for (int attempt = 0; attempt < 10 && !resized; ++attempt) {
    std::size_t from = session->output().size();
    session->type("stty size\r");
    resized = session->wait_for("41 121", std::chrono::seconds(1), from);
  }
  EXPECT_TRUE(resized) << session->output();
  session->type("exit 6\r");
  EXPECT_TRUE(session->wait_for("attach-exit=6", std::chrono::seconds(20))) << session->output();
  session.reset();

  std::string config = read_text(home() / ".ssh" / "config");
  EXPECT_EQ(config.rfind(user_config, 0), 0u) << config;
  EXPECT_NE(config.find("Host dev.envd\n"), std::string::npos) << config;
  EXPECT_NE(config.find("  User alice/dev\n"), std::string::npos) << config;
  EXPECT_NE(config.find("  Port " + std::to_string(gateway.port()) + "\n"), std::string::npos)
      << config;
  EXPECT_NE(config.find("IdentityFile \"" + (config_dir() / "id_rsa_envd").string() + "\""),
            std::string::npos)
      << config;
  EXPECT_EQ(mode_of(home() / ".ssh" / "config"), 0644u);  // the user's file keeps its mode
  EXPECT_FALSE(read_text(data_dir() / "ssh_known_hosts").empty());

  // Without a terminal: plain streams; the block is replaced, not added again.
  auto piped = envd({"attach", "dev"}, {}, "echo piped-$((2+3)); exit 2\n");
  EXPECT_EQ(piped.exit_code, 2) << piped.err;
  EXPECT_EQ(piped.out, "piped-5\n");
  std::string again = read_text(home() / ".ssh" / "config");
  EXPECT_EQ(again, config);

  // The editor's way in: plain ssh with the block envd wrote.
  sdk::ProcessOptions ssh;
  ssh.argv = {"ssh", "-F", (home() / ".ssh" / "config").string(), "dev.envd", "echo", "via-config"};
  auto via = sdk::run_process(ssh);
  ASSERT_TRUE(via);
  EXPECT_EQ(via->exit_code, 0) << via->err;
  EXPECT_EQ(via->out, "via-config\n");

  // An environment the server does not have: the server's answer, one line.
  auto missing = envd({"attach", "nope"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(one_line(missing.err).find("cannot get environment 'nope'"), std::string::npos)
      << missing.err;
  // logs: the API has no endpoint for them, said plainly.
  auto logs = envd({"envs", "logs", "dev"});
  EXPECT_EQ(logs.exit_code, 1);
  EXPECT_NE(one_line(logs.err).find("has no endpoint for an environment's logs"), std::string::npos)
      << logs.err;
}

// A key the gateway does not hold is refused by the gateway, and ssh's own
// words and exit status (255) reach the user.
TEST_F(EnvdServerTest, AttachWithAKeyTheGatewayRefusesFails) {
  FakeServer server({"--no-auth"});
  ASSERT_TRUE(server.started());
  create_context(server.url());
  envd_ok({"login", "-u", "alice"});
  envd_ok({"run", "--image", "registry.local/py:3", "--name", "dev"});
  sdk::ProcessOptions keygen;
  keygen.argv = {"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", (home() / "other").string()};
  ASSERT_TRUE(sdk::run_process(keygen));
  SshGateway gateway("alice/dev", home() / "other.pub");
  ASSERT_GT(gateway.port(), 0);
  envd_ok(
      {"context", "update", "es", "--runner-opt", "ssh-port=" + std::to_string(gateway.port())});
  auto refused = envd({"attach", "dev"}, {}, "exit 0\n");
  EXPECT_EQ(refused.exit_code, 255) << refused.err;
  EXPECT_NE(refused.err.find("Permission denied"), std::string::npos) << refused.err;

  auto bad = envd({"context", "update", "es", "--runner-opt", "ssh-port=70000"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("ssh-port '70000' is not a port number"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace envd::test
