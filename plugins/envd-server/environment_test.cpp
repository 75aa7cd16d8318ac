#include "environment.hpp"

#include <gtest/gtest.h>

namespace envd::plugins::envd_server {
namespace {

namespace json = boost::json;

json::object body_of(const std::string& args) {
  auto out = create_body(args);
  EXPECT_TRUE(out) << (out ? "" : out.error().message());
  return out ? out->body : json::object{};
}

std::string refusal(const std::string& args) {
  auto out = create_body(args);
  EXPECT_FALSE(out);
  return out ? "" : out.error().message();
}

TEST(EnvdServerEnvironment, CreateBodyAsUpstreamSendsIt) {
  EXPECT_EQ(
      json::serialize(body_of(R"({"spec":{"image":"ubuntu:22.04","name":"dev"}})")),
      R"({"name":"dev","spec":{"image":"ubuntu:22.04"},"resource":{"gpu":"0","shm":"2048Mi"}})");
  auto full =
      body_of(R"({"spec":{"image":"r/x:1","name":"dev","cpus":1.5,"memory":536870912,"gpus":"2",)"
              R"("force":true,"env":{},"command":[],"ports":[]}})");
  EXPECT_EQ(json::serialize(full),
            R"({"name":"dev","spec":{"image":"r/x:1"},)"
            R"("resource":{"gpu":"2","shm":"2048Mi","cpu":"1.5","memory":"536870912"}})");
  EXPECT_TRUE(create_body(R"({"spec":{"image":"x","force":true}})")->force);
  // --shm-size in the server's MiB, a part of one rounded up.
  EXPECT_EQ(
      create_body(R"({"spec":{"image":"x","shm_size":536870913}})")->body.at("resource").at("shm"),
      "513Mi");
}

TEST(EnvdServerEnvironment, NamesComeFromTheImage) {
  EXPECT_EQ(default_name("docker.io/library/Ubuntu_Dev:22.04"), "ubuntu-dev");
  EXPECT_EQ(default_name("localhost:5000/team/py@sha256:abc"), "py");
  EXPECT_EQ(default_name(std::string(40, 'a')), std::string(30, 'a'));
  EXPECT_EQ(create_body(R"({"spec":{"image":"r/py:3"}})")->name, "py");
}

TEST(EnvdServerEnvironment, RefusesWhatAPodCannotDo) {
  EXPECT_EQ(refusal(R"({"spec":{}})"), "invalid environment spec: 'image' is required");
  EXPECT_EQ(refusal(R"({"spec":{"image":"x","gpus":"all"}})"),
            "invalid environment spec: envd-server takes a GPU count, not 'all'");
  // The server's runtime reads only the image of a spec.
  EXPECT_EQ(refusal(R"({"spec":{"image":"x","ports":[{"host_port":0,"container_port":8080}]}})"),
            "invalid environment spec: envd-server publishes the SSH port and the ports the "
            "image's envd labels declare; -p cannot be given");
  EXPECT_EQ(refusal(R"({"spec":{"image":"x","env":{"A":"1"}}})"),
            "invalid environment spec: envd-server does not pass environment variables (-e) to an "
            "environment: its pod gets the image's own; set them in the image");
  EXPECT_EQ(refusal(R"({"spec":{"image":"x","command":["sh"]}})"),
            "invalid environment spec: envd-server runs the image's own command; a command "
            "cannot be given");
  EXPECT_EQ(refusal(R"({"spec":{"image":"x","volumes":[{"type":"volume","target":"/d"}]}})"),
            "invalid environment spec: envd-server mounts no host directory or volume (-v) into "
            "an environment: its pods run on the server's cluster, which gives them their own "
            "storage");
  EXPECT_EQ(refusal(R"({"spec":{"image":"x","cpuset":"0"}})"),
            "invalid environment spec: envd-server takes no CPU set (--cpu-set): its pods get "
            "CPUs by count (--cpus)");
  EXPECT_EQ(refusal(R"({"spec":{"image":"x","cap_add":["SYS_PTRACE"]}})"),
            "invalid environment spec: envd-server adds no capability (--cap-add) to an "
            "environment's pod");
  EXPECT_EQ(refusal(R"({"spec":{"image":"x","restart":"no"}})"),
            "invalid environment spec: a restart policy does not apply to envd-server (its pods "
            "are managed by the server)");
}

TEST(EnvdServerEnvironment, EnvironmentOfTheServersAnswer) {
  auto server =
      json::parse(
          R"({"name":"dev","spec":{"owner":"me","image":"x:1","env":[{"name":"A","value":"1"}],)"
          R"("cmd":["sh"],"ports":[{"name":"ssh","port":2222}]},"status":{"phase":"Running"},)"
          R"("resource":{"cpu":"2","memory":"1024","gpu":"0","shm":"2048Mi"},"created_at":0})")
          .as_object();
  auto env = environment_of(server, "me", "10.0.0.5");
  EXPECT_EQ(env["status"], "running");
  EXPECT_EQ(env["endpoint"], "me/dev@10.0.0.5:2222");
  EXPECT_EQ(env["image"], "x:1");
  EXPECT_EQ(json::serialize(env["env"]), R"({"A":"1"})");
  EXPECT_EQ(json::serialize(env["resources"]),
            R"({"cpus":2E0,"memory":1024,"gpus":"","shm_size":2147483648})");
  EXPECT_EQ(env["server"], server);
}

TEST(EnvdServerEnvironment, ServerMessages) {
  EXPECT_EQ(server_message(404, R"({"http_status_code":404,"message":"no such env"})"),
            "no such env");
  EXPECT_EQ(server_message(500, " oops \n"), "oops");
  EXPECT_EQ(server_message(502, ""), "HTTP status 502");
  // The server's text becomes part of one line of envd's: escaped, and a
  // page of HTML or many lines gives way to the status.
  EXPECT_EQ(server_message(400, R"({"message":"bad \u001b[31mred\nsecond line"})"),
            "bad \\x1b[31mred\\x0asecond line");
  EXPECT_EQ(server_message(400, "<html><body>\n<h1>Bad</h1>\n</body></html>\n"), "HTTP status 400");
  EXPECT_EQ(server_message(400, "one\ntwo"), "HTTP status 400");
}

}  // namespace
}  // namespace envd::plugins::envd_server
