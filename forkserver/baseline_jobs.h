// BaselineJobs: the zygote filling in cached benchmarks' baselines
// (passes::Baselines) for the episodes that follow — from the disk cache
// (baseline_cache.h), else in a baseline child computing them in the
// background while sessions go on (a session asked for one it lacks
// computes it itself meanwhile).
//
// Lifecycle (zygote only; single-threaded):
//   1. After a benchmark enters the cache: start(). A disk hit is adopted
//      at once; otherwise a child is forked (LoaderChild::startBaselines),
//      one per content, unless one runs. It has a loader's limits and
//      niceness, the workers' too: at the lowest priority a busy machine
//      would starve it, and every episode would compute its own.
//   2. The zygote polls the children's result pipes (addPollFds(),
//      onReadable()) and hands over exit statuses (onExit()); expire()
//      kills a child past the load timeout.
//   3. adoptFinished(): each finished child's result is adopted by its
//      entry — if the cache still holds that content — and written to the
//      disk cache. A child that crashed, failed or timed out is logged and
//      forgotten: its benchmark's sessions compute what they need, and the
//      next load of it tries again.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "forkserver/baseline_cache.h"
#include "forkserver/benchmark_cache.h"
#include "forkserver/loader.h"
#include "forkserver/process_table.h"

namespace forkgym::forkserver {

class BaselineJobs {
 public:
  BaselineJobs(LoaderLimits limits, std::optional<BaselineCache> disk)
      : limits_(limits), disk_(std::move(disk)) {}

  void start(CachedEntry& entry, const std::string& uri);

  void addPollFds(std::vector<pollfd>& fds) const;
  int msUntilNextDeadline() const;
  void onReadable(int fd);
  void onExit(pid_t pid, const ExitStatus& status);
  void expire();
  void adoptFinished(BenchmarkCache& cache);
  void killAll() { jobs_.clear(); }

  // For describe and tests: adopted from disk, computed by a child, failed.
  struct Counts {
    uint64_t diskHits = 0, computed = 0, failed = 0;
  };
  const Counts& counts() const { return counts_; }
  size_t running() const { return jobs_.size(); }

 private:
  using ContentKey = std::pair<const passes::Backend*, std::string>;  // backend, content hash
  struct Job {
    LoaderChild child;
    std::string key;  // the backend's baseline key
  };
  struct Finished {
    ContentKey content;
    std::string key;
    Result<std::string> encoded;
  };
  void finish(std::map<ContentKey, Job>::iterator job, Result<std::string> encoded);

  LoaderLimits limits_;
  std::optional<BaselineCache> disk_;
  std::map<ContentKey, Job> jobs_;
  std::vector<Finished> finished_;
  Counts counts_;
};

}  // namespace forkgym::forkserver
