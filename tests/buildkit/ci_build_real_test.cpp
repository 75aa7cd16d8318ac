// `envd build` as a CI job uses it, against BuildKit's own daemons (the
// standalone buildkitd v0.11.6 of ../shared/tools/buildkit), the test registry
// and the Docker Engine: build cache exported and imported through the
// registry (a fresh daemon then finds every step cached), the Engine's
// refusal of cache types it lacks, labels, hosts, named contexts, and what a
// pipeline reads back (--iidfile, --metadata-file, --quiet) checked against
// what the registry holds.
//
// Skipped, with the reason, when the BuildKit binaries are absent.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "buildkit/real_buildkit_test.hpp"
#include "buildkit/standalone_buildkitd.hpp"
#include "cli_harness.hpp"
#include "services/registry_probe.hpp"
#include "services/test_services.hpp"

namespace envd::test {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

size_t count_of(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

class CiBuildTest : public RealBuildkitTestBase {
 protected:
  void SetUp() override {
    RealBuildkitTestBase::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    tag_ = std::to_string(::getpid());
  }

  std::map<std::string, std::optional<std::string>> env(bool with_engine = false) const {
    return {{"DOCKER_HOST", with_engine ? services_.docker_host
                                        : "unix://" + (home() / "no-docker.sock").string()},
            {"DOCKER_CONFIG", (home() / ".docker").string()}};
  }

  sdk::ProcessResult run(const std::vector<std::string>& args, bool with_engine = false) {
    return envd(args, env(with_engine));
  }

  void use_context(const std::string& name, const std::vector<std::string>& builder) {
    std::vector<std::string> argv = {"context", "create", "--name", name};
    argv.insert(argv.end(), builder.begin(), builder.end());
    argv.emplace_back("--use");
    auto r = run(argv);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  void use_tcp() { use_context("ci-tcp", {"--builder", "tcp", "--builder-address", bk_.tcp}); }

  // A project whose RUN steps take a moment and leave files, so "CACHED" is
  // something a rebuild can only get from the imported cache.
  fs::path project(const std::string& name, const std::string& extra = "") {
    fs::path dir = home() / name;
    write_text(dir / "Dockerfile", "FROM " + bk_.base +
                                       "\nCOPY greeting.txt /greeting.txt\n"
                                       "RUN echo first-" +
                                       name + " > /first.txt\n" +
                                       "RUN cat /greeting.txt /first.txt > /second.txt\n" + extra);
    write_text(dir / "greeting.txt", "hello from " + name + "\n");
    return dir;
  }

  std::string image(const std::string& repository) const {
    return services_.registry + "/" + repository + ":" + tag_;
  }

  std::string tag_;
};

// ---- cache ------------------------------------------------------------------

// Build A exports its cache to the registry (mode=max); a fresh buildkitd,
// which has never built anything, imports it and runs no step.
TEST_F(CiBuildTest, RegistryCacheMakesAFreshDaemonRunNothing) {
  use_tcp();
  const std::string cache = image("envd-ci/cache");
  fs::path dir = project("cached");
  auto r =
      run({"build", "--progress", "plain", "--cache-to", "type=registry,ref=" + cache + ",mode=max",
           "--output", "type=local,dest=" + (home() / "out-a").string(), dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(registry_digest(services_.registry, "envd-ci/cache", tag_).empty());

  std::ifstream config_file(bk_.config);
  std::stringstream config;
  config << config_file.rdbuf();
  StandaloneBuildkitd fresh(bk_, home() / "fresh", config.str());
  ASSERT_TRUE(fresh.wait_until_ready()) << fresh.log();
  use_context("fresh", {"--builder", "unix", "--builder-address", fresh.socket()});
  r = run({"build", "--progress", "plain", "--cache-from", "type=registry,ref=" + cache, "--output",
           "type=local,dest=" + (home() / "out-b").string(), dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Both RUN steps (and the COPY) come from the cache: the daemon never ran them.
  EXPECT_TRUE(contains(r.err, "RUN echo first-cached")) << r.err;
  EXPECT_GE(count_of(r.err, " CACHED"), 3U) << r.err;
  EXPECT_EQ(read_text(home() / "out-b" / "second.txt"), "hello from cached\nfirst-cached\n");

  // Without the import, the same fresh daemon would run them: prove the
  // cache was what made the difference on a second fresh daemon.
  StandaloneBuildkitd cold(bk_, home() / "cold", config.str());
  ASSERT_TRUE(cold.wait_until_ready()) << cold.log();
  use_context("cold", {"--builder", "unix", "--builder-address", cold.socket()});
  r = run({"build", "--progress", "plain", "--output",
           "type=local,dest=" + (home() / "out-c").string(), dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(count_of(r.err, " CACHED"), 3U) << r.err;
}

// Upstream envd's spelling of the same flags, and the bare REF form.
TEST_F(CiBuildTest, UpstreamCacheFlagsAreAliases) {
  use_tcp();
  const std::string cache = image("envd-ci/alias-cache");
  fs::path dir = project("aliased");
  auto r = run({"build", "--export-cache", "type=registry,ref=" + cache, "--output",
                "type=local,dest=" + (home() / "out").string(), dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(registry_digest(services_.registry, "envd-ci/alias-cache", tag_).empty());
  r = run({"build", "--import-cache", cache, "--output",
           "type=local,dest=" + (home() / "out2").string(), dir.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// The Engine's embedded BuildKit exports cache only inline: a registry cache
// export is refused in one line that says so; inline is accepted and the
// image carries its cache.
TEST_F(CiBuildTest, TheEnginesEmbeddedBuildkitSaysWhichCacheItLacks) {
  use_context("engine", {"--builder", "moby-worker"});
  fs::path dir = project("engine-cache");
  // RUN steps on this machine's Engine need --network none (it has no bridge).
  auto r = run({"build", "--network", "none", "-t", "envd-ci/engine-cache:" + tag_, "--cache-to",
                "type=registry,ref=" + image("envd-ci/engine-cache"), dir.string()},
               /*with_engine=*/true);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "envd: error:")) << r.err;
  EXPECT_TRUE(contains(r.err,
                       "the Docker Engine's embedded BuildKit cannot export build cache as "
                       "type=registry (--cache-to): it exports cache only as type=inline"))
      << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  // Said before the Engine is contacted: a local cache's directory is not
  // made for an export the Engine refuses.
  fs::path cache = home() / "refused-cache" / "deep";
  r = run({"build", "--network", "none", "-t", "envd-ci/engine-cache:" + tag_, "--cache-to",
           "type=local,dest=" + cache.string(), dir.string()},
          /*with_engine=*/true);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err,
            "envd: error: build failed on moby-worker://envd_buildkitd: the Docker "
            "Engine's embedded BuildKit cannot export build cache as type=local "
            "(--cache-to): it exports cache only as type=inline; build on a buildkitd "
            "(docker-container, tcp, unix or kube-pod builder) for the other types\n");
  EXPECT_FALSE(fs::exists(home() / "refused-cache")) << "made for a refused export";

  r = run({"build", "--network", "none", "-t", "envd-ci/engine-cache:" + tag_, "--cache-to",
           "type=inline", dir.string()},
          /*with_engine=*/true);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(CiBuildTest, BadCacheFlagsFailBeforeAnythingIsContacted) {
  // No builder is reachable at this address: the flag is refused first.
  use_context("nowhere", {"--builder", "tcp", "--builder-address", "127.0.0.1:1"});
  auto r = run({"build", "--cache-to", "type=registry", project("bad").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err,
            "envd: error: invalid --cache-to 'type=registry': type=registry needs ref=REF\n");
  write_text(home() / "a-file", "x");
  r = run({"build", "--cache-from", "type=local,src=" + (home() / "a-file").string(),
           project("bad").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.err, "is not a directory")) << r.err;
  r = run({"build", "--cache-to", "type=local,dest=" + (home() / "a-file").string(),
           project("bad").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "envd: error: cannot create the cache directory '" +
                       (home() / "a-file").string() + "': Not a directory\n");
}

// ---- metadata ---------------------------------------------------------------

// A push with --metadata-file and --iidfile: the files say what the registry
// holds (the manifest's digest, and the image ID as docker gives it: the
// config's digest), and the labels are in the image config.
TEST_F(CiBuildTest, MetadataIidfileAndLabelsMatchTheRegistry) {
  use_tcp();
  const std::string name = image("envd-ci/meta");
  fs::path meta = home() / "meta.json";
  fs::path iid = home() / "iid";
  auto r =
      run({"build", "--output", "type=image,name=" + name + ",push=true", "--label",
           "org.opencontainers.image.source=https://example.com/app", "--label", "ci.job=42",
           "--metadata-file", meta.string(), "--iidfile", iid.string(), project("meta").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string digest = registry_digest(services_.registry, "envd-ci/meta", tag_);
  auto metadata = json::parse(read_text(meta)).as_object();
  EXPECT_EQ(metadata.at("containerimage.digest").as_string(), digest);
  EXPECT_EQ(metadata.at("image.name").as_string(), name);
  ASSERT_TRUE(metadata.contains("containerimage.descriptor")) << read_text(meta);
  EXPECT_EQ(metadata.at("containerimage.descriptor").at("digest").as_string(), digest);

  auto manifest = registry_manifest(services_.registry, "envd-ci/meta", tag_);
  std::string config_digest(manifest.at("config").at("digest").as_string());
  EXPECT_EQ(read_text(iid), config_digest);
  EXPECT_EQ(metadata.at("containerimage.config.digest").as_string(), config_digest);

  auto config = registry_image_config(services_.registry, "envd-ci/meta", tag_);
  auto labels = config.at("config").at("Labels").as_object();
  EXPECT_EQ(labels.at("org.opencontainers.image.source").as_string(), "https://example.com/app");
  EXPECT_EQ(labels.at("ci.job").as_string(), "42");
}

// --quiet: the image ID is all of stdout, and nothing else is printed.
TEST_F(CiBuildTest, QuietPrintsOnlyTheImageId) {
  use_tcp();
  const std::string name = image("envd-ci/quiet");
  auto r = run({"build", "-q", "--output", "type=image,name=" + name + ",push=true",
                project("quiet").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  auto manifest = registry_manifest(services_.registry, "envd-ci/quiet", tag_);
  EXPECT_EQ(r.out, std::string(manifest.at("config").at("digest").as_string()) + "\n");
}

// buildx's -o type=registry pushes as type=image,push=true does, on a
// standalone buildkitd (which has no "registry" exporter either).
TEST_F(CiBuildTest, TypeRegistryPushesTheImage) {
  use_tcp();
  const std::string name = image("envd-ci/registry");
  auto r =
      run({"build", "-q", "--output", "type=registry,name=" + name, project("registry").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto manifest = registry_manifest(services_.registry, "envd-ci/registry", tag_);
  EXPECT_EQ(r.out, std::string(manifest.at("config").at("digest").as_string()) + "\n");
}

// Into the Engine: the image ID in --iidfile is the Engine's own.
TEST_F(CiBuildTest, IidfileNamesTheEnginesImage) {
  use_context("engine", {"--builder", "moby-worker"});
  fs::path iid = home() / "image-id";
  const std::string name = "envd-ci/iid:" + tag_;
  auto r = run({"build", "--network", "none", "-t", name, "--iidfile", iid.string(),
                project("iid").string()},
               /*with_engine=*/true);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  sdk::ProcessOptions docker;
  docker.argv = {"docker", "-H", services_.docker_host, "image", "inspect", "-f", "{{.Id}}", name};
  docker.timeout = std::chrono::seconds(30);
  auto inspect = sdk::run_process(docker);
  ASSERT_TRUE(inspect && inspect->succeeded()) << (inspect ? inspect->err : "");
  EXPECT_EQ(read_text(iid) + "\n", inspect->out);
}

TEST_F(CiBuildTest, IidfileWithoutAnImageIsRefusedBeforeTheBuild) {
  use_tcp();
  write_text(home() / "iid", "sha256:stale\n");
  auto r = run({"build", "--iidfile", (home() / "iid").string(), "--output",
                "type=local,dest=" + (home() / "out").string(), project("files").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "envd: error: --iidfile needs an image; --output type=local writes files\n");
  EXPECT_FALSE(fs::exists(home() / "out"));
  // A build that fails after it started leaves no stale ID behind.
  fs::path broken = home() / "broken";
  write_text(broken / "Dockerfile", "FROM " + bk_.base + "\nRUN exit 3\n");
  r = run({"build", "--iidfile", (home() / "iid").string(), "--output",
           "type=image,name=" + image("envd-ci/broken") + ",push=true", broken.string()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_FALSE(fs::exists(home() / "iid"));
}

// ---- inputs -------------------------------------------------------------------

// Named contexts: a directory for COPY --from and an image for FROM.
TEST_F(CiBuildTest, NamedBuildContextsResolve) {
  use_tcp();
  fs::path assets = home() / "assets";
  write_text(assets / "logo.txt", "the logo\n");
  fs::path dir = home() / "named";
  write_text(dir / "Dockerfile",
             "FROM base\nCOPY --from=assets logo.txt /logo.txt\nRUN cat /logo.txt > /seen.txt\n");
  auto r = run({"build", "--progress", "plain", "--build-context", "assets=" + assets.string(),
                "--build-context", "base=docker-image://" + bk_.base, "--output",
                "type=local,dest=" + (home() / "out").string(), dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_text(home() / "out" / "seen.txt"), "the logo\n");
  // The image context's busybox is there.
  EXPECT_TRUE(fs::exists(home() / "out" / "bin" / "busybox") ||
              fs::exists(home() / "out" / "bin" / "sh"));
}

// The ignore files are read as the frontend reads them. A symbolic link is
// resolved inside the directory sent (an absolute target starts there), so
// one leading out of it is no ignore file: the build goes on with every
// file, as buildctl's does. A directory context has its own .dockerignore,
// checked up front too.
TEST_F(CiBuildTest, IgnoreFilesAreReadAsTheFrontendReadsThem) {
  use_tcp();
  fs::path dir = home() / "linked-ignore";
  write_text(dir / "Dockerfile", "FROM scratch\nCOPY . /ctx\nCOPY --from=assets . /assets\n");
  write_text(dir / "kept.txt", "kept\n");
  write_text(dir / "dropped.txt", "dropped\n");
  write_text(home() / "outside-ignore", "dropped.txt\n[a-\n");
  fs::create_symlink(home() / "outside-ignore", dir / ".dockerignore");
  fs::path assets = home() / "assets";
  write_text(assets / "logo.txt", "the logo\n");
  write_text(assets / "draft.txt", "draft\n");
  write_text(assets / ".dockerignore", "draft.txt\n");
  auto build = [&](const std::string& out) {
    return run({"build", "--progress", "plain", "--build-context", "assets=" + assets.string(),
                "--output", "type=local,dest=" + (home() / out).string(), dir.string()});
  };
  auto r = build("out-outside");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_text(home() / "out-outside" / "ctx" / "dropped.txt"), "dropped\n");
  EXPECT_TRUE(fs::exists(home() / "out-outside" / "assets" / "logo.txt"));
  EXPECT_FALSE(fs::exists(home() / "out-outside" / "assets" / "draft.txt"));

  // The same absolute target inside the directory is its ignore file.
  fs::path inside = dir / home().relative_path() / "outside-ignore";
  write_text(inside, "dropped.txt\n");
  r = build("out-inside");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(home() / "out-inside" / "ctx" / "kept.txt"));
  EXPECT_FALSE(fs::exists(home() / "out-inside" / "ctx" / "dropped.txt"));

  write_text(inside, "dropped.txt\n[a-\n");
  r = build("out-bad");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "envd: error: ignore file '" + (dir / ".dockerignore").string() +
                       "': line 2: pattern '[a-' is invalid: unterminated character class\n");
  write_text(inside, "dropped.txt\n");
  write_text(assets / ".dockerignore", "draft.txt\n[z-\n");
  r = build("out-bad");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "envd: error: --build-context assets: ignore file '" +
                       (assets / ".dockerignore").string() +
                       "': line 2: pattern '[z-' is invalid: unterminated character class\n");
  EXPECT_FALSE(fs::exists(home() / "out-bad")) << "nothing was built";
}

TEST_F(CiBuildTest, AddHostReachesRunSteps) {
  use_tcp();
  fs::path dir = home() / "hosts";
  write_text(dir / "Dockerfile", "FROM " + bk_.base + "\nRUN cat /etc/hosts > /hosts.txt\n");
  auto r =
      run({"build", "--add-host", "db.internal:10.1.2.3", "--add-host", "cache:10.1.2.4", "--pull",
           "--output", "type=local,dest=" + (home() / "out").string(), dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string hosts = read_text(home() / "out" / "hosts.txt");
  EXPECT_TRUE(contains(hosts, "10.1.2.3\tdb.internal") || contains(hosts, "10.1.2.3 db.internal"))
      << hosts;
  EXPECT_TRUE(contains(hosts, "cache")) << hosts;
}

TEST_F(CiBuildTest, HelpGroupsTheFlags) {
  auto r = run({"build", "--help"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* part : {"Cache:", "--cache-to", "--export-cache", "Metadata:", "--iidfile",
                           "--metadata-file", "Inputs:", "--build-context", "--add-host"}) {
    EXPECT_TRUE(contains(r.out, part)) << part << "\n" << r.out;
  }
}

// ---- local cache ------------------------------------------------------------

// Build A exports its cache to a local directory (mode=max) through the
// session's content store; a fresh buildkitd imports it from there and runs
// no step. Exporting again into the same directory, where every blob already
// is, keeps one "latest" entry; another tag adds its own.
TEST_F(CiBuildTest, LocalCacheMakesAFreshDaemonRunNothing) {
  use_tcp();
  fs::path cache = home() / "local-cache";
  fs::path dir = project("localcached");
  auto r = run({"build", "--progress", "plain", "--cache-to",
                "type=local,dest=" + cache.string() + ",mode=max", "--output",
                "type=local,dest=" + (home() / "out-a").string(), dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(fs::exists(cache / "oci-layout"));
  auto index = json::parse(read_text(cache / "index.json")).as_object();
  auto manifests = index.at("manifests").as_array();
  ASSERT_EQ(manifests.size(), 1U) << read_text(cache / "index.json");
  std::string digest(manifests[0].at("digest").as_string());
  EXPECT_EQ(std::string(
                manifests[0].at("annotations").at("org.opencontainers.image.ref.name").as_string()),
            "latest");
  EXPECT_TRUE(fs::is_regular_file(cache / "blobs" / "sha256" / digest.substr(7))) << digest;
  EXPECT_FALSE(fs::exists(cache / "ingest"));
  // No lock file is left in what a CI job saves, as BuildKit's clients leave it.
  EXPECT_FALSE(fs::exists(cache / "index.json.lock"));

  r = run({"build", "--progress", "plain", "--cache-to",
           "type=local,dest=" + cache.string() + ",mode=max", "--output",
           "type=local,dest=" + (home() / "out-a2").string(), dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run({"build", "--progress", "plain", "--cache-to",
           "type=local,dest=" + cache.string() + ",mode=max,tag=v2", "--output",
           "type=local,dest=" + (home() / "out-a3").string(), dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  manifests = json::parse(read_text(cache / "index.json")).as_object().at("manifests").as_array();
  EXPECT_EQ(manifests.size(), 2U) << read_text(cache / "index.json");

  std::ifstream config_file(bk_.config);
  std::stringstream config;
  config << config_file.rdbuf();
  StandaloneBuildkitd fresh(bk_, home() / "fresh", config.str());
  ASSERT_TRUE(fresh.wait_until_ready()) << fresh.log();
  use_context("fresh", {"--builder", "unix", "--builder-address", fresh.socket()});
  r = run({"build", "--progress", "plain", "--cache-from", "type=local,src=" + cache.string(),
           "--output", "type=local,dest=" + (home() / "out-b").string(), dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "RUN echo first-localcached")) << r.err;
  EXPECT_GE(count_of(r.err, " CACHED"), 3U) << r.err;
  EXPECT_EQ(read_text(home() / "out-b" / "second.txt"),
            "hello from localcached\nfirst-localcached\n");
}

// A local cache directory without an index is skipped with a warning, as
// BuildKit's client does, and the build goes on; so is one that does not
// exist yet: a CI job's first run imports from the directory its
// --cache-to then makes.
TEST_F(CiBuildTest, AnEmptyLocalCacheIsSkippedWithAWarning) {
  use_tcp();
  fs::path empty = home() / "empty-cache";
  fs::create_directories(empty);
  fs::path dir = project("nocache");
  auto r = run({"build", "--progress", "plain", "--cache-from", "type=local,src=" + empty.string(),
                "--output", "type=local,dest=" + (home() / "out").string(), dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(
      contains(r.err, "envd: warning: local cache import at " + empty.string() + " skipped"))
      << r.err;

  fs::path first_run = home() / "ci-cache";
  r = run({"build", "--progress", "plain", "--cache-from", "type=local,src=" + first_run.string(),
           "--cache-to", "type=local,dest=" + first_run.string(), "--output",
           "type=local,dest=" + (home() / "out-first").string(), dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(
      contains(r.err, "envd: warning: local cache import at " + first_run.string() + " skipped"))
      << r.err;
  EXPECT_TRUE(fs::exists(first_run / "index.json"));
}

}  // namespace
}  // namespace envd::test
