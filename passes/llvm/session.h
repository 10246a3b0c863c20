// LlvmSession: the state of one phase-ordering episode inside a worker (the
// LLVM backend's Session, passes/session.h).
//
// Lifecycle (worker process only):
//   1. The worker wraps the module it inherited from the zygote (COW) in an
//      LlvmSession together with the benchmark's costs (backend.cc's
//      startSession).
//   2. applyActions() validates every index first (nothing is applied if one
//      is bad), runs each through the new pass manager, verifies the module
//      if it changed, and records the actions.
//   3. observe()/reward() run the rows of LLVM's tables (observations.cc,
//      rewards.cc) in process (object code via an in-process TargetMachine).
//   4. On env.fork() the worker process is forked; the session is copied with
//      it, so nothing here needs to know about forks.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "passes/llvm/benchmark.h"
#include "passes/llvm/rewards.h"
#include "passes/session.h"
#include "passes/spaces.h"

namespace llvm {
class Module;
}

namespace forkgym::passes {

class LlvmSession : public TableSession<LlvmSession> {
 public:
  // originalBitcode: the benchmark as loaded (the gold standard a run of
  // the original program builds); it outlives the session (the cached
  // benchmark, copy-on-write in the worker). `costs` are the module's own
  // (until an action changes it, its object size is costs' initial one).
  LlvmSession(llvm::Module& module, const BenchmarkCosts& costs, const std::string* originalBitcode = nullptr);
  ~LlvmSession() override;
  LlvmSession(const LlvmSession&) = delete;
  LlvmSession& operator=(const LlvmSession&) = delete;

  // InvalidRequest for an unknown or unavailable index (nothing applied);
  // VerifierFailed if a pass broke the module (the episode is over).
  Result<ApplyResult> applyActions(std::span<const uint32_t> actions) override;
  // LLVM has no parameters: always InvalidRequest.
  Result<std::string> setParameter(std::string_view key, std::string_view value) override;
  // <the server's opt> -passes='...' -preserve-bc-uselistorder=false input.bc -o output.bc
  std::string commandLine() const override;
  const std::vector<uint32_t>& actions() const override { return actions_; }
  Result<std::string> programObject(RunProgram program) override;
  // Creates the pipeline runner and faults in the module's pages (warm_up.h).
  void prepareFirstStep(const std::function<bool()>& idle) override;

  // By row index (the worker) or by name (tests, tools): InvalidRequest for
  // an unknown name. A reward moves its running state on (CompilerGym
  // semantics: r = C(previous) - C(now), scaled).
  using TableSession::observe;
  using TableSession::reward;

  // The tables (observations.cc, rewards.cc).
  static std::span<const ObservationRow<LlvmSession>> observationRows();
  static std::span<const RewardRow<LlvmSession>> rewardRows();

  // What the tables' functions read. Derived values are cached until an
  // action changes the module.
  llvm::Module& module() { return module_; }
  // A baseline: the benchmark's, or computed now from its bitcode if the
  // benchmark came without it (benchmark.h), then kept for the episode and
  // its forks. kNoObjectFile for a target without object files.
  Result<int64_t> baseline(RewardCost cost, CostPoint point);
  // Every value baseline() has given is in here (the others kNotComputed).
  const BenchmarkCosts& costs() const { return costs_; }
  const std::string& bitcode();
  Result<int64_t> objectTextSize();
  // The linked program's Berkeley text size (runs the build): InvalidRequest
  // without a run configuration, BuildFailed when it does not link.
  Result<int64_t> textSize();

 private:
  struct Impl;
  // The pipeline runner, created once per episode (first step, or a spare's
  // preparation); BenchmarkError if no target handles the module.
  Status ensureRunner();
  llvm::Module& module_;
  BenchmarkCosts costs_;
  const std::string* originalBitcode_;
  std::vector<uint32_t> actions_;
  std::unique_ptr<Impl> impl_;
};

// The spaces of the two tables, in row order (what describe carries).
std::span<const Space> observationSpaces();
std::span<const Space> rewardSpaces();

// The replay command line of an action sequence: the pipeline text that
// `opt -passes=<text>` accepts, e.g. "dce,instcombine<...>".
std::string pipelineText(std::span<const uint32_t> actions);

// One-time LLVM initialisation for the zygote: native target, asm printer and
// parser, pass registry, and a warm-up of every action and observation.
// Returns the host CPU name and features (detected now, before any sandbox).
struct HostTarget {
  std::string triple;
  std::string cpu;
  std::string features;
};
const HostTarget& initializeLlvm();

}  // namespace forkgym::passes
