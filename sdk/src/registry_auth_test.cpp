#include "envd/registry_auth.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "base64.hpp"
#include "test_support.hpp"

namespace envd::sdk {
namespace {

TEST(RegistryAuthHeader, NoCredentialsIsAnEmptyObject) {
  EXPECT_EQ(registry_auth_header({}, "127.0.0.1:5000"), "e30=");
  EXPECT_EQ(base64_decode("e30=").value(), "{}");
}

TEST(RegistryAuthHeader, UserAndPasswordAreUrlSafeBase64OfTheAuthConfig) {
  // The password's bytes make '/' and '+' in the standard alphabet.
  EXPECT_EQ(registry_auth_header({"envd", "?>?>?"}, "127.0.0.1:5000"),
            "eyJ1c2VybmFtZSI6ImVudmQiLCJwYXNzd29yZCI6Ij8-Pz4_Iiwic2VydmVyYWRkcmVzcyI6IjEyNy4wLjAu"
            "MTo1MDAwIn0=");
  EXPECT_EQ(base64_decode(registry_auth_header({"envd", "?>?>?"}, "127.0.0.1:5000")).value(),
            R"({"username":"envd","password":"?>?>?","serveraddress":"127.0.0.1:5000"})");
}

TEST(RegistryAuthHeader, AnIdentityTokenIsSentAsSuch) {
  EXPECT_EQ(registry_auth_header({"", "tok/en+"}, "https://index.docker.io/v1/"),
            "eyJpZGVudGl0eXRva2VuIjoidG9rL2VuKyIsInNlcnZlcmFkZHJlc3MiOiJodHRwczovL2luZGV4LmRvY2tl"
            "ci5pby92MS8ifQ==");
}

TEST(RegistryAuthHeader, CredentialsFromADockerConfigAuthsEntry) {
  TempDir dir;
  dir.write("config.json", R"({"auths": {"127.0.0.1:5000": {"auth": "ZW52ZDo/Pj8+Pw=="}}})",
            fs::perms::owner_read | fs::perms::owner_write);
  RegistryAuthOptions options;
  options.config_dir = dir.path();
  auto header = registry_auth_header_for("127.0.0.1:5000", options);
  ASSERT_TRUE(header) << header.error().message();
  EXPECT_EQ(*header,
            "eyJ1c2VybmFtZSI6ImVudmQiLCJwYXNzd29yZCI6Ij8-Pz4_Iiwic2VydmVyYWRkcmVzcyI6IjEyNy4wLjAu"
            "MTo1MDAwIn0=");
}

// The header for 127.0.0.1:5000 with a credsStore helper, the shell
// script `script`, first on PATH.
Result<std::string> header_from_helper(const std::string& script) {
  TempDir dir;
  dir.write("docker-credential-envdtest", script, fs::perms::owner_all);
  dir.write("config.json", R"({"credsStore": "envdtest"})",
            fs::perms::owner_read | fs::perms::owner_write);
  std::string old_path = std::getenv("PATH") != nullptr ? std::getenv("PATH") : "";
  ::setenv("PATH", (dir.path().string() + ":" + old_path).c_str(), 1);
  RegistryAuthOptions options;
  options.config_dir = dir.path();
  auto header = registry_auth_header_for("127.0.0.1:5000", options);
  ::setenv("PATH", old_path.c_str(), 1);
  return header;
}

TEST(RegistryAuthHeader, ComesFromACredentialHelperForDriversToo) {
  // A credsStore helper on PATH answers for every registry; drivers that pull
  // (the docker-container builder) get the same header as the core's push.
  auto header = header_from_helper(
      "#!/bin/sh\nread key\n"
      "printf '{\"ServerURL\":\"%s\",\"Username\":\"helper-user\",\"Secret\":\"s3cret\"}' "
      "\"$key\"\n");
  ASSERT_TRUE(header) << header.error().message();
  EXPECT_EQ(base64_decode(*header).value(),
            R"({"username":"helper-user","password":"s3cret","serveraddress":"127.0.0.1:5000"})");
}

// A helper that writes without end is stopped at 1 MiB and named, instead
// of being read until memory runs out.
TEST(RegistryAuthHeader, AHelperThatWritesWithoutEndIsStopped) {
  auto header = header_from_helper("#!/bin/sh\nexec yes '{\"Username\":\"u\"}'\n");
  ASSERT_FALSE(header);
  EXPECT_NE(header.error().message().find("credential helper 'docker-credential-envdtest' wrote "
                                          "more than 1024 KiB for '127.0.0.1:5000', so envd "
                                          "stopped it"),
            std::string::npos)
      << header.error().message();
}

TEST(RegistryAuthHeader, AMissingConfigMeansNoCredentials) {
  TempDir dir;
  RegistryAuthOptions options;
  options.config_dir = dir.path();
  EXPECT_EQ(registry_auth_header_for("ghcr.io", options).value(), "e30=");
  EXPECT_EQ(docker_config_key("registry-1.docker.io"), "https://index.docker.io/v1/");
  EXPECT_EQ(docker_config_key("localhost:5000"), "localhost:5000");
}

// As the docker CLI: a config that cannot be read (here a directory, as a
// FIFO or an unreadable file would be) means no credentials, not a failed
// pull; the driver is warned through the host's log.
TEST(RegistryAuthHeader, AnUnreadableConfigMeansNoCredentials) {
  TempDir dir;
  fs::create_directory(dir.path() / "config.json");
  RegistryAuthOptions options;
  options.config_dir = dir.path();
  auto header = registry_auth_header_for("ghcr.io", options);
  ASSERT_TRUE(header) << header.error().message();
  EXPECT_EQ(*header, "e30=");
}

}  // namespace
}  // namespace envd::sdk
