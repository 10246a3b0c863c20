#include "passes/llvm/pipeline_runner.h"

#include <llvm/Analysis/AliasAnalysis.h>
#include <llvm/Analysis/TargetLibraryInfo.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/PassManager.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Passes/StandardInstrumentations.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/TargetParser/Triple.h>

#include "passes/llvm/target_machine.h"

namespace forkgym::passes {

// Member order is destruction order in reverse: the analysis managers hold
// results that refer to the TargetMachine, TLI and instrumentation, and
// their proxies refer to one another, so they go first, MAM before LAM as in
// opt (which declares LAM, FAM, CGAM, MAM in that order).
struct PipelineRunner::State {
  llvm::Module& module;
  std::unique_ptr<llvm::TargetMachine> machine;
  llvm::TargetLibraryInfoImpl libraryInfo;
  llvm::PassInstrumentationCallbacks instrumentationCallbacks;
  std::unique_ptr<llvm::StandardInstrumentations> instrumentations;
  std::unique_ptr<llvm::PassBuilder> builder;
  llvm::LoopAnalysisManager loopAnalyses;
  llvm::FunctionAnalysisManager functionAnalyses;
  llvm::CGSCCAnalysisManager cgsccAnalyses;
  llvm::ModuleAnalysisManager moduleAnalyses;

  State(llvm::Module& m, std::unique_ptr<llvm::TargetMachine> tm)
      : module(m), machine(std::move(tm)), libraryInfo(llvm::Triple(m.getTargetTriple())) {}
};

Result<std::unique_ptr<PipelineRunner>> PipelineRunner::create(llvm::Module& module) {
  auto machine = createTargetMachine(module.getTargetTriple(), TargetMachineUse::PassPipeline);
  if (!machine.ok()) return machine.takeError();
  auto state = std::make_unique<State>(module, std::move(*machine));

  // The same construction sequence as opt's runPassPipeline (NewPMDriver.cpp)
  // with no command-line options: instrumentation first, default tuning
  // options, no PGO, then AA and TLI registered before the defaults so that
  // ours are the ones used.
  state->instrumentations = std::make_unique<llvm::StandardInstrumentations>(
      module.getContext(), /*DebugLogging=*/false, /*VerifyEach=*/false);
  state->instrumentations->registerCallbacks(state->instrumentationCallbacks,
                                             &state->moduleAnalyses);
  state->builder = std::make_unique<llvm::PassBuilder>(
      state->machine.get(), llvm::PipelineTuningOptions(), std::nullopt,
      &state->instrumentationCallbacks);
  llvm::PassBuilder& builder = *state->builder;

  llvm::AAManager aliasAnalyses;
  if (auto error = builder.parseAAPipeline(aliasAnalyses, "default")) {
    return makeError(Outcome::ServerError, "default AA pipeline: " + toString(std::move(error)));
  }
  state->functionAnalyses.registerPass([&] { return std::move(aliasAnalyses); });
  llvm::TargetLibraryInfoImpl* libraryInfo = &state->libraryInfo;
  state->functionAnalyses.registerPass(
      [libraryInfo] { return llvm::TargetLibraryAnalysis(*libraryInfo); });

  builder.registerModuleAnalyses(state->moduleAnalyses);
  builder.registerCGSCCAnalyses(state->cgsccAnalyses);
  builder.registerFunctionAnalyses(state->functionAnalyses);
  builder.registerLoopAnalyses(state->loopAnalyses);
  builder.crossRegisterProxies(state->loopAnalyses, state->functionAnalyses,
                               state->cgsccAnalyses, state->moduleAnalyses);
  return std::unique_ptr<PipelineRunner>(new PipelineRunner(std::move(state)));
}

PipelineRunner::PipelineRunner(std::unique_ptr<State> state) : state_(std::move(state)) {}

PipelineRunner::~PipelineRunner() = default;

Result<bool> PipelineRunner::run(std::string_view pipeline) {
  llvm::ModulePassManager passes;
  if (auto error = state_->builder->parsePassPipeline(passes, llvm::StringRef(pipeline))) {
    return makeError(Outcome::InvalidRequest, "cannot parse pass pipeline '" +
                                                  std::string(pipeline) +
                                                  "': " + toString(std::move(error)));
  }
  const llvm::PreservedAnalyses preserved = passes.run(state_->module, state_->moduleAnalyses);
  return !preserved.areAllPreserved();
}

void PipelineRunner::forgetAnalyses() {
  // Clearing the module-level manager drops the proxies, whose destruction
  // clears the inner managers as well.
  state_->moduleAnalyses.clear();
  state_->cgsccAnalyses.clear();
  state_->functionAnalyses.clear();
  state_->loopAnalyses.clear();
}

}  // namespace forkgym::passes
