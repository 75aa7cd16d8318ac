#include "kubectl.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace envd::plugins::kube {
namespace {

namespace fs = std::filesystem;

TEST(Kubectl, TheReasonIsItsLastLineWithoutLogsOrPrefixes) {
  EXPECT_EQ(kubectl_reason("Error from server (NotFound): pods \"bk-9\" not found\n"),
            "pods \"bk-9\" not found");
  EXPECT_EQ(kubectl_reason("error: context \"nope\" does not exist\n"),
            "context \"nope\" does not exist");
  EXPECT_EQ(
      kubectl_reason("E1202 10:00:00.000000    4242 memcache.go:265] couldn't get current server "
                     "API group list: Get \"https://127.0.0.1:1/api\": dial tcp 127.0.0.1:1: "
                     "connect: connection refused\n"
                     "The connection to the server 127.0.0.1:1 was refused - did you specify the "
                     "right host or port?\n"),
      "The connection to the server 127.0.0.1:1 was refused - did you specify the right host or "
      "port?");
  EXPECT_EQ(kubectl_reason(""), "");
}

TEST(Kubectl, ErrorsCarryAFittingCode) {
  EXPECT_EQ(kubectl_error("Error from server (NotFound): pods \"x\" not found\n", 1).code(),
            Errc::not_found);
  auto forbidden = kubectl_error(
      "Error from server (Forbidden): pods \"x\" is forbidden: User \"u\" cannot get resource "
      "\"pods\" in API group \"\" in the namespace \"ci\"\n",
      1);
  EXPECT_EQ(forbidden.code(), Errc::permission);
  EXPECT_EQ(forbidden.message(),
            "kubectl: pods \"x\" is forbidden: User \"u\" cannot get resource \"pods\" in API "
            "group \"\" in the namespace \"ci\"");
  EXPECT_EQ(kubectl_error("", 137).message(), "kubectl exited with 137");
}

TEST(Kubectl, OnlyTheFlagsTheAddressSetsAndNamesAfterADoubleDash) {
  ::unsetenv("ENVD_KUBECTL");
  KubeTarget bare;
  bare.name = "bk-0";
  EXPECT_EQ(
      Kubectl(bare).exec_argv("bk-0"),
      (std::vector<std::string>{"kubectl", "exec", "-i", "bk-0", "--", "buildctl", "dial-stdio"}));
  KubeTarget full = bare;
  full.context = "kind-ci";
  full.namespace_ = "ci";
  full.container = "buildkitd";
  ::setenv("ENVD_KUBECTL", "/opt/k/kubectl", 1);
  EXPECT_EQ(Kubectl(full).exec_argv("bk-0"),
            (std::vector<std::string>{"/opt/k/kubectl", "--context=kind-ci", "--namespace=ci",
                                      "exec", "-i", "--container=buildkitd", "bk-0", "--",
                                      "buildctl", "dial-stdio"}));
  ::unsetenv("ENVD_KUBECTL");
}

TEST(Kubectl, AMissingKubectlIsNamed) {
  ::setenv("ENVD_KUBECTL", "/nonexistent/kubectl", 1);
  KubeTarget target;
  target.name = "bk-0";
  auto got = Kubectl(target).get_json({"pod", "bk-0"}, std::chrono::seconds(5));
  ::unsetenv("ENVD_KUBECTL");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Errc::not_found);
  EXPECT_EQ(got.error().message(),
            "ENVD_KUBECTL is '/nonexistent/kubectl', which does not exist or cannot be run (point "
            "it at kubectl, or unset it to use the kubectl on PATH)");
  const char* path = std::getenv("PATH");
  std::string saved = path != nullptr ? path : "";
  ::setenv("PATH", "/nonexistent", 1);
  got = Kubectl(target).get_json({"pod", "bk-0"}, std::chrono::seconds(5));
  ::setenv("PATH", saved.c_str(), 1);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().message(),
            "kubectl is not installed: 'kubectl' is not on PATH (install kubectl, or set "
            "ENVD_KUBECTL)");
}

// A kubectl that writes without end is stopped at the bound, not read into
// memory until the machine runs out.
TEST(Kubectl, AnEndlessAnswerIsStopped) {
  const fs::path dir = fs::temp_directory_path() / ("envd-kubectl-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path fake = dir / "kubectl";
  std::ofstream(fake) << "#!/bin/sh\nexec yes '{\"kind\": \"Pod\"}'\n";
  fs::permissions(fake, fs::perms::owner_all);
  ::setenv("ENVD_KUBECTL", fake.c_str(), 1);
  KubeTarget target;
  target.name = "bk-0";
  auto got = Kubectl(target).get_json({"pod", "bk-0"}, std::chrono::seconds(60));
  ::unsetenv("ENVD_KUBECTL");
  fs::remove_all(dir);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Errc::unavailable);
  EXPECT_EQ(got.error().message(),
            "kubectl get wrote more than 64 MiB, so envd stopped it (does the address's selector "
            "match too many pods?)");
}

}  // namespace
}  // namespace envd::plugins::kube
