// The one suite that loads real module files: discovery of good and broken
// modules (each refused with its precise reason), loading and calling the good
// ones, the manifest cache sparing module code, and the permissions policy.
// The modules are built by this directory's CMakeLists.txt; their paths arrive
// as ENVD_TEST_MODULE_* definitions.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <thread>

#include "plugin/host.hpp"
#include "plugin/manifest_cache.hpp"
#include "plugin/registry.hpp"
#include "plugin/scanner.hpp"
#include "plugin/test_support.hpp"

namespace envd::plugin {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using testing::ScopedEnv;
using testing::TempDir;

std::string abi(int major, int minor) {
  return std::to_string(major) + "." + std::to_string(minor);
}
const std::string kHostAbi = abi(ENVD_ABI_MAJOR, ENVD_ABI_MINOR);

fs::path copy_module(const char* built, const fs::path& dir, const std::string& name) {
  fs::path to = dir / name;
  fs::copy_file(built, to, fs::copy_options::overwrite_existing);
  ::chmod(to.c_str(), 0755);
  return to;
}

const ModuleInfo* find_module(const Registry& registry, const std::string& file_name) {
  for (const auto& m : registry.modules()) {
    if (m.path.filename() == file_name) return &m;
  }
  return nullptr;
}

std::vector<std::string> read_lines(const fs::path& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// ---- the zoo: every module in one directory, discovered once per test process

struct ZooCase {
  const char* file_name;
  const char* module;
  std::string reason;  // "" for a usable module
};

// Names the case in test output instead of dumping its bytes.
void PrintTo(const ZooCase& c, std::ostream* os) { *os << c.file_name; }

std::vector<ZooCase> zoo_cases() {
  return {
      {"a-good-builder.so", ENVD_TEST_MODULE_GOOD_BUILDER, ""},
      {"b-good-runner.so", ENVD_TEST_MODULE_GOOD_RUNNER, ""},
      {"c-duplicate-builder.so", ENVD_TEST_MODULE_DUPLICATE_BUILDER,
       "builder type 'test-builder' already provided by '@/a-good-builder.so'"},
      {"d-second-builder.so", ENVD_TEST_MODULE_SECOND_BUILDER, ""},
      {"no-entry.so", ENVD_TEST_MODULE_NO_ENTRY,
       "no entry symbol 'envd_plugin_entry': it is not an envd plugin, or was built without "
       "ENVD_PLUGIN_EXPORT"},
      {"abi-major.so", ENVD_TEST_MODULE_ABI_MAJOR,
       "needs ABI " + abi(ENVD_ABI_MAJOR + 1, ENVD_ABI_MINOR) + ", this envd has " + kHostAbi},
      {"abi-minor.so", ENVD_TEST_MODULE_ABI_MINOR,
       "needs ABI " + abi(ENVD_ABI_MAJOR, ENVD_ABI_MINOR + 1) + ", this envd has " + kHostAbi},
      {"null-entry.so", ENVD_TEST_MODULE_NULL_ENTRY, "entry returned no descriptor"},
      {"throw-entry.so", ENVD_TEST_MODULE_THROW_ENTRY, "entry threw an exception: boom from entry"},
      {"throw-entry-lines.so", ENVD_TEST_MODULE_THROW_ENTRY_LINES,
       "entry threw an exception: boom from \\xff entry"},
      {"segv-entry.so", ENVD_TEST_MODULE_SEGV_ENTRY, "crashed while loading (signal 11)"},
      {"ctor-crash.so", ENVD_TEST_MODULE_CTOR_CRASH, "crashed while loading (signal 11)"},
      {"ctor-print.so", ENVD_TEST_MODULE_CTOR_PRINT,
       "it writes to stdout as it loads (8 bytes), which would corrupt envd's output"},
      {"ctor-flood.so", ENVD_TEST_MODULE_CTOR_FLOOD,
       "sent more than 1 MiB as it loaded, more than any module's description (stopped there)"},
      {"exit-entry.so", ENVD_TEST_MODULE_EXIT_ENTRY, "exited with status 3 while loading"},
      {"wrong-kind.so", ENVD_TEST_MODULE_WRONG_KIND,
       "kind is builder but the builder table is missing"},
      {"bad-type.so", ENVD_TEST_MODULE_BAD_TYPE,
       "type name 'Bad_Type' is invalid: it must match ^[a-z0-9][a-z0-9-]{0,31}$"},
      {"missing-function.so", ENVD_TEST_MODULE_MISSING_FUNCTION,
       "builder table lacks the required function 'dial'"},
      {"undefined-symbol.so", ENVD_TEST_MODULE_UNDEFINED_SYMBOL,
       "cannot be loaded: undefined symbol: envd_test_no_such_function"},
      {"bad-file-option.so", ENVD_TEST_MODULE_BAD_FILE_OPTION,
       "file option 'TLS Key' is invalid: it must match ^[a-z0-9][a-z0-9.-]{0,63}$"},
      {"e-abi-1-0-builder.so", ENVD_TEST_MODULE_ABI_1_0_BUILDER, ""},
      {"garbage.so", nullptr, "not an ELF shared library"},
  };
}

class Zoo : public ::testing::TestWithParam<ZooCase> {
 protected:
  static void SetUpTestSuite() {
    tmp_ = std::make_unique<TempDir>();
    dir_ = tmp_->mkdir("plugins");
    cache_ = *tmp_ / "cache/plugin-manifests.json";
    for (const ZooCase& c : zoo_cases()) {
      if (c.module != nullptr) copy_module(c.module, dir_, c.file_name);
    }
    testing::write_text(dir_ / "garbage.so", "this is not a shared library at all\n");
    registry_ = std::make_unique<Registry>(Registry::discover({dir_}, cache_));
  }
  static void TearDownTestSuite() {
    registry_.reset();
    tmp_.reset();
  }

  // The expected reason with '@' standing for the zoo directory.
  static std::string expand(std::string text) {
    if (size_t at = text.find('@'); at != std::string::npos) text.replace(at, 1, dir_.string());
    return text;
  }

  static std::unique_ptr<TempDir> tmp_;
  static fs::path dir_;
  static fs::path cache_;
  static std::unique_ptr<Registry> registry_;
};
std::unique_ptr<TempDir> Zoo::tmp_;
fs::path Zoo::dir_;
fs::path Zoo::cache_;
std::unique_ptr<Registry> Zoo::registry_;

TEST_P(Zoo, EachModuleIsUsableOrRefusedWithItsReason) {
  const ZooCase& c = GetParam();
  const ModuleInfo* m = find_module(*registry_, c.file_name);
  ASSERT_NE(m, nullptr) << c.file_name << " was not discovered";
  EXPECT_EQ(m->ok, c.reason.empty()) << m->reason;
  EXPECT_EQ(m->reason, expand(c.reason));
}

TEST_P(Zoo, TheCachedVerdictIsTheSame) {
  const ZooCase& c = GetParam();
  Registry again = Registry::discover({dir_}, cache_);
  const ModuleInfo* m = find_module(again, c.file_name);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->reason, expand(c.reason));
  if (c.module == nullptr) return;
  auto cached = ManifestCache::load(cache_, scanner_identity()).find(*stamp_of(dir_ / c.file_name));
  // A library or symbol the loader cannot find depends on the system, not on
  // the module's bytes: scanned again on every discovery, never cached.
  if (c.reason.rfind("cannot be loaded: ", 0) == 0) {
    EXPECT_FALSE(cached) << c.file_name << " was cached: " << cached->reason;
    return;
  }
  ASSERT_TRUE(cached) << "no cache entry for " << c.file_name;
  // The duplicate refusal depends on the other modules, so it is never cached.
  if (std::string(c.file_name) == "c-duplicate-builder.so") {
    EXPECT_TRUE(cached->ok);
  } else {
    EXPECT_EQ(cached->reason, c.reason);
  }
}

// "a-good-builder.so" -> "a_good_builder"
std::string zoo_case_name(const ::testing::TestParamInfo<ZooCase>& param_info) {
  std::string name = param_info.param.file_name;
  name.resize(name.size() - 3);
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

INSTANTIATE_TEST_SUITE_P(Modules, Zoo, ::testing::ValuesIn(zoo_cases()), zoo_case_name);

// A module cut short (an unfinished copy) is refused before it is mapped:
// dlopen maps it as far as it goes, and the first touch past the end is
// SIGBUS, which would read "crashed while loading (signal 7)".
TEST(TruncatedModule, IsRefusedAsTruncated) {
  TempDir tmp;
  fs::path dir = tmp.mkdir("plugins");
  std::string bytes = util::testing::read_text(ENVD_TEST_MODULE_GOOD_BUILDER);
  ASSERT_GT(bytes.size(), 3000u);
  testing::write_text(dir / "cut.so", bytes.substr(0, 3000));
  Registry registry = Registry::discover({dir}, tmp.path() / "cache.json");
  const ModuleInfo* m = find_module(registry, "cut.so");
  ASSERT_NE(m, nullptr);
  EXPECT_FALSE(m->ok);
  constexpr std::string_view kSaid =
      "is truncated: it is 3000 bytes, and its ELF headers place data up to byte ";
  EXPECT_EQ(m->reason.rfind(kSaid, 0), 0u) << m->reason;
  EXPECT_EQ(m->reason.substr(m->reason.size() - 22), " (an unfinished copy?)") << m->reason;
}

TEST_F(Zoo, UsableModulesCarryTheirDescriptorFacts) {
  const ModuleInfo* b = find_module(*registry_, "a-good-builder.so");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->type, "test-builder");
  EXPECT_EQ(b->kind, Kind::builder);
  EXPECT_EQ(b->version, "1.2.3");
  EXPECT_EQ(b->description, "builder for the dlopen tests");
  EXPECT_EQ(b->maturity, ENVD_MATURITY_EXPERIMENTAL);
  EXPECT_EQ(b->abi_major, ENVD_ABI_MAJOR);
  EXPECT_EQ(b->abi_minor, ENVD_ABI_MINOR);
  const ModuleInfo* r = find_module(*registry_, "b-good-runner.so");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->type, "test-runner");
  EXPECT_EQ(r->kind, Kind::runner);
  EXPECT_EQ(r->maturity, ENVD_MATURITY_STABLE);
  const ModuleInfo* major = find_module(*registry_, "abi-major.so");
  ASSERT_NE(major, nullptr);
  EXPECT_EQ(major->abi_major, ENVD_ABI_MAJOR + 1);
  EXPECT_TRUE(major->type.empty());  // nothing past the version was read
}

TEST_F(Zoo, OneWarningPerRefusedModule) {
  size_t refused = 0;
  for (const ZooCase& c : zoo_cases()) refused += c.reason.empty() ? 0 : 1;
  auto warnings = registry_->warnings();
  EXPECT_EQ(warnings.size(), refused);
  EXPECT_NE(std::find(warnings.begin(), warnings.end(),
                      "skipping plugin '" + (dir_ / "null-entry.so").string() +
                          "': entry returned no descriptor"),
            warnings.end());
  EXPECT_EQ(registry_->types(Kind::builder),
            (std::vector<std::string>{"test-builder", "test-builder-old", "test-builder-two"}));
  EXPECT_EQ(registry_->types(Kind::runner), std::vector<std::string>{"test-runner"});
}

TEST_F(Zoo, TheGoodBuilderLoadsAndEveryVerbWorks) {
  auto builder = registry_->builder("test-builder");
  ASSERT_TRUE(builder) << builder.error().message();

  auto address = builder->normalize_address("h:1");
  ASSERT_TRUE(address) << address.error().message();
  EXPECT_EQ(*address, "test-builder:h:1");

  auto options = builder->normalize_options({{"k", "v"}});
  ASSERT_TRUE(options) << options.error().message();
  EXPECT_EQ(*options, (Options{{"k", "v"}}));

  DriverRequest request;
  request.context = "ci";
  request.address = "h:1";
  request.timeout = std::chrono::milliseconds(1234);
  auto status = builder->status(request);
  ASSERT_TRUE(status) << status.error().message();
  auto echoed = json::parse(*status).as_object();
  EXPECT_EQ(echoed.at("context"), "ci");
  EXPECT_EQ(echoed.at("timeout_ms"), 1234);

  auto transport = builder->dial(request);
  ASSERT_TRUE(transport) << transport.error().message();
  EXPECT_EQ(transport->kind, ENVD_TRANSPORT_FD);
  EXPECT_EQ(transport->description, "test-builder://socketpair");
  char buf[64] = {};
  ssize_t n = ::read(transport->fd, buf, sizeof buf - 1);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), "hello from test-builder\n");

  EXPECT_TRUE(builder->stop(request));
  Status removed = builder->remove(request);
  ASSERT_FALSE(removed);
  EXPECT_EQ(removed.error().code(), Errc::not_found);
  EXPECT_EQ(removed.error().message(), "builder 'test-builder': nothing to remove");
}

TEST_F(Zoo, TheGoodRunnerLoadsAndEveryVerbWorks) {
  auto runner = registry_->runner("test-runner");
  ASSERT_TRUE(runner) << runner.error().message();
  EXPECT_EQ(*runner->normalize_address(""), "");
  DriverRequest request;
  request.args_json = R"({"spec": {"image": "ubuntu"}})";
  auto created = runner->create(request);
  ASSERT_TRUE(created) << created.error().message();
  EXPECT_EQ(json::parse(*created).at("args").at("spec").at("image"), "ubuntu");
  EXPECT_EQ(json::parse(*runner->list(request)), json::parse(R"([{"name": "dev"}])"));
  auto missing = runner->inspect(request);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::not_found);
  EXPECT_EQ(missing.error().message(), "runner 'test-runner': environment 'x' not found");
  EXPECT_TRUE(runner->remove(request));
}

TEST_F(Zoo, FileOptionsComeFromTheDescriptorAndAOneZeroModuleHasNone) {
  auto builder = registry_->builder("test-builder");
  ASSERT_TRUE(builder) << builder.error().message();
  EXPECT_EQ(builder->file_options(), (std::vector<std::string>{"tls-ca", "config"}));
  // A module built for ABI 1.0 ends its descriptor before file_options; the
  // core must not read past it.
  auto old = registry_->builder("test-builder-old");
  ASSERT_TRUE(old) << old.error().message();
  EXPECT_TRUE(old->file_options().empty());
  EXPECT_TRUE(old->normalize_address("x"));
}

// ABI 1.2: the host's services (progress, cancellation) reach a module built
// against plugin_abi.h alone; modules built against the 1.0 and 1.1 headers,
// kept as they were, still load and work and are handed nothing.
TEST(HostServices, ReachAModuleWhileOlderModulesStillWork) {
  TempDir tmp;
  fs::path dir = tmp.mkdir("plugins");
  copy_module(ENVD_TEST_MODULE_GOOD_BUILDER, dir, "current.so");
  copy_module(ENVD_TEST_MODULE_ABI_1_0_BUILDER, dir, "one-zero.so");
  copy_module(ENVD_TEST_MODULE_ABI_1_1_BUILDER, dir, "one-one.so");
  std::FILE* err = std::tmpfile();
  ASSERT_NE(err, nullptr);
  Host host(err);
  DiscoverOptions options;
  options.host = host.api();
  Registry registry = Registry::discover({dir}, tmp / "cache.json", options);
  EXPECT_TRUE(registry.warnings().empty());

  auto current = registry.builder("test-builder");
  ASSERT_TRUE(current) << current.error().message();
  DriverRequest request;
  ASSERT_TRUE(current->bootstrap(request));
  std::fflush(err);
  std::rewind(err);
  char line[128] = {};
  ASSERT_NE(std::fgets(line, sizeof line, err), nullptr);
  EXPECT_STREQ(line, "bootstrapping test-builder\n");

  for (const char* old : {"test-builder-old", "test-builder-one-one"}) {
    auto builder = registry.builder(old);
    ASSERT_TRUE(builder) << builder.error().message();
    EXPECT_EQ(*builder->normalize_address("x"), std::string(old) + ":x");
    EXPECT_TRUE(builder->bootstrap(request)) << old;
  }
  EXPECT_TRUE(registry.builder("test-builder-old")->file_options().empty());
  EXPECT_EQ(registry.builder("test-builder-one-one")->file_options(),
            (std::vector<std::string>{"tls-ca", "config"}));

  host.cancel();
  auto cancelled = current->bootstrap(request);
  ASSERT_FALSE(cancelled);
  EXPECT_EQ(cancelled.error().code(), Errc::cancelled);
  EXPECT_EQ(cancelled.error().message(),
            "builder 'test-builder': bootstrap of test-builder cancelled");
  // The older modules know nothing of it.
  EXPECT_TRUE(registry.builder("test-builder-one-one")->bootstrap(request));
  std::fclose(err);
}

// Reads what is in a pipe's read end after its write end closed.
std::string drain(int fd) {
  std::string out;
  char buffer[256];
  for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;)
    out.append(buffer, static_cast<size_t>(n));
  return out;
}

// ABI 1.3: logs and attach work on descriptors and callbacks the core lends;
// a runner built against the 1.2 header still loads and works, and the core
// says it cannot show logs or attach without reading past its table.
TEST(RunnerStreams, CrossTheBoundaryAndOlderRunnersSayTheyLackThem) {
  TempDir tmp;
  fs::path dir = tmp.mkdir("plugins");
  copy_module(ENVD_TEST_MODULE_GOOD_RUNNER, dir, "current.so");
  copy_module(ENVD_TEST_MODULE_ABI_1_2_RUNNER, dir, "one-two.so");
  Registry registry = Registry::discover({dir}, tmp / "cache.json", DiscoverOptions{});
  EXPECT_TRUE(registry.warnings().empty());
  auto current = registry.runner("test-runner");
  ASSERT_TRUE(current) << current.error().message();

  int out[2];
  int err[2];
  int in[2];
  ASSERT_EQ(::pipe(out), 0);
  ASSERT_EQ(::pipe(err), 0);
  ASSERT_EQ(::pipe(in), 0);
  DriverRequest request;
  request.args_json = R"({"name":"dev","follow":true})";
  RunnerStdio stdio;
  stdio.in_fd = in[0];
  stdio.out_fd = out[1];
  stdio.err_fd = err[1];
  int raw_calls = 0;
  stdio.make_raw = [&] { ++raw_calls; };
  stdio.window_size = [](std::uint16_t& rows, std::uint16_t& columns) {
    rows = 24;
    columns = 80;
    return std::uint32_t{7};
  };
  ASSERT_TRUE(current->logs(request, stdio));
  ASSERT_EQ(::write(in[1], "hello", 5), 5);
  ::close(in[1]);
  auto code = current->attach(request, stdio);
  ASSERT_TRUE(code) << code.error().message();
  EXPECT_EQ(*code, 5);
  EXPECT_EQ(raw_calls, 1);
  ::close(out[1]);
  ::close(err[1]);
  std::string written = drain(out[0]);
  auto newline = written.find("24x80\n");
  ASSERT_NE(newline, std::string::npos) << written;
  json::value sent = json::parse(written.substr(0, newline));
  EXPECT_EQ(sent.at("args"), json::parse(R"({"name":"dev","follow":true})"));
  EXPECT_EQ(written.substr(newline), "24x80\nhello");
  EXPECT_EQ(drain(err[0]), "err\n");
  for (int fd : {out[0], err[0], in[0]}) ::close(fd);

  auto old = registry.runner("test-runner-one-two");
  ASSERT_TRUE(old) << old.error().message();
  EXPECT_EQ(json::parse(*old->list(request)), json::parse(R"([{"name": "dev"}])"));
  auto logs = old->logs(request, stdio);
  ASSERT_FALSE(logs);
  EXPECT_EQ(logs.error().code(), Errc::unsupported);
  EXPECT_EQ(logs.error().message(),
            "runner 'test-runner-one-two': cannot show logs: the module was built for ABI 1.2, "
            "which has no such verb (it came with ABI 1.3); update the module");
  auto attached = old->attach(request, stdio);
  ASSERT_FALSE(attached);
  EXPECT_EQ(attached.error().code(), Errc::unsupported);
}

TEST_F(Zoo, TwoBuilderModulesLiveInOneProcessWithoutShadowing) {
  auto first = registry_->builder("test-builder");
  auto second = registry_->builder("test-builder-two");
  ASSERT_TRUE(first) << first.error().message();
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_NE(first->descriptor(), second->descriptor());
  EXPECT_EQ(*first->normalize_address("x"), "test-builder:x");
  EXPECT_EQ(*second->normalize_address("x"), "test-builder-two:x");
  // Loading again hands out the same, still-loaded module.
  EXPECT_EQ(registry_->builder("test-builder")->descriptor(), first->descriptor());
}

TEST_F(Zoo, RefusedAndUnknownTypesAreErrorsThatSayWhy) {
  auto unknown = registry_->builder("nope");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(
      unknown.error().message(),
      "unknown builder type 'nope'; available: test-builder, test-builder-old, test-builder-two");
  auto wrong = registry_->builder("test-runner");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().message(),
            "'test-runner' is a runner, not a builder; available builders: test-builder, "
            "test-builder-old, test-builder-two");
  auto broken = registry_->builder("broken");
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().code(), Errc::unavailable);
  EXPECT_TRUE(broken.error().message().starts_with("builder 'broken' is not available: plugin '" +
                                                   dir_.string()))
      << broken.error().message();
}

// ---- a module that never answers

TEST(Scanning, AModuleThatHangsIsKilledAtTheDeadline) {
  TempDir tmp;
  fs::path dir = tmp.mkdir("plugins");
  copy_module(ENVD_TEST_MODULE_HANG_ENTRY, dir, "hang-entry.so");
  copy_module(ENVD_TEST_MODULE_GOOD_BUILDER, dir, "good.so");
  auto start = std::chrono::steady_clock::now();
  Registry registry = Registry::discover({dir}, tmp / "cache.json",
                                         DiscoverOptions{std::chrono::milliseconds(1500)});
  auto elapsed = std::chrono::steady_clock::now() - start;
  const ModuleInfo* hung = find_module(registry, "hang-entry.so");
  ASSERT_NE(hung, nullptr);
  EXPECT_FALSE(hung->ok);
  EXPECT_EQ(hung->reason, "timed out while loading (killed after 1500 ms)");
  EXPECT_LT(elapsed, std::chrono::seconds(10));
  EXPECT_TRUE(find_module(registry, "good.so")->ok);

  // The verdict is cached: the next discovery does not wait again.
  start = std::chrono::steady_clock::now();
  Registry again = Registry::discover({dir}, tmp / "cache.json");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1500));
  EXPECT_EQ(find_module(again, "hang-entry.so")->reason, hung->reason);
}

// The processes whose command line mentions `text`.
std::vector<int> processes_mentioning(const std::string& text) {
  std::vector<int> found;
  for (const auto& process : envd::util::testing::processes_running(text)) {
    found.push_back(process.first);
  }
  return found;
}

// envd killed by a signal sent to it alone (a service manager's, a CI
// cancellation's) left the scan of a module that spins running for ever,
// orphaned: the helper now dies with the process that started it.
TEST(Scanning, TheScanEndsWithTheProcessThatStartedIt) {
  TempDir tmp;
  fs::path dir = tmp.mkdir("plugins");
  copy_module(ENVD_TEST_MODULE_HANG_ENTRY, dir, "hang-entry.so");
  const std::string module = (dir / "hang-entry.so").string();
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    Registry::discover({dir}, tmp / "cache.json", DiscoverOptions{std::chrono::seconds(60)});
    _exit(0);
  }
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (processes_mentioning(module).empty() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_FALSE(processes_mentioning(module).empty()) << "the scan never started";
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!processes_mentioning(module).empty() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(processes_mentioning(module), std::vector<int>{}) << "the scan outlived envd";
}

// Set while the test below runs; an exit handler of this process writes it.
fs::path exit_handler_marker;

TEST(Scanning, AModuleThatCallsExitDoesNotRunTheHostsExitHandlers) {
  TempDir tmp;
  fs::path dir = tmp.mkdir("plugins");
  copy_module(ENVD_TEST_MODULE_EXIT_ENTRY, dir, "exit-entry.so");
  exit_handler_marker = tmp / "exit-handler-ran";
  std::atexit([] {
    if (!exit_handler_marker.empty()) testing::write_text(exit_handler_marker, "ran");
  });
  Registry registry = Registry::discover({dir}, {});
  exit_handler_marker.clear();
  EXPECT_EQ(registry.modules().at(0).reason, "exited with status 3 while loading");
  EXPECT_FALSE(fs::exists(tmp / "exit-handler-ran"));
}

TEST(Scanning, TheDefaultDeadlineIsFiveSeconds) {
  EXPECT_EQ(DiscoverOptions{}.scan_timeout, std::chrono::seconds(5));
}

// ---- the manifest cache spares module code

class EntryLog : public ::testing::Test {
 protected:
  TempDir tmp;
  fs::path dir = tmp.mkdir("plugins");
  fs::path cache = tmp / "cache/plugin-manifests.json";
  fs::path log = tmp / "entry.log";
  ScopedEnv log_env{"ENVD_TEST_ENTRY_LOG", log.string()};
};

TEST_F(EntryLog, ACurrentCacheRunsNoModuleCodeAndATouchRefreshesIt) {
  fs::path mod = copy_module(ENVD_TEST_MODULE_GOOD_BUILDER, dir, "good.so");

  Registry first = Registry::discover({dir}, cache);
  ASSERT_TRUE(first.modules().at(0).ok) << first.modules().at(0).reason;
  auto lines = read_lines(log);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(lines[0].starts_with("test-builder "));
  EXPECT_NE(lines[0], "test-builder " + std::to_string(::getpid()));  // ran in the child

  Registry second = Registry::discover({dir}, cache);
  EXPECT_TRUE(second.modules().at(0).ok);
  EXPECT_EQ(read_lines(log).size(), 1u) << "a current cache entry must not run the module";

  testing::set_mtime(mod, 1600000000);
  Registry third = Registry::discover({dir}, cache);
  EXPECT_TRUE(third.modules().at(0).ok);
  EXPECT_EQ(read_lines(log).size(), 2u) << "a touched module is scanned again";

  Registry fourth = Registry::discover({dir}, cache);
  EXPECT_EQ(read_lines(log).size(), 2u);
}

TEST_F(EntryLog, WithoutACacheEveryDiscoveryScans) {
  copy_module(ENVD_TEST_MODULE_GOOD_BUILDER, dir, "good.so");
  Registry first = Registry::discover({dir}, {});
  Registry second = Registry::discover({dir}, {});
  EXPECT_EQ(read_lines(log).size(), 2u);
}

TEST_F(EntryLog, LoadingADriverCallsTheEntryInThisProcess) {
  copy_module(ENVD_TEST_MODULE_GOOD_RUNNER, dir, "runner.so");
  Registry registry = Registry::discover({dir}, cache);
  ASSERT_EQ(read_lines(log).size(), 1u);
  ASSERT_TRUE(registry.runner("test-runner"));
  auto lines = read_lines(log);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1], "test-runner " + std::to_string(::getpid()));
}

// ---- permissions: modules in unsafe places are refused before anything runs

TEST_F(EntryLog, AWorldWritableModuleIsRefusedUnread) {
  fs::path mod = copy_module(ENVD_TEST_MODULE_GOOD_BUILDER, dir, "good.so");
  ASSERT_EQ(::chmod(mod.c_str(), 0777), 0);
  Registry registry = Registry::discover({dir}, cache);
  EXPECT_FALSE(registry.modules().at(0).ok);
  EXPECT_TRUE(registry.modules().at(0).reason.starts_with("file is world-writable (mode 0777)"))
      << registry.modules().at(0).reason;
  EXPECT_FALSE(fs::exists(log)) << "the module must not have been loaded";
  auto builder = registry.builder("test-builder");
  ASSERT_FALSE(builder);
  EXPECT_EQ(builder.error().code(), Errc::not_found);  // its type was never read
}

TEST_F(EntryLog, EveryModuleOfAWorldWritableDirectoryIsRefusedUnread) {
  copy_module(ENVD_TEST_MODULE_GOOD_BUILDER, dir, "envd-builder-test-builder.so");
  copy_module(ENVD_TEST_MODULE_GOOD_RUNNER, dir, "runner.so");
  ASSERT_EQ(::chmod(dir.c_str(), 0777), 0);
  Registry registry = Registry::discover({dir}, cache);
  ASSERT_EQ(registry.modules().size(), 2u);
  for (const auto& m : registry.modules()) {
    EXPECT_EQ(m.reason, "directory '" + dir.string() + "' is world-writable");
  }
  EXPECT_FALSE(fs::exists(log));
  // The file name convention still tells the user which driver it was meant to be.
  EXPECT_EQ(registry.builder("test-builder").error().message(),
            "builder 'test-builder' is not available: plugin '" +
                (dir / "envd-builder-test-builder.so").string() + "' was refused: directory '" +
                dir.string() + "' is world-writable");
}

// A link from a safe plugin directory to a module in a world-writable one
// went around the refusal above: anyone could replace the module there.
TEST_F(EntryLog, ALinkIntoAWorldWritableDirectoryIsRefusedUnread) {
  fs::path open_dir = tmp.mkdir("open");
  fs::path mod = copy_module(ENVD_TEST_MODULE_GOOD_BUILDER, open_dir, "real.so");
  ASSERT_EQ(::chmod(open_dir.c_str(), 0777), 0);
  fs::create_symlink(mod, dir / "envd-builder-test-builder.so");
  Registry registry = Registry::discover({dir}, cache);
  ASSERT_EQ(registry.modules().size(), 1u);
  EXPECT_EQ(registry.modules().at(0).reason, "it links to '" + fs::canonical(mod).string() +
                                                 "', in world-writable directory '" +
                                                 fs::canonical(open_dir).string() + "'");
  EXPECT_FALSE(fs::exists(log));
}

TEST_F(EntryLog, AModuleOfAnotherUserIsRefusedUnread) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a file to another user";
  fs::path mod = copy_module(ENVD_TEST_MODULE_GOOD_BUILDER, dir, "good.so");
  ASSERT_EQ(::chown(mod.c_str(), 4242, 4242), 0);
  Registry registry = Registry::discover({dir}, cache);
  EXPECT_EQ(registry.modules().at(0).reason,
            "file is owned by uid 4242, which is neither root nor the current user (uid 0)");
  EXPECT_FALSE(fs::exists(log));
}

TEST_F(EntryLog, ModulesAreFoundThroughSymlinks) {
  fs::path real = tmp.mkdir("real");
  fs::path mod = copy_module(ENVD_TEST_MODULE_GOOD_BUILDER, real, "envd-builder-x.so.1");
  fs::create_symlink(mod, dir / "envd-builder-x.so");
  Registry registry = Registry::discover({dir}, cache);
  ASSERT_EQ(registry.modules().size(), 1u);
  EXPECT_EQ(registry.modules()[0].path, dir / "envd-builder-x.so");
  EXPECT_TRUE(registry.modules()[0].ok) << registry.modules()[0].reason;
  EXPECT_TRUE(registry.builder("test-builder"));
}

}  // namespace
}  // namespace envd::plugin
