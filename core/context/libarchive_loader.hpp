// libarchive, opened on first use. Only `envd context export` and `import`
// read or write tar archives, and a program linked to libarchive maps it, with
// the nine libraries it brings (ICU, libxml2, the compressors), on every run:
// 2.4 ms of every build's start in envd-client (docs/performance.md).
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include "envd/result.hpp"

// The functions archive.cpp calls: each member of LibArchive has the name and
// the type archive.h declares.
#define ENVD_LIBARCHIVE_FUNCTIONS(X)         \
  X(archive_error_string)                    \
  X(archive_read_new)                        \
  X(archive_read_free)                       \
  X(archive_read_support_format_tar)         \
  X(archive_read_open_memory)                \
  X(archive_read_next_header)                \
  X(archive_read_data)                       \
  X(archive_write_new)                       \
  X(archive_write_free)                      \
  X(archive_write_set_format_pax_restricted) \
  X(archive_write_set_bytes_in_last_block)   \
  X(archive_write_open)                      \
  X(archive_write_header)                    \
  X(archive_write_data)                      \
  X(archive_write_close)                     \
  X(archive_entry_new)                       \
  X(archive_entry_free)                      \
  X(archive_entry_clear)                     \
  X(archive_entry_pathname)                  \
  X(archive_entry_pathname_utf8)             \
  X(archive_entry_hardlink)                  \
  X(archive_entry_filetype)                  \
  X(archive_entry_sparse_count)              \
  X(archive_entry_set_pathname)              \
  X(archive_entry_set_filetype)              \
  X(archive_entry_set_perm)                  \
  X(archive_entry_set_size)                  \
  X(archive_entry_set_mtime)                 \
  X(archive_entry_set_uid)                   \
  X(archive_entry_set_gid)

namespace envd::context {

struct LibArchive {
// `name` is the member's name: it cannot be parenthesized.
// NOLINTNEXTLINE(bugprone-macro-parentheses)
#define ENVD_LIBARCHIVE_MEMBER(name) decltype(&::name) name = nullptr;
  ENVD_LIBARCHIVE_FUNCTIONS(ENVD_LIBARCHIVE_MEMBER)
#undef ENVD_LIBARCHIVE_MEMBER
};

// The library's file name: libarchive 3's soname, what the package depends on.
inline constexpr const char* kLibArchiveSoname = "libarchive.so.13";
static_assert(ARCHIVE_VERSION_NUMBER >= 3000000 && ARCHIVE_VERSION_NUMBER < 4000000,
              "libarchive 3 is libarchive.so.13");

// Opens libarchive on the first call (never closed) and finds every function;
// later calls return the same table. Error: "cannot load libarchive.so.13:
// <the loader's reason> (install libarchive13)".
Result<const LibArchive*> libarchive();

}  // namespace envd::context
