#include "kube_pod_builder.hpp"

#include <gtest/gtest.h>

#include "testing/address_expectations.hpp"

namespace envd::plugins {
namespace {

constexpr auto normalized = test_support::normalized<KubePodBuilder>;
constexpr auto rejected = test_support::rejected<KubePodBuilder>;

constexpr const char* kExpected =
    "<pod>[?context=<kube context>&namespace=<namespace>&container=<container>], e.g. "
    "buildkitd-0?namespace=ci";

std::string message(const std::string& address, const std::string& reason) {
  return "kube-pod builder address '" + address + "' is invalid: " + reason + "; expected " +
         kExpected;
}

TEST(KubePodBuilder, AcceptsAPodAlone) {
  EXPECT_EQ(normalized("buildkitd-0"), "buildkitd-0");
  EXPECT_EQ(normalized("kube-pod://buildkitd-0"), "buildkitd-0");
  EXPECT_EQ(normalized("buildkitd.0"), "buildkitd.0");
}

TEST(KubePodBuilder, StoresParametersInCanonicalOrder) {
  EXPECT_EQ(normalized("kube-pod://buildkitd-0?namespace=ci"), "buildkitd-0?namespace=ci");
  EXPECT_EQ(normalized("p?container=buildkitd&namespace=ci&context=kind-kind"),
            "p?context=kind-kind&namespace=ci&container=buildkitd");
  EXPECT_EQ(normalized("p?namespace=ci&context=kind-kind"), "p?context=kind-kind&namespace=ci");
  EXPECT_EQ(normalized("p?context=arn:aws:eks:eu-west-1:123:cluster/ci"),
            "p?context=arn:aws:eks:eu-west-1:123:cluster/ci");
  EXPECT_EQ(normalized("p?context=me%40prod"), "p?context=me@prod");
}

TEST(KubePodBuilder, EmptyAddressNamesTheExpectedForm) {
  EXPECT_EQ(rejected(""),
            std::string("the kube-pod builder has no default address: pass --builder-address ") +
                kExpected);
  EXPECT_EQ(rejected("kube-pod://"), message("kube-pod://", "the pod name is missing"));
  EXPECT_EQ(rejected("?namespace=ci"), message("?namespace=ci", "the pod name is missing"));
}

TEST(KubePodBuilder, RejectsNamesOutsideKubernetesRules) {
  EXPECT_EQ(rejected("BuildKit"),
            message("BuildKit", "pod name 'BuildKit' does not match [-a-z0-9.]+"));
  EXPECT_EQ(rejected("build_kit"),
            message("build_kit", "pod name 'build_kit' does not match [-a-z0-9.]+"));
  EXPECT_EQ(rejected("p?namespace=CI"),
            message("p?namespace=CI", "namespace 'CI' does not match [-a-z0-9.]+"));
  EXPECT_EQ(rejected("p?namespace="),
            message("p?namespace=", "namespace '' does not match [-a-z0-9.]+"));
  EXPECT_EQ(rejected("p?container=a_b"),
            message("p?container=a_b", "container 'a_b' does not match [-a-z0-9.]+"));
  EXPECT_EQ(rejected("p?context="), message("p?context=", "the kube context is empty"));
}

TEST(KubePodBuilder, RejectsUnknownAndRepeatedParameters) {
  EXPECT_EQ(rejected("p?ns=ci"),
            message("p?ns=ci", "unknown parameter 'ns' (allowed: context, namespace, container)"));
  EXPECT_EQ(rejected("p?namespace=a&namespace=b"),
            message("p?namespace=a&namespace=b", "parameter 'namespace' is given twice"));
  EXPECT_EQ(rejected("p?context=with space"),
            message("p?context=with space",
                    "query 'context=with space' contains a space or control character"));
}

TEST(KubePodBuilder, RejectsOtherSchemes) {
  EXPECT_EQ(rejected("docker-container://p"),
            message("docker-container://p",
                    "scheme 'docker-container://' is not accepted (only kube-pod:// or none)"));
}

}  // namespace
}  // namespace envd::plugins
