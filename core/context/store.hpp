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
//
// Corrupt means: not JSON, wrong types, a missing required field (contexts,
// name, builder, builder_address, runner), an invalid name or id, an empty
// builder or runner type, two contexts with one name or one id. A `current`
// naming no stored context is NOT corruption: load() returns it as is,
// resolve_context() reports it, and update() keeps it until a change sets it;
// update() itself never leaves `current` naming a missing context.
//
// A stored context without "id" (written by hand) is loaded with an id derived
// from its name (stable until written) and the next update() records it.
//
// A contexts.json that is a symbolic link (dotfile managers) is written through:
// the link stays and its target is replaced atomically.
//
// Thread-safety: the object is immutable; calls from several threads or
// processes are safe, writers are serialised by the lock file.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>

#include "context/context.hpp"
#include "envd/result.hpp"
#include "util/atomic_file.hpp"

namespace envd::context {

class ContextStore {
 public:
  explicit ContextStore(std::filesystem::path config_dir);

  // The store at util::config_dir().
  static Result<ContextStore> open_default();

  const std::filesystem::path& config_dir() const { return dir_; }
  std::filesystem::path file() const;       // <config dir>/contexts.json
  std::filesystem::path lock_file() const;  // <config dir>/contexts.json.lock
  std::filesystem::path data_root() const;  // <config dir>/contexts.d
  // The context's private directory, <config dir>/contexts.d/<id> (may not
  // exist yet). Empty when the context has no valid id, which only a context
  // that was never loaded from the store can lack.
  std::filesystem::path data_dir(const Context& context) const;

  // Reads the list (without locking: writes are atomic renames). On first use
  // (no file yet) the config dir (0700) and the file (0600) are created under
  // the lock, holding the default context as current; the file is re-checked
  // after the lock is taken, so concurrent first uses create it once.
  // Errors: a corrupt file ("context store '<file>' is corrupt: <why>; fix it or
  // move it aside to start over with the default context"), an unreadable one
  // ("the context store is unreadable: cannot read '<file>': Permission denied;
  // check the owner and permissions ...", Errc::permission), or a failure to
  // create it. The list's `file` is set to file().
  Result<ContextList> load() const;

  // Applies `change` to the current list under the lock and writes the result if
  // `change` succeeds. Nothing is written when it fails. The list passed in has
  // already been loaded under the same lock (on first use it is the default
  // list, written together with the change). After `change`, contexts without
  // an id get new_context_id(), then the result is checked like a loaded file
  // (plus: `current` must be empty or exist, unless it was already dangling and
  // is unchanged); a violation is an error and nothing is written. `change` may
  // run with the lock held for as long as it takes: keep it short, and never
  // call the store from inside it (the lock is not re-entrant: deadlock).
  // `after_write`, if given, runs once the list is written, still under the
  // lock (a context's stored files are renamed into place there); its error
  // is returned, and the list stays written.
  Status update(const std::function<Status(ContextList&)>& change,
                const std::function<Status()>& after_write = {}) const;

  // Creates the context's private directory (0700, and contexts.d 0700) if
  // missing and returns it. Error if the context has no valid id.
  Result<std::filesystem::path> ensure_data_dir(const Context& context) const;

  // The private directory a driver's request names (the ABI promises it
  // exists): made if missing, as ensure_data_dir does; when that fails (a
  // store envd cannot write, a context without an id) the path all the same,
  // so a driver that writes there says why it cannot.
  std::filesystem::path driver_data_dir(const Context& context) const;

  // Called once when a write has waited a second for another process's lock
  // (the CLI says why nothing happens); the wait goes on.
  void on_lock_wait(std::function<void()> waiting) { lock_wait_ = std::move(waiting); }

 private:
  // The parsed file, nullopt when it does not exist.
  Result<std::optional<ContextList>> read() const;
  Status write(const ContextList& list) const;
  // Creates the config dir if needed and takes the writers' lock.
  Result<util::FileLock> lock() const;

  std::filesystem::path dir_;
  std::function<void()> lock_wait_;
};

}  // namespace envd::context
