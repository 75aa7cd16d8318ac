// The real services of tests/services/start.sh, as seen by a C++ test.
//
// Link envd_test_services (it defines ENVD_TEST_SERVICES_ENV, the path of the
// env file start.sh writes) and give the test FIXTURES_REQUIRED engine, so
// ctest starts the services first and stops them afterwards:
//
//   auto services = envd::test::TestServices::load();
//   ASSERT_TRUE(services.ok()) << services.error;
//   ::setenv("DOCKER_HOST", services.docker_host.c_str(), 1);
//
// A missing env file is an error, never a skip: such tests run only with the
// fixture, so a missing file means the fixture failed or the test was run by
// hand without `tests/services/start.sh <build>/test-services`. Test-only,
// header-only, never installed.
#pragma once

#include <fstream>
#include <string>

#ifndef ENVD_TEST_SERVICES_ENV
#error "link envd_test_services: it defines ENVD_TEST_SERVICES_ENV"
#endif

namespace envd::test {

struct TestServices {
  std::string env_file = ENVD_TEST_SERVICES_ENV;
  std::string docker_host;  // DOCKER_HOST of the test dockerd, "unix://<dir>/docker.sock"
  std::string registry;     // the test registry, "127.0.0.1:<port>" (plain HTTP)
  // The same dockerd on plain TCP, "tcp://127.0.0.1:<port>"; empty if the env
  // file predates it (tests that need it fail on that).
  std::string docker_tcp_host;
  std::string error;  // why load() failed; empty on success

  bool ok() const { return error.empty(); }

  // The socket path of docker_host ("unix://" stripped).
  std::string docker_socket() const { return docker_host.substr(docker_host.find("://") + 3); }

  static TestServices load() {
    TestServices services;
    std::ifstream in(services.env_file);
    if (!in) {
      services.error = "the test services are not running: '" + services.env_file +
                       "' is missing (run the test through ctest, whose fixture 'engine' "
                       "starts them, or run tests/services/start.sh by hand)";
      return services;
    }
    for (std::string line; std::getline(in, line);) {
      auto eq = line.find('=');
      if (eq == std::string::npos) continue;
      auto key = line.substr(0, eq);
      auto value = line.substr(eq + 1);
      if (key == "DOCKER_HOST") services.docker_host = value;
      if (key == "ENVD_TEST_REGISTRY") services.registry = value;
      if (key == "DOCKER_TCP_HOST") services.docker_tcp_host = value;
    }
    if (services.docker_host.rfind("unix://", 0) != 0 || services.registry.empty()) {
      services.error =
          "'" + services.env_file + "' lacks DOCKER_HOST=unix://... or " + "ENVD_TEST_REGISTRY=...";
    }
    return services;
  }
};

}  // namespace envd::test
