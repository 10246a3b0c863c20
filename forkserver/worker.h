// Worker: one episode, one process.
//
// Lifecycle (in a child just forked from the zygote; never returns):
//   1. runWorker() installs the crash reporter, asks its backend to start a
//      session on the inherited benchmark (passes/backend.h; a failure
//      _exit()s with kSessionStartExit after leaving last words), then
//      applies the sandbox as its last setup step (a failing stage
//      _exit()s with the stage's stable code).
//   2. It serves requests on its channel until the client closes it:
//        step  -> find the names in the backend's tables, apply actions,
//                 compute observations and rewards
//        setParameter -> the session's answer
//        run   -> build the program and run it (passes/runner.h), when the
//                 benchmark has a run configuration
//        fork  -> clone(CLONE_PARENT) itself; the copy gets a new channel,
//                 whose client ends this worker passes back with its reply.
//                 The copy unwinds to the top-level loop before serving it,
//                 so a chain of forks of forks never nests.
//      Steps, observations and rewards go through a CachedSession, which
//      answers from the node-wide state cache where it can.
//   3. A failure that ends the episode (e.g. LLVM's verifier) is answered,
//      then the worker exits. Any crash is reported by the crash reporter.
#pragma once

#include <optional>
#include <string>

#include "ipc/run_config.h"

#include "base/unique_fd.h"
#include "ipc/channel.h"
#include "ipc/state_cache.h"
#include "passes/backend.h"
#include "sandbox/sandbox.h"

namespace forkgym::forkserver {

struct WorkerStart {
  Channel channel;
  const passes::Backend* backend;
  passes::CachedBenchmark* benchmark;  // this process's copy-on-write view
  sandbox::SandboxLimits limits;
  uint32_t cpuSecondsPerStep = 0;  // 0: no per-step CPU limit
  sandbox::Profile profile = sandbox::Profile::Worker;  // the backend's, or the runnable one (prepared by the zygote)
  // The benchmark's run configuration (passes/run_config.h), if it runs:
  // the session keeps it, so env.fork() copies carry it.
  std::optional<RunConfig> runConfig;
  // A spare, forked ahead of any client (spare_pool.h): prepares its first
  // step while it waits (Session::prepareFirstStep), stopping when the
  // client rings.
  bool prepareFirstStep = false;
  // The node-wide state cache (forkserver/cached_session.h): the read-only
  // view this process inherited, and its link to the zygote. Null/invalid:
  // this episode is not cached.
  const StateCache* stateCache = nullptr;
  UniqueFd stateCacheLink;
};

[[noreturn]] void runWorker(WorkerStart start);

}  // namespace forkgym::forkserver
