// LlvmSession: the state of one phase-ordering episode inside a worker.
//
// Lifecycle (worker process only):
//   1. The worker wraps the module it inherited from the zygote (COW) in an
//      LlvmSession together with the benchmark's costs.
//   2. applyActions() validates every index first (nothing is applied if one
//      is bad), runs each through the new pass manager, verifies the module
//      if it changed, and records the actions.
//   3. observe()/reward() compute CompilerGym observations and rewards in
//      process (object code via an in-process TargetMachine).
//   4. On env.fork() the worker process is forked; the session is copied with
//      it, so nothing here needs to know about forks.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/result.h"
#include "passes/llvm/benchmark.h"

namespace llvm {
class Module;
}

namespace forkgym::passes {

// One observation value. Which alternative a name yields is fixed per name
// (see observationSpaces()).
using ObservationValue = std::variant<int64_t,               // scalar counts
                                      std::vector<int64_t>,  // InstCount, Autophase
                                      std::string,           // Ir, IrSha1 (text)
                                      std::vector<uint8_t>,  // Bitcode
                                      bool>;

enum class ValueType : uint8_t { Int64, Int64List, Text, Bytes, Bool };

struct ObservationSpaceInfo {
  std::string_view name;
  ValueType type;
  int64_t length;       // list length, or 0 when not a fixed-length list
  bool deterministic;
  bool platformDependent;
};

struct RewardSpaceInfo {
  std::string_view name;
  bool deterministic;
  bool platformDependent;
};

std::span<const ObservationSpaceInfo> observationSpaces();
std::span<const RewardSpaceInfo> rewardSpaces();

// Feature names in vector order (InstCount: 70, Autophase: 56).
std::span<const std::string_view> instCountFeatureNames();
std::span<const std::string_view> autophaseFeatureNames();

struct ApplyResult {
  bool actionHadNoEffect = true;  // no action reported a change
};

class LlvmSession {
 public:
  LlvmSession(llvm::Module& module, const BenchmarkCosts& costs);
  ~LlvmSession();
  LlvmSession(const LlvmSession&) = delete;
  LlvmSession& operator=(const LlvmSession&) = delete;

  // InvalidRequest for an unknown or unavailable index (nothing applied);
  // VerifierFailed if a pass broke the module (the episode is over).
  Result<ApplyResult> applyActions(std::span<const uint32_t> actions);

  // InvalidRequest for an unknown name.
  Result<ObservationValue> observe(std::string_view name);
  // InvalidRequest for an unknown name. Updates that reward's running state
  // (CompilerGym semantics: r = C(previous) - C(now), scaled).
  Result<double> reward(std::string_view name);

  const std::vector<uint32_t>& actions() const { return actions_; }
  llvm::Module& module() { return module_; }

 private:
  struct Impl;
  llvm::Module& module_;
  BenchmarkCosts costs_;
  std::vector<uint32_t> actions_;
  std::unique_ptr<Impl> impl_;
};

// The replay command line of an action sequence: the pipeline text that
// `opt -passes=<text>` accepts, e.g. "dce,instcombine<...>".
std::string pipelineText(std::span<const uint32_t> actions);

// One-time LLVM initialisation for the zygote: native target, asm printer and
// parser, pass registry. Returns the host CPU name and features (detected
// now, before any sandbox).
struct HostTarget {
  std::string triple;
  std::string cpu;
  std::string features;
};
const HostTarget& initializeLlvm();

}  // namespace forkgym::passes
