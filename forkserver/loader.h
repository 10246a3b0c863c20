// Loader: turns a benchmark's source into what its backend caches (for
// LLVM: sanitised bitcode and costs) in a child process, so a compiler
// crash, a hang or hostile input never hurts the zygote, and the zygote
// never waits for it.
//
// Lifecycle (zygote only; single-threaded):
//   1. LoaderChild::start() forks the loader. The child, still privileged
//      and with the file-system identity of the client who asked
//      (sandbox/client_identity.h), enters the benchmark's directory
//      (passes/benchmark_directory.h); then sets itself up in one place
//      (setUpLoaderChild in loader.cc: its own process group, death with the
//      zygote, no inherited descriptors, memory/CPU/file-size limits,
//      out-of-memory handlers, the backend's own fatal-error handlers, the
//      sandbox's loader profile last), runs the backend's load() and writes
//      the encoded result to a pipe. Compilers it runs stay in its process
//      group and die with it (passes/tool_process.h).
//   2. The zygote polls resultFd() among its other descriptors and calls
//      readAvailable() whenever it is readable, until it reports the end.
//   3. The zygote's reaper hands over the loader's exit status (exited()).
//   4. Once both have happened, finish() decodes the result, or explains how
//      the load failed (crashed, ran out of memory, used too much CPU...).
// kill() ends the loader's whole process group at once: the zygote calls it
// at the load's deadline and when no client waits for the load any more.
// startBaselines() forks the same kind of child (limits, sandbox, exit
// codes) to compute a cached benchmark's baselines (passes::Baselines) from
// the zygote's copy-on-write view of it; finishBaselines() is its finish().
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "forkserver/process_table.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "passes/backend.h"
#include "passes/benchmark_load.h"
#include "sandbox/client_identity.h"

namespace forkgym::forkserver {

struct LoaderLimits {
  // Address space the loader may use beyond what it inherits from the zygote
  // (its parsed benchmarks, LLVM); also the limit of each compiler it runs.
  uint64_t addressSpaceBytes = 2ull << 30;
  // Wall clock for the whole load (the zygote kills it then); on every
  // core, the loader's CPU-time limit too.
  std::chrono::seconds timeout{120};
  int niceness = 10;  // added to the nice value; 0 = leave as is
};

// Test builds only: a loader whose URI contains `uriContains` reads one byte
// from the FIFO `fifo` before it loads, so a test controls when a load ends.
struct LoadGate {
  std::string uriContains;
  std::string fifo;
};

class LoaderChild {
 public:
  // client: who asked (the zygote's own identity for a preload).
  static Result<LoaderChild> start(const passes::Backend& backend, const passes::LoadRequest& request,
                                   const LoaderLimits& limits, const sandbox::FsIdentity& client,
                                   const LoadGate& gate = {});
  // `uri`: names the benchmark in messages.
  static Result<LoaderChild> startBaselines(const passes::Backend& backend, const passes::CachedBenchmark& benchmark,
                                            const std::string& uri, const LoaderLimits& limits);
  LoaderChild(LoaderChild&& other) noexcept;
  LoaderChild& operator=(LoaderChild&& other) noexcept;
  // A loader nobody reads from any more is of no use: destruction kills it.
  ~LoaderChild();

  pid_t pid() const { return pid_; }
  int resultFd() const { return result_.get(); }
  std::chrono::steady_clock::time_point deadline() const { return deadline_; }

  // Reads what has arrived on the result pipe; true once it is closed.
  bool readAvailable();
  bool resultComplete() const { return !result_; }
  void exited(const ExitStatus& status) { exit_ = status; }
  bool done() const { return resultComplete() && exit_.has_value(); }

  // SIGKILL to the loader and everything in its process group, unless it
  // was reaped already (its group id could then belong to someone else).
  void kill();

  // After done(): the loaded benchmark, or a BenchmarkError saying why not.
  Result<passes::LoadedBenchmark> finish() const;
  // After done(), for startBaselines(): what Baselines::compute() returned.
  Result<std::string> finishBaselines() const;

 private:
  LoaderChild() = default;
  // The result frame's body, or why there is none.
  Result<std::string_view> payload() const;
  // Forks a child that runs run(zygote pid, result pipe) and never returns.
  template <typename Run>
  static Result<LoaderChild> forkChild(const std::string& uri, std::string what, const LoaderLimits& limits,
                                       Run&& run);

  std::string uri_;
  std::string what_;  // "loading 'uri'", for messages
  LoaderLimits limits_;
  pid_t pid_ = -1;
  UniqueFd pidfd_;
  UniqueFd result_;
  std::string bytes_;
  std::optional<ExitStatus> exit_;
  std::chrono::steady_clock::time_point deadline_;
};

}  // namespace forkgym::forkserver
