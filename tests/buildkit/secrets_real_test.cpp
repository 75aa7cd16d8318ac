// Build secrets and SSH agent forwarding through the session, against the
// real standalone buildkitd: `RUN --mount=type=secret` sees the value from a
// file or a variable, and it is nowhere else (not in the pushed image's
// layers, not in the output, not in the store); `RUN --mount=type=ssh` reaches
// a real ssh-agent on this machine, which lists its key to the step and
// refuses to have its keys removed through the forwarding.
//
// Skipped, with the reason, when the BuildKit binaries or OpenSSH's
// ssh-agent are absent.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "buildkit/real_buildkit_test.hpp"
#include "cli_harness.hpp"
#include "services/registry_probe.hpp"
#include "services/test_services.hpp"

#ifndef ENVD_TEST_AGENT_LIST
#error "ENVD_TEST_AGENT_LIST must name the static agent_list binary"
#endif

namespace envd::test {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Runs a command that must succeed; returns its stdout.
std::string must(const std::vector<std::string>& argv,
                 std::map<std::string, std::optional<std::string>> env = {}) {
  sdk::ProcessOptions options;
  options.argv = argv;
  options.env = std::move(env);
  options.timeout = std::chrono::seconds(60);
  auto r = sdk::run_process(options);
  EXPECT_TRUE(r && r->succeeded()) << sdk::format_command(argv) << "\n"
                                   << (r ? r->err : r.error().message());
  return r ? r->out : std::string();
}

std::string sha256_hex(const std::string& file) {
  std::string out = must({"sha256sum", file});
  return out.substr(0, out.find(' '));
}

// Whether any file under `dir` contains `needle`.
bool any_file_contains(const fs::path& dir, const std::string& needle) {
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file() || entry.is_symlink()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (contains(data, needle)) return true;
  }
  return false;
}

class SessionSecretsTest : public RealBuildkitTestBase {
 protected:
  void SetUp() override {
    RealBuildkitTestBase::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    tag_ = std::to_string(::getpid());
    auto r = envd({"context", "create", "--name", "ci", "--builder", "tcp", "--builder-address",
                   bk_.tcp, "--use"},
                  env());
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  std::map<std::string, std::optional<std::string>> env() const {
    return {{"DOCKER_HOST", "unix://" + (home() / "no-docker.sock").string()},
            {"DOCKER_CONFIG", (home() / ".docker").string()}};
  }

  std::string tag_;
};

TEST_F(SessionSecretsTest, SecretsReachTheStepAndNothingElse) {
  // Values no file of the base image or the project contains by chance.
  const std::string file_secret = "file-secret-" + tag_ + "-9f3a1c";
  const std::string env_secret = "env-secret-" + tag_ + "-77b2e0";
  write_text(home() / "token.txt", file_secret);
  fs::path dir = home() / "secrets";
  write_text(dir / "Dockerfile", "FROM " + bk_.base +
                                     "\n"
                                     "RUN --mount=type=secret,id=token,required=true "
                                     "sha256sum /run/secrets/token | cut -d' ' -f1 > /token.sha\n"
                                     "RUN --mount=type=secret,id=fromenv,required=true "
                                     "sha256sum /run/secrets/fromenv | cut -d' ' -f1 > /env.sha\n");
  auto run_env = env();
  run_env["ENVD_TEST_SECRET"] = env_secret;
  const std::string name = services_.registry + "/envd-ci/secrets:" + tag_;
  auto r = envd({"build", "--progress", "plain", "--secret",
                 "id=token,src=" + (home() / "token.txt").string(), "--secret",
                 "id=fromenv,env=ENVD_TEST_SECRET", "--output",
                 "type=image,name=" + name + ",push=true", dir.string()},
                run_env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(contains(r.out + r.err, file_secret));
  EXPECT_FALSE(contains(r.out + r.err, env_secret));

  // The steps saw the values: their hashes are in the image.
  fs::path out = home() / "out";
  r = envd({"build", "--secret", "id=token,src=" + (home() / "token.txt").string(), "--secret",
            "id=fromenv,env=ENVD_TEST_SECRET", "--output", "type=local,dest=" + out.string(),
            dir.string()},
           run_env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  write_text(home() / "env-secret.txt", env_secret);
  EXPECT_EQ(read_text(out / "token.sha"), sha256_hex((home() / "token.txt").string()) + "\n");
  EXPECT_EQ(read_text(out / "env.sha"), sha256_hex((home() / "env-secret.txt").string()) + "\n");
  // ... and the values themselves are in no file of the result,
  EXPECT_FALSE(any_file_contains(out, file_secret));
  EXPECT_FALSE(any_file_contains(out, env_secret));
  EXPECT_FALSE(fs::exists(out / "run" / "secrets" / "token"));
  // ... in no layer of the pushed image,
  auto manifest = registry_manifest(services_.registry, "envd-ci/secrets", tag_);
  ASSERT_TRUE(manifest.contains("layers")) << json::serialize(manifest);
  for (const auto& layer : manifest.at("layers").as_array()) {
    std::string digest(layer.at("digest").as_string());
    fs::path blob = home() / "layer.tar.gz";
    must({"curl", "-fsSL", "--max-time", "30", "-o", blob.string(),
          "http://" + services_.registry + "/v2/envd-ci/secrets/blobs/" + digest});
    std::string tar = must({"gzip", "-dc", blob.string()});
    EXPECT_FALSE(contains(tar, file_secret)) << digest;
    EXPECT_FALSE(contains(tar, env_secret)) << digest;
  }
  // ... and not in envd's store.
  EXPECT_FALSE(any_file_contains(config_dir(), file_secret));
  EXPECT_FALSE(any_file_contains(config_dir(), env_secret));
}

TEST_F(SessionSecretsTest, AMissingSecretSourceFailsBeforeTheBuild) {
  fs::path dir = home() / "missing";
  write_text(dir / "Dockerfile", "FROM " + bk_.base + "\n");
  auto r = envd({"build", "--secret", "id=token,src=" + (home() / "absent.txt").string(),
                 "--output", "type=local,dest=" + (home() / "out").string(), dir.string()},
                env());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(contains(r.err, "--secret")) << r.err;
  EXPECT_TRUE(contains(r.err, "absent.txt")) << r.err;
  EXPECT_FALSE(fs::exists(home() / "out"));

  r = envd({"build", "--secret", "id=token,env=ENVD_TEST_NOT_SET", "--output",
            "type=local,dest=" + (home() / "out").string(), dir.string()},
           env());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.err, "ENVD_TEST_NOT_SET")) << r.err;
}

// A real ssh-agent holding a fresh key, forwarded to a RUN step.
class SshForwardingTest : public SessionSecretsTest {
 protected:
  void SetUp() override {
    SessionSecretsTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    for (const char* tool : {"ssh-agent", "ssh-add", "ssh-keygen"}) {
      if (std::system((std::string("command -v ") + tool + " >/dev/null").c_str()) != 0) {
        GTEST_SKIP() << tool << " is not installed (apt-get install openssh-client)";
      }
    }
    agent_socket_ = home() / "agent.sock";
    sdk::ProcessOptions options;
    options.argv = {"ssh-agent", "-D", "-a", agent_socket_.string()};
    int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    auto pid = sdk::spawn_process(options, -1, null_fd, null_fd);
    ::close(null_fd);
    ASSERT_TRUE(pid) << pid.error().message();
    agent_pid_ = *pid;
    for (int i = 0; i < 100 && !fs::exists(agent_socket_); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_TRUE(fs::exists(agent_socket_));
    must({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "envd-forwarded-key", "-f",
          (home() / "id_test").string()});
    must({"ssh-add", "-q", (home() / "id_test").string()},
         {{"SSH_AUTH_SOCK", agent_socket_.string()}});
  }
  void TearDown() override {
    if (agent_pid_ > 0) {
      ::kill(agent_pid_, SIGTERM);
      (void)sdk::wait_process(agent_pid_);
    }
    SessionSecretsTest::TearDown();
  }

  fs::path project() {
    fs::path dir = home() / "ssh";
    fs::create_directories(dir);
    fs::copy_file(ENVD_TEST_AGENT_LIST, dir / "agent_list");
    write_text(dir / "Dockerfile",
               "FROM " + bk_.base +
                   "\nCOPY agent_list /agent_list\n"
                   "RUN --mount=type=ssh,required=true /agent_list > /keys.txt\n"
                   "RUN --mount=type=ssh,required=true /agent_list 19 > /remove.txt\n");
    return dir;
  }

  fs::path agent_socket_;
  pid_t agent_pid_ = -1;
};

TEST_F(SshForwardingTest, TheStepListsTheAgentsKeyAndCannotRemoveIt) {
  fs::path out = home() / "out";
  auto run_env = env();
  run_env["SSH_AUTH_SOCK"] = agent_socket_.string();
  auto r = envd({"build", "--ssh", "default", "--output", "type=local,dest=" + out.string(),
                 project().string()},
                run_env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_text(out / "keys.txt"), "keys 1\ncomment envd-forwarded-key\n");
  // SSH_AGENT_FAILURE (5): the forwarding lets a step list and sign, no more.
  EXPECT_EQ(read_text(out / "remove.txt"), "answer 5\n");
  // The key is still in the agent.
  std::string listed = must({"ssh-add", "-l"}, {{"SSH_AUTH_SOCK", agent_socket_.string()}});
  EXPECT_TRUE(contains(listed, "envd-forwarded-key")) << listed;
}

TEST_F(SshForwardingTest, AnAgentByIdAndSocketPath) {
  fs::path dir = project();
  write_text(dir / "Dockerfile", "FROM " + bk_.base +
                                     "\nCOPY agent_list /agent_list\n"
                                     "RUN --mount=type=ssh,id=deploy,required=true "
                                     "/agent_list > /keys.txt\n");
  fs::path out = home() / "out";
  auto r = envd({"build", "--ssh", "deploy=" + agent_socket_.string(), "--output",
                 "type=local,dest=" + out.string(), dir.string()},
                env());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_text(out / "keys.txt"), "keys 1\ncomment envd-forwarded-key\n");
}

TEST_F(SshForwardingTest, DefaultWithoutAnAgentIsOneLine) {
  auto run_env = env();
  run_env["SSH_AUTH_SOCK"] = std::nullopt;
  auto r = envd({"build", "--ssh", "default", "--output",
                 "type=local,dest=" + (home() / "out").string(), project().string()},
                run_env);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(contains(r.err, "SSH_AUTH_SOCK")) << r.err;
}

}  // namespace
}  // namespace envd::test
