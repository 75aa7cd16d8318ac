// Changing a context's file options (stored_files.hpp) as one transaction with
// the store: the new copies are written under temporary names before the store
// is updated and renamed into place only after the store holds the new record,
// so a failed create or update leaves the stored files as they were.
//
//   StagedFiles files(store, context);
//   if (auto st = files.stage(contents); !st) return st;   // files/.<key>.new
//   if (auto st = store.update(...); !st) return st;       // staged files removed
//   if (auto st = files.commit(removed_keys); !st) return st;
//
// Thread-safety: one object per command. The temporary names are fixed, so
// a context whose directory others may also change (an update, as opposed to
// a create's new directory) stages and commits under the store's lock: in
// ContextStore::update's `change` and `after_write`. Two processes then never
// interleave their files.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "context/context.hpp"
#include "context/store.hpp"
#include "envd/result.hpp"

namespace envd::context {

class StagedFiles {
 public:
  // `store` must outlive the object; `context` names the private directory
  // (by its id) the files go to.
  StagedFiles(const ContextStore& store, Context context);
  StagedFiles(const StagedFiles&) = delete;
  StagedFiles& operator=(const StagedFiles&) = delete;
  // Removes every file staged and not committed.
  ~StagedFiles();

  // Writes each file option key -> content under its temporary name
  // (creating the private directory, 0600 like the stored copies). On error
  // the files staged so far stay staged and the destructor removes them.
  Status stage(const std::map<std::string, std::string>& files);

  // Renames every staged file onto its stored name, then removes the stored
  // copies of the option keys in `removed`. Errc::internal names the option
  // and the directory when a rename fails.
  Status commit(const std::vector<std::string>& removed);

 private:
  const ContextStore& store_;
  Context context_;
  std::vector<std::string> staged_;  // option keys written under temporary names
};

}  // namespace envd::context
