// BaselineCache: backends' baselines (passes::Baselines) kept on disk, so a
// new server on the same benchmark adopts them instead of computing them.
//
// One file per key, named by the key's BLAKE3, holding the key itself, the
// encoded baselines and a BLAKE3 of both. What is read is used only if all
// of these hold; anything else is a miss (compute again), never a number:
//   - the directory and the file belong to the server's own user and
//     nobody else may write them (a user cannot plant numbers for a server,
//     e.g. a root server serving several users, that another user's
//     episodes would read), the file is regular and no symbolic link;
//   - the checksum matches (a file torn by a crash mid-write, or corrupted);
//   - the key matches exactly (another benchmark, LLVM version, target or
//     definition of the numbers);
//   - the backend's adopt() accepts what it holds.
// Files are written to a temporary name and renamed into place, so a reader
// sees a whole file or none.
//
// Zygote only (single-threaded): only the zygote writes, with its own
// identity; loaders and baseline children, sandboxed, cannot.
#pragma once

#include <optional>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace forkgym::forkserver {

class BaselineCache {
 public:
  // The default directory: $XDG_CACHE_HOME/forkgym/baselines, else
  // $HOME/.cache/forkgym/baselines; empty if neither is set.
  static std::string defaultDirectory();
  // Creates `directory` (0700) if missing; an error if it cannot, or if it
  // belongs to another user or others may write it.
  static Result<BaselineCache> open(const std::string& directory);

  // The encoded baselines stored for `key`, if a whole, unforged file holds
  // them.
  std::optional<std::string> read(const std::string& key) const;
  // Replaces the file for `key`; an error says why it could not.
  Status write(const std::string& key, const std::string& encoded) const;

  const std::string& directory() const { return directory_; }

 private:
  BaselineCache(std::string directory, UniqueFd fd) : directory_(std::move(directory)), fd_(std::move(fd)) {}

  std::string directory_;
  UniqueFd fd_;  // the directory, opened once: every access is relative to it
};

}  // namespace forkgym::forkserver
