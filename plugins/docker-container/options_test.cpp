#include "options.hpp"

#include <gtest/gtest.h>

#include "docker_container_builder.hpp"

namespace envd::plugins::docker_container {
namespace {

std::string rejected(const sdk::Options& options) {
  auto r = DockerContainerBuilder().normalize_options(options);
  if (r) return "<accepted>";
  EXPECT_EQ(r.error().code(), Errc::invalid_argument);
  return r.error().message();
}

sdk::Options normalized(const sdk::Options& options) {
  auto r = DockerContainerBuilder().normalize_options(options);
  EXPECT_TRUE(r) << r.error().message();
  return r ? *r : sdk::Options{};
}

TEST(DockerContainerOptions, NoOptionsIsThePrivilegedDefault) {
  auto parsed = parse({});
  ASSERT_TRUE(parsed);
  EXPECT_TRUE(parsed->privileged);
  EXPECT_FALSE(parsed->rootless);
  EXPECT_TRUE(parsed->image.empty());
  EXPECT_FALSE(parsed->gc_keep_storage);
  EXPECT_EQ(normalized({}), sdk::Options{});
}

TEST(DockerContainerOptions, NormalizesBooleansListsAndCapabilities) {
  auto out = normalized({{"privileged", "False"},
                         {"cap-add", " all , sys_admin"},
                         {"cap-drop", "SYS_RESOURCE"},
                         {"security-opt", "seccomp=unconfined,, apparmor=unconfined"},
                         {"mount", "/sys/fs/cgroup:/sys/fs/cgroup:rw,cache:/cache:ro"},
                         {"network", "none"},
                         {"env", "A=1,B_2=x y"},
                         {"image", " envd-test/buildkit-standin:1 "}});
  EXPECT_EQ(out.at("privileged"), "false");
  EXPECT_EQ(out.at("cap-add"), "ALL,SYS_ADMIN");
  EXPECT_EQ(out.at("cap-drop"), "SYS_RESOURCE");
  EXPECT_EQ(out.at("security-opt"), "seccomp=unconfined,apparmor=unconfined");
  EXPECT_EQ(out.at("mount"), "/sys/fs/cgroup:/sys/fs/cgroup:rw,cache:/cache:ro");
  EXPECT_EQ(out.at("env"), "A=1,B_2=x y");
  EXPECT_EQ(out.at("image"), "envd-test/buildkit-standin:1");
  auto parsed = parse(out);
  ASSERT_TRUE(parsed);
  ASSERT_EQ(parsed->mounts.size(), 2u);
  EXPECT_FALSE(parsed->mounts[0].is_volume());
  EXPECT_FALSE(parsed->mounts[0].read_only);
  EXPECT_TRUE(parsed->mounts[1].is_volume());
  EXPECT_TRUE(parsed->mounts[1].read_only);
}

// A list item in double quotes holds commas, as in the docker CLI's and
// buildx's CSV flags; the stored form quotes only the items that need it.
TEST(DockerContainerOptions, AQuotedListItemHoldsCommas) {
  auto out = normalized({{"env", R"("NO_PROXY=localhost,.corp", FOO="x","BAR=""y""")"},
                         {"mount", R"("/srv/a,b:/a,b:ro")"}});
  EXPECT_EQ(out.at("env"), R"("NO_PROXY=localhost,.corp",FOO="x",BAR="y")");
  EXPECT_EQ(out.at("mount"), R"("/srv/a,b:/a,b:ro")");
  auto parsed = parse(out);
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(parsed->env,
            (std::vector<std::string>{"NO_PROXY=localhost,.corp", "FOO=\"x\"", "BAR=\"y\""}));
  ASSERT_EQ(parsed->mounts.size(), 1u);
  EXPECT_EQ(parsed->mounts[0].source, "/srv/a,b");
  EXPECT_EQ(parsed->mounts[0].target, "/a,b");
  EXPECT_EQ(normalized(out), out) << "normalizing the stored form changes nothing";

  EXPECT_EQ(rejected({{"env", R"(A=1,"B=2)"}}),
            R"(invalid driver option 'env' 'A=1,"B=2': unterminated quote)");
}

TEST(DockerContainerOptions, SecurityOptionsFollowTheDockerCli) {
  auto parsed = parse({{"security-opt",
                        "systempaths=unconfined,seccomp=unconfined,apparmor:unconfined,"
                        "no-new-privileges,label=disable,seccomp=/etc/profile.json"}});
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_TRUE(parsed->unconfined_system_paths);
  EXPECT_EQ(
      parsed->security_opt,
      (std::vector<std::string>{"seccomp=unconfined", "apparmor=unconfined", "no-new-privileges",
                                "label=disable", "seccomp=/etc/profile.json"}));
  EXPECT_FALSE(parse({{"security-opt", "seccomp=builtin"}})->unconfined_system_paths);

  EXPECT_EQ(rejected({{"security-opt", "systempaths=masked"}}),
            "driver option 'security-opt=systempaths=masked' is invalid: systempaths takes only "
            "unconfined");
  EXPECT_EQ(rejected({{"security-opt", "seccomp=profile.json"}}),
            "driver option 'security-opt=seccomp=profile.json' is invalid: seccomp takes "
            "unconfined, builtin or the absolute path of a JSON profile");
  EXPECT_EQ(rejected({{"security-opt", "privileged=true"}}),
            "driver option 'security-opt=privileged=true' is invalid: unknown security option "
            "'privileged' (expected no-new-privileges, seccomp, apparmor, label or "
            "systempaths)");
  EXPECT_EQ(rejected({{"security-opt", "unconfined"}}),
            "driver option 'security-opt=unconfined' is invalid: expected no-new-privileges, "
            "seccomp=unconfined|builtin|/PROFILE.json, apparmor=PROFILE, label=LABEL or "
            "systempaths=unconfined");
  EXPECT_EQ(rejected({{"security-opt", "no-new-privileges=maybe"}}),
            "driver option 'security-opt=no-new-privileges=maybe' is invalid: no-new-privileges "
            "takes true or false");
}

TEST(DockerContainerOptions, RejectsUnknownKeysNamingTheAllowedOnes) {
  EXPECT_EQ(rejected({{"memory", "1g"}}),
            "unknown driver option 'memory' (allowed: image, "
            "privileged, cap-add, cap-drop, security-opt, device, mount, network, env, "
            "buildkitd-flags, rootless, gc-keep-storage, config)");
}

TEST(DockerContainerOptions, RejectsBadValues) {
  EXPECT_EQ(rejected({{"privileged", "maybe"}}),
            "driver option 'privileged=maybe' is invalid: expected true or false");
  EXPECT_EQ(rejected({{"mount", "/a"}}),
            "driver option 'mount=/a' is invalid: expected SRC:DST[:ro|rw]");
  EXPECT_EQ(rejected({{"mount", "/a:rel"}}),
            "driver option 'mount=/a:rel' is invalid: the target must be an absolute path in the "
            "container");
  EXPECT_EQ(rejected({{"mount", "/a:/b:rx"}}),
            "driver option 'mount=/a:/b:rx' is invalid: the mode must be ro or rw");
  EXPECT_EQ(rejected({{"network", "my net"}}),
            "driver option 'network=my net' is invalid: expected host, none or a Docker network "
            "name");
  EXPECT_EQ(rejected({{"env", "1A=x"}}),
            "driver option 'env=1A=x' is invalid: expected NAME=VALUE with NAME made of "
            "[A-Za-z0-9_]");
  EXPECT_EQ(rejected({{"cap-add", "SYS-ADMIN"}}),
            "driver option 'cap-add=SYS-ADMIN' is invalid: expected a capability name such as "
            "SYS_ADMIN or ALL");
  EXPECT_EQ(rejected({{"device", "fuse"}}),
            "driver option 'device=fuse' is invalid: expected /dev/HOST[:/dev/CONTAINER[:rwm]]");
  EXPECT_EQ(rejected({{"gc-keep-storage", "lots"}}),
            "driver option 'gc-keep-storage' 'lots' is not a size (expected e.g. 10GB, 512MiB or "
            "a number of bytes)");
  EXPECT_EQ(rejected({{"buildkitd-flags", "--debug 'x"}}),
            "driver option 'buildkitd-flags' '--debug 'x' has an unterminated ' quote");
  EXPECT_EQ(rejected({{"image", "a b"}}),
            "driver option 'image=a b' is invalid: expected an image reference such as "
            "moby/buildkit:v0.19.0");
  EXPECT_EQ(rejected({{"image", "moby/buildkit:v0.19.0\"}"}}),
            "driver option 'image=moby/buildkit:v0.19.0\"}' is invalid: expected an image "
            "reference such as moby/buildkit:v0.19.0");
  // Two --builder-opt image= reach the driver joined with ','.
  EXPECT_EQ(rejected({{"image", "moby/buildkit:a,moby/buildkit:b"}}),
            "driver option 'image=moby/buildkit:a,moby/buildkit:b' is invalid: it takes one "
            "image reference (image= was given twice?)");
}

TEST(DockerContainerOptions, GcKeepStorageAndConfigExcludeEachOther) {
  EXPECT_EQ(rejected({{"gc-keep-storage", "10GB"}, {"config", "/tmp/buildkitd.toml"}}),
            "driver options 'gc-keep-storage' and 'config' cannot be combined: set "
            "worker.oci.gckeepstorage in your config");
}

TEST(DockerContainerOptions, RootlessIsUnprivileged) {
  auto parsed = parse({{"rootless", "true"}});
  ASSERT_TRUE(parsed);
  EXPECT_TRUE(parsed->rootless);
  EXPECT_FALSE(parsed->privileged);
  EXPECT_EQ(rejected({{"rootless", "true"}, {"privileged", "true"}}),
            "driver options 'rootless=true' and 'privileged=true' cannot be combined: a rootless "
            "buildkitd runs unprivileged");
}

TEST(DockerContainerOptions, ParsesSizes) {
  EXPECT_EQ(*parse_size("10GB", "x"), 10'000'000'000u);
  EXPECT_EQ(*parse_size("512MiB", "x"), 512u * 1024 * 1024);
  EXPECT_EQ(*parse_size("1.5g", "x"), 1610612736u);
  EXPECT_EQ(*parse_size("1048576", "x"), 1048576u);
  EXPECT_EQ(*parse_size("20 kB", "x"), 20000u);
  EXPECT_FALSE(parse_size("", "x"));
  EXPECT_FALSE(parse_size("1.2.3GB", "x"));
  EXPECT_FALSE(parse_size("5PB", "x"));
  EXPECT_FALSE(parse_size("-1", "x"));
  // Each threw out of std::stod, reaching the plugin boundary as "stod".
  EXPECT_FALSE(parse_size(".", "x"));
  EXPECT_FALSE(parse_size(std::string(400, '9'), "x"));
}

TEST(DockerContainerOptions, SplitsFlagsLikeAShell) {
  auto words =
      split_words(R"(--debug --allow-insecure-entitlement "network.host" --x 'a b' c\ d)", "f");
  ASSERT_TRUE(words);
  EXPECT_EQ(*words, (std::vector<std::string>{"--debug", "--allow-insecure-entitlement",
                                              "network.host", "--x", "a b", "c d"}));
  EXPECT_EQ(split_words("", "f")->size(), 0u);
}

}  // namespace
}  // namespace envd::plugins::docker_container
