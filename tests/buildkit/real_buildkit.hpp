// The real standalone BuildKit of tests/buildkit/start.sh, as seen by a C++
// test: buildkitd and buildctl v0.11.6 of ../shared/tools/buildkit, three
// daemons on loopback (plaintext TCP plus a unix socket, server-only TLS,
// mutual TLS), their test PKI, the base image they can pull from the test
// registry, and the BuildKit container image built into the test engine.
//
// Link envd_test_buildkit (it defines ENVD_TEST_BUILDKIT_ENV, the path of the
// env file start.sh writes); envd_add_buildkit_test() does both and gives the
// test FIXTURES_REQUIRED "engine;buildkitd":
//
//   auto bk = envd::test::RealBuildkit::load();
//   if (!bk.absent.empty()) GTEST_SKIP() << bk.absent;
//   ASSERT_TRUE(bk.ok()) << bk.error;
//
// `absent` is set when the binaries are not there (ENVD_TEST_BUILDKIT_DIR says
// where to look): the test is skipped with that reason, never passed. A missing
// or incomplete env file is an `error`, a failure: such tests run only with the
// fixture, so it means the fixture failed or the test was run by hand without
// `tests/buildkit/start.sh <build>/test-buildkit <build>/test-services/env`.
// Test-only, header-only, never installed.
#pragma once

#include <fstream>
#include <string>

#ifndef ENVD_TEST_BUILDKIT_ENV
#error "link envd_test_buildkit: it defines ENVD_TEST_BUILDKIT_ENV"
#endif

namespace envd::test {

struct RealBuildkit {
  std::string env_file = ENVD_TEST_BUILDKIT_ENV;
  std::string version;      // "v0.11.6", from `buildkitd --version`
  std::string buildkitd;    // absolute path of the buildkitd binary
  std::string buildctl;     // absolute path of the buildctl binary
  std::string tcp;          // plaintext daemon, "127.0.0.1:<port>"
  std::string unix_socket;  // the same daemon's socket path (no "unix://")
  std::string tls;          // server-only TLS daemon, "127.0.0.1:<port>"
  std::string mtls;         // TLS daemon that requires a client certificate from ca.pem
  std::string pki_dir;      // the test PKI (file names below)
  std::string base;         // "<registry>/envd-test/busybox:latest", pushed to the test registry
  // "envd-test/buildkit:v0.11.6" in the test engine, ENTRYPOINT ["buildkitd"]. It runs RUN
  // steps when created with network host, CapAdd ["ALL"], CapDrop ["SYS_RESOURCE"], the
  // security option seccomp=unconfined (and apparmor=unconfined where AppArmor is on) and
  // /sys/fs/cgroup bind-mounted; `config` mounted at /etc/buildkit/buildkitd.toml is read
  // without --config. See tests/buildkit/image.sh.
  std::string image;
  std::string config;  // the daemons' buildkitd.toml (the test registry as plain HTTP)
  std::string absent;  // why BuildKit is not available: skip with this
  std::string error;   // why load() failed: fail with this

  bool ok() const { return absent.empty() && error.empty(); }

  // A file of the test PKI: "ca.pem" (and "ca-key.pem"), "server-cert.pem",
  // "server-key.pem" (SANs 127.0.0.1, ::1, localhost), "client-cert.pem",
  // "client-key.pem" (clientAuth, signed by ca.pem), "other-ca.pem" and
  // "stranger-cert.pem", "stranger-key.pem" (a client certificate signed by
  // other-ca.pem, which the mtls daemon rejects).
  std::string pki(const std::string& file) const { return pki_dir + "/" + file; }
  std::string ca() const { return pki("ca.pem"); }
  std::string server_cert() const { return pki("server-cert.pem"); }
  std::string server_key() const { return pki("server-key.pem"); }
  std::string client_cert() const { return pki("client-cert.pem"); }
  std::string client_key() const { return pki("client-key.pem"); }
  std::string other_ca() const { return pki("other-ca.pem"); }
  std::string stranger_cert() const { return pki("stranger-cert.pem"); }
  std::string stranger_key() const { return pki("stranger-key.pem"); }

  static RealBuildkit load() {
    RealBuildkit bk;
    std::ifstream in(bk.env_file);
    if (!in) {
      bk.error = "the test BuildKit is not running: '" + bk.env_file +
                 "' is missing (run the test through ctest, whose fixture 'buildkitd' "
                 "starts it, or run tests/buildkit/start.sh by hand)";
      return bk;
    }
    for (std::string line; std::getline(in, line);) {
      auto eq = line.find('=');
      if (eq == std::string::npos) continue;
      auto key = line.substr(0, eq);
      auto value = line.substr(eq + 1);
      if (key == "BUILDKIT_ABSENT") bk.absent = value;
      if (key == "BUILDKIT_VERSION") bk.version = value;
      if (key == "BUILDKITD") bk.buildkitd = value;
      if (key == "BUILDCTL") bk.buildctl = value;
      if (key == "BUILDKIT_TCP") bk.tcp = value;
      if (key == "BUILDKIT_UNIX") bk.unix_socket = value;
      if (key == "BUILDKIT_TLS") bk.tls = value;
      if (key == "BUILDKIT_MTLS") bk.mtls = value;
      if (key == "BUILDKIT_PKI") bk.pki_dir = value;
      if (key == "BUILDKIT_BASE") bk.base = value;
      if (key == "BUILDKIT_IMAGE") bk.image = value;
      if (key == "BUILDKIT_CONFIG") bk.config = value;
    }
    if (!bk.absent.empty()) return bk;
    std::string missing;
    auto need = [&missing](const std::string& value, const char* key) {
      if (value.empty()) missing += missing.empty() ? key : std::string(", ") + key;
    };
    need(bk.version, "BUILDKIT_VERSION");
    need(bk.buildkitd, "BUILDKITD");
    need(bk.buildctl, "BUILDCTL");
    need(bk.tcp, "BUILDKIT_TCP");
    need(bk.unix_socket, "BUILDKIT_UNIX");
    need(bk.tls, "BUILDKIT_TLS");
    need(bk.mtls, "BUILDKIT_MTLS");
    need(bk.pki_dir, "BUILDKIT_PKI");
    need(bk.base, "BUILDKIT_BASE");
    need(bk.image, "BUILDKIT_IMAGE");
    need(bk.config, "BUILDKIT_CONFIG");
    if (!missing.empty()) bk.error = "'" + bk.env_file + "' lacks " + missing;
    return bk;
  }
};

}  // namespace envd::test
