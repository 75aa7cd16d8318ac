// Helpers for the SDK's own unit tests (never installed).
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace envd::sdk {

namespace fs = std::filesystem;

// A fresh directory under the test's temp dir, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "envd-sdk-test-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

  fs::path write(const std::string& name, const std::string& text, fs::perms perms) const {
    fs::path file = path_ / name;
    std::ofstream(file) << text;
    fs::permissions(file, perms);
    return file;
  }

 private:
  fs::path path_;
};

}  // namespace envd::sdk
