// The file a tarball export (--output type=tar|oci|docker,dest=FILE) is
// written to, as its bytes arrive from the daemon.
//
// A regular file (or none yet) is written to an unnamed file in its
// directory (O_TMPFILE) and given its name only when the build has
// succeeded (commit), so that a build that fails, is cancelled or is
// killed mid-export (a full disk, the daemon gone, Ctrl-C, SIGKILL) leaves
// an earlier file whole and nothing else behind. Where that cannot be done
// without changing more than the content, the file is written in place, as
// before: what is not a regular file (/dev/null, a FIFO, a link), a file
// with other names (hard links), another user's file (for a user other than
// root), a directory this user may not create files in, and a file the
// rename cannot replace (a bind mount: its content is copied in at the end).
#pragma once

#include <mutex>
#include <string>
#include <string_view>

#include "envd/result.hpp"

namespace envd::cli {

class OutputFile {
 public:
  explicit OutputFile(std::string path) : path_(std::move(path)) {}
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  ~OutputFile() { abandon(); }

  // Appends `chunk`, opening the file on the first one. Thread-safe.
  Status write(std::string_view chunk);
  // The export is whole: the file (empty when no bytes came) takes its place.
  Status commit();
  // The export failed or was cancelled: what it wrote goes, and an earlier
  // file at the destination stays as it was.
  void abandon();

 private:
  Status open_locked();
  Status open_in_place();
  Error fail(const std::string& what, int error);

  std::mutex mu_;
  std::string path_;
  int fd_ = -1;
  bool in_place_ = false;  // written at path_ itself
  std::string temp_;       // a named temporary (no O_TMPFILE here), until renamed
  bool ended_ = false;     // committed or abandoned
};

}  // namespace envd::cli
