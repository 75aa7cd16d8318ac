// The context store: one JSON file plus a private directory per context.
//
//   <config dir>/contexts.json        the list (0600), envd's field names
//   <config dir>/contexts.json.lock   flock(2) target serialising writers
//   <config dir>/contexts.d/<id>/     per-context material (TLS files...), 0700
//
// The config dir is created 0700. Every change is a read-modify-write under an
// exclusive lock, written atomically (temp, fsync, rename, fsync dir), so
// concurrent envd processes never lose an update and a crash leaves the old or
// the new file. A corrupt or unreadable file is an error naming the file and how
// to recover; it is never reset or overwritten. See docs/design/context-store.md.
#pragma once

#include <filesystem>
#include <functional>

#include "context/context.hpp"
#include "envd/result.hpp"

namespace envd::context {

class ContextStore {
 public:
  explicit ContextStore(std::filesystem::path config_dir);

  // The store at util::config_dir().
  static Result<ContextStore> open_default();

  const std::filesystem::path& config_dir() const { return dir_; }
  std::filesystem::path file() const;
  // The context's private directory (may not exist yet).
  std::filesystem::path data_dir(const Context& context) const;

  // Reads the list. On first use (no file yet) the store is created holding the
  // default context, current.
  Result<ContextList> load() const;

  // Applies `change` to the current list under the lock and writes the result if
  // `change` succeeds. Nothing is written when it fails. The list passed in has
  // already been loaded (and created on first use) under the same lock.
  Status update(const std::function<Status(ContextList&)>& change) const;

  // Creates the context's private directory (0700) if missing and returns it.
  Result<std::filesystem::path> ensure_data_dir(const Context& context) const;

 private:
  std::filesystem::path dir_;
};

}  // namespace envd::context
