#include "buildkit/auth.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <string>

#include "buildkit/attachables_test_support.hpp"
#include "github.com/moby/buildkit/session/auth/auth.grpc.pb.h"
#include "util/test_support.hpp"

namespace envd::buildkit {
namespace {

namespace fs = std::filesystem;
using util::testing::ScopedEnv;
using util::testing::TempDir;
using util::testing::write_text;

class AuthTest : public ::testing::Test {
 protected:
  AuthOptions options() const {
    AuthOptions o;
    o.config_dir = config_.path();
    o.helper_timeout = std::chrono::seconds(5);
    return o;
  }
  void config(const std::string& json) { write_text(config_ / "config.json", json); }

  // Installs docker-credential-<name> printing `output` (after checking the
  // server address it got on stdin) and exiting with `code`.
  void helper(const std::string& name, const std::string& expected_key, const std::string& output,
              int code = 0) {
    auto path = bin_ / ("docker-credential-" + name);
    write_text(path,
               "#!/bin/sh\n"
               "[ \"$1\" = get ] || exit 3\n"
               "read -r key\n"
               "if [ \"$key\" != '" +
                   expected_key +
                   "' ]; then echo \"wrong key $key\"; exit 4; fi\n"
                   "printf '%s' '" +
                   output +
                   "'\n"
                   "exit " +
                   std::to_string(code) + "\n");
    ::chmod(path.c_str(), 0755);
  }

  TempDir config_;
  TempDir bin_;
  ScopedEnv path_{"PATH", bin_.path().string() + ":" + std::getenv("PATH")};
};

TEST_F(AuthTest, ConfigKeyForDockerHub) {
  EXPECT_EQ(docker_config_key("registry-1.docker.io"), "https://index.docker.io/v1/");
  EXPECT_EQ(docker_config_key("docker.io"), "https://index.docker.io/v1/");
  EXPECT_EQ(docker_config_key("index.docker.io"), "https://index.docker.io/v1/");
  EXPECT_EQ(docker_config_key("ghcr.io"), "ghcr.io");
  EXPECT_EQ(docker_config_key("localhost:5000"), "localhost:5000");
}

TEST_F(AuthTest, AuthsEntries) {
  // "dXNlcjpwYTpzcw==" is base64("user:pa:ss").
  config(R"({"auths": {
    "https://index.docker.io/v1/": {"auth": "dXNlcjpwYTpzcw=="},
    "localhost:5000": {"username": "local", "password": "secret"},
    "https://ghcr.io/v2/": {"auth": "Z2g6dG9r"},
    "tokens.example.com": {"identitytoken": "refresh-token", "auth": "dXNlcjpwYTpzcw=="},
    "empty.example.com": {}
  }})");
  AuthProvider provider(options());
  auto hub = provider.credentials("registry-1.docker.io");
  EXPECT_EQ(hub.username, "user");
  EXPECT_EQ(hub.secret, "pa:ss");
  EXPECT_EQ(provider.credentials("docker.io").username, "user");
  auto local = provider.credentials("localhost:5000");
  EXPECT_EQ(local.username, "local");
  EXPECT_EQ(local.secret, "secret");
  auto ghcr = provider.credentials("ghcr.io");
  EXPECT_EQ(ghcr.username, "gh");
  EXPECT_EQ(ghcr.secret, "tok");
  auto token = provider.credentials("tokens.example.com");
  EXPECT_EQ(token.username, "");
  EXPECT_EQ(token.secret, "refresh-token");
  EXPECT_TRUE(provider.credentials("empty.example.com").empty());
  EXPECT_TRUE(provider.credentials("quay.io").empty());
  EXPECT_TRUE(provider.credentials("localhost:5001").empty());
}

TEST_F(AuthTest, HubEntryWrittenAsHost) {
  config(R"({"auths": {"docker.io": {"username": "u", "password": "p"}}})");
  EXPECT_EQ(AuthProvider(options()).credentials("registry-1.docker.io").username, "u");
}

TEST_F(AuthTest, CredentialHelperPerRegistry) {
  helper("fake", "registry.example.com",
         R"({"ServerURL":"registry.example.com","Username":"helper-user","Secret":"helper-pass"})");
  config(R"({"credHelpers": {"registry.example.com": "fake"},
             "auths": {"other.example.com": {"username": "o", "password": "p"}}})");
  AuthProvider provider(options());
  auto creds = provider.credentials("registry.example.com");
  EXPECT_EQ(creds.username, "helper-user");
  EXPECT_EQ(creds.secret, "helper-pass");
  EXPECT_EQ(provider.credentials("other.example.com").username, "o");
}

TEST_F(AuthTest, CredsStoreWithIdentityToken) {
  helper("store", "https://index.docker.io/v1/",
         R"({"ServerURL":"https://index.docker.io/v1/","Username":"<token>","Secret":"idtoken"})");
  config(R"({"credsStore": "store"})");
  auto creds = AuthProvider(options()).credentials("registry-1.docker.io");
  EXPECT_EQ(creds.username, "");
  EXPECT_EQ(creds.secret, "idtoken");
}

TEST_F(AuthTest, HelperWithoutCredentialsIsEmpty) {
  helper("store", "ghcr.io", "credentials not found in native keychain", 1);
  config(R"({"credsStore": "store"})");
  auto creds = lookup_registry_credentials(options(), "ghcr.io");
  ASSERT_TRUE(creds.ok()) << creds.error().message();
  EXPECT_TRUE(creds->empty());
}

TEST_F(AuthTest, FailingHelperIsAnErrorButAnEmptyAnswer) {
  helper("broken", "ghcr.io", "boom", 2);
  config(R"({"credsStore": "broken"})");
  auto creds = lookup_registry_credentials(options(), "ghcr.io");
  ASSERT_FALSE(creds.ok());
  EXPECT_NE(creds.error().message().find("docker-credential-broken"), std::string::npos);
  EXPECT_TRUE(AuthProvider(options()).credentials("ghcr.io").empty());
}

TEST_F(AuthTest, MissingHelperIsAnError) {
  config(R"({"credsStore": "does-not-exist"})");
  auto creds = lookup_registry_credentials(options(), "ghcr.io");
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.error().code(), Errc::not_found);
}

TEST_F(AuthTest, MissingConfigIsNoCredentials) {
  auto creds = lookup_registry_credentials(options(), "ghcr.io");
  ASSERT_TRUE(creds.ok());
  EXPECT_TRUE(creds->empty());
}

TEST_F(AuthTest, CorruptConfigIsAnErrorButAnEmptyAnswer) {
  config("{not json");
  auto creds = lookup_registry_credentials(options(), "ghcr.io");
  ASSERT_FALSE(creds.ok());
  EXPECT_NE(creds.error().message().find("config.json"), std::string::npos);
  ::testing::internal::CaptureStderr();
  ::testing::internal::CaptureStdout();
  AuthProvider provider(options());
  EXPECT_TRUE(provider.credentials("ghcr.io").empty());
  EXPECT_TRUE(provider.credentials("ghcr.io").empty());
  std::string out = ::testing::internal::GetCapturedStdout();
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(out, "");
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
}

TEST_F(AuthTest, DockerConfigEnvironment) {
  config(R"({"auths": {"ghcr.io": {"username": "env", "password": "p"}}})");
  ScopedEnv env("DOCKER_CONFIG", config_.path().string());
  EXPECT_EQ(AuthProvider().credentials("ghcr.io").username, "env");
  TempDir home;
  fs::create_directories(home / ".docker");
  write_text(home / ".docker/config.json",
             R"({"auths": {"ghcr.io": {"username": "home", "password": "p"}}})");
  ScopedEnv no_env("DOCKER_CONFIG", std::nullopt);
  ScopedEnv home_env("HOME", home.path().string());
  EXPECT_EQ(AuthProvider().credentials("ghcr.io").username, "home");
}

TEST_F(AuthTest, ServesCredentialsOverGrpc) {
  config(R"({"auths": {"localhost:5000": {"username": "u", "password": "p"}}})");
  AuthProvider provider(options());
  EXPECT_EQ(provider.methods(), std::vector<std::string>{"/moby.filesync.v1.Auth/Credentials"});
  TempDir sock;
  testing::LoopbackServer server(sock.path(), {&provider});
  ASSERT_TRUE(server.started());
  auto stub = moby::filesync::v1::Auth::NewStub(server.channel());
  {
    grpc::ClientContext context;
    moby::filesync::v1::CredentialsRequest request;
    moby::filesync::v1::CredentialsResponse response;
    request.set_host("localhost:5000");
    auto status = stub->Credentials(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.username(), "u");
    EXPECT_EQ(response.secret(), "p");
  }
  {
    grpc::ClientContext context;
    moby::filesync::v1::CredentialsRequest request;
    moby::filesync::v1::CredentialsResponse response;
    request.set_host("unknown.example.com");
    ASSERT_TRUE(stub->Credentials(&context, request, &response).ok());
    EXPECT_EQ(response.username(), "");
    EXPECT_EQ(response.secret(), "");
  }
  {
    grpc::ClientContext context;
    moby::filesync::v1::GetTokenAuthorityRequest request;
    moby::filesync::v1::GetTokenAuthorityResponse response;
    EXPECT_EQ(stub->GetTokenAuthority(&context, request, &response).error_code(),
              grpc::StatusCode::UNIMPLEMENTED);
  }
}

}  // namespace
}  // namespace envd::buildkit
