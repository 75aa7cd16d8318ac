// The driver modules this build makes, for tests that need envd's own modules:
// CMake hands over envd_add_plugin's record (GLOBAL PROPERTY ENVD_PLUGINS_builder
// and ENVD_PLUGINS_runner) as ENVD_BUILT_BUILDERS and ENVD_BUILT_RUNNERS,
// comma-separated, through the envd_test_built_modules target. A build may make
// any subset (the ENVD_PLUGIN_* options): a test compares against these lists
// instead of naming modules itself, and a test that needs a module the build
// does not make skips itself with ENVD_REQUIRE_MODULES.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace envd::test {

namespace detail {
inline std::vector<std::string> split_types(std::string_view csv) {
  std::vector<std::string> types;
  while (!csv.empty()) {
    const size_t comma = std::min(csv.find(','), csv.size());
    if (comma > 0) types.emplace_back(csv.substr(0, comma));
    csv.remove_prefix(std::min(comma + 1, csv.size()));
  }
  std::sort(types.begin(), types.end());
  return types;
}
}  // namespace detail

// The types of the builder and runner modules this build makes, sorted.
inline std::vector<std::string> built_builders() {
  return detail::split_types(ENVD_BUILT_BUILDERS);
}
inline std::vector<std::string> built_runners() { return detail::split_types(ENVD_BUILT_RUNNERS); }

// Empty when this build makes every module of `modules`, each written
// "<type> builder" or "<type> runner"; else why a test that needs them cannot
// run: "needs the kube-pod builder module, which this build does not make (see
// the ENVD_PLUGIN_* options)".
inline std::string missing_modules(std::initializer_list<std::string_view> modules) {
  const std::vector<std::string> builders = built_builders();
  const std::vector<std::string> runners = built_runners();
  for (std::string_view module : modules) {
    const size_t space = module.find(' ');
    const std::string type(module.substr(0, space));
    const std::string_view kind = space == std::string_view::npos ? "" : module.substr(space + 1);
    if (kind != "builder" && kind != "runner") {
      ADD_FAILURE() << "ENVD_REQUIRE_MODULES(\"" << module << "\"): expected \"<type> builder\" or "
                    << "\"<type> runner\"";
      return "a malformed module name";
    }
    const std::vector<std::string>& built = kind == "builder" ? builders : runners;
    if (std::find(built.begin(), built.end(), type) == built.end()) {
      return "needs the " + std::string(module) +
             " module, which this build does not make (see the ENVD_PLUGIN_* options)";
    }
  }
  return {};
}

}  // namespace envd::test

// Skips the current test (GTEST_SKIP, naming the missing module) unless this
// build makes every listed module: ENVD_REQUIRE_MODULES("tcp builder", "docker runner").
#define ENVD_REQUIRE_MODULES(...)                                                      \
  do {                                                                                 \
    if (const std::string envd_missing = ::envd::test::missing_modules({__VA_ARGS__}); \
        !envd_missing.empty()) {                                                       \
      GTEST_SKIP() << envd_missing;                                                    \
    }                                                                                  \
  } while (false)
