// Zygote: the forkgym-server process.
//
// Lifecycle (the zygote process only; single-threaded throughout):
//   1. Zygote(options) — become a child subreaper, enter the children's
//      namespaces and decide their identity (sandbox/isolation.h: the PID
//      namespace's reaper becomes this process's first child), initialise
//      each backend of options.backends once (for LLVM: native target, host
//      CPU and features detected now, before any sandbox) — one that cannot
//      start (gcc not installed) is logged and left out, and a request for it
//      answered with why (backend_unavailable) — block
//      SIGCHLD/SIGTERM/SIGINT into a signalfd, and listen (or adopt the
//      connected socket of the client that spawned it).
//   2. preload() — load each --preload benchmark through loader children (a
//      few at a time) and keep what its backend made of it in the cache.
//   3. run() — the event loop: accept clients, answer hello/describeBackend/
//      newSession/workerExit, reap children, kill a client's workers (and
//      loads nobody else waits for) when its connection closes. A session is
//      a fork(): the worker starts from the cached benchmark copy-on-write,
//      and the zygote steps out of the data path. A newSession whose benchmark
//      is not cached starts (or joins) a load and is answered when the loader
//      child, polled with everything else, is done: no client ever waits for
//      another client's load.
//   4. SIGTERM/SIGINT, the spawning client hanging up, or (with
//      exitWhenIdle) no client connected for that long: kill every worker
//      group and loader, remove the socket file, exit.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "forkserver/baseline_jobs.h"
#include "forkserver/benchmark_cache.h"
#include "forkserver/benchmark_key.h"
#include "forkserver/control_dispatch.h"
#include "forkserver/loader.h"
#include "forkserver/pending_loads.h"
#include "forkserver/process_table.h"
#include "forkserver/spare_pool.h"
#include "forkserver/state_cache_writer.h"
#include "ipc/control_socket.h"
#include "base/unique_fd.h"
#include "passes/backend.h"
#include "passes/benchmark_uri.h"
#include "sandbox/isolation.h"
#include "sandbox/sandbox.h"

namespace capnp {
class MessageBuilder;
}

namespace forkgym::forkserver {

struct ZygoteOptions {
  // The backends to serve, in the order the hello lists them (the server's
  // table, forkserver/main.cc). Never empty; those that cannot start are
  // left out of the hello.
  std::vector<const passes::Backend*> backends;
  std::string socketPath;          // listen here (unless connectedFd is given)
  int connectedFd = -1;            // serve this one connection, exit when it closes
  // A socket server shared by the processes of one node (forkgym.rllib):
  // exit once no client has been connected for this long (from start-up
  // too). Zero: serve until a signal. Short gaps (a client restarting) keep
  // it; the last client gone for good ends it, so it outlives nobody.
  std::chrono::milliseconds exitWhenIdle{0};
  // Benchmarks loaded at start-up: (backend, URI).
  std::vector<std::pair<const passes::Backend*, std::string>> preload;
  // Where benchmark URIs lead (passes/benchmark_uri.h): the --benchmark-root
  // directories (realpath'd by main; empty: any absolute path), the bundled
  // programs, make_benchmark()'s cache.
  passes::ResolveContext benchmarks;
  size_t cacheMb = 2048;
  std::chrono::seconds loadTimeout{120};
  sandbox::SandboxLimits limits;   // per-worker defaults
  sandbox::IsolationRequest isolation;  // who children run as, which namespaces
  uint32_t cpuSecondsPerStep = 60;  // per-step CPU budget (SIGXCPU -> timed_out)
  size_t spareWorkers = 4;         // benchmarks kept with a worker forked ahead (0: none)
  // Spares fault in the module's pages and the compiler's code while they
  // wait (passes/llvm/warm_up.h): a faster first step, for memory of the
  // module's size per episode.
  bool spareWarmUp = true;
  // Address space a load may use beyond what the zygote maps already (the
  // loader is a fork of it), and the limit of each compiler it runs. 0: the
  // worker limit.
  uint64_t loadMemoryBytes = 0;
  LoadGate testLoadGate;  // test builds only (--test-load-gate)
  // Where computed baselines are kept across servers (baseline_cache.h);
  // empty: nowhere.
  std::string baselineCacheDirectory;
  // The node-wide state cache (forkserver/state_cache_writer.h).
  StateCacheOptions stateCache;
};

// What this server says in its hello and describe replies (also what the
// test suites' scripted servers say, so clients see the real tables).
// Each backend must have been initialised.
void fillHello(proto::Hello::Builder hello, std::span<const passes::Backend* const> backends);
void fillDescription(proto::Description::Builder out, const passes::Backend& backend,
                     const std::vector<std::string>& cached);

class Zygote : private ControlHandler {
 public:
  explicit Zygote(ZygoteOptions options);
  ~Zygote();

  // Steps 1-2; an error means the server cannot start.
  Status start();
  // Step 3; returns the process exit code.
  int run();

 private:
  struct Connection {
    UniqueFd fd;
    FrameAssembler assembler;
    bool greeted = false;
    // A newSession waits for its benchmark to load: nothing more is read from
    // this client until it is answered, so replies stay in request order.
    bool waiting = false;
    sandbox::FsIdentity client;  // who is on the other end (SO_PEERCRED)
  };

  // One turn of the event loop: waits for something to do (a request, a
  // loader's result, a signal, a load's deadline), then does it. During
  // preloading (serveClients false) only loads and signals are handled.
  void turn(bool serveClients);
  // Reaps exited children; a loader's exit goes to its load.
  void reap();
  void answerFinishedLoads();
  // Caches what a load of `key` produced; null (not an error) when the load
  // found the content unchanged but that content has been evicted since.
  Result<CachedEntry*> cacheLoaded(const BenchmarkKey& key, passes::LoadedBenchmark loaded);
  // Sends the deferred reply to `request`: a session on `benchmark`, or the failure.
  void answerSession(const SessionRequest& request, const Result<CachedEntry*>& benchmark);
  // Starts a worker for `request` on a cached benchmark (a spare if one waits).
  Status startSession(CachedEntry* benchmark, const SessionRequest& request, proto::SessionStarted::Builder started,
                      std::vector<UniqueFd>& passFds);
  // knownHash: the content cached for the benchmark, if any (see LoadRequest::expectedHash).
  passes::LoadRequest loadRequest(const BenchmarkKey& key, const std::string& knownHash) const;
  // Initialises `backend` and prepares its workers' sandbox profile; an
  // error leaves it out of the backends served (step 1).
  Result<sandbox::Profile> startBackend(const passes::Backend& backend);
  // The backend named `name`; a BackendUnavailable saying why for one that
  // could not start; else an InvalidRequest listing the server's.
  Result<const passes::Backend*> findBackend(std::string_view name) const;
  std::string backendNames() const;  // the backends served, for messages

  void acceptClients();
  // Returns false when the connection must be closed.
  bool serveConnection(uint64_t id, Connection& connection);
  void handleFrame(uint64_t id, Connection& connection, kj::Array<capnp::word> frame);
  void closeConnection(uint64_t id);

  // ControlHandler: the requests dispatchControlFrame() has validated.
  std::optional<uint64_t> actionTableHash(std::string_view backend) override;
  void hello(proto::Hello::Builder out) override;
  Status describe(std::string_view backend, proto::Description::Builder out) override;
  void workerExit(int32_t pid, proto::WorkerExit::Builder out) override;
  void status(proto::ServerStatus::Builder out) override;
  Result<SessionStart> newSession(const std::string& backend, const std::string& benchmark,
                                  proto::Limits::Reader limits, proto::SessionStarted::Builder out,
                                  std::vector<UniqueFd>& fds, const std::optional<RunConfig>& runConfig) override;
  uint64_t currentConnection_ = 0;  // whose frame is being dispatched
  void shutdown();

  // Forks a worker for `benchmark` (its own process group, channel ready).
  // runConfig: the benchmark runs; its worker gets the runnable profile.
  // prepareFirstStep: a spare, nobody waits for it yet; it prepares its
  // first step meanwhile (WorkerStart::prepareFirstStep).
  Result<SpareWorker> startWorker(const BenchmarkKey& key, CachedEntry* benchmark, const sandbox::SandboxLimits& limits,
                                  uint32_t cpuSecondsPerStep, const std::optional<RunConfig>& runConfig = std::nullopt,
                                  bool prepareFirstStep = false);
  // Called when the event loop is idle: forks one wanted spare.
  void makeSpare();

  ZygoteOptions options_;
  UniqueFd listener_;
  UniqueFd signals_;
  BenchmarkCache cache_;
  ProcessTable processes_;
  SparePool spares_;
  PendingLoads loads_;
  BaselineJobs baselines_;
  StateCacheWriter stateCache_;
  std::unordered_map<uint64_t, Connection> connections_;
  std::vector<uint64_t> resumed_;  // answered while waiting: frames they sent meanwhile are due
  uint64_t nextConnectionId_ = 1;
  bool stopping_ = false;
  // Since when no client is connected (exitWhenIdle); unset while one is.
  std::optional<std::chrono::steady_clock::time_point> idleSince_;
  // Milliseconds until exitWhenIdle is due (a poll timeout), or -1.
  int msUntilIdleExit() const;
  sandbox::IsolationPlan isolation_;
  sandbox::IsolationReport sandboxReport_;
  // Each backend's worker profile, prepared once at start-up.
  std::unordered_map<const passes::Backend*, sandbox::Profile> workerProfiles_;
  // Workers of runnable benchmarks (passes/runner.h), prepared at start;
  // unset, with the reason, where the linker is missing.
  std::optional<sandbox::Profile> runnableProfile_;
  std::string runnableUnavailable_;
  // The backends of options.backends that could not start, and why
  // (start() leaves options_.backends with those it serves).
  std::vector<std::pair<const passes::Backend*, std::string>> unavailable_;
  // The loads' warnings logged so far (each is logged once).
  std::set<std::string> warned_;
};

}  // namespace forkgym::forkserver
