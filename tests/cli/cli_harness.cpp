#include "cli_harness.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace envd::test {

namespace fs = std::filesystem;
namespace json = boost::json;

void CliTest::SetUp() {
  std::string pattern = (fs::temp_directory_path() / "envd-cli-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  home_ = pattern;
}

void CliTest::TearDown() {
  std::error_code ec;
  fs::permissions(home_, fs::perms::owner_all, fs::perm_options::add, ec);
  fs::remove_all(home_, ec);
}

std::map<std::string, std::optional<std::string>> CliTest::base_env() const {
  std::map<std::string, std::optional<std::string>> env = {
      {"HOME", home_.string()},           {"XDG_CONFIG_HOME", std::nullopt},
      {"XDG_CACHE_HOME", std::nullopt},   {"XDG_DATA_HOME", std::nullopt},
      {"ENVD_CONFIG_DIR", std::nullopt},  {"ENVD_CONTEXT", std::nullopt},
      {"ENVD_PLUGIN_PATH", std::nullopt},
  };
  // Nothing of the caller's Docker, BuildKit or gRPC settings leaks in: a test
  // that wants one sets it.
  for (const char* name :
       {"DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CONTEXT", "DOCKER_TLS", "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH", "BUILDKIT_HOST", "BUILDKIT_PROGRESS", "BUILDKIT_CONNECTING_TIMEOUT",
        "ENVD_TIMINGS", "ENVD_KUBECTL", "GRPC_VERBOSITY", "GRPC_TRACE"}) {
    env[name] = std::nullopt;
  }
  return env;
}

std::string CliTest::asan_options_without_leak_scan() {
  const char* asan = std::getenv("ASAN_OPTIONS");
  return (asan != nullptr && asan[0] != '\0' ? std::string(asan) + ":" : std::string()) +
         "detect_leaks=0";
}

std::map<std::string, std::string> CliTest::full_env(
    const std::map<std::string, std::optional<std::string>>& env) const {
  std::map<std::string, std::string> out;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string text(*entry);
    auto eq = text.find('=');
    if (eq != std::string::npos) out[text.substr(0, eq)] = text.substr(eq + 1);
  }
  auto apply = [&out](const std::map<std::string, std::optional<std::string>>& changes) {
    for (const auto& [key, value] : changes) {
      if (value) {
        out[key] = *value;
      } else {
        out.erase(key);
      }
    }
  };
  apply(base_env());
  apply(env);
  out["TERM"] = "xterm";
  return out;
}

std::vector<std::filesystem::path> CliTest::remembered_daemon_answers() const {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(home_ / ".cache/envd/daemons", ec), end;
       !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".json") files.push_back(it->path());
  }
  return files;
}

sdk::ProcessResult CliTest::envd(const std::vector<std::string>& args,
                                 const std::map<std::string, std::optional<std::string>>& env,
                                 const std::string& stdin_data) {
  return run_envd({}, args, env, stdin_data);
}

sdk::ProcessResult CliTest::envd_bound_by_permissions(
    const std::vector<std::string>& args,
    const std::map<std::string, std::optional<std::string>>& env) {
  if (::geteuid() != 0) return envd(args, env);
  const std::string caps = "-dac_override,-dac_read_search,-fowner";
  return run_envd({"setpriv", "--bounding-set", caps, "--inh-caps", caps}, args, env, "");
}

sdk::ProcessResult CliTest::run_envd(const std::vector<std::string>& prefix,
                                     const std::vector<std::string>& args,
                                     const std::map<std::string, std::optional<std::string>>& env,
                                     const std::string& stdin_data) {
  sdk::ProcessOptions options;
  options.argv = prefix;
  options.argv.push_back(ENVD_BINARY);
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  options.env = base_env();
  for (const auto& [key, value] : env) options.env[key] = value;
  options.stdin_data = stdin_data;
  options.timeout = std::chrono::seconds(60);
  auto result = sdk::run_process(options);
  if (!result) {
    ADD_FAILURE() << "cannot run envd: " << result.error().message();
    return {};
  }
  EXPECT_FALSE(result->timed_out) << "envd timed out: " << sdk::format_command(options.argv);
  EXPECT_EQ(result->term_signal, 0)
      << "envd died by a signal: " << sdk::format_command(options.argv);
  return *result;
}

sdk::ProcessResult CliTest::envd_ok(const std::vector<std::string>& args,
                                    const std::map<std::string, std::optional<std::string>>& env) {
  auto result = envd(args, env);
  EXPECT_EQ(result.exit_code, 0) << "envd " << sdk::format_command(args)
                                 << "\nstderr: " << result.err;
  return result;
}

std::unique_ptr<BackgroundEnvd> CliTest::envd_background(
    const std::vector<std::string>& args,
    const std::map<std::string, std::optional<std::string>>& env, int stdout_fd) {
  sdk::ProcessOptions options;
  options.argv.push_back(ENVD_BINARY);
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  options.env = base_env();
  for (const auto& [key, value] : env) options.env[key] = value;
  return std::make_unique<BackgroundEnvd>(options, -1, stdout_fd);
}

BackgroundEnvd::BackgroundEnvd(const sdk::ProcessOptions& options, int stdin_fd, int stdout_fd) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    start_error_ = std::string("pipe2: ") + std::strerror(errno);
    return;
  }
  auto pid = sdk::spawn_process(options, stdin_fd, stdout_fd, pipe_fds[1]);
  ::close(pipe_fds[1]);
  if (!pid) {
    ::close(pipe_fds[0]);
    start_error_ = pid.error().message();
    return;
  }
  pid_ = *pid;
  err_fd_ = pipe_fds[0];
}

BackgroundEnvd::~BackgroundEnvd() {
  if (pid_ > 0 && !exited_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  if (err_fd_ >= 0) ::close(err_fd_);
}

bool BackgroundEnvd::read_some(int timeout_ms) {
  if (err_fd_ < 0) return false;
  pollfd p{err_fd_, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return true;
  char buf[4096];
  ssize_t n = ::read(err_fd_, buf, sizeof buf);
  if (n <= 0) {
    ::close(err_fd_);
    err_fd_ = -1;
    return false;
  }
  err_.append(buf, static_cast<size_t>(n));
  return true;
}

bool BackgroundEnvd::wait_for(const std::string& text, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (err_.find(text) == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    if (!read_some(static_cast<int>(std::min<long>(left.count(), 1000)))) {
      return err_.find(text) != std::string::npos;
    }
  }
  return true;
}

std::optional<int> BackgroundEnvd::wait_exit(std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (std::chrono::steady_clock::now() < end) {
    read_some(100);
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      while (read_some(100)) {
      }
      return status;
    }
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status, 0);
  exited_ = true;
  return std::nullopt;
}

sdk::ProcessResult run_docker(const std::string& docker_host,
                              const std::vector<std::string>& args) {
  sdk::ProcessOptions options;
  options.argv = {"docker"};
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  options.env["DOCKER_HOST"] = docker_host;
  options.timeout = std::chrono::seconds(120);
  auto r = sdk::run_process(options);
  EXPECT_TRUE(r) << (r ? "" : r.error().message());
  return r ? *r : sdk::ProcessResult{};
}

boost::json::object CliTest::read_store() const {
  std::string text = read_text(store_file());
  boost::system::error_code ec;
  auto value = boost::json::parse(text, ec);
  EXPECT_FALSE(ec) << "store does not parse: " << ec.message() << "\n" << text;
  if (ec || !value.is_object()) return {};
  return value.as_object();
}

boost::json::array CliTest::ls_json() {
  auto result = envd_ok({"context", "ls", "--format", "json"});
  boost::system::error_code ec;
  auto value = boost::json::parse(result.out, ec);
  EXPECT_FALSE(ec) << result.out;
  if (ec || !value.is_array()) return {};
  return value.as_array();
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string golden(const std::string& name) { return read_text(fs::path(ENVD_GOLDEN_DIR) / name); }

json::object stored_context(const json::object& store, const std::string& name) {
  for (const auto& ctx : store.at("contexts").as_array()) {
    if (ctx.at("name").as_string() == name) return ctx.as_object();
  }
  ADD_FAILURE() << "no context " << name;
  return {};
}

TlsPairFiles make_tls_pair(const fs::path& dir, const std::string& name) {
  fs::create_directories(dir);
  TlsPairFiles pair{dir / (name + ".pem"), dir / (name + ".key")};
  sdk::ProcessOptions options;
  options.argv = {"openssl",
                  "req",
                  "-x509",
                  "-newkey",
                  "ec",
                  "-pkeyopt",
                  "ec_paramgen_curve:P-256",
                  "-nodes",
                  "-keyout",
                  pair.key.string(),
                  "-out",
                  pair.cert.string(),
                  "-subj",
                  "/CN=" + name,
                  "-days",
                  "2"};
  options.timeout = std::chrono::seconds(30);
  auto r = sdk::run_process(options);
  EXPECT_TRUE(r && r->exit_code == 0) << (r ? r->err : r.error().message());
  return pair;
}

unsigned mode_of(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

}  // namespace envd::test

namespace envd::test {
const char* envd_binary() { return ENVD_BINARY; }
}  // namespace envd::test
