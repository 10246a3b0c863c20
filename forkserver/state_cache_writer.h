// StateCacheWriter: the zygote's side of the node-wide state cache — the only
// writer of the segment (ipc/state_cache.h) for its workers.
//
// Workers never get the segment writable (it is mapped into them read-only;
// see ipc/state_cache.h). Each worker gets a link instead: a SOCK_SEQPACKET
// socket pair whose other end this zygote polls. A worker submits what it
// computed on a cached state as a Submission (forkserver/state_cache_entry.h)
// carrying the path from its root; the zygote derives the key from the root
// it bound to that link itself, so a worker — even one running arbitrary
// code — can only add entries under its own root: the same server build,
// backend, benchmark content and client uid. What it can still do there is
// written in the README's threat model.
//
// Lifecycle (the zygote only, single-threaded):
//   1. open() at start-up (unless the cache is off): opens or creates the
//      named segment. An error leaves the cache off, logged.
//   2. link() before forking a worker: the pair; the worker's end goes into
//      its WorkerStart, the other is adopt()ed against the worker's pid.
//   3. bind() when the worker is handed to a client: computes its root and
//      writes it to the worker, which reads it at its first request.
//   4. addPollFds()/onReadable() in the event loop: validates and inserts
//      submissions, adds reported hits and misses; a link whose every holder
//      exited (the worker and its forks) reads end-of-file and is dropped.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "forkserver/state_cache_entry.h"
#include "ipc/state_cache.h"
#include "passes/backend.h"

namespace forkgym::forkserver {

struct StateCacheOptions {
  bool enabled = true;  // --no-state-cache / FORKGYM_STATE_CACHE=0 turn it off
  std::string name;      // empty: defaultStateCacheName()
  size_t megabytes = 256;
};

// "/forkgym-state-cache-v1-<uid>": one per user of the machine.
std::string defaultStateCacheName();

class StateCacheWriter {
 public:
  Status open(const StateCacheOptions& options);
  bool enabled() const { return cache_ != nullptr; }
  const StateCache* cache() const { return cache_.get(); }

  // The worker's end first. Only for backends with a cache policy.
  Result<std::pair<UniqueFd, UniqueFd>> link();
  void adopt(pid_t worker, UniqueFd zygoteEnd, const passes::Backend& backend);
  // contentHash: the benchmark's; clientUid: who the worker now serves.
  void bind(pid_t worker, std::string_view contentHash, uint32_t clientUid);

  void addPollFds(std::vector<pollfd>& fds) const;
  void onReadable(int fd);

  std::optional<StateCacheStats> stats() const;
  uint64_t rejected() const { return rejected_; }

 private:
  struct Link {
    UniqueFd fd;
    pid_t worker = 0;
    const passes::Backend* backend = nullptr;
    const CachePolicy* policy = nullptr;
    std::optional<StateCacheKey> root;
  };
  bool valid(const Link& link, const Submission& submission) const;

  std::unique_ptr<StateCache> cache_;
  std::unordered_map<int, Link> links_;
  std::unordered_map<const passes::Backend*, CachePolicy> policies_;
  uint64_t rejected_ = 0;  // malformed or out-of-policy submissions
};

}  // namespace forkgym::forkserver
