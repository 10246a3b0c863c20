// SparePool: workers forked ahead of time, one per recently reset benchmark
// (and run configuration, for a benchmark that runs), so a reset is a
// hand-over of descriptors instead of a fork (fork(2) of the zygote costs
// ~0.5 ms on a virtual machine, and the new worker's set-up as much again
// before its first step).
//
// Lifecycle (zygote only):
//   1. A reset of benchmark B with the default limits takes B's spare if
//      there is one (take()), else forks a worker as before; either way B is
//      marked wanted (want()). A runnable benchmark's spare is keyed on the
//      run configuration too: it was forked with that configuration, under
//      the runnable profile and limits, exactly as its reset would fork.
//   2. When the zygote's event loop is idle (nothing to read), it forks one
//      spare for a wanted benchmark (nextWanted() / add()); spares already
//      ran their set-up, sandbox included, prepared their first step
//      (worker.h), and wait on their channel.
//   3. Spares belong to no client until taken; the zygote kills them when
//      their benchmark leaves the cache (dropBenchmark()) or at shutdown.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <deque>
#include <optional>
#include <string>

#include "forkserver/benchmark_key.h"
#include "ipc/channel.h"
#include "ipc/run_config.h"
#include "base/unique_fd.h"

namespace forkgym::forkserver {

struct SpareKey {
  BenchmarkKey benchmark;
  std::optional<RunConfig> runConfig;  // the run configuration its resets carry, if any
  bool operator==(const SpareKey&) const = default;
};

struct SpareWorker {
  SpareKey key;
  std::string contentHash;  // of the module it was forked from
  pid_t pid = -1;
  UniqueFd pidfd;
  ClientEnds ends;
  size_t regionBytes = 0;
};

class SparePool {
 public:
  explicit SparePool(size_t capacity) : capacity_(capacity) {}
  ~SparePool() { killAll(); }

  // The spare for `key`, if it was forked from `contentHash` (one forked
  // from content since changed is killed instead).
  std::optional<SpareWorker> take(const SpareKey& key, const std::string& contentHash);
  void want(const SpareKey& key);
  // A wanted benchmark without a spare, most recently wanted first.
  std::optional<SpareKey> nextWanted() const;
  // Adds a spare; beyond capacity the least recently wanted one is killed.
  void add(SpareWorker spare);
  // Every spare of the benchmark, whatever its run configuration.
  void dropBenchmark(const BenchmarkKey& benchmark);
  void killAll();
  size_t size() const { return spares_.size(); }
  // For the status request: benchmarks with a spare waiting, and how many
  // wanted benchmarks have none yet.
  std::vector<std::string> readyBenchmarks() const;
  size_t wantedWithoutSpare() const;

 private:
  void drop(const SpareKey& key);
  size_t capacity_;
  std::deque<SpareKey> wanted_;  // front = most recently wanted
  std::deque<SpareWorker> spares_;
};

}  // namespace forkgym::forkserver
