// The host services as a module calls them through the table.
#include "plugin/host.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace envd::plugin {
namespace {

// What `host` wrote to its stream.
std::string written(std::FILE* stream) {
  std::fflush(stream);
  std::rewind(stream);
  std::string text;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, stream)) > 0;)
    text.append(buffer, n);
  return text;
}

// A module's line is shown bounded (a 10 MiB progress line once went to
// stderr whole), with "..." where it was cut, and escaped.
TEST(Host, AModulesLinesAreBoundedAndEscaped) {
  std::FILE* stream = std::tmpfile();
  ASSERT_NE(stream, nullptr);
  Host host(stream);
  const envd_host_api* api = host.api();
  const std::string huge(std::size_t{1} << 20, 'p');
  api->progress(api->context, huge.c_str());
  api->log(api->context, ENVD_LOG_WARNING, huge.c_str());
  api->progress(api->context, "pulling \x1b[2Jimage");
  const std::string text = written(stream);
  const std::string cut(std::size_t{16} * 1024, 'p');
  EXPECT_EQ(text, cut + "...\n" + "envd: warning: " + cut + "...\n" + "pulling \\x1b[2Jimage\n");
  std::fclose(stream);
}

TEST(Host, TheProcessHostIsOneAndStays) {
  EXPECT_EQ(&process_host(), &process_host());
  EXPECT_EQ(process_host().api()->context, &process_host());
}

}  // namespace
}  // namespace envd::plugin
