#include "environment.hpp"

#include <gtest/gtest.h>

namespace envd::plugins::docker_runner {
namespace {

namespace json = boost::json;

std::string args(const std::string& spec) { return R"({"spec":)" + spec + "}"; }

TEST(DockerRunnerSpec, NamesFollowTheImage) {
  EXPECT_EQ(default_name("ubuntu:22.04"), "ubuntu");
  EXPECT_EQ(default_name("envd-test/busybox:latest"), "busybox");
  EXPECT_EQ(default_name("127.0.0.1:5000/team/py@sha256:abc"), "py");
  EXPECT_EQ(default_name("x"), "envd-x");
  EXPECT_EQ(default_name("a/" + std::string(40, 'b')), std::string(30, 'b'));
}

TEST(DockerRunnerSpec, ParsesEveryField) {
  auto spec = parse_spec(args(R"({"name":"dev","image":"img","env":{"A":"1"},
      "ports":[{"host_ip":"127.0.0.1","host_port":8080,"container_port":80}],
      "cpus":1.5,"memory":1048576,"gpus":"all","restart":"no","network":"none",
      "shm_size":134217728,"cpuset":"0-1","cap_add":["SYS_PTRACE"],
      "command":["sh","-c","true"],"force":true})"));
  ASSERT_TRUE(spec) << spec.error().message();
  EXPECT_EQ(spec->name, "dev");
  EXPECT_EQ(spec->env.at("A"), "1");
  ASSERT_EQ(spec->ports.size(), 1U);
  EXPECT_EQ(spec->ports[0].protocol, "tcp");
  EXPECT_TRUE(spec->force);

  json::object body = container_body(*spec);
  EXPECT_EQ(body.at("Labels"), (json::object{{kNameLabel, "dev"}, {kVendorLabel, "envd"}}));
  EXPECT_EQ(body.at("Env"), (json::array{"A=1"}));
  EXPECT_EQ(body.at("Cmd"), (json::array{"sh", "-c", "true"}));
  const auto& host = body.at("HostConfig").as_object();
  EXPECT_EQ(host.at("NanoCpus").as_int64(), 1500000000);
  EXPECT_EQ(host.at("Memory").as_int64(), 1048576);
  EXPECT_EQ(host.at("NetworkMode"), "none");
  EXPECT_EQ(host.at("ShmSize").as_int64(), 134217728);
  EXPECT_EQ(host.at("CpusetCpus"), "0-1");
  EXPECT_EQ(host.at("CapAdd"), (json::array{"SYS_PTRACE"}));
  EXPECT_EQ(host.at("RestartPolicy"), (json::object{{"Name", "no"}}));
  EXPECT_EQ(host.at("PortBindings"),
            (json::object{{"80/tcp", json::array{json::object{{"HostIp", "127.0.0.1"},
                                                              {"HostPort", "8080"}}}}}));
  EXPECT_EQ(host.at("DeviceRequests").as_array()[0].as_object().at("Count"), -1);
}

TEST(DockerRunnerSpec, DefaultsAreUpstreams) {
  auto spec = parse_spec(args(R"({"image":"envd-test/busybox:latest"})"));
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->name, "busybox");
  json::object body = container_body(*spec);
  EXPECT_EQ(body.at("HostConfig").as_object().at("RestartPolicy"),
            (json::object{{"Name", "always"}}));
  EXPECT_FALSE(body.at("HostConfig").as_object().contains("NetworkMode"));
  // Upstream's 2048 MiB of /dev/shm, not the Engine's 64 MiB.
  EXPECT_EQ(body.at("HostConfig").as_object().at("ShmSize").as_int64(), 2147483648);
  EXPECT_FALSE(body.at("HostConfig").as_object().contains("CpusetCpus"));
  EXPECT_FALSE(body.at("HostConfig").as_object().contains("CapAdd"));
  EXPECT_FALSE(body.contains("Cmd"));
  EXPECT_EQ(body.at("Tty"), true);
}

TEST(DockerRunnerSpec, VolumesBecomeMountsAndARetryCountItsPolicy) {
  auto spec = parse_spec(args(R"({"image":"img","restart":"on-failure:3","volumes":[
      {"type":"bind","source":"/srv/src","target":"/src","read_only":true},
      {"type":"volume","source":"cache","target":"/cache"},
      {"type":"volume","source":"","target":"/scratch"}]})"));
  ASSERT_TRUE(spec) << spec.error().message();
  const json::object body = container_body(*spec);
  const auto& host = body.at("HostConfig").as_object();
  EXPECT_EQ(host.at("RestartPolicy"),
            (json::object{{"Name", "on-failure"}, {"MaximumRetryCount", 3}}));
  EXPECT_EQ(
      host.at("Mounts"),
      (json::array{
          json::object{
              {"Type", "bind"}, {"Target", "/src"}, {"ReadOnly", true}, {"Source", "/srv/src"}},
          json::object{
              {"Type", "volume"}, {"Target", "/cache"}, {"ReadOnly", false}, {"Source", "cache"}},
          json::object{{"Type", "volume"}, {"Target", "/scratch"}, {"ReadOnly", false}}}));
  // Without volumes the Engine gets no Mounts at all.
  EXPECT_FALSE(container_body(*parse_spec(args(R"({"image":"img"})")))
                   .at("HostConfig")
                   .as_object()
                   .contains("Mounts"));
}

TEST(DockerRunnerSpec, RejectsBadSpecsNamingTheField) {
  auto message = [](const std::string& spec) {
    auto r = parse_spec(args(spec));
    return r ? std::string("accepted") : r.error().message();
  };
  EXPECT_EQ(message("{}"), "invalid environment spec: image is missing");
  EXPECT_EQ(message(R"({"image":"i","name":"-x"})"),
            "invalid environment spec: name '-x' is not a Docker container name "
            "([a-zA-Z0-9][a-zA-Z0-9_.-]+)");
  EXPECT_EQ(message(R"({"image":"i","ports":[{"container_port":70000}]})"),
            "invalid environment spec: container_port 70000 is not a port (1-65535)");
  EXPECT_EQ(message(R"({"image":"i","restart":"sometimes"})"),
            "invalid environment spec: restart policy 'sometimes' is not one of no, always, "
            "unless-stopped, on-failure[:MAX-RETRIES]");
  EXPECT_EQ(message(R"({"image":"i","restart":"always:3"})"),
            "invalid environment spec: restart policy 'always:3': only on-failure takes a "
            "maximum retry count");
  EXPECT_EQ(message(R"({"image":"i","restart":"on-failure:x"})"),
            "invalid environment spec: restart policy 'on-failure:x': the maximum retry count "
            "must be a whole number, 0 or more");
  EXPECT_EQ(message(R"({"image":"i","restart":"on-failure:-1"})"),
            "invalid environment spec: restart policy 'on-failure:-1': the maximum retry count "
            "must be a whole number, 0 or more");
  EXPECT_EQ(message(R"({"image":"i","volumes":[{"type":"bind","source":"rel","target":"/t"}]})"),
            "invalid environment spec: bind source 'rel' is not an absolute host path");
  EXPECT_EQ(message(R"({"image":"i","volumes":[{"type":"volume","target":"/"}]})"),
            "invalid environment spec: volume target '/' is not an absolute path other than /");
  EXPECT_EQ(message(R"({"image":"i","volumes":[{"type":"volume","source":"a b","target":"/t"}]})"),
            "invalid environment spec: volume name 'a b' is not a Docker volume name "
            "([a-zA-Z0-9][a-zA-Z0-9_.-]+)");
  EXPECT_EQ(message(R"({"image":"i","volumes":[{"type":"tmpfs","target":"/t"}]})"),
            "invalid environment spec: volume type 'tmpfs' is not bind or volume");
  EXPECT_EQ(message(R"({"image":"i","volumes":[{"type":"volume","target":"/t"},
                                                 {"type":"volume","target":"/t"}]})"),
            "invalid environment spec: two volumes are mounted at /t");
  EXPECT_EQ(message(R"({"image":"i","shm_size":0})"),
            "invalid environment spec: shm_size must be a positive number of bytes");
  EXPECT_EQ(message(R"({"image":"i","cpuset":"1-0"})"),
            "invalid environment spec: cpuset '1-0' is not a list of CPUs and ranges such as 0-3 "
            "or 1,3");
  EXPECT_EQ(message(R"({"image":"i","cap_add":["sys_ptrace"]})"),
            "invalid environment spec: cap_add holds 'sys_ptrace', which is not a capability name "
            "such as SYS_PTRACE");
  // A misspelt one is found here, before `envd up` builds, not by the Engine.
  EXPECT_EQ(message(R"({"image":"i","cap_add":["SYS_PTRAC"]})"),
            "invalid environment spec: cap_add holds 'SYS_PTRAC', which is not a capability name "
            "such as SYS_PTRACE");
  EXPECT_TRUE(parse_spec(args(R"({"image":"i","cap_add":["ALL","CAP_NET_ADMIN","BPF"]})")));
  EXPECT_EQ(message(R"({"image":"i","gpus":"many"})"),
            "invalid environment spec: gpus 'many' has the count 'many', not all or a number of "
            "GPUs");
  // A share under Docker's floor would round to NanoCpus 0: no limit at all.
  EXPECT_EQ(message(R"({"image":"i","cpus":1e-10})"),
            "invalid environment spec: cpus must be 0 (no limit) or a number of CPUs from 0.01");
  EXPECT_EQ(message(R"({"image":"i","cpus":0})"), "accepted");
}

TEST(DockerRunnerEnvironment, MapsAnInspectedContainer) {
  json::value c = json::parse(R"({
    "Id": "0123456789abcdef", "Name": "/dev", "Created": "2026-12-02T08:30:00.123456789Z",
    "RestartCount": 3,
    "State": {"Status": "running", "ExitCode": 0, "Error": "",
              "StartedAt": "2026-12-02T08:30:01.5Z"},
    "Config": {"Image": "img", "Env": ["A=1", "PATH=/bin"], "Cmd": ["sh"],
               "Labels": {"ai.tensorchord.envd.name": "dev", "x": "y"}},
    "HostConfig": {"NanoCpus": 500000000, "Memory": 1024, "NetworkMode": "default",
                   "ShmSize": 67108864, "CpusetCpus": "0", "CapAdd": ["SYS_PTRACE"],
                   "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 5},
                   "DeviceRequests": [{"Count": 2}],
                   "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": ""}],
                                    "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}]}},
    "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
                                  "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
                                  "22/tcp": null}},
    "Mounts": [{"Type": "bind", "Source": "/srv/src", "Destination": "/src", "RW": false},
               {"Type": "volume", "Name": "cache", "Source": "/var/lib/docker/volumes/cache/_data",
                "Destination": "/cache", "Driver": "local", "RW": true}]})");
  ASSERT_TRUE(is_environment(c.as_object()));
  json::object env = environment_of(c.as_object());
  EXPECT_EQ(env.at("name"), "dev");
  EXPECT_EQ(env.at("status"), "running");
  EXPECT_EQ(env.at("created"), "2026-12-02T08:30:00Z");
  EXPECT_EQ(env.at("started"), "2026-12-02T08:30:01Z");
  EXPECT_EQ(env.at("endpoint"), "127.0.0.1:5353->53/udp,0.0.0.0:8080->80/tcp");
  EXPECT_EQ(env.at("env"), (json::object{{"A", "1"}, {"PATH", "/bin"}}));
  EXPECT_EQ(env.at("resources"), (json::object{{"cpus", 0.5},
                                               {"memory", 1024},
                                               {"gpus", "2"},
                                               {"shm_size", 67108864},
                                               {"cpuset", "0"}}));
  EXPECT_EQ(env.at("cap_add"), (json::array{"SYS_PTRACE"}));
  EXPECT_EQ(env.at("restart"), "on-failure:5");
  EXPECT_EQ(env.at("restarts"), 3);
  EXPECT_EQ(env.at("command"), (json::array{"sh"}));
  // A volume by its name, not by where the Engine keeps it.
  EXPECT_EQ(env.at("volumes"), (json::array{json::object{{"type", "bind"},
                                                         {"source", "/srv/src"},
                                                         {"target", "/src"},
                                                         {"read_only", true}},
                                            json::object{{"type", "volume"},
                                                         {"source", "cache"},
                                                         {"target", "/cache"},
                                                         {"read_only", false}}}));

  json::value other = json::parse(R"({"Config": {"Labels": {"x": "y"}}})");
  EXPECT_FALSE(is_environment(other.as_object()));
}

// The endpoint is what the Engine published while the container runs (a
// port it chose for -p :80, nothing on network none), not what was asked for;
// a stopped container shows what its next start asks for.
TEST(DockerRunnerEnvironment, TheEndpointIsWhatTheEnginePublished) {
  auto with = [](const std::string& status, const std::string& published) {
    return json::parse(R"({"Id": "0123", "Name": "/p",
      "State": {"Status": ")" +
                       status + R"("},
      "Config": {"Labels": {"ai.tensorchord.envd.name": "p"}},
      "HostConfig": {"NetworkMode": "default",
                     "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": ""}]}},
      "NetworkSettings": {"Ports": )" +
                       published + "}}")
        .as_object();
  };
  EXPECT_EQ(environment_of(with("running", R"({"80/tcp": [{"HostIp": "0.0.0.0",
      "HostPort": "49153"}, {"HostIp": "::", "HostPort": "49153"}]})"))
                .at("endpoint"),
            "0.0.0.0:49153->80/tcp,[::]:49153->80/tcp");
  // Network none: the Engine publishes nothing, whatever was asked for.
  EXPECT_EQ(environment_of(with("running", "{}")).at("endpoint"), "");
  EXPECT_EQ(environment_of(with("running", "{}")).at("ports"), json::array{});
  EXPECT_EQ(environment_of(with("exited", "{}")).at("endpoint"), "0.0.0.0:*->80/tcp");
}

// The Engine keeps the bindings of a container on the host's network in its
// HostConfig but publishes none of them; describe showed them as endpoints.
TEST(DockerRunnerEnvironment, NoPortIsShownOnTheHostsNetwork) {
  json::value c = json::parse(R"({"Id": "0123", "Name": "/h",
    "Config": {"Labels": {"ai.tensorchord.envd.name": "h"}},
    "HostConfig": {"NetworkMode": "host",
                   "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}}})");
  json::object env = environment_of(c.as_object());
  EXPECT_EQ(env.at("endpoint"), "");
  EXPECT_EQ(env.at("ports"), json::array{});
  EXPECT_EQ(env.at("network"), "host");
}

// `envs ls` lists an environment under the name describe, logs, attach and
// down look it up by: the container's. A container made by other means with
// envd's label set to another name used to be listed as that name, which
// nothing could then reach.
TEST(DockerRunnerEnvironment, TheNameIsTheContainersNotTheLabels) {
  json::value c = json::parse(R"({"Id": "0123", "Name": "/other",
    "Config": {"Labels": {"ai.tensorchord.envd.name": "fake"}}})");
  ASSERT_TRUE(is_environment(c.as_object()));
  EXPECT_EQ(environment_of(c.as_object()).at("name"), "other");
}

}  // namespace
}  // namespace envd::plugins::docker_runner
