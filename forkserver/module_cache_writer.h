// ModuleCacheWriter: the process that stores the module compiled from a
// source dataset's file beside the source (passes/module_cache.h), with the
// identity of the client who asked — never the loader's, which compiles
// untrusted sources as the sandbox user and may not write there.
//
// Lifecycle (a loader child, single-threaded):
//   1. Before its sandbox, as the client, in the source's directory, when
//      the cached module is missing or stale and the client may write the
//      directory: start() forks the writer. It becomes the client for good
//      (sandbox::becomeClient), keeps nothing but its end of a socket pair,
//      lifts the file-size limit to what a module may be, and waits.
//   2. The sandboxed loader compiles and sends the module
//      (passes::sendCachedModule) — or sends nothing, if the load failed or
//      ended without compiling.
//   3. finish(): the loader reads the writer's answer (empty: stored, or
//      nothing to store; else what failed) and reaps it.
// The writer is in the loader's process group: the zygote's kill of a load
// ends it too, and an unnamed file it was writing vanishes with it.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>

#include "base/result.h"
#include "base/unique_fd.h"
#include "sandbox/client_identity.h"

namespace forkgym::forkserver {

class ModuleCacheWriter {
 public:
  // `source`: the source's name relative to the working directory (the
  // source's directory, `directory`, which messages name); `optionsKey`:
  // the backend's key of its recipe.
  static Result<ModuleCacheWriter> start(const std::string& source, const std::string& directory,
                                         const std::string& optionsKey, const sandbox::FsIdentity& client);
  ModuleCacheWriter(ModuleCacheWriter&& other) noexcept
      : pid_(std::exchange(other.pid_, -1)), socket_(std::move(other.socket_)) {}
  ModuleCacheWriter& operator=(ModuleCacheWriter&&) = delete;
  // Finishes it, if finish() was not called.
  ~ModuleCacheWriter();

  // The loader's end of the socket (LoadRequest::moduleCacheFd).
  int fd() const { return socket_.get(); }
  // Step 3.
  std::string finish();

 private:
  ModuleCacheWriter() = default;
  pid_t pid_ = -1;
  UniqueFd socket_;
};

}  // namespace forkgym::forkserver
