// Backend: a compiler, as one record. The server serves the backends of an
// explicit table in forkserver/main.cc (no self-registering statics); each
// lives in its own folder, passes/<name>/, and exports one `const Backend`.
// Nothing outside that folder knows a compiler: the zygote, workers,
// loaders, the protocol and the clients see only this record and what it
// describes.
//
// Lifecycle of a backend in the server:
//   1. Zygote start-up (once, single-threaded, before any sandbox):
//      initialize() — load the compiler, detect the host, build tables that
//      depend on the installed compiler. Its identity (version, properties)
//      goes into every hello.
//   2. Zygote: describe replies come from actionSpace(), observationSpaces()
//      and rewardSpaces() (valid after initialize()).
//   3. Zygote, on newSession: resolve() turns the client's URI into the
//      canonical URI and the source a loader reads (benchmark_uri.h); cheap,
//      no compiler runs.
//   4. Loader child (forked by the zygote, limited, killed on timeout):
//      load() reads/compiles the source and returns a LoadedBenchmark whose
//      payload only this backend understands (benchmark_load.h).
//   5. Zygote: prepare() turns that payload, which its own loader produced,
//      into a CachedBenchmark, kept by content and opaque to the zygote
//      (LLVM: a parsed module and its costs; gcc: preprocessed source).
//   6. Worker (forked from the zygote, so the CachedBenchmark is its
//      copy-on-write view): startSession() makes the Session (session.h);
//      then the worker applies the backend's sandbox profile and serves.
//      env.fork() forks the worker: a session needs nothing to be forked.
// installErrorHandlers() runs in every worker and loader child first, so the
// compiler's own fatal-error paths end in the stable exit codes the zygote
// explains.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/replay_command.h"
#include "base/result.h"
#include "passes/benchmark_load.h"
#include "passes/benchmark_uri.h"
#include "passes/session.h"
#include "passes/spaces.h"
#include "sandbox/profile.h"

namespace forkgym::passes {

// How a backend's compiler runs.
enum class StartUp : uint8_t {
  Preloaded,         // a library initialised once in the zygote; steps run in the worker's own process
  ExternalCompiler,  // a program the worker runs for each step (in its own sandbox profile)
};

// Which sandbox profile a backend's workers run in (sandbox/profile.h).
enum class WorkerSandbox : uint8_t {
  InProcessCompiler,  // Profile::Worker: no files, no processes, no network
  ExternalCompiler,   // the external-compiler profile of externalCompiler()'s binaries
};

struct Property {
  std::string key;
  std::string value;
};

// What initialize() found out: the hello's BackendInfo.
struct BackendIdentity {
  std::string version;  // the compiler's version, e.g. "19.1.7"
  // Backend-specific facts a client may need (LLVM: hostTriple, hostCpu,
  // hostFeatures, optPath).
  std::vector<Property> properties;
};

struct Action {
  std::string name;         // e.g. CompilerGym's flag "-dce"
  // What the action adds to the replay command line (ReplayCommand); empty
  // when it adds nothing (a test-only action).
  std::string replay;
  std::string description;
  // Non-empty: the action exists only to keep indices stable; stepping it
  // is an InvalidRequest carrying this reason.
  std::string unavailableReason;
  bool testOnly = false;  // only in test builds (DESIGN.md invariant 6)
  // Its result can depend on more than the module and itself (heap
  // addresses): the state cache never caches it or any state after it.
  bool nondeterministic = false;
};

struct ActionSpace {
  std::string name;  // e.g. "PassesAll"
  std::vector<Action> actions;
  // Identifies the product actions: a client built knowing this backend
  // compares it with its own (the hello); 0 when the table is generated at
  // start-up and no client can know it in advance.
  uint64_t hash = 0;
  ReplayCommand replay;
};

// The replay command line of `actions` (indices into `space.actions`).
std::string replayCommandLine(const ActionSpace& space, std::span<const uint32_t> actions);

// What the zygote keeps for one benchmark content, and a worker starts its
// session from. Opaque to everyone but its backend.
class CachedBenchmark {
 public:
  virtual ~CachedBenchmark() = default;
  // Roughly what it occupies in the zygote (the cache's --cache-mb budget).
  virtual size_t sizeInCache() const = 0;
};

// What a child's fatal paths call; neither returns (each ends the process
// with a stable exit code, after leaving last words where it can).
struct CompilerErrorHandlers {
  void (*outOfMemory)();
  void (*fatalError)(const char* reason);
};

// Per-benchmark numbers a backend leaves out of load() because they are slow
// and not every episode needs them (LLVM: the -O0/-O3/-Oz baselines). Its
// sessions compute what they are asked for and lack; the zygote fills them
// in for later episodes, from its disk cache or from a child it forks in the
// background (forkserver/baseline_jobs.h).
struct Baselines {
  // Zygote: what identifies this benchmark's numbers on this server — its
  // content and everything else they depend on (the compiler's version, the
  // target, the definition's version); the disk cache's key. Empty when the
  // benchmark has them all.
  std::string (*key)(const CachedBenchmark& benchmark);
  // Baseline child (a fork of the zygote with the loader's limits and
  // sandbox): computes them all, encoded for adopt().
  Result<std::string> (*compute)(const CachedBenchmark& benchmark);
  // Zygote: checks what compute() returned or the disk cache held for this
  // benchmark, and adopts it; an error adopts nothing.
  Status (*adopt)(CachedBenchmark& benchmark, std::string_view encoded);
};

struct Backend {
  std::string_view name;         // what NewSession.backend names, e.g. "llvm"
  std::string_view description;  // one line
  StartUp startUp;
  WorkerSandbox sandbox;

  // Step 1 (zygote; also tests and tools that use the compiler directly).
  // Idempotent: later calls return what the first found.
  Result<BackendIdentity> (*initialize)();
  // Step 2 (after initialize()).
  const ActionSpace& (*actionSpace)();
  std::span<const Space> (*observationSpaces)();
  std::span<const Space> (*rewardSpaces)();
  // Step 3.
  Result<BenchmarkLocation> (*resolve)(std::string_view uri, const ResolveContext& context);
  // Step 4 (loader child).
  Result<LoadedBenchmark> (*load)(const LoadRequest& request);
  // Step 5 (zygote): `loaded` came from this backend's load() in a loader
  // child of this zygote.
  Result<std::unique_ptr<CachedBenchmark>> (*prepare)(const LoadedBenchmark& loaded);
  // Step 6 (worker, before its sandbox).
  Result<std::unique_ptr<Session>> (*startSession)(CachedBenchmark& benchmark);
  // Workers and loader children, right after fork(); null when the
  // compiler has no fatal paths of its own to redirect.
  void (*installErrorHandlers)(const CompilerErrorHandlers& handlers) = nullptr;
  // Loader child, before its sandbox: the key of what a source dataset's
  // recipe compiles to — the compiler's identity and every option — stored
  // with the module cached beside the source (module_cache.h). Null: this
  // backend caches nothing beside sources.
  std::string (*sourceModuleKey)(const SourceRecipe& recipe) = nullptr;
  // WorkerSandbox::ExternalCompiler (zygote, after initialize()): the
  // binaries its workers may run, from which the zygote prepares their
  // profile once (sandbox::prepareExternalCompiler); they write only under
  // sandbox::privateTempDirectory().
  sandbox::ExternalCompiler (*externalCompiler)() = nullptr;
  // Null: a benchmark has no numbers computed after load().
  const Baselines* baselines = nullptr;
  // The node-wide state cache (forkserver/state_cache_entry.h): null, this
  // backend's sessions are never cached. Otherwise its workers follow cached
  // transitions and answer deterministic observations and rewards that need
  // no run configuration from the cache, except the observations named here,
  // which are always computed on the module.
  struct StateCachePolicy {
    std::span<const std::string_view> computedObservations;
  };
  const StateCachePolicy* stateCache = nullptr;
};

}  // namespace forkgym::passes
