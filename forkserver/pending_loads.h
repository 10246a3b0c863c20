// PendingLoads: the benchmark loads under way — one loader child per
// benchmark (backend and source URI) — and the session requests waiting for
// each.
//
// Lifecycle (zygote only; single-threaded):
//   1. A reset of a benchmark the cache cannot serve joins its load
//      (join()), which starts a loader child if none runs; clients asking
//      for the same benchmark meanwhile share that one load. Preloads join with no
//      waiter and are kept until they end.
//   2. The zygote polls every load's result pipe with its other descriptors
//      (addPollFds()) and passes on readiness (onReadable()) and the exit
//      statuses its reaper collects (onExit()).
//   3. expire() kills loads past their deadline; abandon() removes a client
//      that went away and kills any load no one waits for any more.
//   4. takeFinished() hands over the loads that ended (a result, or the error
//      saying why not) with their waiters, for the zygote to answer.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "forkserver/benchmark_key.h"
#include "ipc/run_config.h"
#include "forkserver/loader.h"
#include "forkserver/process_table.h"
#include "passes/benchmark_load.h"
#include "sandbox/client_identity.h"

namespace forkgym::forkserver {

// A newSession request answered once its benchmark is loaded.
struct SessionRequest {
  uint64_t connection = 0;
  BenchmarkKey key;  // the backend, and the source its loader reads
  std::string uri;   // canonical, as the session reports it
  uint64_t addressSpaceMb = 0;
  uint32_t cpuSecondsPerStep = 0;
  // Who asked: the loader reaches the benchmark with this file-system
  // identity (sandbox/client_identity.h).
  sandbox::FsIdentity client;
  // How to build and run the benchmark's program (the client's, or its
  // dataset's); unset: it does not run.
  std::optional<RunConfig> runConfig;
};

class PendingLoads {
 public:
  struct Finished {
    BenchmarkKey key;
    Result<passes::LoadedBenchmark> result;
    std::vector<SessionRequest> waiters;
    bool preload = false;
  };

  PendingLoads(LoaderLimits limits, LoadGate gate) : limits_(limits), gate_(std::move(gate)) {}

  // Adds `waiter` (none for a preload) to the load of `key` (whose source
  // is request.uri), starting a loader when none runs — with the waiter's
  // identity, or the server's own for a preload. Clients share a load by
  // key: a server accepts only its own user and root
  // (Zygote::acceptClients), so they reach alike. An error only if no
  // loader could be started.
  Status join(const BenchmarkKey& key, const passes::LoadRequest& request, std::optional<SessionRequest> waiter);

  size_t size() const { return loads_.size(); }
  bool empty() const { return loads_.empty(); }
  // Each load's URI and how many requests wait for it (for describe).
  std::vector<std::pair<std::string, uint32_t>> status() const;

  void addPollFds(std::vector<pollfd>& fds) const;
  // Milliseconds until the earliest deadline (at least 0), or -1 for none.
  int msUntilNextDeadline() const;
  void onReadable(int fd);
  void onExit(pid_t pid, const ExitStatus& status);
  void expire();
  void abandon(uint64_t connection);
  std::vector<Finished> takeFinished();
  // Shutdown: kills every loader.
  void killAll() { loads_.clear(); }

 private:
  struct Load {
    LoaderChild child;
    std::vector<SessionRequest> waiters;
    bool preload = false;
  };

  void finishWith(std::map<BenchmarkKey, Load>::iterator load, Result<passes::LoadedBenchmark> result);

  LoaderLimits limits_;
  LoadGate gate_;
  std::map<BenchmarkKey, Load> loads_;
  std::vector<Finished> finished_;
};

}  // namespace forkgym::forkserver
