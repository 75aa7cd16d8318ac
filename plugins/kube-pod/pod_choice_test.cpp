#include "pod_choice.hpp"

#include <gtest/gtest.h>

#include <set>

namespace envd::plugins::kube {
namespace {

std::string pod_json(const std::string& name, const std::string& phase, bool ready,
                     const std::string& waiting = "") {
  std::string statuses =
      waiting.empty() ? R"([{"name":"buildkitd","ready":true,"state":{"running":{}}}])"
                      : R"([{"name":"buildkitd","ready":false,"state":{"waiting":{"reason":")" +
                            waiting + R"("}}}])";
  return R"({"kind":"Pod","metadata":{"name":")" + name +
         R"(","namespace":"ci"},"spec":{"containers":[{"name":"buildkitd"}]},"status":{"phase":")" +
         phase + R"(","conditions":[{"type":"Ready","status":")" + (ready ? "True" : "False") +
         R"("}],"containerStatuses":)" + statuses + "}}";
}

TEST(PodChoice, ReadsAPod) {
  auto pod = parse_pod(pod_json("buildkitd-0", "Running", true));
  ASSERT_TRUE(pod) << pod.error().message();
  EXPECT_EQ(pod->name, "buildkitd-0");
  EXPECT_EQ(pod->namespace_, "ci");
  EXPECT_TRUE(pod->usable());
  EXPECT_EQ(pod->containers, std::vector<std::string>{"buildkitd"});

  auto crashing = parse_pod(pod_json("buildkitd-1", "Running", false, "CrashLoopBackOff"));
  ASSERT_TRUE(crashing);
  EXPECT_FALSE(crashing->usable());
  EXPECT_EQ(crashing->why_unusable(),
            "pod buildkitd-1 in namespace ci is Running but not Ready (reason: container "
            "buildkitd: CrashLoopBackOff)");
  auto pending = parse_pod(
      R"({"metadata":{"name":"p","namespace":"ci"},"status":{"phase":"Pending","conditions":[{"type":"PodScheduled","status":"False","reason":"Unschedulable"}]}})");
  ASSERT_TRUE(pending);
  EXPECT_EQ(pending->why_unusable(), "pod p in namespace ci is Pending (reason: Unschedulable)");

  auto garbage = parse_pod("No resources found");
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().message(),
            "kubectl did not print a pod as JSON (it printed 'No resources found')");
}

TEST(PodChoice, ReadsAWorkloadsSelector) {
  auto selector = parse_workload_selector(
      R"({"kind":"Deployment","spec":{"selector":{"matchLabels":{"tier":"ci","app":"buildkitd"}}}})");
  ASSERT_TRUE(selector);
  EXPECT_EQ(*selector, "app=buildkitd,tier=ci");
}

// matchExpressions are part of the selector: left out, pods the workload's
// selector excludes (a canary) were chosen.
TEST(PodChoice, ReadsAWorkloadsMatchExpressions) {
  auto selector = parse_workload_selector(
      R"({"kind":"Deployment","spec":{"selector":{"matchLabels":{"app":"buildkitd"},)"
      R"("matchExpressions":[{"key":"track","operator":"NotIn","values":["canary","b"]},)"
      R"({"key":"zone","operator":"In","values":["x"]},{"key":"gpu","operator":"Exists"},)"
      R"({"key":"spot","operator":"DoesNotExist"}]}}})");
  ASSERT_TRUE(selector) << selector.error().message();
  EXPECT_EQ(*selector, "app=buildkitd,track notin (b,canary),zone in (x),gpu,!spot");
  auto only = parse_workload_selector(
      R"({"spec":{"selector":{"matchExpressions":[{"key":"app","operator":"In","values":["bk"]}]}}})");
  ASSERT_TRUE(only);
  EXPECT_EQ(*only, "app in (bk)");
  auto odd = parse_workload_selector(
      R"({"spec":{"selector":{"matchExpressions":[{"key":"a","operator":"Gt","values":["1"]}]}}})");
  ASSERT_FALSE(odd);
  EXPECT_EQ(odd.error().message(), "the workload's selector has the unknown operator 'Gt'");
}

TEST(PodChoice, TheChoiceSticksToTheContextAndSkipsUnusablePods) {
  std::string list = R"({"kind":"PodList","items":[)" + pod_json("bk-c", "Running", true) + "," +
                     pod_json("bk-a", "Running", true) + "," + pod_json("bk-b", "Running", true) +
                     "," + pod_json("bk-pending", "Pending", false) + "]}";
  auto pods = parse_pod_list(list);
  ASSERT_TRUE(pods);
  ASSERT_EQ(pods->size(), 4u);
  std::set<std::string> chosen;
  for (const char* context : {"ci", "laptop", "nightly", "team-a", "team-b", "x"}) {
    auto first = choose_pod(*pods, context, "deployment/bk");
    ASSERT_TRUE(first) << first.error().message();
    EXPECT_NE(first->name, "bk-pending");
    // The same context always gets the same pod, whatever the order of the list.
    std::vector<PodFacts> reversed(pods->rbegin(), pods->rend());
    EXPECT_EQ(choose_pod(reversed, context, "deployment/bk")->name, first->name) << context;
    chosen.insert(first->name);
  }
  EXPECT_GT(chosen.size(), 1u) << "contexts spread over the pods";
}

// A pod that becomes unusable moves only the contexts it had: the others
// keep their pod and its cache (a hash modulo the pod count moved healthy
// contexts too).
TEST(PodChoice, APodGoingAwayMovesOnlyItsContexts) {
  auto all = parse_pod_list(R"({"kind":"PodList","items":[)" + pod_json("bk-a", "Running", true) +
                            "," + pod_json("bk-b", "Running", true) + "," +
                            pod_json("bk-c", "Running", true) + "]}");
  auto without_c = parse_pod_list(
      R"({"kind":"PodList","items":[)" + pod_json("bk-a", "Running", true) + "," +
      pod_json("bk-b", "Running", true) + "," + pod_json("bk-c", "Running", false) + "]}");
  ASSERT_TRUE(all && without_c);
  int on_c = 0;
  for (int i = 0; i < 60; ++i) {
    std::string context = "ctx" + std::to_string(i);
    std::string before = choose_pod(*all, context, "deployment/bk")->name;
    std::string after = choose_pod(*without_c, context, "deployment/bk")->name;
    if (before == "bk-c") {
      ++on_c;
      EXPECT_NE(after, "bk-c");
    } else {
      EXPECT_EQ(after, before) << context << " moved off a healthy pod";
    }
  }
  EXPECT_GT(on_c, 5) << "contexts spread over all three pods";
}

TEST(PodChoice, NoUsablePodSaysWhyForEach) {
  std::vector<PodFacts> pods = {*parse_pod(pod_json("bk-0", "Pending", false)),
                                *parse_pod(pod_json("bk-1", "Running", false, "CrashLoopBackOff"))};
  auto none = choose_pod(pods, "ci", "deployment/bk in namespace ci");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), Errc::unavailable);
  EXPECT_EQ(none.error().message(),
            "no Running, Ready pod for deployment/bk in namespace ci (pod bk-0 in namespace ci is "
            "Pending; pod bk-1 in namespace ci is Running but not Ready (reason: container "
            "buildkitd: CrashLoopBackOff))");
  auto empty = choose_pod({}, "ci", "pods with labels app=bk");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().message(),
            "no Running, Ready pod for pods with labels app=bk (there are no pods)");
}

}  // namespace
}  // namespace envd::plugins::kube
