// Crash-safe file replacement and advisory locking.
//
// write_file_atomically() writes to a temporary file of its own in the same
// directory (<name>.XXXXXX.tmp, made with O_EXCL), fsyncs it, renames it over
// the target and fsyncs the directory, so after a crash at any instant the
// target holds either its old or its new content. Unlocked writers of one
// file do not interleave (the last rename wins); a read-modify-write (the
// context store) still serialises through a FileLock.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "envd/result.hpp"
#include "util/data_out.hpp"

namespace envd::util {

// What write_file_atomically does with an existing file that is read-only
// (no write bit at all) or that this process may not write.
enum class ReadOnlyFile {
  // Errc::permission, and the file left as it is: a file the user keeps
  // (the context store, a --metadata-file) made read-only was meant to stay.
  refuse,
  // Replaced like any other: a cache envd derives and may rewrite at will
  // (the plugin manifests, a daemon's remembered answer), which would
  // otherwise never repair itself once, say, a sudo run left it root's; and
  // a file envd owns whose remedy is to write it again (the runner's login,
  // which `envd login` replaces whatever its mode).
  replace,
};

// The descriptor of this process that `path` names, by its spelling:
// /dev/stdin, /dev/stdout, /dev/stderr, /dev/fd/N or /proc/self/fd/N.
// Opening such a path opens the file behind the descriptor anew: for a pipe
// whose writer has left, a reader that waits for ever; for a file the shell
// redirected to, one whose O_TRUNC (or a rename over it) destroys what else
// went there. Such a path is used through the descriptor instead. The
// user's standard output (/dev/stdout, /dev/fd/1) is util::data_fd(); the
// number of that descriptor, named, is -1 (not one the user opened).
std::optional<int> descriptor_named(std::string_view path);

// Whether `path` names the user's standard output (/dev/stdout, /dev/fd/1,
// /proc/self/fd/1): data for it goes to util::data_fd(), never through the
// path, which inside envd opens stderr.
inline bool names_standard_output(std::string_view path) {
  return descriptor_named(path) == data_fd();
}

// Replaces `path` with `content`, creating it with `mode` (the mode of an
// existing file is reset to `mode` too). The parent directory must exist.
// A path naming one of this process's descriptors (`--metadata-file
// /dev/stdout`, see descriptor_named) is written through it, at its offset.
// What is not a regular file, links followed (/dev/null, a FIFO), is
// written in place instead: a rename would replace it. A symbolic
// link to a regular file stays: the file it resolves to is replaced.
// Success once the rename is done, even when the directory's fsync cannot be
// (a directory that cannot be opened): the change is made, and an error
// would make the caller undo what it stands for.
Status write_file_atomically(const std::filesystem::path& path, std::string_view content,
                             mode_t mode, ReadOnlyFile read_only = ReadOnlyFile::refuse);

// The name a temporary for `path` takes beside it: "<name>.XXXXXX.tmp", the
// X's for mkstemps (or a writer's own six random letters and digits), with
// <name> cut at the start of a UTF-8 character where the whole would pass
// NAME_MAX (a 250-byte name is a valid file name; its temporary must be too).
std::string temporary_template(const std::filesystem::path& path);

// Removes the temporaries write_file_atomically left for `path` when killed
// mid-write (and an older envd's <name>.tmp). Only for a file whose writers
// hold a lock, called under it: another writer's temporary is in use.
void remove_stale_temporaries(const std::filesystem::path& path);

// Errc::permission when `path` exists and is read-only or not writable by
// this process ("cannot replace '<path>': the file is read-only (mode
// 0444)"), else success: what write_file_atomically refuses, checked before
// work whose result would land there.
Status check_replaceable(const std::filesystem::path& path);

// Whether something other than a regular file is at `path`, links followed
// (a FIFO, a directory, a device): a cache kept there would block its write
// (a FIFO) or land in a device, so a cache is not kept over one.
bool holds_other_than_a_file(const std::filesystem::path& path);

// Reads a whole regular file. A missing file is Errc::not_found; anything
// else (a directory, a FIFO, a device) is Errc::unsupported, found without
// blocking: a FIFO in the store's place cannot hang envd.
Result<std::string> read_file(const std::filesystem::path& path);

// Reads a whole file of at most `limit` bytes; a larger one is
// Errc::invalid_argument, refused before its content is read when its size
// is known up front (a regular file), so a huge or sparse file costs no time
// and no memory.
Result<std::string> read_file(const std::filesystem::path& path, size_t limit);

// Writes all of `data` to `fd`, retrying short writes. `what` names the target
// in errors ("cannot write <what>: <reason>").
Status write_all(int fd, std::string_view data, const std::string& what);

// Reads `fd` to its end, but stops after `limit` + 1 bytes, so callers can
// tell an oversized input (result larger than `limit`) from a complete one.
Result<std::string> read_all(int fd, size_t limit, const std::string& what);

// Creates `dir` and missing parents; the leaf gets `mode`. An existing
// directory keeps its mode.
Status create_directories(const std::filesystem::path& dir, mode_t mode);

// An exclusive flock(2) on a lock file, held until destruction. The kernel
// drops it when the process dies, so a crashed holder never leaves a stale lock.
// A lock is only taken on the file the path names once it is held: a holder
// that removed the file (remove_when_released) leaves a waiter with the
// removed one, and the waiter then opens the path again.
class FileLock {
 public:
  // Blocks until the lock on `path` (created 0600 if missing) is held. With
  // `waiting`, a lock still held by another process after a second calls it
  // once (to say why nothing happens) before the wait goes on: until then
  // the lock is retried with short pauses, so a brief wait says nothing.
  static Result<FileLock> exclusive(const std::filesystem::path& path,
                                    const std::function<void()>& waiting = {});
  // The lock if no other process holds it, else Errc::unavailable at once:
  // for writes that may be skipped (a cache another process is writing).
  static Result<FileLock> try_exclusive(const std::filesystem::path& path);

  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

  // The lock file is removed as the lock is released, while still held: for
  // a lock file inside a directory the user keeps (BuildKit's own clients
  // remove index.json.lock from an OCI layout they wrote to).
  void remove_when_released() { remove_ = true; }

 private:
  FileLock(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::filesystem::path path_;
  bool remove_ = false;
};

}  // namespace envd::util
