// A Kubernetes cluster for the kube-pod builder's end-to-end tests, as far as
// kubectl can tell: envd_test_kube_apiserver (kube_apiserver.cpp) as a child
// of the test, over TLS on 127.0.0.1, with a kubeconfig for the real kubectl,
// and exec into a pod running the real buildctl against the real buildkitd of
// tests/buildkit (so `buildctl --addr kube-pod://POD?namespace=NS ...`, and
// envd's kube-pod builder, reach BuildKit through `kubectl exec -i POD --
// buildctl dial-stdio`).
//
// Link envd_test_kube (it defines ENVD_TEST_KUBE_APISERVER and brings
// buildkit/real_buildkit.hpp and the SDK's process spawner), add the test with
// envd_add_buildkit_test() (fixtures "engine;buildkitd"), then:
//
//   auto bk = envd::test::RealBuildkit::load();
//   if (!bk.absent.empty()) GTEST_SKIP() << bk.absent;
//   ASSERT_TRUE(bk.ok()) << bk.error;
//   if (auto why = envd::test::KubeApiserver::kubectl_absent(); !why.empty()) GTEST_SKIP() << why;
//   envd::test::KubeApiserver kube(dir, bk);  // the state of buildkit_state()
//   ASSERT_TRUE(kube.ok()) << kube.error();
//   auto r = kube.kubectl({"get", "pod", "buildkitd-0", "-n", "ci", "-o", "json"});
//
// Child processes that run kubectl (envd, buildctl) need kube.env():
// KUBECONFIG, and KUBECACHEDIR so kubectl's discovery cache stays in `dir`.
//
// kubectl 1.32 (on PATH) execs over WebSocket v5.channel.k8s.io; Debian's
// kubectl 1.20 (kKubectlLegacy, extracted by scripts/install-deps.sh) only
// over SPDY/3.1, as kubectl 1.32 does too with
// KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false. To run the legacy one:
//
//   if (auto why = envd::test::KubeApiserver::kubectl_legacy_absent(); !why.empty())
//     GTEST_SKIP() << why;
//   KubeApiserver::Options options;
//   options.kubectl = KubeApiserver::kKubectlLegacy;  // kubectl() runs it, env() puts it on PATH
//
// The kubeconfig (kube.kubeconfig()) has three contexts, all for the server
// https://127.0.0.1:PORT:
//   - "envd-test", the current one: the token the server accepts and, as
//     certificate-authority-data, the test CA of tests/buildkit (made by the
//     openssl CLI in its start.sh; the server presents its server-cert.pem);
//   - "envd-test-wrong-token": a token the server refuses (401 Unauthorized);
//   - "envd-test-unknown-ca": the right token, but other-ca.pem as the CA, so
//     kubectl fails to verify the server's certificate.
// kubectl sends no credentials over plain HTTP, hence TLS.
// No namespace is set in any context: kubectl's default is "default".
//
// The cluster is the JSON state file of kube_state.hpp, which the server reads
// on every request; set_state() replaces it atomically, so a test can make a
// pod crash or go Pending between two kubectl calls:
//
//   {"user": "system:serviceaccount:ci:envd",          // named in 403 messages
//    "pods": [{"namespace": "ci", "name": "buildkitd-0", "labels": {"app": "buildkitd"},
//              "phase": "Running",        // Pending, Running, Succeeded, Failed, Unknown
//              "ready": true, "node": "envd-test-node",   // node "": not scheduled
//              "containers": ["buildkitd"], "default_container": "",
//              "waiting_reason": "",      // e.g. CrashLoopBackOff: containers not running
//              "waiting_message": "", "message": "", "restarts": 0, "image": "...",
//              "owner_kind": "StatefulSet", "owner_name": "buildkitd", "log": "...",
//              "deleting": false}],       // true: deletionTimestamp set (Terminating)
//    "deployments": [{"namespace": "ci", "name": "buildkitd",
//                     "selector": {"app": "buildkitd"}, "replicas": 1}],
//    "statefulsets": [... as deployments ...],
//    "forbidden": [{"namespace": "locked"},                         // everything
//                  {"namespace": "ci", "resources": ["pods/exec"]}]}
//
// Every member but "name" (and a denial's "namespace") is optional. A denial
// may also list "verbs": as in Kubernetes 1.32, a WebSocket exec (GET) is
// "get" on pods/exec and a SPDY exec (POST: kubectl 1.20, or 1.32's
// fallback) is "create". An exec
// runs its command on this machine; only a container that runs (phase Running,
// scheduled, no waiting_reason) can exec.
//
// requests() and execs() read the server's --log: what kubectl asked, in order
// (wait_for_execs() for an exec whose client may already be gone).
// The destructor stops the server (SIGTERM, then SIGKILL) and reaps it; the
// server kills and reaps its own exec children. Test-only, header-only.
#pragma once

#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "buildkit/real_buildkit.hpp"
#include "envd/process.hpp"

#ifndef ENVD_TEST_KUBE_APISERVER
#error "link envd_test_kube: it defines ENVD_TEST_KUBE_APISERVER"
#endif

namespace envd::test {

// How KubeApiserver starts the server.
struct KubeApiserverOptions {
  std::string token = "envd-test-token";
  // false: answer discovery only with the legacy documents, as a server
  // without aggregated discovery does (kubectl then asks /api/v1 and /apis/apps/v1).
  bool aggregated_discovery = true;
  // The kubectl that kubectl() runs; a path also goes first on env()'s PATH,
  // for what runs "kubectl" from PATH (BuildKit's kube-pod:// helper).
  std::string kubectl = "kubectl";
  // Where an exec'd buildctl dial-stdio connects; empty: the plaintext
  // daemon's unix socket.
  std::string buildkit_addr;
};

class KubeApiserver {
 public:
  static constexpr const char* kContext = "envd-test";
  static constexpr const char* kWrongTokenContext = "envd-test-wrong-token";
  static constexpr const char* kUnknownCaContext = "envd-test-unknown-ca";

  using Options = KubeApiserverOptions;

  // Debian's kubectl 1.20, whose exec speaks only SPDY/3.1 (ENVD_TEST_KUBECTL_LEGACY).
  static constexpr const char* kKubectlLegacy = ENVD_TEST_KUBECTL_LEGACY;

  // A namespace "ci" with pod buildkitd-0 (app=buildkitd, of statefulset
  // buildkitd), deployment and statefulset buildkitd selecting app=buildkitd,
  // and a namespace "locked" where everything is forbidden.
  static boost::json::value buildkit_state() {
    return boost::json::parse(R"({
      "pods": [{"namespace": "ci", "name": "buildkitd-0", "labels": {"app": "buildkitd"},
                "owner_kind": "StatefulSet", "owner_name": "buildkitd"}],
      "deployments": [{"namespace": "ci", "name": "buildkitd", "selector": {"app": "buildkitd"}}],
      "statefulsets": [{"namespace": "ci", "name": "buildkitd", "selector": {"app": "buildkitd"}}],
      "forbidden": [{"namespace": "locked"}]
    })");
  }

  // Why kubectl cannot be used (empty if it can): it is looked up on PATH.
  static std::string kubectl_absent() {
    const char* path = std::getenv("PATH");
    std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
    for (std::string dir; std::getline(dirs, dir, ':');) {
      if (!dir.empty() && ::access((dir + "/kubectl").c_str(), X_OK) == 0) return "";
    }
    return "no kubectl on PATH: install kubectl 1.32 (the tests run the real one)";
  }

  // Why kubectl 1.20 cannot be used (empty if it can).
  static std::string kubectl_legacy_absent() {
    if (::access(kKubectlLegacy, X_OK) == 0) return "";
    return std::string("no kubectl 1.20 at '") + kKubectlLegacy +
           "': run scripts/install-deps.sh (it extracts Debian's kubernetes-client there with "
           "tests/kube/kubectl-1.20.sh), or configure ENVD_TEST_KUBECTL_LEGACY";
  }

  // Starts the server in `dir` (created; it holds the state, kubeconfig, log
  // and kubectl's cache) with `state`, exec going to `bk`'s buildctl and its
  // plaintext daemon's unix socket. Check ok() before use.
  KubeApiserver(const std::filesystem::path& dir, const RealBuildkit& bk,
                const boost::json::value& state = buildkit_state(), Options options = {})
      : dir_(dir), bk_(bk), options_(std::move(options)) {
    std::error_code ec;
    std::filesystem::create_directories(dir_ / "cache", ec);
    if (ec) {
      error_ = "cannot create '" + dir_.string() + "': " + ec.message();
      return;
    }
    set_state(state);
    start();
  }
  KubeApiserver(const KubeApiserver&) = delete;
  KubeApiserver& operator=(const KubeApiserver&) = delete;
  ~KubeApiserver() { stop(); }

  bool ok() const { return error_.empty(); }
  // Why the server is not running, with its stderr.
  const std::string& error() const { return error_; }

  int port() const { return port_; }
  std::string server() const { return "https://127.0.0.1:" + std::to_string(port_); }
  const std::string& token() const { return options_.token; }
  std::filesystem::path kubeconfig() const { return dir_ / "kubeconfig"; }
  std::filesystem::path state_file() const { return dir_ / "state.json"; }
  std::filesystem::path log_file() const { return dir_ / "requests.jsonl"; }
  std::filesystem::path stderr_file() const { return dir_ / "apiserver.err"; }
  std::filesystem::path cache_dir() const { return dir_ / "cache"; }

  // The environment for anything that runs kubectl, in sdk::ProcessOptions::env's form.
  std::map<std::string, std::optional<std::string>> env() const {
    std::map<std::string, std::optional<std::string>> e = {{"KUBECONFIG", kubeconfig().string()},
                                                           {"KUBECACHEDIR", cache_dir().string()}};
    if (options_.kubectl.find('/') != std::string::npos) {
      const char* path = std::getenv("PATH");
      e["PATH"] = std::filesystem::path(options_.kubectl).parent_path().string() + ":" +
                  (path ? path : "/usr/local/bin:/usr/bin:/bin");
    }
    return e;
  }

  // Replaces the cluster's state; the next request sees it.
  void set_state(const boost::json::value& state) {
    auto tmp = dir_ / "state.json.tmp";
    std::ofstream(tmp) << boost::json::serialize(state);
    std::filesystem::rename(tmp, state_file());
  }

  // Runs the real kubectl (Options::kubectl) with env() (and `extra_env`) and a deadline.
  sdk::ProcessResult kubectl(
      const std::vector<std::string>& args, const std::string& stdin_data = "",
      std::map<std::string, std::optional<std::string>> extra_env = {}) const {
    sdk::ProcessOptions o;
    o.argv = {options_.kubectl};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.env = env();
    for (auto& [k, v] : extra_env) o.env[k] = v;
    o.stdin_data = stdin_data;
    o.timeout = std::chrono::seconds(60);
    auto r = sdk::run_process(o);
    if (!r) {
      sdk::ProcessResult failed;
      failed.err = r.error().message();
      return failed;
    }
    return *r;
  }

  // The server's log, one object per line: requests ({"method", "path",
  // "query", "status", "accept", "upgrade", "protocols", "stream_protocols",
  // "user_agent", ...}) and ends of execs ({"exec": {"namespace", "pod",
  // "container", "transport" ("websocket" or "spdy"), "protocol", "argv",
  // "exit_code", "stdin_bytes", "stdout_bytes", ...}}).
  std::vector<boost::json::object> log() const {
    std::vector<boost::json::object> out;
    std::ifstream in(log_file());
    for (std::string line; std::getline(in, line);) {
      boost::system::error_code ec;
      auto v = boost::json::parse(line, ec);
      if (!ec && v.is_object()) out.push_back(v.as_object());
    }
    return out;
  }
  std::vector<boost::json::object> requests() const {
    std::vector<boost::json::object> out;
    for (auto& e : log()) {
      if (!e.contains("exec")) out.push_back(e);
    }
    return out;
  }
  std::vector<boost::json::object> execs() const {
    std::vector<boost::json::object> out;
    for (auto& e : log()) {
      if (e.contains("exec")) out.push_back(e.at("exec").as_object());
    }
    return out;
  }

  // execs(), once it has at least `count` entries or `timeout` has passed: an
  // exec's end is logged when the server has reaped its child, which can be
  // after the client is gone (buildctl kills kubectl when it is done).
  std::vector<boost::json::object> wait_for_execs(
      std::size_t count, std::chrono::milliseconds timeout = std::chrono::seconds(10)) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto found = execs();
      if (found.size() >= count || std::chrono::steady_clock::now() >= deadline) return found;
      ::usleep(20000);
    }
  }

  // Stops the server: SIGTERM, SIGKILL after 5 s; reaps it. Idempotent.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      ::usleep(10000);
    }
    pid_ = -1;
  }

  // The whole of a file, "" if it cannot be read (for a failed test's log).
  static std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  static std::string base64(const std::string& data) {
    std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(data.data()),
                            static_cast<int>(data.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
  }

  void start() {
    sdk::ProcessOptions o;
    o.argv = {ENVD_TEST_KUBE_APISERVER,
              "--token",
              options_.token,
              "--state",
              state_file().string(),
              "--tls-cert",
              bk_.server_cert(),
              "--tls-key",
              bk_.server_key(),
              "--buildctl",
              bk_.buildctl,
              "--buildkit-addr",
              options_.buildkit_addr.empty() ? "unix://" + bk_.unix_socket : options_.buildkit_addr,
              "--log",
              log_file().string()};
    if (!options_.aggregated_discovery) o.argv.push_back("--legacy-discovery");
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) {
      error_ = "pipe: " + std::string(std::strerror(errno));
      return;
    }
    int err_fd = ::open(stderr_file().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    auto pid = sdk::spawn_process(o, -1, out[1], err_fd);
    ::close(out[1]);
    if (err_fd >= 0) ::close(err_fd);
    if (!pid) {
      ::close(out[0]);
      error_ = pid.error().message();
      return;
    }
    pid_ = *pid;
    // The first line is the port, once it listens.
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{out[0], POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char c[64];
      ssize_t n = ::read(out[0], c, sizeof c);
      if (n <= 0) break;
      line.append(c, static_cast<std::size_t>(n));
    }
    ::close(out[0]);
    port_ = std::atoi(line.c_str());
    if (line.find('\n') == std::string::npos || port_ <= 0) {
      stop();
      error_ = "envd_test_kube_apiserver did not start: " + read_file(stderr_file());
      return;
    }
    write_kubeconfig();
  }

  void write_kubeconfig() {
    auto cluster = [&](const char* name, const std::string& ca_file) {
      return "- name: " + std::string(name) + "\n  cluster:\n    server: " + server() +
             "\n    certificate-authority-data: " + base64(read_file(ca_file)) + "\n";
    };
    auto user = [](const char* name, const std::string& token) {
      return "- name: " + std::string(name) + "\n  user:\n    token: " + token + "\n";
    };
    auto context = [](const char* name, const char* cluster_name, const char* user_name) {
      return "- name: " + std::string(name) + "\n  context:\n    cluster: " + cluster_name +
             "\n    user: " + user_name + "\n";
    };
    std::string text = "apiVersion: v1\nkind: Config\nclusters:\n";
    text += cluster(kContext, bk_.ca());
    text += cluster(kUnknownCaContext, bk_.other_ca());
    text += "users:\n";
    text += user(kContext, options_.token);
    text += user(kWrongTokenContext, "wrong-" + options_.token);
    text += "contexts:\n";
    text += context(kContext, kContext, kContext);
    text += context(kWrongTokenContext, kContext, kWrongTokenContext);
    text += context(kUnknownCaContext, kUnknownCaContext, kContext);
    text += "current-context: " + std::string(kContext) + "\n";
    std::ofstream(kubeconfig()) << text;
  }

  std::filesystem::path dir_;
  RealBuildkit bk_;
  Options options_;
  std::string error_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace envd::test
