// The `dead` and `removing` states of an existing buildkitd container, which a
// real dockerd cannot be put into on demand (the e2e suite covers running,
// paused, exited and missing): the driver runs against a fake Engine API that
// answers exactly the calls it makes, with a scripted container state, and
// the tests check the calls in order.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "container_spec.hpp"
#include "docker_container_builder.hpp"
#include "testing/fake_engine.hpp"

namespace envd::plugins {
namespace {

namespace dc = docker_container;
namespace json = boost::json;
using sdk::testing::FakeEngine;
using sdk::testing::Received;
using sdk::testing::response;
using sdk::testing::send_all;

constexpr const char* kName = "envd_buildkitd";

std::string method_of(const Received& r) { return r.head.substr(0, r.head.find(' ')); }

// The scripted engine: the states `inspect` answers, in turn (the last one
// repeats; "missing" is a 404), and what every other call answers.
class ScriptedEngine {
 public:
  ScriptedEngine(std::deque<std::string> states, std::map<std::string, std::string> labels)
      : states_(std::move(states)), labels_(std::move(labels)) {}

  ScriptedEngine(const ScriptedEngine&) = delete;
  ScriptedEngine& operator=(const ScriptedEngine&) = delete;
  ~ScriptedEngine() {
    for (int fd : held_) ::close(fd);
  }

  int delete_status = 204;  // DELETE /containers/...
  std::string started_at;   // State.StartedAt, when not empty
  // Every create is refused with 409, as by an Engine that still reserves
  // the name for a container it lost: inspect keeps saying there is none.
  bool name_reserved = false;
  // The first call that starts with this ("POST /v1.41/containers/create")
  // is black-holed: the engine does what it asks but never answers, and
  // keeps the connection open.
  std::string black_hole;
  // When set, the probe's exec writes this on stderr and exits 126, as
  // an image without buildctl makes it ("OCI runtime exec failed: ...").
  std::string exec_failure;

  // The container's state as the next inspect would say it.
  std::string state() {
    std::lock_guard lock(mu_);
    return states_.front();
  }

  void handle(int connection, const Received& r) {
    std::lock_guard lock(mu_);
    const std::string method = method_of(r);
    const std::string container = "/v1.41/containers/" + std::string(kName);
    // The Engine takes a container's id wherever it takes its name; envd
    // removes what it created by id. Recorded under the name.
    std::string target = r.target();
    const std::string by_id = "/v1.41/containers/c0ffee";
    if (target.rfind(by_id, 0) == 0) target = container + target.substr(by_id.size());
    calls_.push_back(method + " " + target);
    int fd = connection;
    if (!black_hole.empty() && (method + " " + target).rfind(black_hole, 0) == 0) {
      black_hole.clear();
      held_.push_back(::dup(connection));
      fd = -1;  // every answer below goes nowhere
    }
    if (method == "GET" && target == container + "/json") {
      std::string state = states_.front();
      if (states_.size() > 1) states_.pop_front();
      if (state == "missing") {
        send_all(fd, response(404, "Not Found",
                              R"({"message":"No such container: )" + std::string(kName) + "\"}"));
        return;
      }
      json::object labels;
      for (const auto& [k, v] : labels_) labels[k] = v;
      json::object status{{"Status", state}, {"ExitCode", 0}, {"Error", ""}};
      if (!started_at.empty()) status["StartedAt"] = started_at;
      json::object body{{"Id", "c0ffee"},
                        {"Name", "/" + std::string(kName)},
                        {"State", std::move(status)},
                        {"Config", json::object{{"Image", "docker.io/moby/buildkit:v0.19.0"},
                                                {"Labels", std::move(labels)}}}};
      send_all(fd, response(200, "OK", json::serialize(body)));
    } else if (method == "DELETE" && target == container && states_.front() == "running") {
      send_all(fd, response(409, "Conflict",
                            R"({"message":"cannot remove container: container is running"})"));
    } else if (method == "DELETE" &&
               (target == container || target.rfind(container + "?", 0) == 0)) {
      if (delete_status / 100 == 2) {
        states_ = {"missing"};
        send_all(fd, response(delete_status, "No Content", ""));
      } else {
        send_all(fd, response(delete_status, "Internal Server Error",
                              R"({"message":"driver failed to remove root filesystem"})"));
      }
    } else if (method == "GET" && target.rfind("/v1.41/images/", 0) == 0) {
      send_all(fd, response(200, "OK", R"({"Id":"sha256:1"})"));
    } else if (method == "POST" && target == "/v1.41/volumes/create") {
      send_all(fd, response(201, "Created", R"({"Name":"envd_buildkitd_state"})"));
    } else if (method == "POST" &&
               target == "/v1.41/containers/create?name=" + std::string(kName) && name_reserved) {
      send_all(fd, response(409, "Conflict",
                            R"({"message":"Conflict. The container name \"/envd_buildkitd\" is )"
                            R"(already in use by container \"5ca1ab1e\". You have to remove (or )"
                            R"(rename) that container to be able to reuse that name."})"));
    } else if (method == "POST" &&
               target == "/v1.41/containers/create?name=" + std::string(kName)) {
      states_ = {"created"};
      // The container carries the labels it was created with (envd's
      // creation token among them), as the Engine's would.
      boost::system::error_code ec;
      json::value body = json::parse(r.body, ec);
      if (!ec && body.is_object() && body.as_object().contains("Labels") &&
          body.as_object().at("Labels").is_object()) {
        for (const auto& [k, v] : body.as_object().at("Labels").as_object()) {
          if (v.is_string()) labels_[std::string(k)] = std::string(v.as_string());
        }
      }
      send_all(fd, response(201, "Created", R"({"Id":"c0ffee","Warnings":[]})"));
    } else if (method == "POST" && target == container + "/start") {
      states_ = {"running"};
      send_all(fd, response(204, "No Content", ""));
    } else if (method == "POST" && target == container + "/exec") {
      send_all(fd, response(201, "Created", R"({"Id":"e1"})"));
    } else if (method == "POST" && target == "/v1.41/exec/e1/start") {
      // `buildctl debug workers` answers on stdout (stream 1), then ends.
      std::string out = exec_failure.empty() ? "ID  PLATFORMS\nmoby  linux/amd64\n" : exec_failure;
      const char stream = exec_failure.empty() ? 1 : 2;
      std::string frame = {stream, 0, 0, 0, 0, 0, 0, static_cast<char>(out.size())};
      send_all(fd,
               "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
               "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n" +
                   frame + out);
    } else if (method == "GET" && target == "/v1.41/exec/e1/json") {
      send_all(fd,
               response(200, "OK",
                        exec_failure.empty() ? R"({"ID":"e1","Running":false,"ExitCode":0})"
                                             : R"({"ID":"e1","Running":false,"ExitCode":126})"));
    } else {
      send_all(fd,
               response(404, "Not Found",
                        R"({"message":"fake engine: unexpected )" + method + " " + target + "\"}"));
    }
  }

  std::vector<std::string> calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  std::mutex mu_;
  std::deque<std::string> states_;
  std::map<std::string, std::string> labels_;
  std::vector<std::string> calls_;
  std::vector<int> held_;  // the black-holed connections
};

// True if `wanted` appears in `calls` in this order (other calls between).
bool in_order(const std::vector<std::string>& calls, const std::vector<std::string>& wanted) {
  std::size_t at = 0;
  for (const auto& call : calls) {
    if (at < wanted.size() && call == wanted[at]) ++at;
  }
  return at == wanted.size();
}

std::string joined(const std::vector<std::string>& calls) {
  std::string out;
  for (const auto& c : calls) out += "\n  " + c;
  return out;
}

class ContainerStates : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* old = std::getenv("DOCKER_HOST")) saved_ = old;
    request_.context = "t";
    request_.address = kName;
    request_.data_dir = ::testing::TempDir() + "/envd-states-" + std::to_string(::getpid());
    request_.timeout = std::chrono::milliseconds(1500);
  }
  void TearDown() override {
    if (saved_) {
      ::setenv("DOCKER_HOST", saved_->c_str(), 1);
    } else {
      ::unsetenv("DOCKER_HOST");
    }
  }

  // The labels of a container that matches what the context asks for, as
  // the driver computes them (default options, generated config, mounted).
  std::map<std::string, std::string> matching_labels() const {
    dc::ContainerOptions options;
    return dc::make_spec(kName, request_.context, options, dc::effective_image(options, ""),
                         request_.data_dir + "/buildkitd.toml", dc::generated_config(options))
        .labels;
  }

  // Runs bootstrap against `script`.
  Result<std::string> bootstrap(ScriptedEngine& script) {
    FakeEngine fake([&](int fd, const Received& r) { script.handle(fd, r); });
    ::setenv("DOCKER_HOST", fake.url().c_str(), 1);
    return DockerContainerBuilder().bootstrap(request_);
  }

  std::optional<std::string> saved_;
  sdk::Request request_;
};

const std::string kContainer = std::string("/v1.41/containers/") + kName;

TEST_F(ContainerStates, ADeadContainerIsRemovedAndRecreated) {
  ScriptedEngine script({"dead"}, matching_labels());
  auto result = bootstrap(script);
  ASSERT_TRUE(result) << result.error().message() << joined(script.calls());
  EXPECT_EQ(json::parse(*result).at("action"), "recreated");
  EXPECT_TRUE(
      in_order(script.calls(),
               {"GET " + kContainer + "/json", "DELETE " + kContainer + "?force=1",
                "GET " + kContainer + "/json", "GET /v1.41/volumes/envd_buildkitd_state",
                "POST /v1.41/volumes/create", "POST /v1.41/containers/create?name=envd_buildkitd",
                "POST " + kContainer + "/start", "POST " + kContainer + "/exec",
                "POST /v1.41/exec/e1/start", "GET /v1.41/exec/e1/json"}))
      << joined(script.calls());
}

// The Engine's form of a time `ago` before now.
std::string engine_time(std::chrono::system_clock::duration ago) {
  auto at = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now() - ago);
  auto day = std::chrono::floor<std::chrono::days>(at);
  std::chrono::year_month_day date(day);
  std::chrono::hh_mm_ss time(at - day);
  char text[64];
  std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02ld:%02ld:%02lld.123456789Z",
                static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                static_cast<unsigned>(date.day()), static_cast<long>(time.hours().count()),
                static_cast<long>(time.minutes().count()),
                static_cast<long long>(time.seconds().count()));
  return text;
}

bool probed(const std::vector<std::string>& calls) {
  return std::find(calls.begin(), calls.end(), "POST " + kContainer + "/exec") != calls.end();
}

// Found running, started a moment ago (by `docker start`, a restart policy,
// another envd): its buildkitd may not listen yet, so it is asked first.
TEST_F(ContainerStates, ARunningContainerStartedAMomentAgoIsAskedFirst) {
  ScriptedEngine script({"running"}, matching_labels());
  script.started_at = engine_time(std::chrono::seconds(2));
  auto result = bootstrap(script);
  ASSERT_TRUE(result) << result.error().message() << joined(script.calls());
  EXPECT_EQ(json::parse(*result).at("action"), "running");
  EXPECT_TRUE(probed(script.calls())) << joined(script.calls());
}

// Running for longer, or with no start time the driver can read: used at
// once, with no exec.
TEST_F(ContainerStates, ARunningContainerStartedLongAgoIsUsedAtOnce) {
  for (const auto& started_at : {engine_time(std::chrono::minutes(5)), std::string("garbage")}) {
    ScriptedEngine script({"running"}, matching_labels());
    script.started_at = started_at;
    auto result = bootstrap(script);
    ASSERT_TRUE(result) << result.error().message() << joined(script.calls());
    EXPECT_EQ(json::parse(*result).at("action"), "running");
    EXPECT_EQ(script.calls(), std::vector<std::string>{"GET " + kContainer + "/json"})
        << started_at << joined(script.calls());
  }
}

TEST_F(ContainerStates, ARemovingContainerIsWaitedForThenCreated) {
  ScriptedEngine script({"removing", "removing", "removing", "missing"}, matching_labels());
  auto result = bootstrap(script);
  ASSERT_TRUE(result) << result.error().message() << joined(script.calls());
  EXPECT_EQ(json::parse(*result).at("action"), "created");
  auto calls = script.calls();
  // Nothing is done to a container the engine is removing: no DELETE, no start.
  std::vector<std::string> first_four(
      calls.begin(), calls.begin() + std::min<std::ptrdiff_t>(4, std::ssize(calls)));
  EXPECT_EQ(first_four, std::vector<std::string>(4, "GET " + kContainer + "/json"))
      << joined(calls);
  for (const auto& call : calls) EXPECT_EQ(call.rfind("DELETE", 0), std::string::npos) << call;
  EXPECT_TRUE(in_order(calls, {"POST /v1.41/containers/create?name=envd_buildkitd",
                               "POST " + kContainer + "/start", "POST /v1.41/exec/e1/start"}))
      << joined(calls);
}

TEST_F(ContainerStates, AContainerStuckInRemovingTimesOut) {
  ScriptedEngine script({"removing"}, matching_labels());
  auto started = std::chrono::steady_clock::now();
  auto result = bootstrap(script);
  auto took = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(result) << *result;
  EXPECT_EQ(result.error().code(), Errc::timeout);
  EXPECT_EQ(result.error().message(),
            "buildkitd container 'envd_buildkitd' did not reach the running state within 1500 ms "
            "(it stayed removing)");
  EXPECT_LT(took, std::chrono::seconds(10)) << "it gives up at the connect deadline";
  for (const auto& call : script.calls()) {
    EXPECT_EQ(call, "GET " + kContainer + "/json") << "only inspects while it is removed";
  }
}

// The Engine refuses the name on every create but has no container of that
// name: the timeout says so, with the Engine's words and what frees it,
// instead of a bare "did not reach the running state".
TEST_F(ContainerStates, ANameTheEngineKeepsReservedIsNamedAtTheDeadline) {
  ScriptedEngine script({"missing"}, matching_labels());
  script.name_reserved = true;
  auto result = bootstrap(script);
  ASSERT_FALSE(result) << *result;
  EXPECT_EQ(result.error().code(), Errc::timeout);
  const std::string& message = result.error().message();
  EXPECT_EQ(message.rfind("buildkitd container 'envd_buildkitd' did not reach the running state "
                          "within 1500 ms: the Engine refused the name each time, yet has no "
                          "container of that name (",
                          0),
            0u)
      << message;
  EXPECT_NE(message.find("is already in use by container \"5ca1ab1e\""), std::string::npos)
      << message;
  EXPECT_NE(message.find("); restarting the Docker Engine frees a name it kept for a container it "
                         "lost"),
            std::string::npos)
      << message;
  int creates = 0;
  for (const auto& call : script.calls())
    creates += call.find("/containers/create") != std::string::npos;
  EXPECT_LE(creates, 10) << "a pause between the attempts" << joined(script.calls());
}

// The probe's last failure is quoted at the deadline as one line, the line
// end the Engine's exec output ends with dropped (it showed as \x0d).
TEST_F(ContainerStates, AProbeThatCannotRunIsQuotedWithoutItsLineEnd) {
  ScriptedEngine script({"missing"}, matching_labels());
  script.exec_failure =
      "OCI runtime exec failed: exec failed: unable to start container process: exec: "
      "\"buildctl\": executable file not found in $PATH: unknown\r\n";
  auto result = bootstrap(script);
  ASSERT_FALSE(result) << *result;
  EXPECT_EQ(result.error().code(), Errc::timeout);
  const std::string& message = result.error().message();
  EXPECT_NE(message.find("did not answer within 1500 ms (OCI runtime exec failed: exec failed: "
                         "unable to start container process: exec: \"buildctl\": executable file "
                         "not found in $PATH: unknown)"),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find("\\x0d"), std::string::npos) << message;
}

TEST_F(ContainerStates, ADeadContainerThatCannotBeRemovedIsNamed) {
  ScriptedEngine script({"dead"}, matching_labels());
  script.delete_status = 500;
  auto result = bootstrap(script);
  ASSERT_FALSE(result) << *result;
  EXPECT_EQ(result.error().code(), Errc::internal);
  EXPECT_EQ(
      result.error().message().rfind(
          "buildkitd container 'envd_buildkitd' is dead and envd cannot replace it (remove it "
          "with 'docker rm -f envd_buildkitd' or see the Docker Engine's log): cannot remove "
          "container 'envd_buildkitd': the Docker Engine at unix://",
          0),
      0u)
      << result.error().message();
  int deletes = 0;
  for (const auto& call : script.calls()) deletes += call.rfind("DELETE", 0) == 0 ? 1 : 0;
  EXPECT_EQ(deletes, 1) << "a failed DELETE is not sent again to word its error";
  EXPECT_NE(result.error().message().find(": driver failed to remove root filesystem"),
            std::string::npos)
      << result.error().message();
  for (const auto& call : script.calls()) {
    EXPECT_EQ(call.find("/containers/create"), std::string::npos) << "nothing was created";
  }
}

// A black-holed Engine (it accepts the call, may even do it, never answers)
// on each call of a bootstrap in turn: the bootstrap ends at the one connect
// deadline (1.5 s), in one line naming the container and the step, and what
// it created but could not start is removed again.
struct BlackHoleCase {
  std::string test;   // the test's name
  std::string call;   // the call black-holed
  std::string phase;  // what the message starts with
  bool removed;       // a DELETE of the container follows (it may have been created)
};

// Names the case in test listings (ctest shows the parameter).
// NOLINTNEXTLINE(readability-identifier-naming): the name gtest looks for
void PrintTo(const BlackHoleCase& c, std::ostream* out) { *out << c.test; }

class BlackHoledBootstrap : public ContainerStates,
                            public ::testing::WithParamInterface<BlackHoleCase> {};

TEST_P(BlackHoledBootstrap, EndsAtTheConnectDeadlineNamingTheStep) {
  const auto& param = GetParam();
  ScriptedEngine script({"missing"}, matching_labels());
  script.black_hole = param.call;
  auto started = std::chrono::steady_clock::now();
  auto result = bootstrap(script);
  auto took = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(result) << *result << joined(script.calls());
  const std::string& message = result.error().message();
  EXPECT_EQ(result.error().code(), Errc::timeout) << message;
  EXPECT_EQ(message.rfind(param.phase, 0), 0u) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << "one line: " << message;
  EXPECT_NE(message.find("the Docker Engine at unix://"), std::string::npos) << message;
  // The deadline (1.5 s) and the answered clean-up: nowhere near a second
  // deadline, the 5 s of a clean-up or the 60 s the calls once had.
  EXPECT_GE(took, std::chrono::milliseconds(1300)) << message;
  EXPECT_LT(took, std::chrono::milliseconds(2800)) << message;
  auto calls = script.calls();
  bool deleted = false;
  for (const auto& call : calls) deleted = deleted || call.rfind("DELETE " + kContainer, 0) == 0;
  EXPECT_EQ(deleted, param.removed) << joined(calls);
  if (param.removed) {
    EXPECT_EQ(script.state(), "missing") << "nothing half made is left";
  }
}

std::string case_name(const ::testing::TestParamInfo<BlackHoleCase>& info) {
  return info.param.test;
}

const std::string kWithin = " (connect timeout: 1500 ms)";
const std::string kNotReady =
    "buildkitd in container 'envd_buildkitd' did not answer within 1500 ms"
    " (the Docker Engine at unix://";

INSTANTIATE_TEST_SUITE_P(
    EachCall, BlackHoledBootstrap,
    ::testing::Values(BlackHoleCase{"Inspect", "GET " + kContainer + "/json",
                                    "cannot inspect buildkitd container 'envd_buildkitd': ", false},
                      BlackHoleCase{"ImageLookup", "GET /v1.41/images/",
                                    "cannot look up image docker.io/moby/buildkit:", false},
                      BlackHoleCase{"VolumeCreate", "POST /v1.41/volumes/create",
                                    "cannot create volume 'envd_buildkitd_state': ", false},
                      BlackHoleCase{"ContainerCreate", "POST /v1.41/containers/create",
                                    "cannot create buildkitd container 'envd_buildkitd': ", true},
                      BlackHoleCase{"ContainerStart", "POST " + kContainer + "/start",
                                    "cannot start buildkitd container 'envd_buildkitd': ", true},
                      BlackHoleCase{"ExecCreate", "POST " + kContainer + "/exec", kNotReady, false},
                      BlackHoleCase{"ExecStart", "POST /v1.41/exec/e1/start", kNotReady, false},
                      BlackHoleCase{"ExecInspect", "GET /v1.41/exec/e1/json", kNotReady, false}),
    case_name);

// The steps before buildkitd is waited for name the connect timeout.
TEST_F(ContainerStates, ABlackHoledCreateNamesTheConnectTimeout) {
  ScriptedEngine script({"missing"}, matching_labels());
  script.black_hole = "POST /v1.41/containers/create";
  auto result = bootstrap(script);
  ASSERT_FALSE(result) << *result;
  const std::string& message = result.error().message();
  EXPECT_EQ(message.size() - message.rfind(kWithin), kWithin.size()) << message;
  EXPECT_NE(message.find("did not answer POST /containers/create?name=envd_buildkitd in time"),
            std::string::npos)
      << message;
}

}  // namespace
}  // namespace envd::plugins
