// Helpers for the core/build unit tests.
#pragma once

#include <cstdio>
#include <string>

namespace envd::output::testing {

// A temporary FILE* a renderer writes to, and what it wrote.
class Capture {
 public:
  Capture() : file_(::tmpfile()) {}
  ~Capture() { std::fclose(file_); }
  std::FILE* file() const { return file_; }
  std::string text() const {
    std::fflush(file_);
    std::rewind(file_);
    std::string out;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, file_)) > 0;) out.append(buf, n);
    return out;
  }

 private:
  std::FILE* file_;
};

}  // namespace envd::output::testing
