#include "kube_pod_builder.hpp"

#include <gtest/gtest.h>

#include "kube_address.hpp"
#include "testing/address_expectations.hpp"

namespace envd::plugins {
namespace {

constexpr auto normalized = test_support::normalized<KubePodBuilder>;
constexpr auto rejected = test_support::rejected<KubePodBuilder>;

std::string message(const std::string& address, const std::string& reason) {
  return "kube-pod builder address '" + address + "' is invalid: " + reason + "; expected " +
         kube::kExpectedAddress;
}

const std::string kLabelRule =
    "must consist of lower case alphanumeric characters or '-', and must start and end with an "
    "alphanumeric character (DNS-1123 label)";
const std::string kSubdomainRule =
    "must consist of lower case alphanumeric characters, '-' or '.', and must start and end "
    "with an alphanumeric character (DNS-1123 subdomain)";

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

TEST(KubePodBuilder, WorkloadsAndSelectorsPickAPod) {
  EXPECT_EQ(normalized("deployment/buildkitd?namespace=ci"), "deployment/buildkitd?namespace=ci");
  EXPECT_EQ(normalized("kube-pod://statefulset/bk"), "statefulset/bk");
  EXPECT_EQ(normalized("?selector=app%3Dbuildkitd&namespace=ci"),
            "?namespace=ci&selector=app%3Dbuildkitd");
  EXPECT_EQ(normalized("?selector=app%3D%3Dbk,tier!%3Dweb,!canary,example.com/role"),
            "?selector=app%3D%3Dbk,tier%21%3Dweb,%21canary,example.com/role");
  auto target = kube::parse_address("?selector=app%3Dbuildkitd");
  ASSERT_TRUE(target);
  EXPECT_EQ(target->kind, kube::KubeTarget::Kind::selector);
  EXPECT_EQ(target->selector, "app=buildkitd");
  EXPECT_EQ(target->describe(), "pods with labels app=buildkitd");
}

TEST(KubePodBuilder, EmptyAddressNamesTheExpectedForm) {
  EXPECT_EQ(rejected(""),
            std::string("no default address: pass --builder-address ") + kube::kExpectedAddress);
  EXPECT_EQ(rejected("kube-pod://"), message("kube-pod://", "the pod name is missing"));
  EXPECT_EQ(rejected("?namespace=ci"), message("?namespace=ci", "the pod name is missing"));
  EXPECT_EQ(rejected("deployment/"), message("deployment/", "the deployment name is missing"));
}

TEST(KubePodBuilder, RejectsNamesOutsideKubernetesRules) {
  EXPECT_EQ(rejected("BuildKit"), message("BuildKit", "pod name 'BuildKit' " + kSubdomainRule));
  EXPECT_EQ(rejected("build_kit"), message("build_kit", "pod name 'build_kit' " + kSubdomainRule));
  EXPECT_EQ(rejected("-oFoo"), message("-oFoo", "pod name '-oFoo' " + kSubdomainRule));
  // The address is quoted up to 200 bytes, "..." marking the cut.
  EXPECT_EQ(rejected(std::string(254, 'a')),
            "kube-pod builder address '" + std::string(200, 'a') + "...' is invalid: pod name '" +
                std::string(254, 'a') +
                "' must be at most 253 characters (DNS-1123 subdomain); expected " +
                kube::kExpectedAddress);
  EXPECT_EQ(rejected("p?namespace=CI"), message("p?namespace=CI", "namespace 'CI' " + kLabelRule));
  EXPECT_EQ(rejected("p?namespace=a.b"),
            message("p?namespace=a.b", "namespace 'a.b' " + kLabelRule));
  EXPECT_EQ(rejected("p?namespace="), message("p?namespace=", "namespace '' " + kLabelRule));
  EXPECT_EQ(rejected("p?container=a_b"),
            message("p?container=a_b", "container 'a_b' " + kLabelRule));
  EXPECT_EQ(rejected("p?container=" + std::string(64, 'c')),
            message("p?container=" + std::string(64, 'c'),
                    "container '" + std::string(64, 'c') +
                        "' must be at most 63 characters (DNS-1123 label)"));
  EXPECT_EQ(rejected("p?context="), message("p?context=", "the kube context is empty"));
  EXPECT_EQ(
      rejected("p?context=--kubeconfig%3D/x"),
      message("p?context=--kubeconfig%3D/x", "kube context '--kubeconfig=/x' starts with '-'"));
  EXPECT_EQ(rejected("deployment/Bk"),
            message("deployment/Bk", "deployment name 'Bk' " + kSubdomainRule));
  EXPECT_EQ(rejected("job/x"),
            message("job/x", "'job/x' is not a pod name, deployment/NAME or statefulset/NAME"));
}

TEST(KubePodBuilder, RejectsBadSelectors) {
  EXPECT_EQ(rejected("p?selector=app%3Dbk"),
            message("p?selector=app%3Dbk",
                    "selector= picks a pod by its labels: give it without a pod or workload name"));
  EXPECT_EQ(rejected("?selector="), message("?selector=", "selector '' is empty"));
  EXPECT_EQ(rejected("?selector=-app%3Dx"),
            message("?selector=-app%3Dx",
                    "selector '-app=x' term '-app=x' is not key=value, key==value, key!=value, key "
                    "or !key with Kubernetes label keys and values"));
  EXPECT_EQ(kube::label_selector_problem("app in (a,b)"),
            "term 'app in (a' is not key=value, key==value, key!=value, key or !key with "
            "Kubernetes label keys and values");
}

TEST(KubePodBuilder, RejectsUnknownAndRepeatedParameters) {
  EXPECT_EQ(rejected("p?ns=ci"),
            message("p?ns=ci",
                    "unknown parameter 'ns' (allowed: context, namespace, container, selector)"));
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

TEST(KubePodBuilder, ManagesNoDaemon) {
  KubePodBuilder builder;
  sdk::Request request;
  request.address = "buildkitd-0";
  auto boot = builder.bootstrap(request);
  ASSERT_FALSE(boot);
  EXPECT_EQ(boot.error().code(), Errc::unsupported);
  EXPECT_FALSE(builder.stop(request));
  EXPECT_FALSE(builder.remove(request));
}

}  // namespace
}  // namespace envd::plugins
