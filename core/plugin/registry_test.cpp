// Discovery, the manifest cache as discovery uses it, permissions and lookup
// errors, without loading a real module: module files here are not ELF (the
// scanner refuses them before starting anything) and "usable" ones are made so
// by seeding the manifest cache, which is what a current cache means anyway.
// The real-dlopen suite is tests/plugins.
#include "plugin/registry.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin/manifest_cache.hpp"
#include "plugin/scanner.hpp"
#include "plugin/test_support.hpp"
#include "util/atomic_file.hpp"

namespace envd::plugin {
namespace {

namespace fs = std::filesystem;
using testing::stub_descriptor;
using testing::TempDir;
using testing::usable_facts;

ModuleInfo refused_facts(Kind kind, const std::string& type, const std::string& reason) {
  ModuleInfo info = usable_facts(kind, type);
  info.ok = false;
  info.reason = reason;
  return info;
}

class RegistryTest : public ::testing::Test {
 protected:
  TempDir tmp;
  fs::path dir = tmp.mkdir("plugins");
  fs::path cache_file = tmp / "cache/plugin-manifests.json";

  // Creates a (non-ELF) module file in `in` and records `info` for it in the cache.
  fs::path add_module(const fs::path& in, const std::string& name, const ModuleInfo& info) {
    fs::path path = in / name;
    testing::write_text(path, "not really a module: " + name);
    ManifestCache cache = ManifestCache::load(cache_file, scanner_identity());
    cache.store(*stamp_of(fs::canonical(path)), info);
    EXPECT_TRUE(cache.save(cache_file));
    return path;
  }

  Registry discover(std::vector<fs::path> path = {}) {
    if (path.empty()) path = {dir};
    return Registry::discover(path, cache_file);
  }

  const ModuleInfo* find(const Registry& registry, const fs::path& path) {
    for (const auto& m : registry.modules()) {
      if (m.path == path) return &m;
    }
    ADD_FAILURE() << "no module " << path;
    return nullptr;
  }
};

// ---- the manifest cache as discovery uses it

TEST_F(RegistryTest, ACurrentCacheEntryDescribesTheModuleWithoutScanningIt) {
  fs::path mod = add_module(dir, "cached.so", usable_facts(Kind::builder, "cached"));
  Registry registry = discover();
  ASSERT_EQ(registry.modules().size(), 1u);
  const ModuleInfo& m = registry.modules()[0];
  EXPECT_EQ(m.path, mod);
  EXPECT_TRUE(m.ok) << m.reason;  // a scan would have said "not an ELF shared library"
  EXPECT_EQ(m.type, "cached");
  EXPECT_EQ(m.description, "facts for tests");
  EXPECT_EQ(registry.types(Kind::builder), std::vector<std::string>{"cached"});
}

TEST_F(RegistryTest, AChangedModuleIsScannedAgainAndTheCacheUpdated) {
  fs::path mod = add_module(dir, "cached.so", usable_facts(Kind::builder, "cached"));
  testing::set_mtime(mod, 1234567890);
  Registry registry = discover();
  ASSERT_EQ(registry.modules().size(), 1u);
  EXPECT_FALSE(registry.modules()[0].ok);
  EXPECT_EQ(registry.modules()[0].reason, "not an ELF shared library");

  auto entry = ManifestCache::load(cache_file, scanner_identity()).find(*stamp_of(mod));
  ASSERT_TRUE(entry);
  EXPECT_FALSE(entry->ok);
  EXPECT_EQ(entry->reason, "not an ELF shared library");
}

TEST_F(RegistryTest, ACacheWrittenForAnotherAbiIsIgnored) {
  add_module(dir, "cached.so", usable_facts(Kind::builder, "cached"));
  auto text = util::read_file(cache_file);
  ASSERT_TRUE(text);
  std::string other = *text;
  const std::string current = "\"abi_minor\": " + std::to_string(ENVD_ABI_MINOR);
  size_t at = other.find(current);  // the root's, which comes before the entries'
  ASSERT_NE(at, std::string::npos);
  other.replace(at, current.size(), "\"abi_minor\": " + std::to_string(ENVD_ABI_MINOR + 1));
  testing::write_text(cache_file, other);

  Registry registry = discover();
  EXPECT_FALSE(registry.modules()[0].ok);
  EXPECT_EQ(registry.modules()[0].reason, "not an ELF shared library");
}

TEST_F(RegistryTest, ACorruptCacheIsSilentlyRebuilt) {
  fs::create_directories(cache_file.parent_path());
  testing::write_text(cache_file, "\x01garbage");
  testing::write_text(dir / "junk.so", "junk");
  Registry registry = discover();
  ASSERT_EQ(registry.modules().size(), 1u);
  EXPECT_EQ(registry.modules()[0].reason, "not an ELF shared library");
  EXPECT_TRUE(ManifestCache::load(cache_file, scanner_identity()).find(*stamp_of(dir / "junk.so")));
}

TEST_F(RegistryTest, WithoutACacheFileNothingIsWritten) {
  testing::write_text(dir / "junk.so", "junk");
  Registry registry = Registry::discover({dir}, {});
  EXPECT_EQ(registry.modules().size(), 1u);
  EXPECT_FALSE(fs::exists(cache_file));
}

// ---- what counts as a module, in which order

TEST_F(RegistryTest, OnlySoRegularFilesInSearchThenNameOrder) {
  fs::path second = tmp.mkdir("second");
  add_module(second, "a.so", usable_facts(Kind::builder, "a"));
  add_module(dir, "z.so", usable_facts(Kind::builder, "z"));
  add_module(dir, "m.so", usable_facts(Kind::runner, "m"));
  testing::write_text(dir / "readme.txt", "x");
  testing::write_text(dir / "libx.so.1", "x");
  fs::create_directory(dir / "sub.so");
  fs::create_symlink(dir / "missing", dir / "dangling.so");

  Registry registry = discover({dir, second});
  std::vector<fs::path> paths;
  for (const auto& m : registry.modules()) paths.push_back(m.path);
  // readme.txt and libx.so.1 are not listed at all; the two odd *.so entries
  // are, refused (SoEntriesThatAreNotFilesAreRefusedWithWhatTheyAre).
  EXPECT_EQ(paths, (std::vector<fs::path>{dir / "dangling.so", dir / "m.so", dir / "sub.so",
                                          dir / "z.so", second / "a.so"}));
  for (const auto& m : registry.modules()) {
    EXPECT_EQ(m.ok, m.path.filename() != "dangling.so" && m.path.filename() != "sub.so") << m.path;
  }
  EXPECT_EQ(registry.search_path(), (std::vector<fs::path>{dir, second}));
}

// A "*.so" entry that is not a module file is listed refused, saying what it
// is, so that a module gone missing (a dangling link) is noticed.
TEST_F(RegistryTest, SoEntriesThatAreNotFilesAreRefusedWithWhatTheyAre) {
  add_module(dir, "m.so", usable_facts(Kind::runner, "m"));
  fs::create_directory(dir / "sub.so");
  fs::create_symlink(dir / "missing", dir / "dangling.so");
  fs::create_symlink(dir / "loop.so", dir / "loop.so");
  ASSERT_EQ(::mkfifo((dir / "pipe.so").c_str(), 0600), 0);
  testing::write_text(dir / "libx.so.1", "x");

  Registry registry = discover({dir});
  std::vector<std::pair<std::string, std::string>> seen;
  for (const auto& m : registry.modules()) {
    seen.emplace_back(m.path.filename().string(), m.ok ? "ok" : m.reason);
  }
  EXPECT_EQ(seen, (std::vector<std::pair<std::string, std::string>>{
                      {"dangling.so",
                       "it is a dangling symbolic link (to '" + (dir / "missing").string() + "')"},
                      {"loop.so", "it is a symbolic link that loops"},
                      {"m.so", "ok"},
                      {"pipe.so", "it is a FIFO, not a module file"},
                      {"sub.so", "it is a directory, not a module file"}}));
  // The CLI prints these as warnings before a command.
  auto warnings = registry.warnings();
  ASSERT_EQ(warnings.size(), 4U);
  EXPECT_EQ(warnings[3], "skipping plugin '" + (dir / "sub.so").string() +
                             "': it is a directory, not a module file");
}

TEST_F(RegistryTest, AFileReachedTwiceIsOneModule) {
  fs::path second = tmp.mkdir("second");
  fs::path mod = add_module(dir, "x.so", usable_facts(Kind::builder, "x"));
  fs::create_symlink(mod, second / "link.so");
  Registry registry = discover({dir, second});
  ASSERT_EQ(registry.modules().size(), 1u);
  EXPECT_TRUE(registry.modules()[0].ok);
}

// The scan resolves each directory once and a plain entry as that plus its
// name: a directory on the path twice, once through a link, is still one
// module, known by its real path.
TEST_F(RegistryTest, ADirectoryReachedThroughALinkIsOneModule) {
  fs::path alias = tmp / "alias";
  fs::create_directory_symlink(dir, alias);
  add_module(dir, "x.so", usable_facts(Kind::builder, "x"));
  Registry registry = discover({alias, dir});
  ASSERT_EQ(registry.modules().size(), 1u);
  // Usable only if its facts were found in the cache, which is keyed by the
  // real path: a file not cached is scanned, and this one is not an ELF file.
  EXPECT_TRUE(registry.modules()[0].ok) << registry.modules()[0].reason;
  EXPECT_EQ(registry.modules()[0].path, alias / "x.so");
}

TEST_F(RegistryTest, TheFirstModuleOfAKindAndTypeWins) {
  fs::path second = tmp.mkdir("second");
  fs::path first = add_module(dir, "b.so", usable_facts(Kind::builder, "tcp"));
  fs::path same_dir = add_module(dir, "c.so", usable_facts(Kind::builder, "tcp"));
  fs::path later = add_module(second, "a.so", usable_facts(Kind::builder, "tcp"));
  fs::path runner = add_module(second, "r.so", usable_facts(Kind::runner, "tcp"));

  Registry registry = discover({dir, second});
  EXPECT_TRUE(find(registry, first)->ok);
  EXPECT_EQ(find(registry, same_dir)->reason,
            "builder type 'tcp' already provided by '" + first.string() + "'");
  EXPECT_EQ(find(registry, later)->reason,
            "builder type 'tcp' already provided by '" + first.string() + "'");
  EXPECT_TRUE(find(registry, runner)->ok);  // builders and runners are named apart
}

TEST_F(RegistryTest, ARefusedModuleDoesNotClaimItsType) {
  fs::path bad = add_module(dir, "a.so", refused_facts(Kind::builder, "tcp", "broken"));
  fs::path good = add_module(dir, "b.so", usable_facts(Kind::builder, "tcp"));
  Registry registry = discover();
  EXPECT_FALSE(find(registry, bad)->ok);
  EXPECT_TRUE(find(registry, good)->ok);
}

// ---- permissions

TEST_F(RegistryTest, EveryModuleOfAWorldWritableDirectoryIsRefused) {
  fs::path open_dir = tmp.mkdir("open");
  add_module(open_dir, "a.so", usable_facts(Kind::builder, "a"));
  add_module(open_dir, "b.so", usable_facts(Kind::builder, "b"));
  ASSERT_EQ(::chmod(open_dir.c_str(), 0777), 0);
  Registry registry = discover({open_dir});
  ASSERT_EQ(registry.modules().size(), 2u);
  for (const auto& m : registry.modules()) {
    EXPECT_FALSE(m.ok);
    EXPECT_EQ(m.reason, "directory '" + open_dir.string() + "' is world-writable");
  }
}

TEST_F(RegistryTest, AWorldWritableFileIsRefused) {
  fs::path mod = add_module(dir, "a.so", usable_facts(Kind::builder, "a"));
  ASSERT_EQ(::chmod(mod.c_str(), 0666), 0);
  Registry registry = discover();
  EXPECT_EQ(registry.modules()[0].reason, "file is world-writable (mode 0666); run chmod o-w '" +
                                              mod.string() + "' if you trust it");
}

TEST_F(RegistryTest, AFileOfAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a file to another user";
  fs::path mod = add_module(dir, "a.so", usable_facts(Kind::builder, "a"));
  ASSERT_EQ(::chown(mod.c_str(), 4242, 4242), 0);
  Registry registry = discover();
  EXPECT_EQ(registry.modules()[0].reason,
            "file is owned by uid 4242, which is neither root nor the current user (uid 0)");
}

// Whoever owns the directory can rename another module over this one.
TEST_F(RegistryTest, EveryModuleOfAnotherUsersDirectoryIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a directory to another user";
  fs::path theirs = tmp.mkdir("theirs");
  add_module(theirs, "a.so", usable_facts(Kind::builder, "a"));
  ASSERT_EQ(::chown(theirs.c_str(), 4242, 4242), 0);
  Registry registry = discover({theirs});
  ASSERT_EQ(registry.modules().size(), 1u);
  EXPECT_EQ(registry.modules()[0].reason, "directory '" + theirs.string() +
                                              "' is owned by uid 4242, which is neither root "
                                              "nor the current user (uid 0)");
  // And a link into it, from a directory of this user's.
  fs::path link = dir / "b.so";
  fs::create_symlink(theirs / "a.so", link);
  Registry linked = discover();
  bool seen = false;
  for (const auto& m : linked.modules()) {
    if (m.path != link) continue;
    seen = true;
    EXPECT_EQ(m.reason, "it links to '" + (theirs / "a.so").string() + "', in directory '" +
                            theirs.string() +
                            "' owned by uid 4242, which is neither root nor the current user "
                            "(uid 0)");
  }
  EXPECT_TRUE(seen);
}

// ---- warnings and lookup errors

TEST_F(RegistryTest, WarningsNameEachRefusedModule) {
  fs::path bad = add_module(dir, "a.so",
                            refused_facts(Kind::builder, "x",
                                          "needs ABI 2.0, "
                                          "this envd has 1.0"));
  add_module(dir, "b.so", usable_facts(Kind::builder, "y"));
  testing::write_text(dir / "c.so", "junk");
  Registry registry = discover();
  EXPECT_EQ(registry.warnings(),
            (std::vector<std::string>{
                "skipping plugin '" + bad.string() + "': needs ABI 2.0, this envd has 1.0",
                "skipping plugin '" + (dir / "c.so").string() + "': not an ELF shared library"}));
}

TEST_F(RegistryTest, UnknownTypeListsTheAvailableOnes) {
  add_module(dir, "a.so", usable_facts(Kind::builder, "tcp"));
  add_module(dir, "b.so", usable_facts(Kind::builder, "docker-container"));
  add_module(dir, "c.so", usable_facts(Kind::builder, "kube-pod"));
  Registry registry = discover();
  auto r = registry.builder("x");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::not_found);
  EXPECT_EQ(r.error().message(),
            "unknown builder type 'x'; available: docker-container, "
            "kube-pod, tcp");
}

TEST_F(RegistryTest, UnknownTypeWithNothingInstalledSaysWhereItLooked) {
  Registry registry = discover();
  auto r = registry.runner("docker");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "unknown runner type 'docker'; no runner drivers are installed "
            "(searched " +
                dir.string() + ")");
  Registry empty;
  EXPECT_EQ(empty.builder("tcp").error().message(),
            "unknown builder type 'tcp'; no builder drivers are installed (the plugin search "
            "path is empty)");
}

TEST_F(RegistryTest, AskingForTheWrongKindSaysWhichKindItIs) {
  add_module(dir, "a.so", usable_facts(Kind::runner, "docker"));
  add_module(dir, "b.so", usable_facts(Kind::builder, "tcp"));
  Registry registry = discover();
  auto r = registry.builder("docker");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::invalid_argument);
  EXPECT_EQ(r.error().message(), "'docker' is a runner, not a builder; available builders: tcp");
  auto s = registry.runner("tcp");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message(), "'tcp' is a builder, not a runner; available runners: docker");
  Registry only_runners = Registry::discover({}, {});
  const auto docker = stub_descriptor(ENVD_KIND_RUNNER, "docker");
  ASSERT_TRUE(only_runners.add_builtin(&docker));
  EXPECT_EQ(only_runners.builder("docker").error().message(),
            "'docker' is a runner, not a builder; no builder drivers are installed");
}

TEST_F(RegistryTest, ARefusedTypeSaysWhichModuleAndWhy) {
  fs::path mod = add_module(dir, "x.so",
                            refused_facts(Kind::builder, "tcp",
                                          "entry threw an "
                                          "exception: boom"));
  Registry registry = discover();
  auto r = registry.builder("tcp");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::unavailable);
  EXPECT_EQ(r.error().message(), "builder 'tcp' is not available: plugin '" + mod.string() +
                                     "' was refused: entry threw an exception: boom");
}

TEST_F(RegistryTest, ARefusedModuleWithoutDescriptorIsMatchedByItsFileName) {
  testing::write_text(dir / "envd-builder-tcp.so", "junk");
  fs::path open_dir = tmp.mkdir("open");
  testing::write_text(open_dir / "envd-runner-docker.so", "junk");
  ASSERT_EQ(::chmod(open_dir.c_str(), 0777), 0);
  Registry registry = discover({dir, open_dir});
  EXPECT_EQ(registry.builder("tcp").error().message(),
            "builder 'tcp' is not available: plugin '" + (dir / "envd-builder-tcp.so").string() +
                "' was refused: not an ELF shared library");
  EXPECT_EQ(registry.runner("docker").error().message(),
            "runner 'docker' is not available: plugin '" +
                (open_dir / "envd-runner-docker.so").string() + "' was refused: directory '" +
                open_dir.string() + "' is world-writable");
  EXPECT_EQ(registry.runner("tcp").error().code(), Errc::not_found);
}

TEST_F(RegistryTest, AModuleThatFailsToLoadInProcessIsReportedAndRemembered) {
  fs::path mod = add_module(dir, "x.so", usable_facts(Kind::builder, "cached"));
  Registry registry = discover();
  auto r = registry.builder("cached");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::unavailable);
  EXPECT_EQ(r.error().message(),
            "builder 'cached' is not available: plugin '" + mod.string() +
                "' was refused: cannot be loaded: file too short");  // dlerror's words
  EXPECT_EQ(registry.builder("cached").error().message(), r.error().message());
}

// ---- built-ins

TEST_F(RegistryTest, BuiltinsAreDriversAndComeFirst) {
  add_module(dir, "a.so", usable_facts(Kind::builder, "tcp"));
  Registry registry = discover();
  const auto mem = stub_descriptor(ENVD_KIND_BUILDER, "mem");
  const auto memr = stub_descriptor(ENVD_KIND_RUNNER, "memr");
  ASSERT_TRUE(registry.add_builtin(&mem));
  ASSERT_TRUE(registry.add_builtin(&memr));
  ASSERT_EQ(registry.modules().size(), 3u);
  EXPECT_EQ(registry.modules()[0].type, "mem");
  EXPECT_EQ(registry.modules()[1].type, "memr");
  EXPECT_EQ(registry.modules()[2].type, "tcp");
  EXPECT_EQ(registry.types(Kind::builder), (std::vector<std::string>{"mem", "tcp"}));
  EXPECT_EQ(registry.types(Kind::runner), std::vector<std::string>{"memr"});

  auto b = registry.builder("mem");
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_EQ(b->type(), "mem");
  EXPECT_EQ(b->descriptor(), &mem);
  auto r = registry.runner("memr");
  ASSERT_TRUE(r) << r.error().message();
  // The stub table answers every verb "unsupported"; the call goes through.
  EXPECT_EQ(r->list({}).error().code(), Errc::unsupported);
}

TEST_F(RegistryTest, ABuiltinTakesPrecedenceOverAModuleOfTheSameType) {
  fs::path mod = add_module(dir, "a.so", usable_facts(Kind::builder, "tcp"));
  Registry registry = discover();
  const auto tcp = stub_descriptor(ENVD_KIND_BUILDER, "tcp");
  ASSERT_TRUE(registry.add_builtin(&tcp));
  EXPECT_EQ(find(registry, mod)->reason, "builder type 'tcp' already provided by '<built-in>'");
  auto b = registry.builder("tcp");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->descriptor(), &tcp);
}

TEST_F(RegistryTest, TheSameBuiltinTwiceIsAnError) {
  Registry registry;
  const auto mem = stub_descriptor(ENVD_KIND_BUILDER, "mem");
  const auto again = stub_descriptor(ENVD_KIND_BUILDER, "mem");
  const auto runner = stub_descriptor(ENVD_KIND_RUNNER, "mem");
  ASSERT_TRUE(registry.add_builtin(&mem));
  Status st = registry.add_builtin(&again);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), Errc::already_exists);
  EXPECT_EQ(st.error().message(), "built-in builder 'mem' is already registered");
  EXPECT_TRUE(registry.add_builtin(&runner));
  EXPECT_EQ(registry.modules().size(), 2u);
}

TEST_F(RegistryTest, ARegistryCanBeMoved) {
  Registry registry;
  const auto mem = stub_descriptor(ENVD_KIND_BUILDER, "mem");
  ASSERT_TRUE(registry.add_builtin(&mem));
  Registry moved = std::move(registry);
  EXPECT_TRUE(moved.builder("mem"));
}

}  // namespace
}  // namespace envd::plugin
