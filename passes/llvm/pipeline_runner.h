// PipelineRunner: runs new-pass-manager pipeline text on one module exactly
// as `opt -passes=<text>` would.
//
// Lifecycle:
//   1. create() builds what opt builds for the module's triple: a
//      TargetMachine (TTI), TargetLibraryInfo, the default AA pipeline,
//      standard instrumentation, and the four analysis managers with their
//      proxies cross-registered.
//   2. run() parses and runs one pipeline. The analysis managers live on
//      across calls, so a sequence of run() calls caches and invalidates
//      analyses exactly like one opt pipeline of the same passes.
//   3. If the module is changed behind the pass manager's back, call
//      forgetAnalyses() before the next run().
//
// Used in the worker (actions) and in the loader child (baselines).
#pragma once

#include <memory>
#include <string_view>

#include "base/result.h"

namespace llvm {
class Module;
}

namespace forkgym::passes {

class PipelineRunner {
 public:
  // BenchmarkError if no target handles the module's triple.
  static Result<std::unique_ptr<PipelineRunner>> create(llvm::Module& module);
  ~PipelineRunner();
  PipelineRunner(const PipelineRunner&) = delete;
  PipelineRunner& operator=(const PipelineRunner&) = delete;

  // InvalidRequest if the text does not parse. Otherwise whether any pass
  // reported a change (its PreservedAnalyses were not "all").
  Result<bool> run(std::string_view pipeline);

  void forgetAnalyses();

 private:
  struct State;
  explicit PipelineRunner(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace forkgym::passes
