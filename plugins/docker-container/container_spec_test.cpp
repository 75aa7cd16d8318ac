#include "container_spec.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace envd::plugins::docker_container {
namespace {

namespace json = boost::json;

json::object create_body(const ContainerSpec& spec) {
  return json::parse(spec.create_json).as_object();
}

ContainerOptions options_of(const sdk::Options& raw) {
  auto parsed = parse(raw);
  EXPECT_TRUE(parsed) << parsed.error().message();
  return parsed ? *parsed : ContainerOptions{};
}

TEST(DockerContainerSpec, DefaultContainerIsPrivilegedWithVolumeConfigAndLabels) {
  ContainerOptions options;
  std::string config = generated_config(options);
  auto spec = make_spec("envd_buildkitd", "default", options, effective_image(options, ""),
                        "/data/buildkitd.toml", config);
  EXPECT_EQ(spec.image, "docker.io/moby/buildkit:v0.19.0");
  EXPECT_EQ(spec.volume, "envd_buildkitd_state");
  auto body = create_body(spec);
  EXPECT_EQ(body.at("Image"), "docker.io/moby/buildkit:v0.19.0");
  EXPECT_EQ(body.at("Cmd"), (json::array{"--config", "/etc/buildkit/buildkitd.toml"}));
  const auto& host = body.at("HostConfig").as_object();
  EXPECT_EQ(host.at("Privileged"), true);
  EXPECT_FALSE(host.contains("NetworkMode"));
  const auto& mounts = host.at("Mounts").as_array();
  ASSERT_EQ(mounts.size(), 2u);
  EXPECT_EQ(mounts[0], (json::object{{"Type", "volume"},
                                     {"Source", "envd_buildkitd_state"},
                                     {"Target", "/var/lib/buildkit"}}));
  EXPECT_EQ(mounts[1], (json::object{{"Type", "bind"},
                                     {"Source", "/data/buildkitd.toml"},
                                     {"Target", "/etc/buildkit/buildkitd.toml"},
                                     {"ReadOnly", true}}));
  const auto& labels = body.at("Labels").as_object();
  EXPECT_EQ(labels.at("dev.envd.builder.image"), "docker.io/moby/buildkit:v0.19.0");
  EXPECT_EQ(labels.at("dev.envd.context"), "default");
  EXPECT_EQ(labels.at("dev.envd.builder.config-sha256").as_string().size(), 64u);
  EXPECT_FALSE(stale_reason(spec.labels, spec));
}

TEST(DockerContainerSpec, GcKeepStorageLandsInTheGeneratedConfig) {
  auto options = options_of({{"gc-keep-storage", "10GB"}});
  EXPECT_NE(generated_config(options).find("[worker.oci]\n  gckeepstorage = 10000000000\n"),
            std::string::npos);
  EXPECT_EQ(generated_config(ContainerOptions{}).find("gckeepstorage"), std::string::npos);
}

TEST(DockerContainerSpec, RootlessUsesTheRootlessImageAndUnconfinedProfiles) {
  auto options = options_of({{"rootless", "true"}});
  auto spec = make_spec("bk", "ctx", options, effective_image(options, ""), "/c", "");
  EXPECT_EQ(spec.image, "docker.io/moby/buildkit:v0.19.0-rootless");
  auto body = create_body(spec);
  EXPECT_EQ(body.at("Cmd"), (json::array{"--config", "/etc/buildkit/buildkitd.toml",
                                         "--oci-worker-no-process-sandbox"}));
  const auto& host = body.at("HostConfig").as_object();
  EXPECT_EQ(host.at("Privileged"), false);
  EXPECT_EQ(host.at("SecurityOpt"), (json::array{"seccomp=unconfined", "apparmor=unconfined"}));
  EXPECT_EQ(host.at("Devices"), (json::array{json::object{{"PathOnHost", "/dev/fuse"},
                                                          {"PathInContainer", "/dev/fuse"},
                                                          {"CgroupPermissions", "rwm"}}}));
  EXPECT_EQ(host.at("Mounts").as_array()[0].at("Target"), "/home/user/.local/share/buildkit");
}

// A profile the user chose is kept: the Engine takes the last value of a
// key, so an "unconfined" added after it would have won unsaid.
TEST(DockerContainerSpec, RootlessKeepsAProfileTheUserChose) {
  auto options = options_of({{"rootless", "true"}, {"security-opt", "apparmor=envd-bk"}});
  auto spec = make_spec("bk", "ctx", options, effective_image(options, ""), "/c", "");
  EXPECT_EQ(create_body(spec).at("HostConfig").at("SecurityOpt"),
            (json::array{"apparmor=envd-bk", "seccomp=unconfined"}));
  auto builtin = options_of({{"rootless", "true"}, {"security-opt", "seccomp=builtin"}});
  auto builtin_spec = make_spec("bk", "ctx", builtin, effective_image(builtin, ""), "/c", "");
  EXPECT_EQ(create_body(builtin_spec).at("HostConfig").at("SecurityOpt"),
            (json::array{"seccomp=builtin", "apparmor=unconfined"}));
}

TEST(DockerContainerSpec, OptionsShapeTheHostConfig) {
  auto options = options_of({{"privileged", "false"},
                             {"cap-add", "ALL"},
                             {"cap-drop", "SYS_RESOURCE"},
                             {"security-opt", "systempaths=unconfined"},
                             {"mount", "/run/x.sock:/run/y.sock"},
                             {"network", "host"},
                             {"env", "A=1"},
                             {"buildkitd-flags", "--debug --x 'a b'"},
                             {"device", "/dev/kvm"}});
  auto spec = make_spec("bk", "ctx", options, "img:1", "/c", "");
  auto body = create_body(spec);
  EXPECT_EQ(body.at("Cmd"),
            (json::array{"--config", "/etc/buildkit/buildkitd.toml", "--debug", "--x", "a b"}));
  EXPECT_EQ(body.at("Env"), (json::array{"A=1"}));
  const auto& host = body.at("HostConfig").as_object();
  EXPECT_EQ(host.at("Privileged"), false);
  EXPECT_EQ(host.at("CapAdd"), (json::array{"ALL"}));
  EXPECT_EQ(host.at("CapDrop"), (json::array{"SYS_RESOURCE"}));
  // The docker CLI's systempaths=unconfined is no Engine option: it becomes
  // empty masked and read-only path lists.
  EXPECT_EQ(host.at("SecurityOpt"), json::array());
  EXPECT_EQ(host.at("MaskedPaths"), json::array());
  EXPECT_EQ(host.at("ReadonlyPaths"), json::array());
  EXPECT_EQ(host.at("NetworkMode"), "host");
  EXPECT_EQ(host.at("Devices").as_array()[0].at("PathInContainer"), "/dev/kvm");
  EXPECT_EQ(host.at("Mounts").as_array()[2], (json::object{{"Type", "bind"},
                                                           {"Source", "/run/x.sock"},
                                                           {"Target", "/run/y.sock"},
                                                           {"ReadOnly", false}}));
}

TEST(DockerContainerSpec, StaleReasonsNameWhatDiffers) {
  ContainerOptions options;
  auto spec = make_spec("bk", "ctx", options, "img:1", "/c", "config A");
  auto labels = spec.labels;
  labels["dev.envd.builder.image"] = "img:0";
  EXPECT_EQ(stale_reason(labels, spec), "it runs image img:0 but the context asks for img:1");
  auto other_config = make_spec("bk", "ctx", options, "img:1", "/c", "config B");
  EXPECT_EQ(stale_reason(other_config.labels, spec),
            "its buildkitd.toml or driver options differ from the context's");
  auto other_options =
      make_spec("bk", "ctx", options_of({{"network", "none"}}), "img:1", "/c", "config A");
  EXPECT_TRUE(stale_reason(other_options.labels, spec));
  EXPECT_EQ(stale_reason({}, spec),
            "it was not created by this envd (it has no dev.envd.builder.image label)");
}

// For an Engine that may not share this disk (tcp://) the config is copied in,
// not mounted; how it gets there does not make a container stale.
TEST(DockerContainerSpec, AConfigToCopyIsNotMountedAndHashesTheSame) {
  ContainerOptions options;
  auto mounted = make_spec("bk", "ctx", options, "img:1", "/data/buildkitd.toml", "config A");
  auto copied = make_spec("bk", "ctx", options, "img:1", "", "config A");
  EXPECT_EQ(copied.config_host, "");
  auto body = create_body(copied);
  const auto& mounts = body.at("HostConfig").at("Mounts").as_array();
  ASSERT_EQ(mounts.size(), 1u);
  EXPECT_EQ(mounts[0].at("Type"), "volume");
  EXPECT_EQ(copied.config_sha256, mounted.config_sha256);
  EXPECT_EQ(stale_reason(mounted.labels, copied), std::nullopt);
  EXPECT_EQ(body.at("Cmd"), (json::array{"--config", "/etc/buildkit/buildkitd.toml"}));
}

// On an Engine that shares this disk, a directory of the context's is
// mounted where buildkitd makes its socket, so envd can dial it without an
// exec. It is not part of the hash: a container made without it still
// matches, and is dialled through the exec.
TEST(DockerContainerSpec, TheSocketDirectoryIsMountedAndHashesTheSame) {
  ContainerOptions options;
  auto with =
      make_spec("bk", "ctx", options, "img:1", "/data/buildkitd.toml", "config A", "/data/run");
  auto without = make_spec("bk", "ctx", options, "img:1", "/data/buildkitd.toml", "config A");
  EXPECT_EQ(with.socket_dir_host, "/data/run");
  EXPECT_EQ(without.socket_dir_host, "");
  auto body = create_body(with);
  const auto& mounts = body.at("HostConfig").at("Mounts").as_array();
  ASSERT_EQ(mounts.size(), 3u);
  EXPECT_EQ(mounts[2],
            (json::object{{"Type", "bind"}, {"Source", "/data/run"}, {"Target", "/run/buildkit"}}));
  EXPECT_EQ(create_body(without).at("HostConfig").at("Mounts").as_array().size(), 2u);
  EXPECT_EQ(with.config_sha256, without.config_sha256);
  EXPECT_EQ(stale_reason(without.labels, with), std::nullopt);
}

TEST(DockerContainerSpec, AUserMountOverTheSocketDirectoryWins) {
  EXPECT_FALSE(mounts_over_socket_dir(ContainerOptions{}));
  EXPECT_FALSE(mounts_over_socket_dir(options_of({{"mount", "/srv:/srv"}})));
  EXPECT_FALSE(mounts_over_socket_dir(options_of({{"mount", "/srv:/run/buildkit-other"}})));
  for (const char* mount : {"/srv:/run/buildkit", "/srv:/run/buildkit/", "/srv:/run", "/srv:/",
                            "/srv:/run/buildkit/sub"}) {
    EXPECT_TRUE(mounts_over_socket_dir(options_of({{"mount", mount}}))) << mount;
  }
}

TEST(DockerContainerSpec, ImageOverrideWins) {
  auto options = options_of({{"image", "from/option:1"}});
  EXPECT_EQ(effective_image(options, "from/flag:2"), "from/flag:2");
  EXPECT_EQ(effective_image(options, ""), "from/option:1");
}

TEST(DockerContainerSpec, SplitsImageReferences) {
  auto r = split_image("docker.io/moby/buildkit:v0.19.0");
  EXPECT_EQ(r.repository, "docker.io/moby/buildkit");
  EXPECT_EQ(r.tag, "v0.19.0");
  EXPECT_EQ(r.registry, "docker.io");
  r = split_image("127.0.0.1:5000/envd-test/standin");
  EXPECT_EQ(r.repository, "127.0.0.1:5000/envd-test/standin");
  EXPECT_EQ(r.tag, "latest");
  EXPECT_EQ(r.registry, "127.0.0.1:5000");
  r = split_image("moby/buildkit@sha256:abc");
  EXPECT_EQ(r.repository, "moby/buildkit");
  EXPECT_EQ(r.tag, "sha256:abc");
  EXPECT_EQ(r.registry, "docker.io");
  EXPECT_EQ(split_image("localhost/x:1").registry, "localhost");
}

TEST(DockerContainerSpec, Sha256MatchesAKnownVector) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace envd::plugins::docker_container
