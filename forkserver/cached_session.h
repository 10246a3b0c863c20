// CachedSession: a worker's session seen through the node-wide state cache
// (ipc/state_cache.h, keys in forkserver/state_cache_entry.h).
//
// The worker follows cached transitions without running passes and keeps
// its module as it was last materialised plus the actions followed since
// (pending). It materialises — applies the pending actions to the module,
// through the session, as a step would have — only when an action misses
// the cache, or something asks for the module itself: an observation or
// reward the cache does not hold (or may not hold: the state's identity,
// the IR, anything that runs the program), a run, a parameter. So a worker
// never does more work than it would without the cache, only later.
//
// Lifecycle (worker process only):
//   1. runWorker() makes one around the started session, with the read-only
//      view of the cache the worker inherited and its link to the zygote
//      (a socket the zygote reads entries from; non-blocking).
//   2. start(), on the first request: reads the root the zygote wrote when
//      it handed this worker out (stateRoot(); nothing there: this episode
//      is not cached). Before any env.fork(), so a fork copy never races its
//      parent for it.
//   3. applyActions()/observe()/reward() answer from the cache where they
//      can (peek() only answers, for actions not taken); what they compute on a cacheable state they submit to the zygote
//      (dropped if the link is full: the worker never waits for it).
//      flushCounts() after each request sends the hits and misses not sent
//      with an entry, so a fork copy starts with none to send twice.
//   4. env.fork(): the object is copied with the process, pending actions
//      and all; the copy submits on the same link.
// A step's CPU budget grows by one step's budget per pending action when it
// materialises (they are the steps the episode did not pay for before).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "forkserver/state_cache_entry.h"
#include "ipc/state_cache.h"
#include "passes/backend.h"
#include "passes/session.h"

namespace forkgym::forkserver {

class CachedSession {
 public:
  // cache null or link invalid: a plain pass-through.
  CachedSession(passes::Session& session, const passes::Backend& backend, const StateCache* cache, UniqueFd link,
                uint32_t cpuSecondsPerStep);

  int linkFd() const { return link_.get(); }
  void start();
  Result<passes::ApplyResult> applyActions(std::span<const uint32_t> actions);
  Result<passes::ObservationValue> observe(size_t row);
  Result<double> reward(size_t row);
  // What applyActions({action}) then reward(row) would return from this
  // state, for each action whose transition and reward the cache holds;
  // changes nothing (no pass runs, nothing is materialised). An action out
  // of the action space is an error; any other the cache cannot answer is
  // unknown.
  struct Peeked {
    bool known = false;
    double reward = 0;
    bool actionHadNoEffect = false;
  };
  Result<std::vector<Peeked>> peek(std::span<const uint32_t> actions, size_t row);
  Result<std::string> setParameter(std::string_view key, std::string_view value);
  // The session with its module materialised (runs, command lines).
  Result<passes::Session*> materialized();
  void flushCounts();

  bool cached() const { return state_.has_value(); }
  size_t pending() const { return pending_.size(); }

 private:
  Status materialize();
  std::optional<std::string> lookup(EntryKind kind, uint64_t a, uint64_t b);
  void submit(EntryKind kind, std::span<const uint32_t> path, uint64_t a, uint64_t b, std::string value);

  passes::Session& session_;
  const passes::ActionSpace& space_;
  CachePolicy policy_;
  const StateCache* cache_;
  UniqueFd link_;
  uint32_t cpuSecondsPerStep_;
  bool started_ = false;
  std::optional<StateCacheKey> state_;  // unset: not cached (no root, or a path that left the cache)
  std::vector<uint32_t> path_;          // from the root to state_
  std::vector<uint32_t> pending_;       // followed from the cache, not yet applied to the module
  uint32_t unsentHits_ = 0;
  uint32_t unsentMisses_ = 0;
};

}  // namespace forkgym::forkserver
